"""The llama.cpp context and the answers decoded in it, one sequence each.

`Runner` gives an admitted job a sequence and as much of its prompt as the KV cache already holds
(`placement.py`: the free sequence sharing the longest prefix, a copy of a busy one's, or an entry
of the RAM cache), runs one decode step over every sequence, and ends a job: keeps its KV cells for
the next prompt, closes its sampler, counts it and queues its `Finished`. Events (text pieces, ends)
are collected in an outbox and handed over in one `post` call per step (`flush`). It runs on the
engine thread only; which jobs it runs, and when, is the scheduler's (`scheduler.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..llama.batch import Batch
from ..llama.model import ContextParams, LlamaModel
from .draft import Drafter
from .jobs import EngineStats, Finished, FinishReason, Job, Outbox, Slot
from .logprobs import token_logprob
from .placement import Placer
from .prefix_cache import PrefixCache, ReuseMode
from .ram_cache import RamCache
from .speculation import SpeculationMode, Speculator
from .step_rows import add_step_rows, greedy_tokens

log = logging.getLogger(__name__)


class Runner:
    """Owns the context, the batch, the slots and the counters; `close` frees them."""

    def __init__(
        self,
        model: LlamaModel,
        *,
        n_slots: int,
        n_ctx: int,
        n_batch: int,
        threads: int,
        prompt_cache: ReuseMode = "on",
        cache_ram_bytes: int = 0,
        speculative: SpeculationMode = "off",
        draft_max: int = 32,
        draft_model: LlamaModel | None = None,
        flash_attention: bool | None = None,
    ) -> None:
        self.model = model
        self.n_slots = n_slots
        self.n_ctx = n_ctx  # per sequence
        self.n_batch = max(n_batch, n_slots)
        self.prompt_chunk = n_batch
        # a KV stream per sequence: each answer attends over its own cells only (a unified buffer
        # makes every row attend over all sequences' cells, masked: 16% fewer tokens/s at 8 clients)
        params = ContextParams(
            n_ctx=n_ctx * n_slots,
            n_batch=self.n_batch,
            n_seq=n_slots,
            threads=threads,
            kv_unified=False,
            flash_attention=flash_attention,
        )
        self.ctx = model.new_context(params)
        self.batch = Batch(self.n_batch)
        self.slots: list[Slot | None] = [None] * n_slots
        self.cache = PrefixCache(n_slots, self.prompt_chunk, mode=prompt_cache)
        self.ram = RamCache(cache_ram_bytes if prompt_cache != "off" else 0)
        self.stats = EngineStats(slots=n_slots, kv_cells_total=n_ctx * n_slots)
        self.placer = Placer(self.ctx, self.cache, self.ram, self.stats)
        self.speculator: Speculator | None = None
        if speculative == "draft" and draft_model is None:
            raise ValueError("speculative decoding with a draft model needs one")
        if speculative != "off":
            drafter = None
            if draft_model is not None and speculative in ("auto", "draft"):
                drafter = Drafter(draft_model, params)
            self.speculator = Speculator(speculative, draft_max, n_ctx, self.stats, drafter)
        self.outbox: Outbox = []
        self.post: Callable[[Outbox], None] = lambda items: None  # hands a step's events over
        self.on_finished: Callable[[Finished], None] = lambda done: None  # every ended job, this thread

    def prepare(self) -> None:
        """On the engine thread, before its first step: `auto` times what a decode costs here.
        Every `llama_decode` of the context runs on this one thread: a decode on another thread
        starts a second OpenMP team in the process, and with more OpenMP threads than cores
        llama.cpp's barriers sleep instead of spinning (a quarter of the decode rate on 2 cores)."""
        if self.speculator is not None and self.speculator.mode == "auto":
            self.speculator.calibrate(self.ctx, self.batch)

    def retime(self) -> None:
        """After a step: `auto` times decodes again if the step showed its timing wrong (`cost_probe`)."""
        if self.speculator is not None and self.speculator.probe.stale:
            self.speculator.recalibrate(self.ctx, self.batch)

    @property
    def free_slots(self) -> int:
        return sum(1 for s in self.slots if s is None)

    def busy(self) -> bool:
        return any(s is not None for s in self.slots)

    def close(self) -> None:
        for slot in self.slots:
            if slot is not None:
                slot.sampler.close()
        self.slots = [None] * self.n_slots
        self.batch.close()
        self.ctx.close()
        if self.speculator is not None and self.speculator.drafter is not None:
            self.speculator.drafter.close()

    def save_all(self) -> None:
        """Every sequence's cells into the RAM cache (before the context goes: a drain, a restart)."""
        for seq in range(self.n_slots):
            self.placer.save(seq, 0)

    def flush(self) -> None:
        """Hand the events collected since the last flush over, in one call."""
        if self.outbox:
            items, self.outbox = self.outbox, []
            self.post(items)

    # --- a job's start and end ---------------------------------------------------------------

    def admit(self, job: Job, now: float) -> Slot:
        """Give `job` a free sequence (call only while one is free) holding as much of its prompt as
        can be had without computing it."""
        free = [s for s in range(self.n_slots) if self.slots[s] is None]
        busy = [s for s in range(self.n_slots) if self.slots[s] is not None]
        seq, keep = self.placer.place(free, busy, job.prompt)
        slot = Slot.for_job(seq, job, self.model)
        slot.fed = slot.pos = slot.cached = keep
        self.slots[seq] = slot
        job.admitted_at = now
        return slot

    def end(
        self, slot: Slot, reason: FinishReason, *, error: str | None = None, pending: list[object] | None = None
    ) -> None:
        events = list(pending or [])
        if reason in ("stop", "length") and (rest := slot.held_text()):
            events.append(rest)
        if self.speculator is not None:
            self.speculator.ended(slot)
        keep = reason != "error" and self.cache.enabled
        if not keep:
            self.ctx.seq_remove(slot.seq)
        self.cache.release(slot.seq, keep)
        slot.sampler.close()
        self.slots[slot.seq] = None
        self.stats.busy_slots = self.n_slots - self.free_slots
        self.stats.prompt_tokens_total += len(slot.job.prompt)
        self.finish_job(slot.job, reason, slot.generated, events, error, cached=slot.cached)

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
        *,
        cached: int = 0,
    ) -> None:
        """Count the job's end and queue its `Finished` (also for a job that never had a slot)."""
        ttft = job.first_token_at - job.submitted if job.first_token_at is not None else None
        queued = job.admitted_at - job.submitted if job.admitted_at is not None else None
        self.stats.requests_finished[reason] += 1
        total = time.monotonic() - job.submitted
        done = Finished(
            reason, len(job.prompt), generated, error, ttft, queued, total, tuple(job.token_gaps), cached
        )
        self.outbox.append((job, [*(events or []), done]))
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
        started = time.perf_counter()
        active = [s for s in self.slots if s is not None]
        self.stats.kv_cells_used = sum(s.pos for s in active)
        running = [s for s in active if s.fed == len(s.job.prompt)]
        batch = self.batch
        decoding = drafting = 0.0
        if running:
            batch.clear()
            spec = self.speculator
            drafting = spec.plan(running, batch.capacity - len(running)) if spec is not None else 0.0
            add_step_rows(batch, running, self.cache.fed_token)
            decoding = self._decode(running)
            if decoding >= 0.0:
                if spec is not None:
                    spec.decoded(batch.n_tokens, decoding)
                self._sample(running)
        decoding = max(decoding, 0.0) + drafting + self._fill(active)
        self.stats.steps_total += 1
        self.stats.step_overhead_seconds_total += time.perf_counter() - started - decoding

    def _fill(self, active: list[Slot]) -> float:
        """Decode one chunk of the oldest waiting prompt; the seconds llama.cpp took."""
        batch = self.batch
        waiting = [s for s in active if s.fed < len(s.job.prompt) and self.slots[s.seq] is s]
        if not waiting:
            return 0.0
        filling = min(waiting, key=lambda s: s.job.submitted)  # oldest request first
        prompt = filling.job.prompt
        # `exact`: chunks cut at multiples of `prompt_chunk`, as a fresh run cuts them; else as they come
        start = filling.fed - filling.fed % self.prompt_chunk if self.cache.mode == "exact" else filling.fed
        end = min(len(prompt), start + self.prompt_chunk)
        batch.clear()
        filling.row = batch.add_span(prompt[filling.fed : end], filling.pos, filling.seq, end == len(prompt))
        filling.pos += end - filling.fed
        self.cache.fed_prompt(filling.seq, filling.fed, prompt[filling.fed : end])
        filling.fed = end
        decoding = self._decode([filling])
        if decoding >= 0.0 and end == len(prompt):
            self._sample([filling])
        return max(decoding, 0.0)

    def _decode(self, slots: list[Slot]) -> float:
        """Decode the batch: the seconds it took, or -1 when llama.cpp failed (the slots then end)."""
        started = time.perf_counter()
        rc = self.ctx.decode(self.batch)
        if rc == 0:
            return time.perf_counter() - started
        log.error("llama_decode returned %d for a batch of %d tokens", rc, self.batch.n_tokens)
        for slot in slots:
            self.end(slot, "error", error=f"llama.cpp could not decode (code {rc})")
        return -1.0

    def _sample(self, active: list[Slot]) -> None:
        """Sample each slot's next token from its row (with a draft: the tokens its rows confirm)."""
        now = time.monotonic()
        produced = 0
        spec = self.speculator
        greedy = greedy_tokens(self.ctx, active)
        for i, slot in enumerate(active):
            if spec is None or not slot.draft:
                produced += 1
                token = greedy[i] if greedy is not None else slot.sampler.sample(self.ctx, slot.row)
                events, reason = self._take(slot, token, slot.row, now)
                if spec is not None:
                    spec.verified(slot, 0, [token])
            else:
                events, reason, generated = spec.verify(slot, self.ctx, self._take, now, self.cache.fed_token)
                produced += generated
            if reason == "error":
                self.end(slot, reason, error="llama.cpp could not remove the rejected draft's cells", pending=events)
            elif reason is not None:
                self.end(slot, reason, pending=events)
            elif events:
                self.outbox.append((slot.job, events))
        self.stats.completion_tokens_total += produced

    def _take(self, slot: Slot, token: int, row: int, now: float) -> tuple[list[object], FinishReason | None]:
        """Count a token sampled from `row`: the events it lets out (its logprobs, its text), and
        why the answer ends with it (None: it goes on)."""
        slot.last = token
        slot.generated += 1
        job = slot.job
        if job.first_token_at is None:
            job.first_token_at = now
        elif job.last_token_at is not None:
            job.token_gaps.append(now - job.last_token_at)
        job.last_token_at = now
        if self.model.is_eog(token) and not job.sampling.ignore_eos:
            return [], "stop"
        emit, stopped = slot.stop.feed(slot.decoder.decode(self._piece(job, token)))
        events: list[object] = [emit] if emit else []
        if job.sampling.logprobs is not None:  # before the text, which may be held back
            events.insert(0, token_logprob(self.ctx.logits(row), token, job.sampling.logprobs))
        if stopped:
            return events, "stop"
        if slot.generated >= job.max_tokens or slot.pos >= self.n_ctx:
            return events, "length"
        return events, None

    def _piece(self, job: Job, token: int) -> bytes:
        """A token's bytes; a control token the job wants to see (a tool-call opener) as its text."""
        if token in job.sampling.visible_controls:
            return self.model.token_text(token).encode()
        return self.model.piece(token)
