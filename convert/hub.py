"""Turn `--base`/`--adapter`/`--tokenizer` values into local folders.

A value that names an existing folder is used as it is. A value shaped like a Hub id
(`owner/name`) is fetched with huggingface_hub into its cache, only the files conversion
reads (no PyTorch pickles, no `original/` consolidated weights), with its progress bars.
Offline, gated, missing or unreachable repositories become one clear `HubError`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from .errors import HubError, InputError

log = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")

TOKENIZER_FILES = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
]
BASE_FILES = [
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "model-*.safetensors",
    *TOKENIZER_FILES,
]
ADAPTER_FILES = ["adapter_config.json", "adapter_model.safetensors", "README.md", *TOKENIZER_FILES]


def is_hub_id(value: str) -> bool:
    return bool(_HUB_ID.match(value))


def resolve(value: str, what: str, patterns: list[str], revision: str | None = None) -> Path:
    """A local folder for `value`, downloading it from the Hub when it is a Hub id."""
    path = Path(value).expanduser()
    if path.exists():
        if not path.is_dir():
            raise InputError(f"{what} {value!r} is a file; pass the folder that holds it.")
        return path
    if not is_hub_id(value):
        raise InputError(
            f"{what} {value!r} is neither an existing folder nor a Hugging Face Hub id (owner/name)."
        )
    return download(value, what, patterns, revision)


def _offline_error(hf_errors: object) -> type[Exception]:
    found = getattr(hf_errors, "OfflineModeIsEnabled", None)
    return found if isinstance(found, type) and issubclass(found, Exception) else LookupError


def download(repo_id: str, what: str, patterns: list[str], revision: str | None) -> Path:
    try:
        import huggingface_hub
        from huggingface_hub import errors as hf_errors
    except ImportError:  # pragma: no cover - a runtime dependency
        raise HubError("huggingface_hub is not installed; pass a local folder instead.") from None
    log.info("fetching %s %s from the Hugging Face Hub", what, repo_id)
    try:
        folder = huggingface_hub.snapshot_download(repo_id, revision=revision, allow_patterns=patterns)
    except hf_errors.GatedRepoError:
        raise HubError(
            f"{what} {repo_id!r} is gated on the Hugging Face Hub: accept its license on the model page, "
            "then log in (`hf auth login`) or set HF_TOKEN, and run again."
        ) from None
    except hf_errors.RepositoryNotFoundError:
        raise HubError(
            f"{what} {repo_id!r} was not found on the Hugging Face Hub (or it is private: set HF_TOKEN)."
        ) from None
    except hf_errors.RevisionNotFoundError:
        raise HubError(f"{what} {repo_id!r} has no revision {revision!r}.") from None
    except (hf_errors.LocalEntryNotFoundError, _offline_error(hf_errors)) as exc:
        raise HubError(
            f"cannot fetch {what} {repo_id!r}: the Hugging Face Hub cannot be reached (offline mode or no "
            f"network: {type(exc).__name__}) and it is not in the local cache. Connect and run again, or "
            "download it elsewhere and pass its folder."
        ) from None
    except hf_errors.HFValidationError as exc:
        raise HubError(f"{repo_id!r} is not a valid Hugging Face Hub id: {exc}") from None
    except hf_errors.HfHubHTTPError as exc:
        raise HubError(f"cannot fetch {what} {repo_id!r} from the Hugging Face Hub: {exc}") from None
    except OSError as exc:
        raise HubError(f"cannot fetch {what} {repo_id!r}: {exc}") from None
    return Path(folder)
