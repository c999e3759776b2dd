"""What a search gives: hits (a result link with its snippet) and passages (ranked text)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hit:
    """One search result. `readable`: a page worth fetching (a web result, not an abstract)."""

    title: str
    url: str
    snippet: str
    readable: bool = True


@dataclass(frozen=True)
class Passage:
    """A piece of text for the prompt, from the page (or snippet) of `hit`; `score` from BM25."""

    hit: Hit
    text: str
    score: float
    position: int  # order within its page, so chosen pieces of one page read in page order
