"""Page text into passages, ranked against the query with BM25 (rank-bm25's Okapi BM25).

Pages are split into paragraphs, and long paragraphs into runs of whole sentences of
about `CHUNK_WORDS` words, so that a passage is a readable unit that can stand in the
prompt on its own. All passages of all pages are ranked together.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rank_bm25 import BM25Okapi

from .hits import Hit, Passage

CHUNK_WORDS = 80
MIN_CHUNK_WORDS = 6
_WORD_RE = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "there",
        "these",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)


def terms(text: str) -> list[str]:
    """Lower-cased words without stop words, plural/verb `s` folded ("bridges" ~ "bridge")."""
    out = []
    for word in _WORD_RE.findall(text.casefold()):
        if word in STOPWORDS:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return out


def chunks(text: str, words: int = CHUNK_WORDS) -> list[str]:
    """Paragraphs of `text`, long ones cut between sentences into pieces of about `words` words."""
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n|\n", text):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        piece: list[str] = []
        count = 0
        for sentence in _SENTENCE_END_RE.split(paragraph):
            n = len(sentence.split())
            if piece and count + n > words:
                out.append(" ".join(piece))
                piece, count = [], 0
            piece.append(sentence)
            count += n
        if piece:
            out.append(" ".join(piece))
    return out


def rank_passages(query: str, documents: Sequence[tuple[Hit, str]]) -> list[Passage]:
    """Every chunk of every (hit, text) document, best first; ties keep search order."""
    candidates: list[tuple[Hit, str, int]] = []
    for hit, text in documents:
        for position, chunk in enumerate(chunks(text)):
            if len(chunk.split()) >= MIN_CHUNK_WORDS or position == 0:
                candidates.append((hit, chunk, position))
    if not candidates:
        return []
    query_terms = terms(query)
    # the page title counts for each of its passages: "It opened in 1932" is about the title's bridge
    corpus = [terms(f"{hit.title} {chunk}") or ["\x00"] for hit, chunk, _ in candidates]
    scores = BM25Okapi(corpus).get_scores(query_terms) if query_terms else [0.0] * len(corpus)
    order = sorted(range(len(candidates)), key=lambda i: -float(scores[i]))
    return [
        Passage(
            hit=candidates[i][0], text=candidates[i][1], score=float(scores[i]), position=candidates[i][2]
        )
        for i in order
    ]
