from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mockserver import MockServer


@pytest.fixture
def start_mock() -> Iterator[Callable[..., MockServer]]:
    """start_mock("--latency-scale", "0.01", ...) -> a running MockServer, stopped after the test."""
    servers: list[MockServer] = []

    def start(*args: str) -> MockServer:
        server = MockServer(*args).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def fast_mock() -> Iterator[MockServer]:
    """One mock per test module with latencies scaled to 1 %, limits on, seed 0."""
    with MockServer("--latency-scale", "0.01", "--seed", "0") as server:
        yield server


SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "summary.schema.json"


@pytest.fixture(autouse=True)
def every_summary_written_is_valid(tmp_path: Path) -> Iterator[None]:
    """After each test, every summary.json it wrote validates against the published schema."""
    yield
    for path in tmp_path.rglob("summary.json"):
        assert_valid_summary(path)


def assert_valid_summary(path: Path) -> None:
    import json

    import jsonschema
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    errors = sorted(validator.iter_errors(json.loads(path.read_text())), key=lambda e: list(e.path))
    assert not errors, f"{path} does not match {SCHEMA.name}: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5])
