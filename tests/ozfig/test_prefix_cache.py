"""The engine's reuse bookkeeping with no model, at the real defaults (`--batch 512`, 4 and 8 slots):
which sequence a prompt gets, what it reuses in each mode, when a busy sequence is copied, and the
RAM cache's budget."""

import pytest

from ozfig.engine.prefix_cache import Placement, PrefixCache, common_prefix, usable
from ozfig.engine.ram_cache import RamCache

CHUNK = 512  # --batch's default


def filled(cache: PrefixCache, seq: int, prompt: list[int], answer: list[int] = ()) -> None:  # type: ignore[assignment]
    """Feed `prompt` into `seq` as the runner does (--batch chunks), then `answer`, then end."""
    cache.start(seq, prompt, 0)
    fed = 0
    while fed < len(prompt):
        end = min(len(prompt), fed + cache.chunk)
        cache.fed_prompt(seq, fed, prompt[fed:end])
        fed = end
    for token in answer:
        cache.fed_token(seq, token)
    cache.release(seq, keep=True)


def test_common_prefix_across_its_blocks() -> None:
    a = list(range(1000))
    assert common_prefix(a, a) == 1000
    assert common_prefix(a, [*a[:700], -1, *a[701:]]) == 700
    assert common_prefix(a, a[:63]) == 63 and common_prefix(a, a[:64]) == 64 and common_prefix(a, a[:65]) == 65
    assert common_prefix([], [1]) == 0 and common_prefix([5], [6]) == 0


@pytest.mark.parametrize("n_seq", [4, 8])
def test_on_reuses_the_longest_prefix_answer_included(n_seq: int) -> None:
    cache = PrefixCache(n_seq, CHUNK, mode="on")
    turn1 = list(range(300))
    filled(cache, 2, turn1, answer=[900, 901, 902])
    turn2 = [*turn1, 900, 901, 902, 7, 8, 9]
    assert cache.reusable(2, turn2) == 303  # the prompt and the answer's fed tokens
    assert all(cache.reusable(s, turn2) == 0 for s in range(n_seq) if s != 2)
    assert cache.place(list(range(n_seq)), [], turn2, 16) == Placement(2, 303)
    assert cache.reusable(2, turn1) == 299  # never the whole prompt: its last token gives the first logits


@pytest.mark.parametrize("n_seq", [4, 8])
def test_exact_reuses_only_whole_aligned_prompt_chunks(n_seq: int) -> None:
    cache = PrefixCache(n_seq, CHUNK, mode="exact")
    prompt = list(range(1300))
    filled(cache, 0, prompt, answer=[5000, 5001])
    assert cache.exact[0] == 1024  # two whole chunks; the last 276 prompt tokens were a partial one
    assert cache.reusable(0, [*prompt, 1, 2]) == 1024
    assert cache.reusable(0, [*prompt[:700], -1]) == 512
    assert cache.reusable(0, prompt[:400]) == 0  # a chat shorter than --batch reuses nothing


def test_off_reuses_nothing_and_takes_the_first_free() -> None:
    cache = PrefixCache(4, CHUNK, mode="off")
    filled(cache, 1, list(range(600)))
    assert cache.reusable(1, list(range(700))) == 0
    assert cache.place([1, 3], [], list(range(700)), 16) == Placement(1, 0)


def test_a_busy_sequence_with_a_longer_prefix_is_copied_into_the_least_useful_free_one() -> None:
    cache = PrefixCache(8, CHUNK, mode="on")
    shared = list(range(400))
    filled(cache, 5, [*shared, 1, 2, 3])  # busy now (its answer is running)
    filled(cache, 1, shared[:100])  # free, holds a shorter prefix
    where = cache.place([0, 1, 2], [5], [*shared, 9, 9], 16)
    assert where.source == 5 and where.keep == 400 and where.seq in (0, 2)
    # not worth a copy: the busy one saves fewer than `min_copy` tokens over the free one's
    assert cache.place([0, 1, 2], [5], [*shared[:110], 9], 16) == Placement(1, 100)


def test_free_sequences_are_taken_least_recently_used_first() -> None:
    cache = PrefixCache(4, CHUNK, mode="on")
    for seq in (2, 0, 3, 1):
        filled(cache, seq, [100 + seq] * 50)
    assert cache.place([0, 1, 2, 3], [], [7] * 20, 16) == Placement(2, 0)


def test_usable_caps() -> None:
    assert usable(900, 0, 1000, "on", CHUNK) == 900
    assert usable(1000, 0, 1000, "on", CHUNK) == 999
    assert usable(900, 600, 1000, "exact", CHUNK) == 512
    assert usable(900, 900, 1000, "off", CHUNK) == 0


def test_the_ram_cache_stays_within_its_budget_least_recently_used_first() -> None:
    ram = RamCache(budget_bytes=10_000)
    assert ram.put(list(range(100)), 0, bytes(3000))  # 3,400 bytes with its tokens
    assert ram.put(list(range(1000, 1100)), 0, bytes(3000))
    assert ram.best(list(range(50)), 0) is not None  # touches the first: the second is now the oldest
    assert ram.put(list(range(2000, 2100)), 0, bytes(3000))  # 10,200 > 10,000: the oldest goes
    assert ram.bytes_held <= 10_000 and len(ram.entries) == 2
    assert ram.best(list(range(1000, 1100)), 0) is None
    assert not ram.put(list(range(10)), 0, bytes(20_000))  # larger than the budget: never kept
    # an entry that extends another replaces it (the shorter is a prefix of the longer)
    assert ram.put(list(range(150)), 0, bytes(100))
    found = ram.best(list(range(120)), 0)
    assert found is not None and found[1] == 120 and len(found[0].tokens) == 150
    assert ram.bytes_held == sum(e.size for e in ram.entries.values())
