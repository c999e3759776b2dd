"""The one llama.cpp log callback, called as llama.cpp calls it (through ctypes), with no model."""

import logging
import signal

import pytest

from ozfig.llama import backend

LEVEL_ERROR, LEVEL_INFO = 4, 2


def log_line(level: int, text: bytes) -> None:
    """What llama.cpp does: call the installed C callback (so ctypes' exception handling applies)."""
    backend._ROUTER.callback(level, text, None)


def test_lines_go_to_logging_and_errors_are_kept(caplog: pytest.LogCaptureFixture) -> None:
    backend.clear_errors()
    with caplog.at_level(logging.DEBUG, logger=backend.__name__):
        log_line(LEVEL_INFO, b"llama_model_loader: loaded meta data\n")
        log_line(LEVEL_ERROR, b"gguf_init: failed to read magic\n")
        log_line(LEVEL_INFO, b"\n")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG, "llama_model_loader: loaded meta data"),
        (logging.WARNING, "gguf_init: failed to read magic"),
    ]
    assert backend.recent_errors() == "gguf_init: failed to read magic"
    backend.clear_errors()
    assert backend.recent_errors() == "no detail from llama.cpp"


def test_a_capture_sees_its_lines_and_progress_only_while_open() -> None:
    progress: list[tuple[int, int]] = []
    with backend.capture(lambda i, n: progress.append((i, n))) as cap:
        log_line(LEVEL_INFO, b"[  12/ 291]  blk.1.attn_q.weight - [ 576, 576], type = f16\n")
        log_line(LEVEL_ERROR, b"llama_model_quantize: failed\n")
    log_line(LEVEL_INFO, b"[  13/ 291]  blk.1.attn_k.weight\n")
    log_line(LEVEL_ERROR, b"later\n")
    assert progress == [(12, 291)]
    assert cap.errors == ["llama_model_quantize: failed"]
    assert cap.detail() == "llama_model_quantize: failed"


def test_an_interrupt_during_a_log_line_is_not_lost() -> None:
    """Ctrl-C handled inside the callback used to vanish (ctypes drops a callback's exceptions): a
    conversion interrupted while llama.cpp logged on the main thread went on and exited 0."""

    def on_progress(i: int, n: int) -> None:
        signal.raise_signal(signal.SIGINT)  # the signal is handled while Python runs in the callback

    with backend.capture(on_progress):
        log_line(LEVEL_INFO, b"[   1/  10] token_embd.weight\n")  # llama.cpp goes on
    with pytest.raises(KeyboardInterrupt):
        backend.raise_if_interrupted()  # what LlamaModel does after each call into llama.cpp
    backend.raise_if_interrupted()  # raised once


def test_loading_a_model_raises_an_interrupt_that_came_during_the_load(tmp_path) -> None:
    """Through the real call: llama.cpp logs its errors about a damaged file from the main thread."""
    from ozfig.errors import ModelLoadError
    from ozfig.llama.model import LlamaModel

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    hits = []

    def interrupt(record: logging.LogRecord) -> bool:
        if not hits:
            hits.append(record.getMessage())
            signal.raise_signal(signal.SIGINT)
        return True

    logger = logging.getLogger(backend.__name__)
    logger.addFilter(interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            LlamaModel(str(bad))
    finally:
        logger.removeFilter(interrupt)
    assert hits  # llama.cpp did log during the load
    with pytest.raises(ModelLoadError):
        LlamaModel(str(bad))  # and nothing is left pending
