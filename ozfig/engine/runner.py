"""The llama.cpp context and the answers decoded in it, one sequence each.

`Runner` gives an admitted job a sequence (the free one whose cached prefix it shares most,
`prefix_cache.py`), runs one decode step over every sequence, and ends a job: frees or keeps
its KV cells, frees its sampler, counts it and delivers its `Finished`. It runs on the engine
thread only; which jobs it runs, and when, is the scheduler's (`scheduler.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import llama_cpp as lc

from ..llama.batch import put_token
from ..llama.model import ContextParams, LlamaModel
from .jobs import EngineStats, Finished, FinishReason, Job, Slot
from .prefix_cache import PrefixCache

log = logging.getLogger(__name__)


class Runner:
    """Owns the context, the slots and the counters; `close` frees them."""

    def __init__(
        self,
        model: LlamaModel,
        *,
        n_slots: int,
        n_ctx: int,
        n_batch: int,
        threads: int,
        prompt_cache: bool = True,
    ) -> None:
        self.model = model
        self.n_slots = n_slots
        self.n_ctx = n_ctx  # per sequence
        self.n_batch = max(n_batch, n_slots)
        self.prompt_chunk = n_batch
        # a KV stream per sequence: each answer attends over its own cells only (a unified buffer
        # makes every row attend over all sequences' cells, masked: 16% fewer tokens/s at 8 clients)
        self.ctx = model.new_context(
            ContextParams(
                n_ctx=n_ctx * n_slots, n_batch=self.n_batch, n_seq=n_slots, threads=threads, kv_unified=False
            )
        )
        self.memory = lc.llama_get_memory(self.ctx)
        self.batch = lc.llama_batch_init(self.n_batch, 0, 1)
        self.slots: list[Slot | None] = [None] * n_slots
        self.cache = PrefixCache(n_slots, self.prompt_chunk, enabled=prompt_cache)
        self.stats = EngineStats(slots=n_slots, kv_cells_total=n_ctx * n_slots)
        self.on_finished: Callable[[Finished], None] = lambda done: None  # every ended job, this thread

    @property
    def free_slots(self) -> int:
        return sum(1 for s in self.slots if s is None)

    def busy(self) -> bool:
        return any(s is not None for s in self.slots)

    def close(self) -> None:
        for slot in self.slots:
            if slot is not None:
                lc.llama_sampler_free(slot.sampler)
        self.slots = [None] * self.n_slots
        if self.batch is not None:
            lc.llama_batch_free(self.batch)
            self.batch = None
        if self.ctx:
            lc.llama_free(self.ctx)
            self.ctx = None  # type: ignore[assignment]

    # --- a job's start and end ---------------------------------------------------------------

    def admit(self, job: Job, now: float) -> Slot:
        """Give `job` a free sequence (call only while one is free); `start` it next."""
        seq = self.cache.pick([s for s in range(self.n_slots) if self.slots[s] is None], job.prompt)
        slot = Slot.for_job(seq, job, self.model.n_vocab)
        self.slots[seq] = slot
        job.admitted_at = now
        return slot

    def start(self, slot: Slot) -> None:
        """Keep the sequence's cells that hold a prefix of the prompt; drop the rest."""
        prompt = slot.job.prompt
        keep = self.cache.reusable(slot.seq, prompt)
        if keep == 0 or not lc.llama_memory_seq_rm(self.memory, slot.seq, keep, -1):
            keep = 0
            lc.llama_memory_seq_rm(self.memory, slot.seq, -1, -1)
        self.cache.start(slot.seq, prompt, keep)
        slot.fed = slot.pos = keep
        self.stats.prompt_tokens_cached_total += keep

    def end(
        self,
        slot: Slot,
        reason: FinishReason,
        *,
        error: str | None = None,
        pending: list[object] | None = None,
    ) -> None:
        events = list(pending or [])
        if reason in ("stop", "length") and (rest := slot.held_text()):
            events.append(rest)
        keep = reason != "error" and self.cache.enabled
        if not keep:
            lc.llama_memory_seq_rm(self.memory, slot.seq, -1, -1)
        self.cache.release(slot.seq, keep)
        lc.llama_sampler_free(slot.sampler)
        self.slots[slot.seq] = None
        self.stats.busy_slots = self.n_slots - self.free_slots
        self.stats.kv_cells_used = sum(s.pos for s in self.slots if s is not None)
        self.stats.prompt_tokens_total += len(slot.job.prompt)
        self.finish_job(slot.job, reason, slot.generated, events, error)

    def end_all(self, message: str, reason: FinishReason) -> None:
        for slot in list(self.slots):
            if slot is not None:
                self.end(slot, reason, error=message)

    def finish_job(
        self,
        job: Job,
        reason: FinishReason,
        generated: int,
        events: list[object] | None = None,
        error: str | None = None,
    ) -> None:
        """Count the job's end and deliver its `Finished` (also for a job that never had a slot)."""
        ttft = job.first_token_at - job.submitted if job.first_token_at is not None else None
        queued = job.admitted_at - job.submitted if job.admitted_at is not None else None
        self.stats.requests_finished[reason] += 1
        total = time.monotonic() - job.submitted
        done = Finished(reason, len(job.prompt), generated, error, ttft, queued, total, tuple(job.token_gaps))
        job.deliver([*(events or []), done])
        try:
            self.on_finished(done)
        except Exception:  # an observer must not stop the engine
            log.exception("the finished-job observer failed")

    # --- one step ------------------------------------------------------------------------------

    def step(self) -> None:
        """One decode of every running answer, then one chunk of one waiting prompt.

        The two go to llama.cpp in separate calls, and a prompt is cut at fixed multiples of
        `prompt_chunk`: a request's prompt is processed the same way whatever else runs, so its
        KV cache does not depend on other requests (llama.cpp's kernels do depend on which rows
        share a call).
        """
        active = [s for s in self.slots if s is not None]
        self.stats.kv_cells_used = sum(s.pos for s in active)
        running = [s for s in active if s.fed == len(s.job.prompt)]
        if running:
            n = 0
            for slot in running:
                n = put_token(self.batch, n, slot.last, slot.pos, slot.seq, True)
                self.cache.fed_token(slot.seq, slot.last)
                slot.batch_index = n - 1
                slot.pos += 1
            if self._decode(n, running):
                self._sample(running)
        waiting = [s for s in active if s.fed < len(s.job.prompt) and self.slots[s.seq] is s]
        if not waiting:
            return
        filling = min(waiting, key=lambda s: s.job.submitted)  # oldest request first
        prompt = filling.job.prompt
        end = min(len(prompt), (filling.fed // self.prompt_chunk + 1) * self.prompt_chunk)
        n = 0
        for i in range(filling.fed, end):
            n = put_token(self.batch, n, prompt[i], filling.pos, filling.seq, i == len(prompt) - 1)
            filling.pos += 1
        self.cache.fed_prompt(filling.seq, filling.fed, prompt[filling.fed : end])
        filling.fed = end
        filling.batch_index = n - 1
        if self._decode(n, [filling]) and end == len(prompt):
            self._sample([filling])

    def _decode(self, n: int, slots: list[Slot]) -> bool:
        self.batch.n_tokens = n
        t0 = time.perf_counter()
        rc = lc.llama_decode(self.ctx, self.batch)
        self.stats.decode_seconds_total += time.perf_counter() - t0
        self.stats.decode_steps_total += 1
        if rc == 0:
            return True
        log.error("llama_decode returned %d for a batch of %d tokens", rc, n)
        for slot in slots:
            self.end(slot, "error", error=f"llama.cpp could not decode (code {rc})")
        return False

    def _sample(self, active: list[Slot]) -> None:
        now = time.monotonic()
        produced = 0
        outbox: dict[int, list[object]] = {}
        for slot in active:
            token = lc.llama_sampler_sample(slot.sampler, self.ctx, slot.batch_index)
            slot.last = token
            slot.generated += 1
            produced += 1
            job = slot.job
            if job.first_token_at is None:
                job.first_token_at = now
                self.stats.ttft_seconds.append(now - job.submitted)
            elif job.last_token_at is not None:
                job.token_gaps.append(now - job.last_token_at)
            job.last_token_at = now
            if self.model.is_eog(token) and not job.sampling.ignore_eos:
                self.end(slot, "stop")
                continue
            text = slot.decoder.decode(self.model.piece(token))
            emit, stopped = slot.stop.feed(text)
            if emit:
                outbox.setdefault(slot.seq, []).append(emit)
            if stopped:
                self.end(slot, "stop", pending=outbox.pop(slot.seq, []))
            elif slot.generated >= job.max_tokens or slot.pos >= self.n_ctx:
                self.end(slot, "length", pending=outbox.pop(slot.seq, []))
        for seq, events in outbox.items():
            slot_ = self.slots[seq]
            if slot_ is not None:
                slot_.job.deliver(events)
        self.stats.completion_tokens_total += produced
        self.stats.recent_tokens.append((now, produced))
