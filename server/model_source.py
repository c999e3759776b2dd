"""Where the GGUF comes from: a local path, or a file on the Hugging Face Hub.

A value is a local path when it starts with `./`, `../`, `/` or `~`, when it exists, or
when its first folder exists; otherwise `OWNER/REPO/FILE.gguf` (optionally
`hf://OWNER/REPO/FILE.gguf`, or with `@REVISION` after the repo) is a Hub file, downloaded
once into the Hugging Face cache, with a progress bar. When neither reading finds the file,
the error names both.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from ozfig.errors import ModelFetchError, ModelNotFoundError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HubFile:
    repo_id: str
    filename: str
    revision: str | None = None


def is_local(reference: str) -> bool:
    """Whether `reference` names a local path rather than a Hub file."""
    if reference.startswith("hf://"):
        return False
    if reference.startswith(("./", "../", "/", "~")) or os.path.exists(reference):
        return True
    first = reference.split("/")[0]
    return "/" in reference and os.path.isdir(first)


def _hub_parts(ref: str) -> HubFile | None:
    parts = ref.split("/")
    if len(parts) < 3 or not all(parts):
        return None
    owner, repo = parts[0], parts[1]
    revision = None
    if "@" in repo:
        repo, revision = repo.split("@", 1)
    return HubFile(repo_id=f"{owner}/{repo}", filename="/".join(parts[2:]), revision=revision)


def parse_hub_reference(reference: str) -> HubFile | None:
    """A Hub file reference, or None when `reference` is meant as a local path."""
    if is_local(reference):
        return None
    return _hub_parts(reference.removeprefix("hf://"))


def both_readings(reference: str) -> str:
    """How `reference` was read both ways, for an error about a model found by neither."""
    hub = _hub_parts(reference.removeprefix("hf://"))
    local = f"no local file {reference!r} (relative to {os.getcwd()})"
    if hub is None:
        return local
    return f"{local}, and no file {hub.filename!r} in the Hub repository {hub.repo_id!r}"


def check_local_model(path: str) -> None:
    """A missing local model: the error says how the value was read (a Hub file is `OWNER/REPO/FILE`)."""
    if not os.path.exists(path):
        raise ModelNotFoundError(
            f"The model file {path!r} does not exist: {both_readings(path)}. Pass --model (or OZFIG_MODEL) "
            "with the path of a GGUF file (start it with ./ to make it local), or a Hugging Face Hub file "
            "written as OWNER/REPO/FILE.gguf."
        )


def resolve_model_path(reference: str) -> str:
    """A local path for `reference`, downloading from the Hub when needed."""
    hub = parse_hub_reference(reference)
    if hub is None:
        path = os.path.expanduser(reference)
        check_local_model(path)
        return path
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    log.info(
        "fetching %s from %s on the Hugging Face Hub (cached after the first time)", hub.filename, hub.repo_id
    )
    try:
        return str(hf_hub_download(repo_id=hub.repo_id, filename=hub.filename, revision=hub.revision))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        raise ModelFetchError(
            f"The model {reference!r} is not in the Hugging Face cache and the Hub cannot be reached "
            f"({type(exc).__name__}). Connect to the internet once to download it, or pass --model with "
            "the path of a local GGUF file."
        ) from None
    except HFValidationError as exc:
        raise ModelFetchError(
            f"The model {reference!r} is neither a local file nor a valid Hub file: {both_readings(reference)} "
            f"({str(exc).splitlines()[0]}). Pass the path of a local GGUF file, or OWNER/REPO/FILE.gguf."
        ) from None
    except (RepositoryNotFoundError, EntryNotFoundError):
        raise ModelFetchError(
            f"The model {reference!r} was not found: {both_readings(reference)}. Check the path or the Hub "
            "name (OWNER/REPO/FILE.gguf), and log in with `hf auth login` if the repository is gated."
        ) from None
    except HfHubHTTPError as exc:
        raise ModelFetchError(
            f"The Hugging Face Hub refused {reference!r}: {str(exc).splitlines()[0]}. Check the repository "
            "and file name (OWNER/REPO/FILE.gguf), and log in with `hf auth login` if the repository is gated."
        ) from None
    except OSError as exc:
        raise ModelFetchError(
            f"Downloading {reference!r} failed: {exc}. Check the network and free disk space, or pass a local GGUF path."
        ) from None
