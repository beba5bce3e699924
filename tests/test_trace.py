"""Trace replay: a CSV of request start times (access-log style, or Locust's stats history) drives the open model."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.fields import ScenarioError
from loadtest.loadmodel import OpenLoad
from loadtest.locust.arrival import arrivals_for
from loadtest.scenario import load_scenario, parse_scenario
from loadtest.trace import TraceError, read_trace


def write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def scenario(tmp_path: Path, trace: str, target: str = "relay", **load) -> object:
    raw = {"target": {"name": target}, "load": {"model": "open", "max_vus": 20, "arrivals": "trace", "trace": trace,
                                                 **load}}
    return parse_scenario(raw, source=str(tmp_path / "s.toml"))


def test_iso_timestamps_out_of_order_are_sorted_and_shifted_to_zero(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,model,use_case\n"
                           "2026-11-27T09:00:01.500Z,dall-e-4,lifestyle\n"
                           "2026-11-27T09:00:00.250Z,midjourney-v7,product_mockup\n"
                           "2026-11-27T09:00:03.000Z,midjourney-v7,abandoned_cart\n")
    trace = read_trace(path)
    assert trace.offsets_s.tolist() == pytest.approx([0.0, 1.25, 2.75])
    assert list(trace.replay()) == [(0.0, "midjourney-v7", "product_mockup"), (1.25, "dall-e-4", "lifestyle"),
                                    (2.75, "midjourney-v7", "abandoned_cart")]
    assert read_trace(path, time_scale=2.0).offsets_s.tolist() == pytest.approx([0.0, 2.5, 5.5])


def test_a_bare_column_of_seconds_works(tmp_path: Path) -> None:
    trace = read_trace(write(tmp_path, "# seconds since the doors opened\n10.0\n10.5\n12\n"))
    assert trace.offsets_s.tolist() == [0.0, 0.5, 2.0] and trace.models == () and trace.use_case_index is None


def test_a_locust_stats_history_becomes_evenly_spread_starts(tmp_path: Path) -> None:
    path = write(tmp_path, "Timestamp,User Count,Type,Name,Requests/s,Failures/s\n"
                           "1700000000,10,,Aggregated,0.000000,0\n"
                           "1700000001,10,POST,relay x,9.0,0\n"
                           "1700000001,10,,Aggregated,10.000000,0\n"
                           "1700000002,10,,Aggregated,20.000000,0\n"
                           "1700000003,10,,Aggregated,0,0\n", name="locust_stats_history.csv")
    trace = read_trace(path)
    # None in the first second, 10 in the next, 20 in the last, each spread evenly over its second.
    assert trace.arrivals == 30
    spacing = [round(b - a, 3) for a, b in zip(trace.offsets_s, trace.offsets_s[1:])]
    assert spacing == [0.1] * 9 + [0.075] + [0.05] * 19


@pytest.mark.parametrize("text, message", [
    ("", "the trace is empty"),
    ("timestamp\n", "a header but no request start times"),
    ("timestamp\n1.0\nsoon\n3\n", "line 3: 'soon' is not a time"),
    ("t,use_case\n1,lifestyle\n2,banners\n", "line 3: use_case 'banners' is not one of"),
    ("t,model\n1,\n", "line 2: no model"),
])
def test_bad_traces_name_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        read_trace(write(tmp_path, text))


def test_the_trace_sets_the_stages_and_the_scheduled_starts(tmp_path: Path) -> None:
    write(tmp_path, "t\n" + "".join(f"{i * 0.1:.1f}\n" for i in range(50)))   # 50 starts over 4.9 s
    s = scenario(tmp_path, "trace.csv")            # relative to the scenario file
    load = s.load
    assert isinstance(load, OpenLoad) and [st.name for st in load.stages] == ["replay"]
    assert load.duration_s == 5.0 and load.scheduled_starts == 50
    named = scenario(tmp_path, "trace.csv", stages=[{"name": "early", "duration": "2s"},
                                                     {"name": "late", "duration": "1s"}])
    # Named windows of the trace; what lies past them is not replayed.
    assert [st.name for st in named.load.stages] == ["early", "late"] and named.load.scheduled_starts == 30
    assert len(list(arrivals_for(named.load))) == 30
    assert named.load.stages[0].rate == pytest.approx(10.0)


def test_workers_split_a_trace_between_them_without_repeating_it(tmp_path: Path) -> None:
    write(tmp_path, "t\n" + "".join(f"{i * 0.01:.2f}\n" for i in range(100)))
    load = scenario(tmp_path, "trace.csv").load
    parts = [list(arrivals_for(load, i, 3)) for i in range(3)]
    assert sorted(t for p in parts for t, _, _ in p) == [t for t, _, _ in arrivals_for(load)]
    assert [len(p) for p in parts] == [34, 33, 33]


def test_duration_stretches_a_trace_in_time(tmp_path: Path) -> None:
    from loadtest.scenario import Overrides, apply_overrides
    write(tmp_path, "t\n0\n1\n2\n3\n")
    s = apply_overrides(scenario(tmp_path, "trace.csv"), Overrides(duration="8s"))
    assert [t for t, _, _ in arrivals_for(s.load)] == pytest.approx([0.0, 2.0, 4.0, 6.0])


def test_a_trace_may_only_ask_for_models_the_target_serves(tmp_path: Path) -> None:
    write(tmp_path, "t,model\n0,midjourney-v7\n1,imagen-4\n2,no-such-model\n")
    with pytest.raises(ScenarioError, match="asks for 'no-such-model', which relay does not serve"):
        scenario(tmp_path, "trace.csv")
    write(tmp_path, "t,model\n0,midjourney-v7\n1,dall-e-4\n")
    s = scenario(tmp_path, "trace.csv")
    assert s.load.trace.models == ("dall-e-4", "midjourney-v7")
    with pytest.raises(ScenarioError, match="which dall-e-4 does not serve"):
        scenario(tmp_path, "trace.csv", target="dall-e-4")


def test_stage_rates_and_start_rate_do_not_apply_to_a_trace(tmp_path: Path) -> None:
    write(tmp_path, "t\n0\n1\n")
    with pytest.raises(ScenarioError, match="unknown key.*rate"):
        scenario(tmp_path, "trace.csv", stages=[{"name": "a", "duration": "1s", "rate": 5}])
    with pytest.raises(ScenarioError, match="trace file not found"):
        scenario(tmp_path, "missing.csv")


def test_flash_sale_replay_ships_its_trace() -> None:
    s = load_scenario("flash_sale_replay")
    load = s.load
    assert isinstance(load, OpenLoad) and load.trace is not None
    assert load.trace.use_case_index is not None and load.scheduled_starts == load.trace.arrivals
    names = [st.name for st in load.stages]
    assert names == ["ramp", "spikes", "tail"]
    ramp, spikes, tail = (st.rate for st in load.stages)
    assert spikes > ramp and spikes > tail         # a sale's shape: the spikes are its peak
