"""What a chat turn asks the web: the last user message, made whole when it is a follow-up.

"how tall is it?" after "when was the Eiffel Tower built?" is searched as "how tall is Eiffel
Tower?": when the last message leans on an earlier one (a pronoun such as it/they/that, or
too few words of its own to search for), the subject of the nearest earlier user message that
has one takes the pronoun's place (or is added). The subject is that message's proper nouns
(capitalised words past its first), else the span from its first to its last content word
("speed of light"). No model call: a few microseconds a turn on a CPU (bench/RESULTS.md),
where asking the model to rewrite would cost seconds. `--search-rewrite off` searches the
last message as typed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"[\w'’-]+")
_PRONOUNS = {
    "it", "its", "it's", "they", "them", "their", "theirs", "he", "him", "his", "she", "her", "hers",
    "this", "that", "these", "those", "there", "one",
}  # fmt: skip
_STOP = _PRONOUNS | {
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "by", "with", "about", "and", "or", "but",
    "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "has", "have", "had",
    "what", "when", "where", "who", "whom", "whose", "which", "why", "how", "can", "could", "would",
    "should", "will", "shall", "may", "might", "must", "i", "me", "my", "you", "your", "we", "our", "us",
    "tell", "please", "explain", "describe", "give", "know", "much", "many", "so", "then", "also", "too",
    "more", "some", "any", "as", "if", "than", "not", "no", "yes", "ok", "okay", "thanks", "thank",
}  # fmt: skip


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def subject(text: str) -> str:
    """The subject of a question: its proper nouns, else the span of its content words."""
    words = _words(text)
    proper = [w for w in words[1:] if w[:1].isupper() and w.lower() not in _STOP]
    if proper:
        return " ".join(proper)
    content = [i for i, w in enumerate(words) if w.lower() not in _STOP]
    if not content:
        return ""
    return " ".join(words[content[0] : content[-1] + 1])


def is_follow_up(text: str) -> bool:
    words = [w.lower() for w in _words(text)]
    return any(w in _PRONOUNS for w in words) or sum(w not in _STOP for w in words) < 2


def with_subject(text: str, topic: str) -> str:
    """`text` with its first pronoun replaced by `topic` (a possessive kept), else `topic` added."""
    for m in _WORD.finditer(text):
        word = m.group(0).lower()
        if word in _PRONOUNS:
            replacement = f"{topic}'s" if word in ("its", "their", "his", "her") else topic
            return text[: m.start()] + replacement + text[m.end() :]
    return f"{text} {topic}"


def search_query(messages: Sequence[dict[str, str]], max_chars: int, *, rewrite: bool = True) -> str:
    """What to ask the web for the last user message, whitespace-collapsed, at most `max_chars`."""
    users = [" ".join(m["content"].split()) for m in messages if m["role"] == "user"]
    if not users:
        return ""
    query = users[-1]
    if rewrite and len(users) > 1 and is_follow_up(query):
        topic = next((t for t in map(subject, reversed(users[:-1])) if t), "")
        if topic and topic.lower() not in query.lower():
            query = with_subject(query, topic)
    return query[:max_chars].strip()
