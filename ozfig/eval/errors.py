"""The errors `ozfig eval` raises on purpose: each is printed as one short line (exit code 2)."""

from __future__ import annotations

from ozfig.errors import OzfigError


class EvalError(OzfigError):
    """Base of the evaluation tools' errors."""

    code = "eval_failed"


class InputFileError(EvalError):
    """A --file / --data path that cannot be read as UTF-8 text."""

    code = "input_unreadable"


class EmptyTextError(EvalError):
    code = "empty_text"


class TextTooShortError(EvalError):
    """The text does not fill the two chunks perplexity needs at the least."""

    code = "text_too_short"


class NoChatTemplateError(EvalError):
    code = "no_chat_template"


class DataFormatError(EvalError):
    """A JSONL line that is not a FineTome-style row; the message names the line."""

    code = "bad_eval_data"


class ModelMismatchError(EvalError):
    """Two GGUFs compared by `eval kld` that do not share a vocabulary."""

    code = "model_mismatch"


class MissingExtraError(EvalError):
    """An optional dependency (the `ozfig[eval]` extra) is not installed."""

    code = "missing_extra"


class EvalPromptTooLongError(EvalError):
    code = "prompt_too_long"
