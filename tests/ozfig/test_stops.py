"""StopMatcher with no model: what is emitted, what is held back, where the answer stops."""

import pytest

from ozfig.engine.stops import StopMatcher


def run(stops: tuple[str, ...], pieces: list[str]) -> tuple[str, bool, str]:
    """Feed `pieces` in order; returns (emitted text, stopped, text flushed at the end)."""
    matcher = StopMatcher(stops)
    out = []
    for piece in pieces:
        emit, stopped = matcher.feed(piece)
        out.append(emit)
        if stopped:
            return "".join(out), True, matcher.flush()
    return "".join(out), False, matcher.flush()


def test_no_stop_strings_passes_text_through() -> None:
    matcher = StopMatcher(())
    assert matcher.feed("hello <|eot|>") == ("hello <|eot|>", False)
    assert matcher.flush() == ""


def test_empty_stop_strings_are_ignored() -> None:
    assert run(("",), ["abc"]) == ("abc", False, "")


def test_stop_inside_one_piece_cuts_before_it() -> None:
    assert run(("STOP",), ["one two STOP three"]) == ("one two ", True, "")


@pytest.mark.parametrize(
    "pieces",
    [["ab", "cS", "TO", "Pxyz"], ["a", "b", "c", "S", "T", "O", "P"], ["abcST", "OP"]],
    ids=["three-pieces", "one-char-pieces", "two-pieces"],
)
def test_stop_split_over_pieces_is_found_and_never_emitted(pieces: list[str]) -> None:
    emitted, stopped, rest = run(("STOP",), pieces)
    assert (emitted, stopped, rest) == ("abc", True, "")


def test_possible_start_is_held_then_released_when_it_is_not_a_stop() -> None:
    matcher = StopMatcher(("STOP",))
    assert matcher.feed("abST") == ("ab", False)  # "ST" may start "STOP"
    assert matcher.held == "ST"
    assert matcher.feed("ART S") == ("START ", False)  # "S" may start it again
    assert matcher.held == "S"
    assert matcher.feed("!") == ("S!", False)
    assert matcher.held == ""


def test_held_text_comes_back_on_flush() -> None:
    matcher = StopMatcher(("</s>",))
    assert matcher.feed("end</") == ("end", False)
    assert matcher.flush() == "</"
    assert matcher.flush() == ""


def test_earliest_of_several_stops_wins() -> None:
    assert run(("world", "lo w"), ["hello world"]) == ("hel", True, "")


def test_longest_partial_match_of_any_stop_is_held() -> None:
    matcher = StopMatcher(("xyz", "yq"))
    assert matcher.feed("axy") == ("a", False)  # "xy" may start "xyz"; "y" may start "yq"
    assert matcher.feed("q") == ("x", True)


def test_unicode_stop_strings() -> None:
    assert run(("日本",), ["言語は日", "本語"]) == ("言語は", True, "")
