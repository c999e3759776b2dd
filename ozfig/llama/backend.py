"""llama.cpp's backend: initialised once per process, its log lines routed to `logging`.

llama.cpp has one log callback for the whole process, so ozfig sets exactly one (in
`init_backend`): every line goes to this module's logger at debug level (errors at warning
level), errors are kept for messages (`recent_errors`), and `capture()` lets a caller see the
lines of the calls it makes (errors for its message, `[ 12/ 291]` progress for a bar).
"""

# llama_cpp must be imported before numpy (see ozfig/cli.py)
import llama_cpp as lc  # noqa: I001

import collections
import ctypes
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

_PROGRESS = re.compile(r"\[\s*(\d+)\s*/\s*(\d+)\s*\]")
_LEVEL_ERROR = 4  # GGML_LOG_LEVEL_ERROR


@dataclass
class LogCapture:
    """The lines llama.cpp logs while a `capture()` block runs."""

    on_progress: Callable[[int, int], None] | None = None
    errors: list[str] = field(default_factory=list)

    def line(self, level: int, line: str) -> None:
        if level == _LEVEL_ERROR:
            self.errors.append(line)
        if self.on_progress is not None and (m := _PROGRESS.search(line)):
            self.on_progress(int(m.group(1)), int(m.group(2)))

    def detail(self) -> str:
        return "; ".join(self.errors[-3:]) or "no detail from llama.cpp"


class _LogRouter:
    """The one callback llama.cpp calls: to `logging`, to the recent errors, to active captures."""

    def __init__(self) -> None:
        self.errors: collections.deque[str] = collections.deque(maxlen=8)
        self.captures: list[LogCapture] = []
        self.interrupted = False
        self.callback = lc.llama_log_callback(self._on_line)  # keep a reference: ctypes callback

    def _on_line(self, level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        try:
            line = text.decode("utf-8", "replace").rstrip()
            if not line:
                return
            if level == _LEVEL_ERROR:
                self.errors.append(line)
            # llama.cpp's warnings during a load are mostly chatter; keep them at debug level
            log.log(logging.WARNING if level == _LEVEL_ERROR else logging.DEBUG, "%s", line)
            for cap in list(self.captures):
                cap.line(level, line)
        except KeyboardInterrupt:
            # Ctrl-C (or SIGTERM turned into it) was handled while llama.cpp called in here, on the
            # main thread: ctypes would print the exception and drop it, and the interrupted command
            # would go on. Kept for `raise_if_interrupted` once llama.cpp has returned.
            self.interrupted = True


_ROUTER = _LogRouter()
_init_lock = threading.Lock()
_initialized = False


def init_backend() -> None:
    """Route llama.cpp's log to `logging` and initialise its backend; once per process."""
    global _initialized
    with _init_lock:
        if not _initialized:
            lc.llama_log_set(_ROUTER.callback, ctypes.c_void_p(0))
            lc.llama_backend_init()
            _initialized = True


def gpu_offload_supported() -> bool:
    return bool(lc.llama_supports_gpu_offload())


def cpu_has_amx() -> bool:
    """Whether the CPU advertises AMX tiles (Linux's /proc/cpuinfo; False elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return " amx_tile" in f.read()
    except OSError:
        return False


def raise_if_interrupted() -> None:
    """Raise the KeyboardInterrupt that arrived while llama.cpp was logging (call after a C call)."""
    if _ROUTER.interrupted:
        _ROUTER.interrupted = False
        raise KeyboardInterrupt


def clear_errors() -> None:
    _ROUTER.errors.clear()


def recent_errors() -> str:
    """The errors llama.cpp logged since `clear_errors`, for a message."""
    return "; ".join(_ROUTER.errors) or "no detail from llama.cpp"


@contextmanager
def capture(on_progress: Callable[[int, int], None] | None = None) -> Iterator[LogCapture]:
    """The log lines of the llama.cpp calls made inside the block (from any thread)."""
    init_backend()
    cap = LogCapture(on_progress)
    _ROUTER.captures.append(cap)
    try:
        yield cap
    finally:
        _ROUTER.captures.remove(cap)


def detach_log() -> None:
    """Stop llama.cpp calling into Python (it logs to stderr from now on).

    For a C call left running in a thread while the process exits (an interrupted quantize).
    """
    lc.llama_log_set(lc.llama_log_callback(), ctypes.c_void_p(0))
