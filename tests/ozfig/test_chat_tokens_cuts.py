"""ControlTokens' cuts, one at a time: where exactly a mark goes into untrusted content, and why.

`M` stands for the mark. Each case names the rule it checks; the expected text is written out,
so a cut one place off, a cut too many or one missing fails.
"""

from __future__ import annotations

import pytest

from ozfig.chat_tokens import _MARK_RANGES, ControlToken, ControlTokens, strip_around

M = "\ue000"
LLAMA3_TEXTS = ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"]


def llama3() -> ControlTokens:
    """Built by each test (not once at import, where a mutation tool cannot see it run)."""
    return ControlTokens(ControlToken(text, 1000 + i) for i, text in enumerate(LLAMA3_TEXTS))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("hello", "hello"),  # nothing to cut
        ("a<|eot_id|>b", "a<" + M + "|eot_id|>b"),  # a whole token: cut after its first character
        ("<|eot", "<" + M + "|eot"),  # the content is a token's head: the template could complete it
        ("hi <|eot", "hi <" + M + "|eot"),
        ("hi <", "hi <" + M),  # a one-character head: cut after it
        ("  hi <|eot  ", "  hi <" + M + "|eot  "),  # the cut is next to the trimmed end
        ("|> hi", "|" + M + "> hi"),  # a token's tail at the start
        (">hi", M + ">hi"),  # a one-character tail: cut before it
        ("  _id|>x", "  _id|" + M + ">x"),  # a longer tail: cut before its last character
        ("<|eot_id|> hi", "<" + M + "|eot_id|> hi"),  # a whole token is not also a tail
        ("d|>", "d|" + M + ">"),
    ],
)
def test_protect_cuts(content: str, expected: str) -> None:
    tokens = llama3()
    assert tokens.protect(content, M) == expected
    assert tokens.protect(content, M).replace(M, "") == content


def test_the_longest_token_decides_how_far_the_ends_are_looked_at() -> None:
    # "zz" sorts last and is the shortest: the head of the longest one must still be found
    tokens = ControlTokens([ControlToken("zz", 1), ControlToken("<|begin_of_text|>", 2)])
    assert tokens.protect("hello <|begin_of", M) == "hello <" + M + "|begin_of"
    # the whole token, its head at the end and its tail at the start: each gets its cut
    assert tokens.protect("zz", M) == M + "z" + M + "z" + M


def test_one_character_tokens_are_never_looked_for_and_two_character_ones_are() -> None:
    tokens = ControlTokens([ControlToken("x", 1), ControlToken("ab", 2)])
    assert len(tokens) == 1 and list(tokens.by_text) == ["ab"]
    assert list(tokens.split("xabx")) == ["x", tokens.by_text["ab"], "x"]


def test_no_tokens_to_look_for() -> None:
    empty = ControlTokens([ControlToken("x", 1)])
    assert len(empty) == 0
    assert list(empty.split("a<|eot_id|>b")) == ["a<|eot_id|>b"]
    assert empty.protect("<|eot", M) == "<|eot"
    assert empty.free_mark(["hello"]) == M


@pytest.mark.parametrize(
    ("token", "content", "expected"),
    [
        (" ab", "x ab y", "x a" + M + "b y"),  # the cut avoids the space inside the token
        ("a b", "xa by", "xa" + M + " by"),  # no two non-space neighbours: after the first character
        ("ab ", "xab y", "xa" + M + "b y"),
    ],
)
def test_the_cut_inside_a_token_is_between_two_non_space_characters(
    token: str, content: str, expected: str
) -> None:
    assert ControlTokens([ControlToken(token, 1)]).protect(content, M) == expected


def test_free_mark_skips_what_is_used_and_fails_when_all_are() -> None:
    tokens = ControlTokens([ControlToken("<\ue001>", 1)])
    assert tokens.free_mark(["a\ue000b"]) == "\ue002"  # \ue000 in a message, \ue001 in a token
    everything = "".join(chr(code) for block in _MARK_RANGES for code in block)
    with pytest.raises(ValueError) as info:
        tokens.free_mark([everything])
    assert str(info.value) == "the messages use every private-use character"


def test_strip_around_applies_only_beside_the_token() -> None:
    left = ControlToken("<L>", 1, lstrip=True)
    right = ControlToken("<R>", 2, rstrip=True)
    assert strip_around([left, "keep", "x  "]) == [left, "keep", "x  "]  # nothing before the first
    assert strip_around(["a  ", right]) == ["a  ", right]  # nothing after the last
    assert strip_around(["a  ", left, "  b  ", right, "  c"]) == ["a", left, "  b  ", right, "c"]
    assert strip_around([right, left]) == [right, left]  # tokens beside tokens: nothing to strip
