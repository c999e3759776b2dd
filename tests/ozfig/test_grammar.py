"""JSON schema -> GBNF (ozfig/llama/grammar.py): what is refused by name, and what the pieces
written by hand mean (no model needed; tests/ozfig/test_grammar_sampling.py runs them in llama.cpp)."""

from __future__ import annotations

import re
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from ozfig.errors import UnsupportedSchemaError
from ozfig.llama.gbnf import integer_range, literal
from ozfig.llama.grammar import json_object_grammar, json_schema_grammar
from ozfig.llama.pattern import json_safe


def gbnf_alternation_as_regex(gbnf: str) -> str:
    """integer_range's output (literals, [a-b] classes, | and parentheses) as a Python regex."""
    out = re.sub(r'"([^"]*)"', lambda m: re.escape(m.group(1)), gbnf)
    return out.replace(" ", "")


@pytest.mark.parametrize(
    ("lo", "hi"), [(0, 9), (5, 123), (-20, 7), (-305, -17), (1, 1), (99, 1001), (None, 40), (-3, None)]
)
def test_integer_ranges_match_exactly_the_integers_between(lo: int | None, hi: int | None) -> None:
    regex = re.compile(gbnf_alternation_as_regex(integer_range(lo, hi)))
    for n in range(-1200, 1200):
        inside = (lo is None or n >= lo) and (hi is None or n <= hi)
        assert bool(regex.fullmatch(str(n))) == inside, n
    assert not regex.fullmatch("007")  # no leading zeros
    assert not regex.fullmatch("-0")


def test_literals_escape_what_gbnf_and_json_need() -> None:
    assert literal('a"b\\c\nd\x01') == '"a\\"b\\\\c\\nd\\x01"'


@pytest.mark.parametrize(
    ("schema", "named"),
    [
        ({"type": "object", "not": {"required": ["a"]}}, "'not'"),
        ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "'uniqueItems'"),
        ({"type": "string", "format": "email"}, "'email'"),
        ({"type": "number", "minimum": 0}, "minimum on a non-integer"),
        ({"$ref": "https://example.com/schema.json"}, "https://example.com/schema.json"),
        ({"type": "string", "pattern": "^a(?=b)"}, "(?"),
        ({"type": "string", "maxLength": 1_000_000}, "maxLength 1000000"),
        ({"type": "object", "patternProperties": {"^x": {}}}, "'patternProperties'"),
        ({"type": "object", "properties": {"a": {"type": "strang"}}}, "'strang'"),
        ({"if": {}, "then": {}}, "'if'"),
    ],
)
def test_unsupported_features_are_refused_by_name_and_place(schema: dict, named: str) -> None:
    with pytest.raises(UnsupportedSchemaError) as caught:
        json_schema_grammar(schema, "response_format.json_schema.schema")
    assert caught.value.status == 400
    assert caught.value.param == "response_format.json_schema.schema"
    assert named in caught.value.message


class Address(BaseModel):
    city: str
    zip: str = Field(pattern=r"^\d{5}$")


class Person(BaseModel):
    name: str = Field(min_length=1, max_length=40)
    age: int = Field(ge=0, le=150)
    kind: Literal["a", "b"]
    tags: list[str] = Field(max_length=3)
    home: Address | None = None
    work: Address


def test_pydantic_schemas_convert_with_every_rule_defined() -> None:
    gbnf = json_schema_grammar(Person.model_json_schema(), "x").gbnf
    defined = {line.split(" ::= ")[0] for line in gbnf.splitlines()}
    used = set(re.findall(r"(?<![\"\w\\-])([a-z][a-zA-Z0-9-]*)(?![\"\w-])", gbnf.replace('"', ' " ')))
    assert "root" in defined
    # every rule name a body uses is defined (literals are quoted, classes bracketed)
    bodies = " ".join(line.split(" ::= ", 1)[1] for line in gbnf.splitlines())
    bodies = re.sub(r'"(\\.|[^"\\])*"', " ", bodies)
    bodies = re.sub(r"\[(\\.|[^\]\\])*\]", " ", bodies)
    names = set(re.findall(r"[A-Za-z][A-Za-z0-9-]*", bodies))
    assert names <= defined, names - defined
    assert used  # the regexes above found something at all
    assert '"\\"age\\""' in gbnf


def test_strings_never_hold_raw_control_characters() -> None:
    gbnf = json_object_grammar().gbnf
    char = next(line for line in gbnf.splitlines() if line.startswith("char ::="))
    assert "\\x00-\\x1F" in char


@pytest.mark.parametrize(
    ("pattern", "safe"),
    [
        (r"^\d{3}-[a-z]+\.x$", r"^[0-9]{3}-[a-z]+[.]x$"),
        ("abc", "^.*(abc).*$"),
        ("^[^,]+$", '^[^,"\\\\\\x00-\\x1F\\x7F]+$'),
    ],
)
def test_patterns_are_anchored_and_json_safe(pattern: str, safe: str) -> None:
    assert json_safe(pattern) == safe
