"""Capture llama.cpp's log lines while ozfig calls into it: errors for messages, progress for bars."""

# llama_cpp must be imported before numpy (see ozfig/cli.py)
import llama_cpp as lc  # noqa: I001

import ctypes
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger("ozfig.convert.llama")

_PROGRESS = re.compile(r"\[\s*(\d+)\s*/\s*(\d+)\s*\]")
_LEVEL_ERROR = 4  # GGML_LOG_LEVEL_ERROR
_callbacks: list[object] = []  # ctypes callbacks must outlive every call into llama.cpp
_initialized = False


@dataclass
class LogCapture:
    on_progress: Callable[[int, int], None] | None = None
    errors: list[str] = field(default_factory=list)

    def line(self, level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        line = text.decode("utf-8", "replace").rstrip()
        if not line:
            return
        if level == _LEVEL_ERROR:
            self.errors.append(line)
        log.debug("%s", line)
        if self.on_progress is not None and (m := _PROGRESS.search(line)):
            self.on_progress(int(m.group(1)), int(m.group(2)))

    def detail(self) -> str:
        return "; ".join(self.errors[-3:]) or "no detail from llama.cpp"


@contextmanager
def capture(on_progress: Callable[[int, int], None] | None = None) -> Iterator[LogCapture]:
    global _initialized
    cap = LogCapture(on_progress)
    callback = lc.llama_log_callback(cap.line)
    _callbacks.append(callback)
    lc.llama_log_set(callback, ctypes.c_void_p(0))
    if not _initialized:
        lc.llama_backend_init()
        _initialized = True
    yield cap
