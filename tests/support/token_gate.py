"""Hold a live engine's decoding so a test, not the machine's speed, decides how far an answer gets.

`TokenGate(engine).installed()` wraps the engine runner's sampling step: each step waits until the
test has allowed another one (`allow`), or until every answer in it has been cancelled; and
end-of-generation tokens do not end answers. An answer thus cannot end on its own while a test
is about to press Stop, however fast the model, slow the browser or short the model's reply.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ozfig.engine.engine import Engine


class TokenGate:
    def __init__(self, engine: Engine) -> None:
        self.runner: Any = engine.runner
        self.allowed = 0
        self.cond = threading.Condition()
        self._sample = self.runner._sample

    def _gated_sample(self, active: list[Any]) -> None:
        with self.cond:
            while self.allowed <= 0 and not all(slot.job.cancelled for slot in active):
                self.cond.wait(0.01)  # cancellation is set by the asyncio side without notifying us
            self.allowed -= 1
        self._sample(active)

    def allow(self, steps: int) -> None:
        """Let the engine take `steps` more sampling steps (one token per answer each)."""
        with self.cond:
            self.allowed = max(self.allowed, 0) + steps
            self.cond.notify_all()

    @contextmanager
    def installed(self) -> Iterator[TokenGate]:
        model = self.runner.model
        self.runner._sample = self._gated_sample
        model.is_eog = lambda token: False
        try:
            yield self
        finally:
            del model.is_eog
            self.runner._sample = self._sample
            self.allow(1_000_000)
