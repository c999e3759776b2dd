"""What a conversion tells its caller: progress and facts as it goes (`Reporter`), the outcome (`Result`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Result:
    path: Path
    size: int
    kind: str
    quant: str
    tensors: int
    seconds: float
    facts: list[str] = field(default_factory=list)


class Reporter:
    """Where progress and facts go; the CLI prints them, tests may collect them."""

    def __init__(self, progress: bool = True, say: Callable[[str], None] | None = None) -> None:
        self.progress = progress
        self._say = say

    def say(self, msg: str) -> None:
        if self._say is None:
            log.info("%s", msg)
        else:
            self._say(msg)

    def warn(self, msg: str) -> None:
        if self._say is None:
            log.warning("%s", msg)
        else:
            self._say(f"warning: {msg}")

    def bar(self, total: int, desc: str, unit: str) -> Any:
        from tqdm import tqdm

        return tqdm(
            total=total,
            desc=desc,
            unit=unit,
            unit_scale=unit == "B",
            disable=True if not self.progress else None,  # None: only on a terminal
            leave=False,
        )
