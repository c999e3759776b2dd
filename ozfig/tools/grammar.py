"""The grammar that makes an answer's tool calls well-formed, in the model's format.

Each call is `{"name": "<a tool>", "<args key>": <the tool's parameters schema>}` (a space
allowed after `{`, `:` and `,`), inside the format's opener and closer. `required` and a
named function get a plain grammar: the answer is the calls. `auto` gets a lazy one, started
when the model writes the format's opener — by its token when the vocabulary has it as one
token, else by a pattern on the text. llama.cpp feeds the grammar the text from the opener
to the end of the token that completed it, and aborts the process if the grammar refuses
that text; so a pattern only matches (it ends with `$`) while everything after the opener is
the start of a call the grammar takes: a token that runs past the opener into anything
else leaves the grammar off, and the parser then reads that text as content.
"""

from __future__ import annotations

import json
from typing import TypeAlias

from ..llama.gbnf import literal
from ..llama.grammar import Grammar, GrammarBuilder
from .calls import ToolUse
from .formats import ToolFormat

_REGEX_SPECIAL = set("\\^$.|?*+()[]{}/")


def regex_escape(text: str) -> str:
    return "".join("\\n" if c == "\n" else "\\" + c if c in _REGEX_SPECIAL else c for c in text)


# a call's start as the grammar allows it: (character, optional) or a list of alternatives
Item: TypeAlias = "tuple[str, bool] | list[list[Item]]"


def _chars(text: str) -> list[Item]:
    return [(c, False) for c in text]


def _closure(items: list[Item]) -> str:
    """A regex matching every prefix of the sequence `items` (the empty one too)."""
    if not items:
        return ""
    head, rest = items[0], items[1:]
    if isinstance(head, list):
        return "(?:" + "|".join(_closure(alt + rest) for alt in head) + ")?"
    char, optional = head
    return "(?:" + regex_escape(char) + ("?" if optional else "") + _closure(rest) + ")?"


def call_start(fmt: ToolFormat, names: list[str]) -> list[Item]:
    """The text of a call up to its function's name, as the grammar below allows it."""
    name_alternatives: list[list[Item]] = [_chars(json.dumps(n)) for n in names]
    return [
        ("{", False),
        (" ", True),
        *_chars('"name"'),
        (" ", True),
        (":", False),
        (" ", True),
        name_alternatives,
    ]


def _after_opener(fmt: ToolFormat, names: list[str]) -> list[Item]:
    if fmt.array:
        return [(" ", True), ("[", False), *call_start(fmt, names)]
    if fmt.closer:
        return [("\n", True), *call_start(fmt, names)]
    return call_start(fmt, names)


def trigger_patterns(fmt: ToolFormat, names: list[str], opener_token: int | None) -> tuple[str, ...]:
    patterns = []
    if opener_token is None:
        patterns.append("(" + regex_escape(fmt.opener) + ")" + _closure(_after_opener(fmt, names)) + "$")
    if fmt.bare_json:
        patterns.append(r"^[ \t\n]*(\{)" + _closure(call_start(fmt, names)[1:]) + "$")
    return tuple(patterns)


def call_grammar(use: ToolUse, fmt: ToolFormat, opener_token: int | None = None) -> Grammar:
    """The grammar for this request's calls (UnsupportedSchemaError for a schema it cannot enforce)."""
    builder = GrammarBuilder()
    sp = builder.rule("call-space", '" "?')
    alternatives = []
    for tool in use.callable:
        i = use.tools.index(tool)
        where = f"tools[{i}].function.parameters"
        args = builder.schema(tool.parameters, name=f"tool-{i}-args", where=where)
        body = (
            f'"{{" {sp} {literal(json.dumps("name"))} {sp} ":" {sp} {literal(json.dumps(tool.name))} {sp} "," '
            f'{sp} {literal(json.dumps(fmt.args_key))} {sp} ":" {sp} {args} {sp} "}}"'
        )
        alternatives.append(builder.rule(f"call-{i}", body))
    call = builder.rule("call", " | ".join(alternatives))
    many = use.parallel and not fmt.single
    opener = literal(fmt.opener)
    if fmt.array:
        listed = f'"[" {call} ("," {sp} {call})* "]"' if many else f'"[" {call} "]"'
        root = f"{opener} {sp} {listed}"
    elif fmt.closer:
        block = builder.rule("call-block", f'{opener} "\\n"? {call} "\\n"? {literal(fmt.closer)}')
        root = f'{block} ("\\n" {block})* "\\n"?' if many else block
    elif use.forced:
        root = call
    else:  # llama3, auto: the bare call, or after <|python_tag|>
        root = f"{opener}? {call}"
    gbnf = builder.build(root, "tools")
    if use.forced:
        return Grammar(gbnf)
    names = [t.name for t in use.callable]
    tokens = (opener_token,) if opener_token is not None else ()
    return Grammar(gbnf, lazy=True, patterns=trigger_patterns(fmt, names, opener_token), tokens=tokens)
