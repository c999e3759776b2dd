"""A JSON schema's `pattern` made into a regular expression the converter turns into safe GBNF.

The converter (see `grammar.py`) writes a pattern's characters into the JSON string as they
are, and knows few escapes (`\\d` or `\\.` make a grammar llama.cpp cannot parse). So a pattern
is anchored as JSON schema means it (a search: `^.*(p).*$` unless it is anchored), `\\d`, `\\w`,
`\\s` and escaped punctuation are spelled out as classes, and negated classes leave out what a
JSON string cannot hold raw (`"`, `\\`, control characters). What cannot be made safe — a
literal quote or backslash, `\\b`, lookarounds, anchors inside — is a ValueError whose message
names it.
"""

from __future__ import annotations

# what a JSON string may not hold unescaped; left out of every negated class (and of `.`)
JSON_UNSAFE_CLASS = '"\\\\\\x00-\\x1F\\x7F'
_SHORTHAND_OUT = {"d": "[0-9]", "w": "[a-zA-Z0-9_]", "s": "[ ]"}
_SHORTHAND_IN = {"d": "0-9", "w": "a-zA-Z0-9_", "s": " "}
_KEPT_ESCAPES = set("[]()|{}*+?")  # the converter reads these escapes as the character
_CLASS_ESCAPES = {".": ".", "-": "\\-", "]": "\\]", "[": "\\[", "/": "/", "(": "(", ")": ")", "+": "+"}
_CLASS_ESCAPES.update({"*": "*", "?": "?", "{": "{", "}": "}", "|": "|", "^": "\\x5E", "$": "$"})


def anchored(pattern: str) -> str:
    """`pattern` as a whole-string match, `^...$`."""
    start = pattern.startswith("^")
    end = pattern.endswith("$") and not pattern.endswith("\\$")
    if start and end:
        return pattern
    core = pattern[1 if start else 0 : len(pattern) - 1 if end else len(pattern)]
    return "^" + ("" if start else ".*") + "(" + core + ")" + ("" if end else ".*") + "$"


def _class(pattern: str, i: int) -> tuple[str, int]:
    """The class starting at pattern[i] == '[', translated, and the index after it."""
    out = "["
    i += 1
    negated = i < len(pattern) and pattern[i] == "^"
    if negated:
        out += "^"
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt in _SHORTHAND_IN:
                out += _SHORTHAND_IN[nxt]
            elif nxt in _CLASS_ESCAPES:
                out += _CLASS_ESCAPES[nxt]
            else:
                raise ValueError(f"the escape \\{nxt} in a character class")
            i += 2
            continue
        if ch == '"' and not negated:
            raise ValueError('a class that allows a quote (")')
        out += ch
        i += 1
    if i >= len(pattern):
        raise ValueError("an unclosed character class")
    if negated:
        out += JSON_UNSAFE_CLASS
    return out + "]", i + 1


def json_safe(pattern: str) -> str:
    """The anchored pattern in the subset the converter handles, producing only JSON-safe text."""
    pattern = anchored(pattern)
    core = pattern[1:-1]
    out = []
    i = 0
    while i < len(core):
        ch = core[i]
        if ch == "\\":
            if i + 1 >= len(core):
                raise ValueError("a pattern that ends with a backslash")
            nxt = core[i + 1]
            if nxt in _SHORTHAND_OUT:
                out.append(_SHORTHAND_OUT[nxt])
            elif nxt in _KEPT_ESCAPES:
                out.append(ch + nxt)
            elif nxt in ".-/":
                out.append(f"[{nxt}]" if nxt != "-" else "-")
            else:
                raise ValueError(f"the escape \\{nxt}")
            i += 2
        elif ch == "[":
            translated, i = _class(core, i)
            out.append(translated)
        elif ch in "^$":
            raise ValueError(f"the anchor {ch!r} inside the pattern")
        elif ch == '"':
            raise ValueError('a literal quote (")')
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise ValueError(f"the control character {ch!r}")
        elif ch == "(" and core[i + 1 : i + 2] == "?":
            raise ValueError("a group with (? (lookarounds, named or non-capturing groups)")
        else:
            out.append(ch)
            i += 1
    return "^" + "".join(out) + "$"
