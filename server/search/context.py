"""The web context of a prompt: ranked passages into a token budget, as numbered sources.

Passages are taken best first while their tokens fit the budget (one that does not fit is
skipped, a shorter one after it may still fit). The chosen passages of one page make one
source; sources are numbered by their best passage, and each source's passages read in page
order. Titles and texts are untrusted: `neutralize` is applied before counting, so a source's
`text` is exactly what the prompt holds for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .hits import Hit, Passage

JOINER = " … "


@dataclass(frozen=True)
class Source:
    n: int
    title: str
    url: str
    text: str

    def as_json(self) -> dict[str, object]:
        return {"n": self.n, "title": self.title, "url": self.url, "text": self.text}

    def prompt_text(self) -> str:
        return f"[{self.n}] {self.title}: {self.text}" if self.title else f"[{self.n}] {self.text}"


def render_sources(sources: Sequence[Source]) -> str:
    """The web results as they stand in the prompt: `[1] Title: text [2] Title: text`."""
    return " ".join(s.prompt_text() for s in sources)


def choose_sources(
    passages: Sequence[Passage],
    budget: int,
    count_tokens: Callable[[str], int],
    neutralize: Callable[[str], str],
) -> list[Source]:
    """Sources made of the best passages whose tokens (with their `[n] title:` heads) fit `budget`."""
    if budget <= 0:
        return []
    chosen: dict[Hit, list[tuple[int, str]]] = {}  # hit -> [(position, text)], in choice order
    titles: dict[Hit, str] = {}
    room = budget
    for passage in passages:
        hit = passage.hit
        text = " ".join(neutralize(passage.text).split())
        if not text or any(text == t for _, t in chosen.get(hit, [])):
            continue
        if hit in chosen:
            cost = count_tokens(JOINER + text)
        else:
            title = " ".join(neutralize(passage.hit.title).split())
            cost = count_tokens(f" [{len(chosen) + 1}] {title}: {text}")
        if cost > room:
            continue
        if hit not in chosen:
            chosen[hit] = []
            titles[hit] = title
        chosen[hit].append((passage.position, text))
        room -= cost
        if room < 8:
            break
    return [
        Source(n=n, title=titles[hit], url=hit.url, text=JOINER.join(t for _, t in sorted(parts)))
        for n, (hit, parts) in enumerate(chosen.items(), 1)
    ]
