"""summary.json has one definition (loadtest.summary.Summary) and a published JSON Schema that matches it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from loadtest.summary import schema, schema_text

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "summary.schema.json"


def test_the_published_schema_is_the_code_s() -> None:
    assert SCHEMA.read_text() == schema_text(), "regenerate it: loadtest schema > schemas/summary.schema.json"


def test_the_schema_is_a_valid_draft_2020_12_schema_that_refuses_strays() -> None:
    doc = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc == schema()
    validator = jsonschema.Draft202012Validator(doc)
    assert not validator.is_valid({"format": "loadtest.summary/1"})          # required fields missing
    assert "additionalProperties" in json.dumps(doc)                         # no unknown keys slip through


def test_the_published_capacity_schema_is_the_code_s() -> None:
    from loadtest.capacity import schema_text as capacity_schema_text
    path = SCHEMA.with_name("capacity.schema.json")
    assert path.read_text() == capacity_schema_text(), \
        "regenerate it: loadtest schema capacity > schemas/capacity.schema.json"
    doc = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(doc)
    validator = jsonschema.Draft202012Validator(doc)
    assert not validator.is_valid({"format": "loadtest.capacity/1"})         # required fields missing
    assert not validator.is_valid({**_capacity_minimal(), "bound": "luck"})   # only the named bounds
    assert validator.is_valid(_capacity_minimal())


def _capacity_minimal() -> dict:
    return {"scenario": "s", "target": "t", "started_at": "2026-01-01T00:00:00Z", "holds_rps": 10.0,
            "breaks_rps": 20.0, "first_broken": "latency p(99) < 600 ms", "bound": "target", "answer": "a",
            "exit_code": 0, "confidence": 0.95, "resolution": 0.05, "steps": []}
