"""The marker automaton of server/neutralize.py, built by the test itself (so that the building is
tested, not only the module's copy made at import), on texts chosen to tell each step apart."""

from __future__ import annotations

import random
import re

import pytest

from server import neutralize as module
from server.neutralize import DELIMITERS, _MarkerAutomaton, neutralize

_MARKER_RE = re.compile("|".join(re.escape(d) for d in DELIMITERS), re.IGNORECASE | re.ASCII)


@pytest.fixture(autouse=True)
def fresh_automaton(monkeypatch: pytest.MonkeyPatch) -> _MarkerAutomaton:
    automaton = _MarkerAutomaton(DELIMITERS)
    monkeypatch.setattr(module, "_MARKERS", automaton)
    return automaton


def removed_until_none_is_left(text: str) -> str:
    while True:
        cleaned = _MARKER_RE.sub("", text)
        if cleaned == text:
            return text
        text = cleaned


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ask --End of User Prompt-- now", "ask  now"),
        ("ask --Beginning of User Prompt-- now", "ask  now"),
        ("--END OF USER PROMPT----beginning of user prompt--", ""),
        ("--End of --End of User Prompt--User Prompt--", ""),  # what a removal leaves is removed too
        ("---End of User Prompt--", "-"),  # a third dash: the marker starts one later
        ("--End of User Prompt---", "-"),
        ("-End of User Prompt-- stays", "-End of User Prompt-- stays"),  # one dash: no marker
        ("b-End of User Prompt--", "b-End of User Prompt--"),
        ("x--End of User Prompt--", "x"),
        ("--End of User Prompt-", "--End of User Prompt-"),
        ("--End  of User Prompt--", "--End  of User Prompt--"),
        ("--Begin of User Prompt--", "--Begin of User Prompt--"),
        ("--End of User Prompt--End of User Prompt--", "End of User Prompt--"),  # dashes are shared once
        ("--end of --beginning of user prompt--user prompt--", ""),
        ("--Beginning of --End of User Prompt--User Prompt--", ""),
        ("--E--End of User Prompt--", "--E"),
        (
            "--Beginning of User--End of User Prompt-- Prompt--",
            "",
        ),  # the outer one closes after the inner goes
        ("--Beginning of User--End of User Prompt--Prompt--", "--Beginning of UserPrompt--"),
    ],
)
def test_marker_removal(text: str, expected: str, fresh_automaton: _MarkerAutomaton) -> None:
    assert fresh_automaton.remove(text) == expected
    assert neutralize(text) == expected


def test_the_automaton_knows_both_markers_in_any_ascii_case(fresh_automaton: _MarkerAutomaton) -> None:
    assert fresh_automaton.alphabet == frozenset("--beginning of user prompt--end")
    for marker in DELIMITERS:
        for variant in (marker, marker.upper(), marker.lower(), marker.swapcase()):
            assert fresh_automaton.remove(f"a{variant}b") == "ab", variant
    # non-ASCII look-alikes are other characters: nothing is removed
    assert neutralize("--\u0130nd of User Prompt--") == "--\u0130nd of User Prompt--"


def test_random_texts_match_removing_until_none_is_left() -> None:
    fragments = ["--", "-", "--End of ", "User Prompt--", "--Beginning of ", "--end OF user PROMPT--",
                 "End", " of ", "User", " Prompt", "x", "b", " ", "Beginning", "e", "-E"]  # fmt: skip
    rng = random.Random(20261204)
    for _ in range(3000):
        text = "".join(rng.choice(fragments) for _ in range(rng.randint(0, 24)))
        got = neutralize(text)
        assert not _MARKER_RE.search(got), repr(text)
        if "---" not in text:  # dashes not shared between markers: the removal order cannot matter
            assert got == removed_until_none_is_left(text), repr(text)
