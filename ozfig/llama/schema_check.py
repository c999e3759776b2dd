"""Which JSON-schema features a grammar can enforce, and the first one in a schema it cannot.

llama-cpp-python's converter (see `grammar.py`) silently drops the keywords it does not know
(`not`, `uniqueItems`, `minimum` on a number, ...): a grammar made from such a schema would let
through answers the schema forbids. `check_schema` walks the whole schema first and raises
`UnsupportedSchemaError` naming the first such keyword and where it is (a JSON pointer).
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import UnsupportedSchemaError
from .pattern import json_safe

# keywords that describe and never constrain: ignored
ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$schema",
        "$id",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$defs",
        "definitions",
        "strict",
        "discriminator",
    }
)
SUPPORTED = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "enum",
        "const",
        "anyOf",
        "oneOf",
        "allOf",
        "$ref",
        "pattern",
        "format",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
    }
)
TYPES = frozenset({"string", "number", "integer", "boolean", "null", "object", "array"})
FORMATS = frozenset({"date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5"})
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
MAX_REPEAT = 1000  # minLength, maxLength, minItems, maxItems: the grammar spells out each repetition
MAX_DEPTH = 48
_ALLOF_PART = frozenset({"properties", "required", "type", "$ref", "anyOf"})


class SchemaCheck:
    def __init__(self, where: str) -> None:
        self.where = where  # the request field that holds the schema, for the error's `param`

    def refuse(self, pointer: str, feature: str, why: str = "") -> UnsupportedSchemaError:
        reason = f" ({why})" if why else ""
        return UnsupportedSchemaError(
            self.where,
            f"{self.where}: the JSON schema uses {feature} at {pointer or '#'}, which ozfig cannot enforce "
            f"with a grammar{reason}. Supported: type, properties, required, additionalProperties, items, "
            "prefixItems, min/maxItems, enum, const, anyOf, oneOf, allOf of objects, local $ref, pattern, "
            "format (date, time, date-time, uuid), min/maxLength, and minimum/maximum on integers.",
        )

    def check(self, schema: Any, pointer: str = "#", depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            raise self.refuse(pointer, "nesting", f"deeper than {MAX_DEPTH} levels")
        if schema is True or schema == {}:
            return
        if not isinstance(schema, dict):
            raise self.refuse(pointer, f"the schema {schema!r}", "a schema must be an object or true")
        for key in schema:
            if key not in SUPPORTED and key not in ANNOTATIONS:
                raise self.refuse(f"{pointer}/{key}", f"the keyword {key!r}")
        self._check_type(schema, pointer)
        self._check_strings(schema, pointer)
        self._check_numbers(schema, pointer)
        self._check_combinations(schema, pointer)
        for count in ("minItems", "maxItems", "minLength", "maxLength"):
            value = schema.get(count)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise self.refuse(f"{pointer}/{count}", f"{count} {value!r}", "a count must be an integer >= 0")
            if isinstance(value, int) and value > MAX_REPEAT:
                raise self.refuse(f"{pointer}/{count}", f"{count} {value}", f"at most {MAX_REPEAT}")
        ref = schema.get("$ref")
        if ref is not None and not (isinstance(ref, str) and ref.startswith("#/")):
            raise self.refuse(f"{pointer}/$ref", f"the $ref {ref!r}", "only references inside the schema")
        self._walk_children(schema, pointer, depth)

    def _check_type(self, schema: dict[str, Any], pointer: str) -> None:
        kind = schema.get("type")
        kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
        for k in kinds:
            if k not in TYPES:
                raise self.refuse(f"{pointer}/type", f"the type {k!r}")
        if isinstance(kind, list):
            shaping = set(schema) - ANNOTATIONS - {"type"}
            if shaping:
                raise self.refuse(
                    f"{pointer}/type", f"a list of types beside {sorted(shaping)[0]!r}", "use anyOf instead"
                )

    def _check_strings(self, schema: dict[str, Any], pointer: str) -> None:
        fmt = schema.get("format")
        if fmt is not None and fmt not in FORMATS:
            raise self.refuse(f"{pointer}/format", f"the format {fmt!r}")
        pattern = schema.get("pattern")
        if pattern is not None:
            if not isinstance(pattern, str):
                raise self.refuse(f"{pointer}/pattern", f"the pattern {pattern!r}", "a pattern is a string")
            try:
                json_safe(pattern)
            except ValueError as exc:
                raise self.refuse(f"{pointer}/pattern", f"the pattern {pattern!r}", str(exc)) from None
            if fmt is not None or "minLength" in schema or "maxLength" in schema:
                raise self.refuse(f"{pointer}/pattern", "pattern beside format or min/maxLength")
        if fmt is not None and ("minLength" in schema or "maxLength" in schema):
            raise self.refuse(f"{pointer}/format", "format beside min/maxLength")

    def _check_numbers(self, schema: dict[str, Any], pointer: str) -> None:
        bounds = [b for b in BOUNDS if b in schema]
        if not bounds:
            return
        if schema.get("type") != "integer":
            raise self.refuse(f"{pointer}/{bounds[0]}", f"{bounds[0]} on a non-integer", "only on integers")
        for bound in bounds:
            value = schema[bound]
            finite = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
            if isinstance(value, bool) or not finite or value != int(value) or abs(value) > 10**18:
                raise self.refuse(f"{pointer}/{bound}", f"{bound} {value!r}", "an integer bound")

    def _check_combinations(self, schema: dict[str, Any], pointer: str) -> None:
        structural = set(schema) - ANNOTATIONS
        for union in ("anyOf", "oneOf"):
            if union in schema:
                others = structural - {union, "type"}
                if others:
                    raise self.refuse(f"{pointer}/{union}", f"{union} beside {sorted(others)[0]!r}")
                if not isinstance(schema[union], list) or not schema[union]:
                    raise self.refuse(f"{pointer}/{union}", f"an empty or non-list {union}")
        if "allOf" in schema:
            others = structural - {"allOf", "type"}
            if others:
                raise self.refuse(f"{pointer}/allOf", f"allOf beside {sorted(others)[0]!r}")
            parts = schema["allOf"]
            if not isinstance(parts, list) or not parts:
                raise self.refuse(f"{pointer}/allOf", "an empty or non-list allOf")
            for i, part in enumerate(parts):
                extra = set(part) - ANNOTATIONS - _ALLOF_PART if isinstance(part, dict) else {"?"}
                if extra:
                    raise self.refuse(f"{pointer}/allOf/{i}", "allOf of anything but object properties")
        if "items" in schema and "prefixItems" in schema:
            raise self.refuse(f"{pointer}/prefixItems", "prefixItems beside items")

    def _walk_children(self, schema: dict[str, Any], pointer: str, depth: int) -> None:
        children: list[tuple[str, Any]] = []
        for key in ("properties", "$defs", "definitions"):
            value = schema.get(key)
            if value is not None:
                if not isinstance(value, dict):
                    raise self.refuse(f"{pointer}/{key}", f"{key} that is not an object")
                children += [(f"{pointer}/{key}/{name}", sub) for name, sub in value.items()]
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            value = schema.get(key)
            if isinstance(value, list):
                children += [(f"{pointer}/{key}/{i}", sub) for i, sub in enumerate(value)]
        items = schema.get("items")
        if isinstance(items, list):
            children += [(f"{pointer}/items/{i}", sub) for i, sub in enumerate(items)]
        elif items is not None:
            children.append((f"{pointer}/items", items))
        extra = schema.get("additionalProperties")
        if extra is not None and not isinstance(extra, bool):
            children.append((f"{pointer}/additionalProperties", extra))
        required = schema.get("required")
        if required is not None and not (
            isinstance(required, list) and all(isinstance(r, str) for r in required)
        ):
            raise self.refuse(f"{pointer}/required", "required that is not a list of names")
        for child_pointer, child in children:
            self.check(child, child_pointer, depth + 1)


def check_schema(schema: Any, where: str) -> None:
    """UnsupportedSchemaError (a 400 whose `param` is `where`) for the first feature a grammar cannot enforce."""
    SchemaCheck(where).check(schema)


def integer_bounds(schema: dict[str, Any]) -> tuple[int | None, int | None]:
    """The inclusive (low, high) an integer schema allows."""
    lo = hi = None
    if "minimum" in schema:
        lo = int(schema["minimum"])
    if "exclusiveMinimum" in schema:
        v = int(schema["exclusiveMinimum"]) + 1
        lo = v if lo is None else max(lo, v)
    if "maximum" in schema:
        hi = int(schema["maximum"])
    if "exclusiveMaximum" in schema:
        v = int(schema["exclusiveMaximum"]) - 1
        hi = v if hi is None else min(hi, v)
    return lo, hi
