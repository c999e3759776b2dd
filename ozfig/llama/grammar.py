"""JSON schema → GBNF (llama.cpp's grammar language), through llama-cpp-python's converter.

Part of the binding (`ozfig/llama/` is the only importer of `llama_cpp`): it uses
`llama_cpp.llama_grammar.SchemaConverter`, pure Python. What the converter would silently
drop or get wrong is dealt with here: every schema is checked first (`schema_check`: an
unsupported feature is an `UnsupportedSchemaError` naming it); strings never hold raw control
characters, quotes or backslashes (the JSON answer always parses); literals are escaped
fully; integer `minimum`/`maximum` become digit ranges; `{}` means any JSON value; patterns
are made JSON-safe (`pattern.py`). `GrammarBuilder` puts several schemas into one grammar
(one per tool) with rules of its own around them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from llama_cpp.llama_grammar import PRIMITIVE_RULES, RESERVED_NAMES, SchemaConverter

from ..errors import UnsupportedSchemaError
from . import gbnf
from .pattern import json_safe
from .schema_check import ANNOTATIONS, BOUNDS, check_schema, integer_bounds

# a JSON string character: no raw control characters (json.loads and pydantic refuse them)
STRICT_CHAR = r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'
SAFE_DOT = r'[^"\\\x7F\x00-\x1F]'
MAX_GRAMMAR_CHARS = 512 * 1024
_DEF_KEYS = ("$defs", "definitions")


@dataclass(frozen=True)
class Grammar:
    """A GBNF grammar for an answer; a lazy one constrains only from a trigger on: a pattern
    (ECMAScript, llama.cpp's std::regex, on the generated text) or a token."""

    gbnf: str
    lazy: bool = False
    patterns: tuple[str, ...] = ()
    tokens: tuple[int, ...] = ()


class _Converter(SchemaConverter):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)

    def _format_literal(self, literal: str) -> str:
        return gbnf.literal(literal)

    def _add_rule(self, name: str, rule: str) -> str:
        if name == "dot":
            rule = SAFE_DOT
        elif name == "char" and rule == PRIMITIVE_RULES["char"].content:
            rule = STRICT_CHAR
        return super()._add_rule(name, rule)  # type: ignore[no-any-return]

    def visit(self, schema: Any, name: str) -> str:
        if schema is True or (isinstance(schema, dict) and not (set(schema) - ANNOTATIONS)):
            return self._add_primitive("value", PRIMITIVE_RULES["value"])  # type: ignore[no-any-return]
        if isinstance(schema, dict):
            parts = schema.get("allOf")
            if isinstance(parts, list) and len(parts) == 1 and not (set(schema) - ANNOTATIONS - {"allOf"}):
                return self.visit(parts[0], name)
            if schema.get("type") == "integer" and any(b in schema for b in BOUNDS):
                lo, hi = integer_bounds(schema)
                rule_name = name + "-" if name in RESERVED_NAMES else name or "root"
                return self._add_rule(rule_name, gbnf.integer_range(lo, hi) + " space")
            if "pattern" in schema:
                schema = {**schema, "pattern": json_safe(schema["pattern"])}
            if schema.get("items") == {}:  # any items (the converter takes {} for "no items")
                schema = {**schema, "items": True}
        return super().visit(schema, name)  # type: ignore[no-any-return]


def _tag_refs(schema: Any, tag: str) -> Any:
    """A copy of `schema` whose $defs names start with `tag` (so two tools' `Location` differ)."""
    out = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                parts = ref.split("/")
                if len(parts) != 3 or parts[1] not in _DEF_KEYS:
                    raise ValueError(f"the $ref {ref!r} (only #/$defs/NAME and #/definitions/NAME)")
                node["$ref"] = f"#/{parts[1]}/{tag}-{parts[2]}"
            for key in _DEF_KEYS:
                defs = node.get(key)
                if isinstance(defs, dict):
                    node[key] = {f"{tag}-{k}": v for k, v in defs.items()}
            for value in node.values():
                walk(value)

    walk(out)
    return out


class GrammarBuilder:
    """One grammar made of JSON-schema rules and rules written around them."""

    def __init__(self) -> None:
        self._converter = _Converter()

    def schema(self, schema: Any, *, name: str, where: str) -> str:
        """The rule name for JSON text matching `schema`; UnsupportedSchemaError (param `where`)."""
        check_schema(schema, where)
        try:
            tagged = _tag_refs(schema, name)
            resolved = self._converter.resolve_refs(tagged, name)
            return self._converter.visit(resolved, name)
        except (AssertionError, ValueError, KeyError, TypeError, RecursionError, OverflowError) as exc:
            raise UnsupportedSchemaError(
                where, f"{where}: the JSON schema cannot be made into a grammar: {exc}"[:500]
            ) from None

    def json_object(self) -> str:
        """The rule name for any JSON object."""
        return self._converter._add_primitive("object", PRIMITIVE_RULES["object"])  # type: ignore[no-any-return]

    def rule(self, name: str, body: str) -> str:
        """Add `name ::= body` (renamed if taken by another body); its name."""
        return self._converter._add_rule(name, body)  # type: ignore[no-any-return]

    def build(self, root: str, where: str) -> str:
        """The whole grammar, `root ::= <root>`."""
        self._converter._rules["root"] = root
        text: str = self._converter.format_grammar()
        if len(text) > MAX_GRAMMAR_CHARS:
            raise UnsupportedSchemaError(
                where, f"{where}: the JSON schema makes a grammar of {len(text)} characters; at most "
                f"{MAX_GRAMMAR_CHARS} are accepted"
            )
        return text


def json_schema_grammar(schema: Any, where: str) -> Grammar:
    """A grammar whose only sentences are JSON texts matching `schema`."""
    builder = GrammarBuilder()
    rule = builder.schema(schema, name="answer", where=where)
    return Grammar(builder.build(rule, where))


def json_object_grammar() -> Grammar:
    """A grammar for any JSON object (response_format json_object)."""
    builder = GrammarBuilder()
    return Grammar(builder.build(builder.json_object(), "response_format"))
