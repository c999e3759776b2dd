"""What every binding object that owns a llama.cpp pointer shares: `with` closes it."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T", bound="Owner")


class Owner:
    """Frees its llama.cpp object in `close` (idempotent); usable as a context manager."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
