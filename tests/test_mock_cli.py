"""The command line: refusals to start (exit 2, a clear message), the admin token, and keys kept
out of the log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from mockserver import MockServer

from mockprovider.__main__ import main

ROOT = Path(__file__).resolve().parent.parent

PROMPT = "Minimalist white sneaker on marble surface, studio lighting"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MOCK_ADMIN_TOKEN"}
    return subprocess.run([sys.executable, "-m", "mockprovider", "--port", "0", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)


def test_binding_beyond_loopback_without_an_admin_token_is_refused() -> None:
    done = run_cli("--host", "0.0.0.0")
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0 without --admin-token" in done.stderr
    assert "listening" not in done.stdout


def test_with_an_admin_token_the_admin_api_wants_it(start_mock) -> None:
    server = start_mock("--admin-token", "s3cret-admin", "--latency-scale", "0")
    refused = httpx.get(f"{server.url}/admin/providers", timeout=10)
    assert refused.status_code == 401 and "Bearer" in refused.json()["error"]["message"]
    wrong = httpx.patch(f"{server.url}/admin/providers/relay", json={"outage": True},
                        headers={"Authorization": "Bearer guess"}, timeout=10)
    assert wrong.status_code == 401
    ok = httpx.get(f"{server.url}/admin/providers", headers={"Authorization": "Bearer s3cret-admin"}, timeout=10)
    assert ok.status_code == 200 and ok.json()["relay"]["settings"]["outage"] is False
    # The provider APIs themselves do not want the admin token.
    r = httpx.post(f"{server.url}/relay/v1/images/generations", json={"prompt": PROMPT},
                   headers={"Authorization": "Bearer hs_test_cli_0001"}, timeout=10)
    assert r.status_code in (200, 500, 503, 504)   # served (or an injected error), never 401


BAD_PROFILES = {
    "not TOML": ("[relay\nprice_usd = 1", "not valid TOML"),
    "unknown field": ("[relay]\nprise_usd = 0.01", "unknown field(s) prise_usd"),
    "misspelt sub-field": ("[relay]\nlatency = { p50_ms = 40, p99_ms = 90, p90_ms = 70 }", "p90_ms"),
    "wrong type": ('[dall-e-4]\ncapacity = { slots = "many", queue = 10 }', "slots must be a finite number"),
    "p99 below p50": ("[imagen-4]\nlatency = { p50_ms = 3000, p99_ms = 1000 }", "p99_ms (1000.0) is below p50_ms"),
    "unknown base": ('[mine]\nbase = "dall-e-5"', "base = 'dall-e-5' names no profile"),
    "base loop": ('[a]\nbase = "b"\n[b]\nbase = "a"', "inheritance loops"),
    "unknown api": ('[mine]\nbase = "dall-e-4"\napi = "stability"', "api must be one of"),
    "relay model unknown": ('[relay.relay]\nmodels = ["dall-e-4", "flux-9"]', "'flux-9' names no profile"),
    "error rate above 1": ("[relay]\nfaults = { error_rate = 1.5 }", "error_rate must be <= 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_PROFILES))
def test_a_bad_profile_file_is_a_clear_error(tmp_path, capsys, case: str) -> None:
    text, message = BAD_PROFILES[case]
    path = tmp_path / "mine.toml"
    path.write_text(text)
    assert main(["--port", "0", "--profiles", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mockprovider: ") and message in err, err


@pytest.mark.parametrize("setting, message", [
    ("nope.error_rate=0.1", "no provider 'nope'"),
    ("relay.error_rat=0.1", "unknown setting 'error_rat'"),
    ("relay.error_rate=lots", "error_rate must be a number"),
    ("relay.error_rate=2", "error_rate must be between 0 and 1"),
    ("relay.slots=0", "slots must be 1..10000"),
    ("relay.slots=2.5", "slots must be a whole number 1..10000"),
    ("relay.queue=5000000", "queue must be 0..100000"),
    ("relay.requests_per_minute=0.001", "requests_per_minute must be between 0.0166667 and 1e+06"),
    ("relay.outage=maybe", "outage must be true or false"),
    ("relay.slots=nan", "slots must be 1..10000, got nan"),
    ("relay.slots=" + "9" * 400, "slots must be 1..10000"),
    ("relay", "--set wants NAME.setting=value"),
])
def test_a_bad_set_is_a_clear_error(capsys, setting: str, message: str) -> None:
    assert main(["--port", "0", "--set", setting]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mockprovider: ") and message in err, err


def test_a_missing_profile_file_exits_2_from_the_real_command(tmp_path) -> None:
    done = run_cli("--profiles", str(tmp_path / "absent.toml"))
    assert done.returncode == 2 and "profile file not found" in done.stderr


def test_keys_never_reach_the_log() -> None:
    keys = {"openai": "sk-live-0123456789abcdefSECRET", "relay": "hs_live_0123456789abcdefSECRET",
            "vertex": "ya29.live-0123456789abcdefSECRET", "midjourney": "mj-live-0123456789abcdefSECRET",
            "wrong": "sk-bad key 0123456789abcdefSECRET"}
    server = MockServer("--access-log", "--latency-scale", "0").start()
    try:
        url = server.url
        bodies = [
            ("/openai/v1/images/generations", {"Authorization": f"Bearer {keys['openai']}"},
             {"model": "dall-e-4", "prompt": PROMPT}),
            ("/openai/v1/images/generations", {"Authorization": f"Bearer {keys['wrong']}"},
             {"model": "dall-e-4", "prompt": PROMPT}),
            ("/relay/v1/images/generations", {"Authorization": f"Bearer {keys['relay']}"}, {"prompt": PROMPT}),
            ("/vertex/v1/projects/p/locations/l/publishers/google/models/imagen-4:predict",
             {"Authorization": f"Bearer {keys['vertex']}"}, {"instances": [{"prompt": PROMPT}]}),
            ("/midjourney/mj/submit/imagine", {"mj-api-secret": keys["midjourney"]}, {"prompt": PROMPT}),
            ("/midjourney/mj/submit/imagine", {"mj-api-secret": keys["midjourney"]}, {"prompt": 7}),
        ]
        for path, headers, body in bodies:
            httpx.post(url + path, json=body, headers=headers, timeout=10)
    finally:
        server.stop()
    log = "".join(server.output)   # everything the server printed, drained until it stopped
    assert log.count("POST /relay/v1/images/generations") == 1     # the access log did log
    assert log.count("POST /midjourney/mj/submit/imagine") == 2
    for key in keys.values():
        assert key not in log and "0123456789abcdefSECRET" not in log
