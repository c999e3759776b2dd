"""The thread that owns the llama.cpp context and decodes many sequences together.

Each step decodes one token of every answer being generated, then one chunk of a waiting
prompt. Every request has its own sequence id, sampler chain and stop conditions; its KV
cells stay after it ends for the next prompt that shares their prefix (`prefix_cache.py`).
The events of a turn of the loop (text pieces, ends) go back to the asyncio side in one
call (`Runner.flush`).

This module is the thread and its queue: it takes jobs from any thread, admits them as
sequences free up, ends the cancelled and the late ones, and fails every job if the thread
dies. The context, the step and a job's end are the runner's (`runner.py`).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from .jobs import FinishReason, Job
from .runner import Runner

log = logging.getLogger(__name__)


class Scheduler:
    """Owns the engine thread and, through its runner, the context; call `start`, then `submit` from any
    thread; `close` to end."""

    def __init__(self, runner: Runner, *, max_waiting: int) -> None:
        """Take over `runner` (its context is freed by `close`); at most `max_waiting` jobs wait for a slot."""
        self.runner = runner
        self.max_waiting = max_waiting
        self.waiting: collections.deque[Job] = collections.deque()
        self.cond = threading.Condition()
        self._abort: str | None = None
        self._stopping = False
        self.failure: str | None = None  # why the engine thread died; set once, then every job is refused
        self.on_failure: Callable[[str], None] | None = None  # called on the engine thread when it dies
        self._thread = threading.Thread(target=self._run, name="ozfig-engine", daemon=True)
        self._prepared = threading.Event()  # set once the thread has prepared the runner (or failed to)

    # --- any thread -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the engine thread; returns once it has prepared the runner (`Runner.prepare`)."""
        self._thread.start()
        self._prepared.wait()

    def has_room(self) -> bool:
        """Whether `submit` would take a job now: a free slot, or room in the waiting queue."""
        return len(self.waiting) < self.max_waiting + self.free_slots

    def submit(self, job: Job) -> bool:
        """Queue a job; False when the waiting queue is full."""
        with self.cond:
            if self.failure is not None or not self.has_room():
                return False
            self.waiting.append(job)
            self.runner.stats.requests_total += 1
            self.runner.stats.queue_depth = len(self.waiting)
            self.cond.notify()
        return True

    def wake(self) -> None:
        with self.cond:
            self.cond.notify()

    def abort(self, message: str) -> None:
        """End every running and waiting job with reason `aborted` at the next step."""
        with self.cond:
            self._abort = message
            self.cond.notify()

    def stop(self) -> None:
        """End the engine thread (its jobs end as cancelled); the runner stays for the caller to close."""
        with self.cond:
            self._stopping = True
            self.cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    @property
    def free_slots(self) -> int:
        return self.runner.free_slots

    # --- engine thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            try:
                self.runner.prepare()
            finally:
                self._prepared.set()
            while True:
                with self.cond:
                    self.runner.stats.heartbeat = time.monotonic()
                    while not self._stopping and not self.waiting and not self.runner.busy():
                        self.cond.wait(timeout=1.0)  # beat while idle too (/livez)
                        self.runner.stats.heartbeat = time.monotonic()
                    if self._stopping:
                        break
                    abort, self._abort = self._abort, None
                if abort is not None:
                    self._fail_all(abort, reason="aborted")
                    continue
                with self.cond:
                    jobs = self._take()
                now = time.monotonic()
                for job in jobs:
                    self.runner.admit(job, now)
                self.runner.stats.busy_slots = self.runner.n_slots - self.free_slots
                self._drop_cancelled()
                self.runner.step()
                self.runner.flush()
                self.runner.retime()
        except Exception as exc:  # the engine thread must never die silently, nor leave jobs waiting
            log.exception("the engine thread failed")
            message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            with self.cond:
                self.failure = message
            self._fail_all(f"the engine failed ({message}); the server is restarting", reason="failed")
            if self.on_failure is not None:
                self.on_failure(message)
        finally:
            self._fail_all("the server is shutting down", reason="cancelled")

    def _take(self) -> list[Job]:
        """The waiting jobs that get a free slot now (the cancelled and the late ones end here)."""
        taken: list[Job] = []
        now = time.monotonic()
        while self.waiting and len(taken) < self.free_slots:
            job = self.waiting.popleft()
            if job.cancelled:
                self.runner.finish_job(job, "cancelled", 0)
            elif job.deadline is not None and now > job.deadline:
                self.runner.finish_job(job, "timeout", 0)
            else:
                taken.append(job)
        self.runner.stats.queue_depth = len(self.waiting)
        return taken

    def _drop_cancelled(self) -> None:
        now = time.monotonic()
        for slot in self.runner.slots:
            if slot is None:
                continue
            if slot.job.cancelled:
                self.runner.end(slot, "cancelled")
            elif slot.job.deadline is not None and now > slot.job.deadline:
                self.runner.end(slot, "timeout")

    def _fail_all(self, message: str, reason: FinishReason = "error") -> None:
        self.runner.end_all(message, reason)
        with self.cond:
            waiting, self.waiting = list(self.waiting), collections.deque()
        for job in waiting:
            self.runner.finish_job(job, reason, 0, error=message)
        self.runner.flush()
