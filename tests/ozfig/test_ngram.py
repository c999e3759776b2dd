"""Prompt-lookup proposals (`ozfig.engine.ngram`), model-free."""

from __future__ import annotations

import random

import pytest

from ozfig.engine.ngram import NgramIndex


def brute_force(tokens: list[int], sizes: tuple[int, ...], limit: int) -> tuple[list[int], int]:
    """The definition: the longest final n-gram with an earlier occurrence, its latest one's continuation."""
    end = len(tokens)
    for n in sorted(sizes, reverse=True):
        if end <= n:
            continue
        suffix = tokens[end - n :]
        for start in range(end - n - 1, -1, -1):
            if tokens[start : start + n] == suffix:
                length = n
                while length < 64 and start - 1 - (length - n) >= 0:
                    if tokens[start - 1 - (length - n)] != tokens[end - 1 - length]:
                        break
                    length += 1
                return tokens[start + n : start + n + limit], length
    return [], 0


def test_a_passage_of_the_prompt_is_proposed_once_the_answer_starts_quoting_it() -> None:
    prompt = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    index = NgramIndex([*prompt, 50, 51, 5, 6, 7])  # the answer starts quoting 5 6 7 ...
    assert index.propose(4) == ([8, 9, 10, 11], 3)
    index.append(8)
    assert index.propose(2) == ([9, 10], 4)
    index.extend([9, 10, 11])
    assert index.propose(1) == ([12], 7)  # 5..11: the match grows as the quote goes on


def test_nothing_is_proposed_without_an_earlier_occurrence_or_a_limit() -> None:
    index = NgramIndex([1, 2, 3, 4])
    assert index.propose(8) == ([], 0)
    assert NgramIndex([]).propose(8) == ([], 0)
    assert NgramIndex([1, 2, 1, 2]).propose(0) == ([], 0)


def test_the_latest_occurrence_wins_and_the_longest_n_gram_first() -> None:
    index = NgramIndex([7, 1, 2, 30, 9, 1, 2, 40, 7, 1, 2], sizes=(3, 2))
    assert index.propose(1) == ([30], 3)  # 7 1 2 matched (size 3) beats the later 1 2 -> 40
    index = NgramIndex([7, 1, 2, 30, 9, 1, 2, 40, 8, 1, 2], sizes=(3, 2))
    assert index.propose(1) == ([40], 2)
    index = NgramIndex([6, 7, 1, 2, 30, 6, 7, 1, 2], sizes=(2,))
    assert index.propose(1) == ([30], 4)  # found by its last 2 tokens, matching over 4


def test_a_proposal_stops_at_the_end_of_what_is_known() -> None:
    index = NgramIndex([5, 5, 5], sizes=(2,))
    assert index.propose(10) == ([5], 2)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        NgramIndex([], sizes=())
    with pytest.raises(ValueError):
        NgramIndex([], sizes=(0, 2))


@pytest.mark.parametrize("seed", range(20))
def test_indexing_in_bulk_or_token_by_token_agrees_with_the_definition(seed: int) -> None:
    rng = random.Random(seed)
    vocab = rng.choice([3, 5, 50])
    tokens = [rng.randrange(vocab) for _ in range(rng.randrange(0, 120))]
    sizes = tuple(rng.sample([1, 2, 3, 4, 5], rng.randrange(1, 4)))
    cut = rng.randrange(0, len(tokens) + 1)
    bulk = NgramIndex(tokens, sizes)
    stepwise = NgramIndex(tokens[:cut], sizes)
    for i, token in enumerate(tokens[cut:], start=cut):
        stepwise.append(token)
        if i % 3 == 0:  # asked on the way: the index catches up from where it was
            assert stepwise.propose(2) == brute_force(tokens[: i + 1], sizes, 2)
    mixed = NgramIndex(sizes=sizes)
    for i in range(0, len(tokens), 7):
        mixed.extend(tokens[i : i + 7])
        mixed.propose(1)
    for index in (bulk, stepwise, mixed):
        assert index.tokens == tokens
        for limit in (1, 3, 16):
            assert index.propose(limit) == brute_force(tokens, sizes, limit)


# --- the memory of recent answers -------------------------------------------------------------


def test_a_question_asked_again_is_answered_from_the_memory_of_its_last_answer() -> None:
    from ozfig.engine.ngram import AnswerMemory

    memory = AnswerMemory()
    question = list(range(100, 140))  # 40 prompt tokens
    answer = [7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    memory.remember([*question, *answer], len(question))
    # the same question again, its answer 3 tokens in: the rest of the last answer, matched back
    # through the prompt's last CONTEXT tokens
    tokens, length = memory.continuation([*question, 7, 8, 9], 5)
    assert tokens == [10, 11, 12, 13, 14]
    assert length == AnswerMemory.CONTEXT + 3
    # never past the remembered answer's end, into the next one
    memory.remember([*range(200, 240), 1, 2, 3], 40)
    assert memory.continuation([*question, *answer[:8]], 10) == ([15, 16], AnswerMemory.CONTEXT + 8)


def test_the_memory_ignores_short_matches_and_starts_over_when_full() -> None:
    from ozfig.engine.ngram import AnswerMemory

    memory = AnswerMemory(capacity=50)
    memory.remember([*range(100, 110), 1, 2, 3, 4, 5, 6], 10)
    # a key sharing only its last 4 tokens with the remembered sequence: too short to count
    assert memory.continuation([900, 901, 1, 2, 3, 4], 2) == ([], 0)
    assert memory.continuation([*range(100, 110), 1, 2, 3, 4], 2) == ([5, 6], 14)
    memory.remember([5, 5, 5, 5, 5], 4)  # an answer of one token: nothing to learn
    assert len(memory) == 17
    memory.remember([*range(300, 340), 8, 9, 10], 40)  # 17 + 1 + 35 tokens > 50: it starts over
    assert len(memory) == 1 + AnswerMemory.CONTEXT + 3
    assert memory.continuation([*range(100, 110), 1, 2, 3, 4], 2) == ([], 0)


def test_continuation_of_its_own_tokens_is_propose() -> None:
    rng = random.Random(3)
    for _ in range(200):
        tokens = [rng.randrange(6) for _ in range(rng.randrange(1, 40))]
        index = NgramIndex(tokens)
        assert index.continuation(tokens, 5) == index.propose(5)
