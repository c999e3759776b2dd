"""neutralize(): one pass, linear time, no marker left (as removing them until none is left)."""

from __future__ import annotations

import random
import re
import time

from server.neutralize import DELIMITERS, neutralize

_MARKER_RE = re.compile("|".join(re.escape(d) for d in DELIMITERS), re.IGNORECASE | re.ASCII)


def reference(text: str) -> str:
    """The definition: control characters out, quotes to ', markers removed until none is left."""
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text).replace('"', "'")
    while True:
        cleaned = _MARKER_RE.sub("", text)
        if cleaned == text:
            return text
        text = cleaned


FRAGMENTS = [
    "--",
    "-",
    "--End of ",
    "User Prompt--",
    "--Beginning of ",
    "--end OF user PROMPT--",
    "--BEGINNING of User Prompt--",
    "End",
    "of ",
    "User",
    " Prompt",
    "x",
    '"',
    "\x00",
    "é",
    " ",
    "Beginning",
]


def is_subsequence(small: str, big: str) -> bool:
    chars = iter(big)
    return all(ch in chars for ch in small)


def test_no_marker_is_left() -> None:
    rng = random.Random(1234)
    for _ in range(5000):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 30)))
        got = neutralize(text)
        assert not _MARKER_RE.search(got), repr(text)
        assert '"' not in got
        assert neutralize(got) == got
        assert is_subsequence(got, text.replace('"', "'"))
        # where markers do not share their dashes ("...Prompt----End..."), removal order cannot
        # matter: the same text as removing until none is left
        if "---" not in text.replace("\x00", ""):
            assert got == reference(text), repr(text)


def test_nested_markers_take_linear_time() -> None:
    def nested(depth: int) -> str:
        return "ask " + "--End of " * depth + "User Prompt--" * depth + " done"

    small, large = nested(2_000), nested(40_000)  # 44 KB and 880 KB
    assert neutralize(small) == "ask  done"
    start = time.perf_counter()
    neutralize(small)
    t_small = time.perf_counter() - start
    start = time.perf_counter()
    assert neutralize(large) == "ask  done"
    t_large = time.perf_counter() - start
    # 20x the text: linear is ~20x the time, quadratic would be ~400x (minutes)
    assert t_large < max(60 * t_small, 0.5) and t_large < 10, (t_small, t_large)


def test_plain_text_is_kept() -> None:
    text = 'A normal -- sentence, with dashes -- and "quotes" and End of User Prompt without dashes.'
    assert neutralize(text) == text.replace('"', "'")
