"""Pieces of GBNF (llama.cpp's grammar language) written by hand: literals and integer ranges.

Pure Python; `grammar.py` puts them together with the JSON-schema converter's rules.
"""

from __future__ import annotations

# the largest integer the converter's own `integer` rule writes: 16 digits
MAX_DIGITS = 16
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def literal(text: str) -> str:
    """`text` as a GBNF string literal (every character that needs it escaped)."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _digit_class(lo: int, hi: int) -> str:
    return literal(str(lo)) if lo == hi else f"[{lo}-{hi}]"


def _same_length(lo: str, hi: str) -> list[list[str]]:
    """Alternatives (each a list of GBNF items) for the digit strings from `lo` to `hi`, both of one length."""
    if lo == hi:
        return [[literal(lo)]] if lo else [[]]
    i = next(k for k in range(len(lo)) if lo[k] != hi[k])
    prefix = [literal(lo[:i])] if i else []
    rest = len(lo) - i - 1
    low_rest_min = lo[i + 1 :] == "0" * rest
    high_rest_max = hi[i + 1 :] == "9" * rest
    out: list[list[str]] = []
    start = int(lo[i])
    if not low_rest_min:
        out += [[*prefix, literal(lo[i]), *tail] for tail in _same_length(lo[i + 1 :], "9" * rest)]
        start += 1
    end = int(hi[i]) if high_rest_max else int(hi[i]) - 1
    if start <= end:
        out.append([*prefix, _digit_class(start, end), *(["[0-9]"] * rest)])
    if not high_rest_max:
        out += [[*prefix, literal(hi[i]), *tail] for tail in _same_length("0" * rest, hi[i + 1 :])]
    return out


def _non_negative(lo: int, hi: int) -> list[list[str]]:
    out: list[list[str]] = []
    while lo <= hi:
        top = 10 ** len(str(lo)) - 1
        end = min(hi, top)
        out += _same_length(str(lo), str(end))
        lo = end + 1
    return out


def integer_range(lo: int | None, hi: int | None) -> str:
    """A GBNF alternation of the decimal integers from `lo` to `hi` (None: as far as 16 digits go)."""
    limit = 10**MAX_DIGITS - 1
    lo = -limit if lo is None else max(lo, -limit)
    hi = limit if hi is None else min(hi, limit)
    if lo > hi:
        raise ValueError(f"no integer lies between {lo} and {hi}")
    alternatives: list[str] = []
    if lo < 0:
        negatives = _non_negative(max(1, -hi), -lo)
        alternatives += ['"-" ' + " ".join(alt) for alt in negatives]
    if hi >= 0:
        alternatives += [" ".join(alt) for alt in _non_negative(max(lo, 0), hi)]
    return "(" + " | ".join(alternatives) + ")"
