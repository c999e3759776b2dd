"""Where a new prompt goes, and the KV work that puts as much of it as possible in place.

`Placer.place` picks the sequence (`PrefixCache.place`), then, on the engine thread:
- saves what that sequence holds beyond the reused prefix into the RAM cache, when it is worth
  keeping (`SAVE_MIN` tokens or more, not already there), before it is overwritten;
- copies a busy sequence's cells when it holds a longer prefix (`llama_memory_seq_cp`);
- restores a RAM cache entry when it shares a longer prefix than the cells at hand;
- removes the cells past the reused prefix.
It returns the sequence and how many prompt tokens need not be computed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..llama.context import Context
from .jobs import EngineStats
from .prefix_cache import PrefixCache, usable
from .ram_cache import RamCache

log = logging.getLogger(__name__)

SAVE_MIN = 32  # tokens a sequence must hold beyond the reused prefix to be saved to RAM
COPY_MIN = 16  # tokens a copy or a restore must save over the cells at hand


class Placer:
    def __init__(self, ctx: Context, cache: PrefixCache, ram: RamCache, stats: EngineStats) -> None:
        self.ctx = ctx
        self.cache = cache
        self.ram = ram
        self.stats = stats

    def place(self, free: Sequence[int], busy: Sequence[int], prompt: Sequence[int]) -> tuple[int, int]:
        """(sequence, prompt tokens already in its cells) for a new prompt; the sequence is ready."""
        cache = self.cache
        where = cache.place(free, busy, prompt, COPY_MIN)
        seq, keep = where.seq, where.keep
        exact = min(keep, cache.exact[where.source if where.source is not None else seq])
        self.save(seq, keep if where.source is None else 0)
        if where.source is not None:
            self.ctx.seq_remove(seq)
            self.ctx.seq_copy(where.source, seq)  # across KV streams llama.cpp copies whole streams
            source_tokens = cache.tokens[where.source]
            cache.tokens[seq] = list(source_tokens[: len(source_tokens)])
        # a copy into `seq` is pending until the next decode: a restore would be overwritten by it
        restored = self.restore(seq, prompt, keep) if where.source is None else None
        if restored is not None:
            keep, exact = restored
        elif not cache.enabled or keep == 0 or not self.ctx.seq_remove(seq, keep, -1):
            keep = exact = 0
            self.ctx.seq_remove(seq)
        cache.start(seq, prompt, keep, exact)
        self.stats.prompt_tokens_reused_total += keep
        if cache.enabled:
            if keep:
                self.stats.prompt_cache_hits_total += 1
            else:
                self.stats.prompt_cache_misses_total += 1
        return seq, keep

    def save(self, seq: int, keep: int) -> None:
        """Into the RAM cache, what `seq` holds, if more than `keep` tokens of it are about to go."""
        tokens = self.cache.tokens[seq]
        if not self.ram.enabled or len(tokens) - keep < SAVE_MIN or self.ram.holds(tokens):
            return
        if not self.ram.fits(self.ctx.seq_state_size(seq), len(tokens)):
            return
        state = self.ctx.seq_state_save(seq)
        if self.ram.put(tokens, self.cache.exact[seq], state):
            self.stats.prompt_cache_saved_total += 1
            self.stats.prompt_cache_bytes = self.ram.bytes_held

    def restore(self, seq: int, prompt: Sequence[int], keep: int) -> tuple[int, int] | None:
        """Load the RAM entry sharing the longest prefix, if it saves `COPY_MIN` tokens over `keep`:
        (reused tokens, of them exact), or None."""
        if not self.ram.enabled:
            return None
        found = self.ram.best(prompt, keep + COPY_MIN - 1)
        if found is None:
            return None
        entry, shared = found
        n = usable(shared, entry.exact, len(prompt), self.cache.mode, self.cache.chunk)
        if n < keep + COPY_MIN:
            return None
        if not self.ctx.seq_state_load(seq, entry.state) or not self.ctx.seq_remove(seq, n, -1):
            log.warning("llama.cpp refused a prompt cache entry of %d tokens; dropped", len(entry.tokens))
            self.ram.discard(entry)
            self.ctx.seq_remove(seq)
            self.stats.prompt_cache_bytes = self.ram.bytes_held
            return None
        self.stats.prompt_cache_restored_tokens_total += n
        return n, min(n, entry.exact)
