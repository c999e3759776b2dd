"""Where the GGUF comes from: a local path, or a file on the Hugging Face Hub.

`OWNER/REPO/FILE.gguf` (optionally `hf://OWNER/REPO/FILE.gguf`, or with `@REVISION`
after the repo) is downloaded once into the Hugging Face cache, with a progress bar.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from .errors import ModelFetchError

log = logging.getLogger("ozfig.model")


@dataclass(frozen=True)
class HubFile:
    repo_id: str
    filename: str
    revision: str | None = None


def parse_hub_reference(reference: str) -> HubFile | None:
    """A Hub file reference, or None when `reference` is meant as a local path."""
    ref = reference.removeprefix("hf://")
    if ref == reference and (os.path.exists(reference) or reference.startswith((".", "/", "~"))):
        return None
    parts = ref.split("/")
    if len(parts) < 3 or not all(parts):
        return None
    owner, repo = parts[0], parts[1]
    revision = None
    if "@" in repo:
        repo, revision = repo.split("@", 1)
    return HubFile(repo_id=f"{owner}/{repo}", filename="/".join(parts[2:]), revision=revision)


def resolve_model_path(reference: str) -> str:
    """A local path for `reference`, downloading from the Hub when needed."""
    hub = parse_hub_reference(reference)
    if hub is None:
        return os.path.expanduser(reference)
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

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
    except HfHubHTTPError as exc:
        raise ModelFetchError(
            f"The Hugging Face Hub refused {reference!r}: {str(exc).splitlines()[0]}. Check the repository "
            "and file name (OWNER/REPO/FILE.gguf), and log in with `hf auth login` if the repository is gated."
        ) from None
    except OSError as exc:
        raise ModelFetchError(
            f"Downloading {reference!r} failed: {exc}. Check the network and free disk space, or pass a local GGUF path."
        ) from None
