"""The errors `ozfig convert` and `ozfig inspect` raise on purpose.

Each carries a message that says what is wrong and what to do; `ozfig/cli.py` prints it as
one short paragraph and exits 2, without a traceback.
"""

from __future__ import annotations

from ozfig.errors import OzfigError


class ConvertError(OzfigError):
    """Base of every conversion error."""

    code = "convert_failed"


class InputError(ConvertError):
    """An input folder or file is missing, unreadable or damaged."""

    code = "bad_input"


class HubError(ConvertError):
    """A Hugging Face Hub id could not be fetched (offline, gated, missing)."""

    code = "hub_failed"


class UnsupportedError(ConvertError):
    """The checkpoint or adapter uses something ozfig does not convert (DoRA, another architecture...)."""

    code = "unsupported"


class ShapeMismatchError(ConvertError):
    """The adapter's tensors do not fit the base model's."""

    code = "shape_mismatch"


class OutputError(ConvertError):
    """The destination cannot be written: it exists, its folder is missing, the disk is too full."""

    code = "bad_output"


class QuantizeError(ConvertError):
    """llama.cpp's quantizer failed."""

    code = "quantize_failed"


class VerifyError(ConvertError):
    """The written GGUF did not pass the checks made before it is moved into place."""

    code = "verify_failed"
