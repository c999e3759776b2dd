"""Untrusted text (a query, a web snippet) made unable to close what the OzFig prompt wraps it in.

Control characters go, double quotes become `'`, and the `--Beginning/End of User Prompt--`
markers are removed (ASCII letters in any case) — also those that a removal would leave
behind (`--End of --End of User Prompt--User Prompt--`). That is done in one pass, in time
linear in the text: a stack of the characters kept and of the state of a matching automaton
after each; when a marker ends on top of the stack it is popped, and matching resumes from
the state beneath it. A character that can be part of no marker resets the automaton and is
never popped, so only the runs of marker characters that contain `--` need the pass.
"""

from __future__ import annotations

import re
from collections import deque

DELIMITERS = ("--Beginning of User Prompt--", "--End of User Prompt--")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _fold(ch: str) -> str:
    return ch.lower() if ch.isascii() else ch


class _MarkerAutomaton:
    """Aho-Corasick over the markers, as a full transition table: `step[state][char]`."""

    def __init__(self, words: tuple[str, ...]) -> None:
        goto: list[dict[str, int]] = [{}]
        self.ends: list[int] = [0]  # length of the marker that ends in this state, 0 for none
        for word in words:
            state = 0
            for ch in word.lower():
                if ch not in goto[state]:
                    goto.append({})
                    self.ends.append(0)
                    goto[state][ch] = len(goto) - 1
                state = goto[state][ch]
            self.ends[state] = len(word)
        self.alphabet = frozenset("".join(words).lower())
        self.step: list[dict[str, int]] = [{} for _ in goto]
        fail = [0] * len(goto)
        order = deque([0])
        while order:
            state = order.popleft()
            for ch in self.alphabet:
                if ch in goto[state]:
                    child = goto[state][ch]
                    self.step[state][ch] = child
                    if state:
                        fail[child] = self.step[fail[state]][ch]
                        self.ends[child] = self.ends[child] or self.ends[fail[child]]
                    order.append(child)
                else:
                    self.step[state][ch] = self.step[fail[state]][ch] if state else 0

    def remove(self, text: str) -> str:
        kept: list[str] = []
        states = [0]
        step, ends = self.step, self.ends
        for ch in text:
            state = step[states[-1]].get(_fold(ch), 0)
            kept.append(ch)
            states.append(state)
            n = ends[state]
            if n:
                del kept[-n:]
                del states[-n:]
        return "".join(kept)


_MARKERS = _MarkerAutomaton(DELIMITERS)
_RUN_RE = re.compile("[" + re.escape("".join(sorted(_MARKERS.alphabet))) + "]+", re.IGNORECASE | re.ASCII)


def _remove_markers(run: re.Match[str]) -> str:
    text = run.group()
    return _MARKERS.remove(text) if "--" in text else text


def neutralize(text: str) -> str:
    """Untrusted text that cannot close the quotes or delimiters it is wrapped in."""
    text = _CONTROL_RE.sub("", text).replace('"', "'")
    if "--" not in text:
        return text
    return _RUN_RE.sub(_remove_markers, text)
