"""The prompt-prefix cache's bookkeeping with no model: which sequence a prompt gets, and what it reuses."""

from ozfig.engine.prefix_cache import PrefixCache, common_prefix

CHUNK = 4


def filled(cache: PrefixCache, seq: int, prompt: list[int], answer: list[int] = ()) -> None:  # type: ignore[assignment]
    """Feed `prompt` into `seq` the way the scheduler does (aligned chunks), then `answer`, then end."""
    cache.start(seq, prompt, cache.reusable(seq, prompt))
    fed = len(cache.tokens[seq])
    while fed < len(prompt):
        end = min(len(prompt), (fed // cache.chunk + 1) * cache.chunk)
        cache.fed_prompt(seq, fed, prompt[fed:end])
        fed = end
    for token in answer:
        cache.fed_token(seq, token)
    cache.release(seq, keep=True)


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([5], [6]) == 0


def test_empty_cache_reuses_nothing_and_picks_the_first_free() -> None:
    cache = PrefixCache(3, CHUNK)
    assert cache.reusable(0, list(range(20))) == 0
    assert cache.pick([0, 1, 2], list(range(20))) in (0, 1, 2)


def test_reuse_is_whole_chunks_of_the_shared_prefix() -> None:
    cache = PrefixCache(2, CHUNK)
    filled(cache, 0, list(range(10)), answer=[99, 98])
    assert cache.exact[0] == 8  # two whole chunks; the last 2 prompt tokens were a partial chunk
    assert cache.reusable(0, list(range(10))) == 8
    assert cache.reusable(0, [*range(6), 50, 51, 52]) == 4  # shares 6 tokens: one whole chunk
    assert cache.reusable(0, [7, 1, 2, 3, 4]) == 0
    assert cache.reusable(1, list(range(10))) == 0


def test_the_last_prompt_token_is_never_reused() -> None:
    cache = PrefixCache(1, CHUNK)
    filled(cache, 0, list(range(12)))
    assert cache.exact[0] == 12
    # the same 8-token prompt again: its last token must be decoded anew for the first logits
    assert cache.reusable(0, list(range(8))) == 4


def test_generated_tokens_are_held_but_not_reused() -> None:
    cache = PrefixCache(1, CHUNK)
    filled(cache, 0, [1, 2, 3, 4], answer=[5, 6, 7, 8, 9])
    assert cache.tokens[0] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert cache.reusable(0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) == 4


def test_a_reused_prefix_keeps_counting_as_exact() -> None:
    cache = PrefixCache(1, CHUNK)
    filled(cache, 0, list(range(8)))
    filled(cache, 0, [*range(8), 20, 21, 22, 23, 24])
    assert cache.tokens[0][:8] == list(range(8))
    assert cache.exact[0] == 12


def test_pick_prefers_the_longest_reusable_prefix_then_least_recently_used() -> None:
    cache = PrefixCache(3, CHUNK)
    filled(cache, 0, [1] * 9)
    filled(cache, 1, [2] * 9)
    filled(cache, 2, [3] * 9)
    assert cache.pick([0, 1, 2], [2] * 9 + [7]) == 1
    assert cache.pick([0, 2], [2] * 9) in (0, 2)
    assert cache.pick([0, 1, 2], [8] * 9) == 0  # nothing shared: the one used longest ago


def test_release_without_keep_forgets_the_sequence() -> None:
    cache = PrefixCache(1, CHUNK)
    filled(cache, 0, list(range(9)))
    cache.release(0, keep=False)
    assert cache.tokens[0] == [] and cache.exact[0] == 0
    assert cache.reusable(0, list(range(9))) == 0


def test_disabled_cache_reuses_nothing() -> None:
    cache = PrefixCache(2, CHUNK, enabled=False)
    filled(cache, 1, list(range(9)))
    assert cache.reusable(1, list(range(9))) == 0
    assert cache.tokens[1] == []
    assert cache.pick([1, 0], list(range(9))) == 1  # the first free, in the order given
