import math

import pytest

from loadtest.thresholds import Threshold, ThresholdError, format_limit, format_value, parse_duration, parse_thresholds


def one(key, expr):
    (t,) = parse_thresholds({key: [expr]})
    return t


# -- accepted forms ---------------------------------------------------------------------

@pytest.mark.parametrize("expr, agg, pct, op, value", [
    ("p(99)<600", "p", 99.0, "<", 600.0),
    ("p(99.9)<=1500", "p", 99.9, "<=", 1500.0),
    ("p(50) < 300", "p", 50.0, "<", 300.0),
    ("  p( 95 )  >  10.5 ", "p", 95.0, ">", 10.5),
    ("p(100)<2000", "p", 100.0, "<", 2000.0),
    ("avg<400", "avg", None, "<", 400.0),
    ("min>=1", "min", None, ">=", 1.0),
    ("max!=0", "max", None, "!=", 0.0),
    ("med==250", "med", None, "==", 250.0),
])
def test_latency_aggregations(expr, agg, pct, op, value):
    t = one("latency", expr)
    assert (t.metric, t.aggregation, t.percentile, t.op, t.value) == ("latency", agg, pct, op, value)
    assert t.filters == ()
    assert t.abort_on_fail is False and t.delay_abort_eval_s == 0.0


@pytest.mark.parametrize("key, metric", [
    ("http_req_duration", "latency"), ("http_req_failed", "failures"), ("http_reqs", "requests"),
    ("dropped_iterations", "dropped"), ("checks", "success"),
])
def test_k6_aliases(key, metric):
    expr = {"latency": "p(99)<600", "failures": "rate<0.0005", "requests": "count>100",
            "dropped": "count==0", "success": "rate>0.99"}[metric]
    assert one(key, expr).metric == metric


@pytest.mark.parametrize("key, expr, agg", [
    ("success", "rate>=0.9995", "rate"), ("failures", "rate<0.0005", "rate"),
    ("requests", "count>=1000", "count"), ("requests", "rate>=1200", "rate"), ("requests", "rps>=1200", "rps"),
    ("dropped", "count==0", "count"), ("dropped", "rate<0.01", "rate"),
])
def test_other_metrics(key, expr, agg):
    t = one(key, expr)
    assert t.metric == key and t.aggregation == agg


def test_filters_are_parsed_and_sorted():
    t = one("latency{stage:surge, target:relay,name: generate}", "p(99)<600")
    assert t.filters == (("name", "generate"), ("stage", "surge"), ("target", "relay"))
    assert t.source == "latency{stage:surge, target:relay,name: generate}: p(99)<600"
    assert t.label() == "latency p(99) < 600 ms [name=generate, stage=surge, target=relay]"


def test_filter_value_may_contain_a_colon_and_quotes_are_stripped():
    t = one("latency{target:http://host:8000}", "p(99)<600")
    assert t.filters == (("target", "http://host:8000"),)
    assert one("latency{stage:'surge'}", "p(99)<600").filters == (("stage", "surge"),)


def test_expected_response_filter():
    assert one("http_req_duration{expected_response:TRUE}", "p(99)<600").filters == (("expected_response", "true"),)


@pytest.mark.parametrize("options", [
    {"threshold": "p(99)<600", "abort_on_fail": True, "delay_abort_eval": "10s"},
    {"threshold": "p(99)<600", "abortOnFail": True, "delayAbortEval": "10s"},
])
def test_table_entries_snake_and_camel_case(options):
    t = one("latency{stage:surge}", options)
    assert t.abort_on_fail is True and t.delay_abort_eval_s == 10.0
    assert t.expression() == "p(99)<600"
    assert t.source == "latency{stage:surge}: p(99)<600"


def test_a_single_string_or_table_is_accepted_and_lists_mix():
    ts = parse_thresholds({"latency": "p(99)<600", "success": {"threshold": "rate>0.99"},
                           "requests": ["count>1", {"threshold": "rate>5", "abort_on_fail": False}]})
    assert [t.expression() for t in ts] == ["p(99)<600", "rate>0.99", "count>1", "rate>5"]


def test_empty_table_gives_no_thresholds():
    assert parse_thresholds({}) == []


def test_check_every_operator():
    mk = lambda op: Threshold("latency", (), "p", 99.0, op, 600.0, "")  # noqa: E731
    assert mk("<").check(599.9) and not mk("<").check(600)
    assert mk("<=").check(600) and not mk("<=").check(600.1)
    assert mk(">").check(600.1) and not mk(">").check(600)
    assert mk(">=").check(600) and not mk(">=").check(599)
    assert mk("==").check(600) and not mk("==").check(601)
    assert mk("!=").check(601) and not mk("!=").check(600)
    assert not mk("<").check(math.nan) and not mk("!=").check(None)  # type: ignore[arg-type]  # as a caller might


def test_labels_and_units():
    assert one("success", "rate>=0.9995").label() == "success rate >= 0.9995"
    assert one("requests", "rate>=1200").label() == "requests rate >= 1200 req/s"
    assert one("requests", "count>10").label() == "requests count > 10"
    assert one("latency", "p(99.9)<1500.5").label() == "latency p(99.9) < 1500.5 ms"
    assert one("latency", "p(99.9)<1500.5").expression() == "p(99.9)<1500.5"


def test_format_value():
    assert format_value("latency", "p", 712.44) == "712.4 ms"
    assert format_value("latency", "p", 600.0) == "600 ms"
    assert format_value("success", "rate", 0.9995) == "99.950 %"
    assert format_value("requests", "rate", 1180.25) == "1,180.2 req/s"
    assert format_value("requests", "count", 12345.0) == "12,345"
    assert format_value("latency", "p", None) == "n/a"


def test_format_limit_writes_a_rate_as_it_was_written():
    # A measured rate keeps enough digits to tell 99.95 % from 99.94 %; a limit is exact, so no padding.
    assert format_limit("success", "rate", 0.9995) == "99.95 %"
    assert format_limit("success", "rate", 0.999) == "99.9 %"
    assert format_limit("success", "rate", 1.0) == "100 %"
    assert format_limit("latency", "p", 600.0) == format_value("latency", "p", 600.0) == "600 ms"
    assert format_limit("requests", "rate", 1200.0) == "1,200 req/s"


# -- rejections ------------------------------------------------------------------------------

@pytest.mark.parametrize("table, message", [
    ({"latncy": ["p(99)<600"]}, "unknown metric 'latncy'"),
    ({"latency{stage}": ["p(99)<600"]}, "malformed filter 'stage'"),
    ({"latency{stage:}": ["p(99)<600"]}, "malformed filter"),
    ({"latency{}": ["p(99)<600"]}, "empty filter"),
    ({"latency{zone:eu}": ["p(99)<600"]}, "unknown filter tag 'zone'"),
    ({"latency{stage:a,stage:b}": ["p(99)<600"]}, "given twice"),
    ({"latency{expected_response:maybe}": ["p(99)<600"]}, "expected_response must be true or false"),
    ({"latency stage": ["p(99)<600"]}, "cannot read the key"),
    ({"latency": ["rate<0.1"]}, "'rate' is not an aggregation of latency (use p(N), avg, min, max, med)"),
    ({"success": ["p(99)<600"]}, "'p(99)' is not an aggregation of success (use rate)"),
    ({"requests": ["avg<3"]}, "not an aggregation of requests (use count, rate, rps)"),
    ({"dropped": ["rps<3"]}, "not an aggregation of dropped"),
    ({"latency": ["p(99)=600"]}, "bad operator '='"),
    ({"latency": ["p(99)=<600"]}, "bad operator '=<'"),
    ({"latency": ["p(99)<>600"]}, "bad operator '<>'"),
    ({"latency": ["p(99)<abc"]}, "bad number 'abc'"),
    ({"latency": ["p(99)<600ms"]}, "bad number '600ms' (units are implied"),
    ({"latency": ["p(99)<"]}, "bad number ''"),
    ({"latency": ["p(99)<inf"]}, "must be a finite number"),
    ({"latency": ["p(0)<600"]}, "above 0 and at most 100"),
    ({"latency": ["p(101)<600"]}, "above 0 and at most 100"),
    ({"latency": ["p(x)<600"]}, "bad percentile 'x'"),
    ({"latency": ["600"]}, "expected aggregation, operator and number"),
    ({"latency": [""]}, "expected aggregation, operator and number"),
    ({"success": ["rate>99.95"]}, "a rate is a fraction between 0 and 1 (99.95 % is 0.9995), got 99.95"),
    ({"latency": [{"threshold": "p(99)<600", "abort": True}]}, "unknown option 'abort'"),
    ({"latency": [{"abort_on_fail": True}]}, "needs threshold ="),
    ({"latency": [{"threshold": "p(99)<600", "abort_on_fail": "yes"}]}, "abort_on_fail must be true or false"),
    ({"latency": [{"threshold": "p(99)<600", "abort_on_fail": True, "abortOnFail": True}]}, "given twice"),
    ({"latency": [{"threshold": "p(99)<600", "delay_abort_eval": "soon"}]}, "delay_abort_eval: not a duration"),
    ({"latency": [{"threshold": 600}]}, "must be a string"),
    ({"latency": [600]}, "must be a string"),
    ({"latency": []}, "expected a list of expressions"),
    ({"latency": 600}, "expected a list of expressions"),
])
def test_rejections_name_the_problem(table, message):
    with pytest.raises(ThresholdError) as info:
        parse_thresholds(table)
    assert message in str(info.value)
    assert "thresholds" in str(info.value)


def test_not_a_table():
    with pytest.raises(ThresholdError, match="must be a table"):
        parse_thresholds(["p(99)<600"])  # type: ignore[arg-type]  # the mistake under test


def test_threshold_error_is_a_value_error():
    assert issubclass(ThresholdError, ValueError)


# -- durations -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("10s", 10.0), ("1m30s", 90.0), ("250ms", 0.25), ("4h", 14400.0), ("90", 90.0), ("1.5s", 1.5),
    ("1h2m3s", 3723.0), ("2m", 120.0), ("0s", 0.0), (" 45s ", 45.0), ("1m 30s", 90.0), (".5s", 0.5),
    (90, 90.0), (2.5, 2.5), ("1s500ms", 1.5),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text, message", [
    ("", "must not be empty"), ("10x", "not a duration"), ("s", "not a duration"), ("ten seconds", "not a duration"),
    ("10s abc", "not a duration"), ("-5s", "cannot be negative"), (-5, "non-negative"), (True, "must be a number"),
    (None, "must be a number"), ("nan", "finite"),
])
def test_parse_duration_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


# -- time to first image ---------------------------------------------------------------------

@pytest.mark.parametrize("expr, agg, pct", [("p(95)<2500", "p", 95.0), ("avg<900", "avg", None),
                                            ("med<1500", "med", None), ("max<=4000", "max", None)])
def test_first_image_takes_latency_aggregations_in_ms(expr, agg, pct):
    (t,) = parse_thresholds({"first_image{stage:steady}": [expr]})
    assert (t.metric, t.aggregation, t.percentile, t.unit) == ("first_image", agg, pct, "ms")
    assert t.filters == (("stage", "steady"),)
    assert t.label().startswith("first_image ") and t.label().endswith(" ms [stage=steady]")
    assert format_value("first_image", agg, 812.25) == "812.2 ms"


def test_first_image_refuses_what_is_not_a_duration():
    with pytest.raises(ThresholdError, match="'rate' is not an aggregation of first_image"):
        parse_thresholds({"first_image": ["rate<0.1"]})
    with pytest.raises(ThresholdError, match="milliseconds for latency and first_image"):
        parse_thresholds({"first_image": ["p(95)<2s"]})
