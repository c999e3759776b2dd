"""Fixture questions whose answer sentence sits deep in one page among distractors.

Twenty fictional landmarks, each with eight facts (year, designer, length, colour, town,
visitors, cost, material). Each landmark has an encyclopedia page holding all its facts
among filler paragraphs, and a travel-guide page that names it often but holds none of
them. Question i asks landmark i for one fact; its search results are the landmark's guide
page, its encyclopedia page (the one with the answer, at rank 1 to 3) and the encyclopedia
pages of two other landmarks, which state the same kind of fact about themselves. Each
result's snippet is its page's opening sentence, which never holds the answer.
"""

from __future__ import annotations

import html
import random
from dataclasses import dataclass

NAMES = [
    "Vellmora Bridge",
    "Quistal Tower",
    "Harrowgate Lighthouse",
    "Brennock Aqueduct",
    "Sollander Dam",
    "Ottery Viaduct",
    "Kestrane Observatory",
    "Marlow Gate",
    "Thessaly Pier",
    "Corvane Canal Lock",
    "Ivenhall Clocktower",
    "Pellworth Arch",
    "Drummond Spire",
    "Ashcombe Tunnel",
    "Fennick Ropeway",
    "Larkspur Footbridge",
    "Wendholm Windmill",
    "Granby Obelisk",
    "Rusholt Fortress",
    "Emberly Pavilion",
]
PEOPLE = [
    "Ada Morrow",
    "Tomas Greel",
    "Iris Halden",
    "Piet Vossen",
    "Maren Ekdahl",
    "Oskar Lind",
    "Yara Quell",
    "Benedikt Ruhl",
    "Clara Feyne",
    "Hugo Stann",
]
COLOURS = ["ochre", "slate blue", "brick red", "pale green", "charcoal grey", "cream white"]
TOWNS = ["Dunmere", "Halvik", "Ostbury", "Penmarrow", "Selwick", "Tarnholm", "Umberley", "Wyecross"]
MATERIALS = ["granite", "riveted iron", "oak timber", "reinforced concrete", "sandstone", "cast steel"]

FACTS = [  # (question, answer sentence); {n} is the landmark, the rest are its values
    (
        "In what year was {n} completed?",
        "Construction of {n} was completed in {year}, after {span} years of work.",
    ),
    ("Who was the chief designer of {n}?", "The chief designer of {n} was the engineer {person}."),
    ("How long is {n} in metres?", "From one end to the other, {n} is {length} metres long."),
    ("What colour is {n} painted?", "Every ten years {n} is repainted in its original colour, {colour}."),
    ("In which town does {n} stand?", "{n} stands on the northern edge of the town of {town}."),
    (
        "How many visitors does {n} get each year?",
        "Each year about {visitors} thousand visitors come to see {n}.",
    ),
    (
        "How much did it cost to build {n}?",
        "Building {n} cost {cost} million crowns, twice the first estimate.",
    ),
    ("What material is {n} built from?", "The main structure of {n} is built from {material}."),
]

FILLER = [
    "Local guides often begin their tours at {n} and end them at the market square.",
    "Photographs of {n} appear in many regional travel books and postcards.",
    "The council publishes a yearly report about the upkeep of {n} and its surroundings.",
    "School classes from the region visit {n} as part of their history lessons.",
    "Several paintings in the regional museum show {n} under a stormy sky.",
    "A small exhibition near the entrance explains how {n} changed the life of the region.",
    "In winter the paths around {n} are cleared early in the morning by volunteers.",
    "Walkers can reach {n} on a marked trail that follows the old road.",
    "The area around {n} is known for its birds, which nest in the surrounding trees.",
    "Debates about modern additions to {n} have filled local newspapers for decades.",
    "A festival with music and food takes place next to {n} every summer.",
    "Maps from the period show {n} as a landmark for travellers and traders.",
]
GUIDE = [
    "Visiting {n}: opening hours, tickets and how to get there.",
    "The best time to visit {n} is early in the morning, before the tour buses arrive.",
    "There is a café with a view of {n} a short walk from the car park.",
    "Guided tours of {n} run on weekends and last about an hour.",
    "Bring comfortable shoes: the paths near {n} are steep in places.",
    "Tickets for {n} can be bought at the gate; children under twelve enter free.",
    "Many visitors combine a trip to {n} with a boat ride on the river.",
    "Parking near {n} is limited on public holidays, so arrive early.",
]
BOILERPLATE_HEAD = (
    '<header><nav><a href="/">Home</a> | <a href="/a">Articles</a> | <a href="/login">Log in</a> | '
    '<a href="/donate">Donate</a></nav><div class="cookie">We use cookies to improve your experience. '
    "Accept all cookies or manage your preferences.</div></header>"
)
BOILERPLATE_FOOT = (
    "<footer><p>Copyright 2026 Fictopedia contributors. All rights reserved.</p>"
    '<p><a href="/privacy">Privacy</a> | <a href="/terms">Terms of use</a> | <a href="/contact">Contact</a></p>'
    "</footer>"
)


@dataclass(frozen=True)
class Question:
    query: str
    answer: str
    results: list[tuple[str, str, str]]  # (title, path, snippet), in search order


def _values(i: int) -> dict[str, object]:
    rng = random.Random(1000 + i)
    return {
        "n": NAMES[i],
        "year": rng.randint(1820, 1990),
        "span": rng.randint(2, 14),
        "person": rng.choice(PEOPLE),
        "length": rng.randint(40, 2400),
        "colour": rng.choice(COLOURS),
        "town": rng.choice(TOWNS),
        "visitors": rng.randint(12, 900),
        "cost": rng.randint(2, 400),
        "material": rng.choice(MATERIALS),
    }


def intro(i: int) -> str:
    return f"{NAMES[i]} is a landmark in the north of the region, listed as a protected monument."


def encyclopedia_text(i: int) -> list[str]:
    """The paragraphs of landmark i's encyclopedia page (its facts spread among filler)."""
    values = _values(i)
    rng = random.Random(2000 + i)
    paragraphs = [intro(i)]
    facts = [answer.format(**values) for _, answer in FACTS]
    rng.shuffle(facts)
    for fact in facts:
        filler = rng.sample(FILLER, 4)
        sentences = [f.format(n=NAMES[i]) for f in filler]
        sentences.insert(rng.randint(1, 3), fact)
        paragraphs.append(" ".join(sentences))
    return paragraphs


def guide_text(i: int) -> list[str]:
    rng = random.Random(3000 + i)
    lines = [g.format(n=NAMES[i]) for g in GUIDE]
    return [lines[0]] + [" ".join(rng.sample(lines[1:], 4)) for _ in range(5)]


def page_html(title: str, paragraphs: list[str]) -> str:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>"
        f"{BOILERPLATE_HEAD}<main><article><h1>{html.escape(title)}</h1>{body}</article></main>"
        f"<aside><h3>Related</h3><ul><li>Other landmarks</li><li>Random article</li></ul></aside>"
        f"{BOILERPLATE_FOOT}</body></html>"
    )


def pages() -> dict[str, str]:
    """Path -> HTML for every page of the corpus."""
    out = {}
    for i, name in enumerate(NAMES):
        out[f"/wiki/{i}"] = page_html(f"{name} - Fictopedia", encyclopedia_text(i))
        out[f"/guide/{i}"] = page_html(f"{name}: visitor guide", guide_text(i))
    return out


def questions() -> list[Question]:
    out = []
    for i, name in enumerate(NAMES):
        question, answer = FACTS[i % len(FACTS)]
        values = _values(i)
        others = [(i + 7) % len(NAMES), (i + 13) % len(NAMES)]
        results = [
            (f"{name}: visitor guide", f"/guide/{i}", guide_text(i)[0]),
            (f"{NAMES[others[0]]} - Fictopedia", f"/wiki/{others[0]}", intro(others[0])),
            (f"{NAMES[others[1]]} - Fictopedia", f"/wiki/{others[1]}", intro(others[1])),
        ]
        results.insert(i % 3, (f"{name} - Fictopedia", f"/wiki/{i}", intro(i)))
        out.append(Question(query=question.format(n=name), answer=answer.format(**values), results=results))
    return out
