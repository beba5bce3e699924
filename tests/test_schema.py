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
