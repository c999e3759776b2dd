"""Where a rendered prompt's control tokens are, and how untrusted text is kept from forming one.

A prompt is tokenized as the whole render, split at the control tokens (`<|eot_id|>`,
`<|im_start|>`, ...) that the template itself wrote; every text piece between them is
tokenized with special-token parsing off. So that a control token's text typed inside a
message (`<|eot_id|>`, `<|im_start|>system`) is not taken for one, each message content is
*protected* before rendering: a private-use character (`mark`, one that occurs nowhere in
the messages, the template or the vocabulary) is put inside every occurrence of a control
token's text, and inside any start or end of the content that could join the template's
text around it into one (`|>` at the start, `<|eot` at the end). The mark is not whitespace
and never at a whitespace edge, so a template's `| trim` strips exactly what it would strip
from the real content. After splitting, the marks are removed from the text pieces: the
pieces are then exactly the real render's text, cut only where the template's own markup
holds a control token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# private-use code points: never in a tokenizer's control tokens, rare in text
_MARK_RANGES = (range(0xE000, 0xF900), range(0xF0000, 0xFFFFE), range(0x100000, 0x10FFFE))


@dataclass(frozen=True)
class ControlToken:
    text: str
    id: int
    lstrip: bool = False  # whitespace before it is dropped (as HF's AddedToken.lstrip, llama.cpp's attribute)
    rstrip: bool = False  # whitespace after it is dropped


class ControlTokens:
    """A vocabulary's control tokens, found by their text in a rendered prompt."""

    def __init__(self, tokens: Iterable[ControlToken]) -> None:
        # one-character texts cannot be broken by a mark: such a token is never looked for
        self.by_text = {t.text: t for t in tokens if len(t.text) >= 2}
        texts = sorted(self.by_text, key=len, reverse=True)
        alternatives = _trie_pattern(texts)  # at one position, the longest text wins
        self._find = re.compile(alternatives) if texts else None
        self._starts = re.compile(f"(?=({alternatives}))") if texts else None
        self._heads = {t[:k] for t in texts for k in range(1, len(t))}  # proper prefixes
        self._tails = {t[-k:] for t in texts for k in range(1, len(t))}  # proper suffixes
        self._longest = len(texts[0]) if texts else 0

    def __len__(self) -> int:
        return len(self.by_text)

    def free_mark(self, texts: Iterable[str]) -> str:
        """A private-use character that occurs in none of `texts` nor in any control token."""
        used: set[str] = set()
        for text in texts:
            used.update(text)
        for token_text in self.by_text:
            used.update(token_text)
        for block in _MARK_RANGES:
            for code in block:
                if chr(code) not in used:
                    return chr(code)
        raise ValueError("the messages use every private-use character")

    def _cuts(self, content: str) -> set[int]:
        """Positions in `content` where a mark keeps it from holding or completing a control token."""
        cuts: set[int] = set()
        if self._starts is None:
            return cuts
        for match in self._starts.finditer(content):
            cuts.add(match.start() + _inner_gap(match.group(1)))
        # the ends of the (trimmed) content that the template's text around it could complete
        # into a token: cut next to the content's first or last non-space character
        stripped = content.strip()
        lead = len(content) - len(content.lstrip())
        for k in range(1, min(self._longest, len(stripped) + 1)):
            if stripped[-k:] in self._heads:
                cuts.add(lead + len(stripped) - k + 1)
            if stripped[:k] in self._tails:
                cuts.add(lead + k - 1)
        return cuts

    def protect(self, content: str, mark: str) -> str:
        """`content` with `mark` at every cut; removing the marks gives `content` back."""
        cuts = sorted(self._cuts(content))
        if not cuts:
            return content
        parts = []
        last = 0
        for cut in cuts:
            parts.append(content[last:cut])
            last = cut
        parts.append(content[last:])
        return mark.join(parts)

    def split(self, render: str) -> Iterator[str | ControlToken]:
        """The render as text pieces and control tokens, in order (texts may be empty)."""
        if self._find is None:
            yield render
            return
        last = 0
        for match in self._find.finditer(render):
            yield render[last : match.start()]
            yield self.by_text[match.group()]
            last = match.end()
        yield render[last:]


def _trie_pattern(texts: Iterable[str]) -> str:
    """A regex matching any of `texts` (longest first), as a trie: its cost per position is bounded
    by the longest text, not by how many texts there are (Llama 3 has 256 control tokens)."""
    trie: dict[str, Any] = {}
    for text in texts:
        node = trie
        for ch in text:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        alternatives = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alternatives:
            return ""
        group = "(?:" + "|".join(alternatives) + ")"
        return group + "?" if "" in node else group

    return build(trie)


def _inner_gap(text: str) -> int:
    """A cut inside `text` with no whitespace on either side (so `| trim` is not affected)."""
    for i in range(1, len(text)):
        if not text[i - 1].isspace() and not text[i].isspace():
            return i
    return 1


def strip_around(pieces: Sequence[str | ControlToken]) -> list[str | ControlToken]:
    """Apply the lstrip/rstrip attributes of the control tokens to the text beside them."""
    out = list(pieces)
    for i, piece in enumerate(out):
        if not isinstance(piece, ControlToken):
            continue
        if piece.lstrip and i > 0 and isinstance(out[i - 1], str):
            out[i - 1] = str(out[i - 1]).rstrip()
        if piece.rstrip and i + 1 < len(out) and isinstance(out[i + 1], str):
            out[i + 1] = str(out[i + 1]).lstrip()
    return out
