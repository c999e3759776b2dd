"""Safe output: nothing appears at the destination until the finished file is renamed there.

Files are written under temporary names in the destination's own folder, so the final
rename is atomic on every POSIX file system. The names are made by `tempfile`
(`.NAME.<step>.ozfig-partial-<pid>-<random>`, created exclusively, so nobody can plant a
file or a link there in advance); the pid in them lets a later run tell leftovers from
files in use. On an error, Ctrl-C or SIGTERM the temporary files are removed; after a
SIGKILL (or a power cut) they stay, but the destination does not exist, and the next run
for the same destination removes leftovers whose process is gone.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType

from .errors import OutputError

log = logging.getLogger(__name__)

PARTIAL_TAG = ".ozfig-partial-"
# test hook: pretend the destination's file system has this many bytes free
FREE_BYTES_ENV = "OZFIG_CONVERT_TEST_FREE_BYTES"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def free_bytes(folder: Path) -> int:
    forced = os.environ.get(FREE_BYTES_ENV)
    if forced:
        return int(forced)
    return shutil.disk_usage(folder).free


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover


class SafeOutput:
    """Owns the destination path and the temporary files written on the way to it."""

    def __init__(self, dest: Path, force: bool = False) -> None:
        self.dest = dest.expanduser().absolute()
        self.force = force
        self.temps: list[Path] = []

    def check(self) -> None:
        """Refuse before any work: destination exists (without --force), is a folder, or has no folder."""
        folder = self.dest.parent
        if not folder.is_dir():
            raise OutputError(f"the folder of --out, {folder}, does not exist. Create it first.")
        if not os.access(folder, os.W_OK):
            raise OutputError(f"cannot write into {folder} (permission denied).")
        if self.dest.is_dir():
            raise OutputError(f"--out {self.dest} is a folder; give the path of the .gguf file to write.")
        if self.dest.exists() and not self.force:
            raise OutputError(
                f"{self.dest} already exists. Pass --force to replace it, or choose another --out."
            )
        self.remove_stale()

    def check_space(self, needed: int) -> None:
        free = free_bytes(self.dest.parent)
        if needed > free:
            raise OutputError(
                f"not enough free disk space in {self.dest.parent}: this conversion needs about {human(needed)} "
                f"(temporary files included) and {human(free)} is free. Free some space or write elsewhere."
            )

    def remove_stale(self) -> None:
        prefix = f".{self.dest.name}."
        for path in self.dest.parent.glob(f"{prefix}*{PARTIAL_TAG}*"):
            try:
                pid = int(path.name.rsplit(PARTIAL_TAG, 1)[1].split("-", 1)[0])
            except ValueError:
                continue
            if not _pid_alive(pid):
                log.info("removing %s, left by an interrupted run", path)
                path.unlink(missing_ok=True)

    def temp(self, step: str) -> Path:
        """A new, empty file beside the destination, under a name nobody could have guessed."""
        fd, name = tempfile.mkstemp(
            prefix=f".{self.dest.name}.{step}{PARTIAL_TAG}{os.getpid()}-", dir=self.dest.parent
        )
        path = Path(name)
        self.temps.append(path)
        try:
            os.fchmod(
                fd, 0o666 & ~_umask()
            )  # the finished file gets the usual permissions, not mkstemp's 0600
        finally:
            os.close(fd)
        return path

    def commit(self, temp: Path) -> None:
        if self.dest.exists() and not self.force:  # appeared while we worked
            raise OutputError(f"{self.dest} appeared while converting; pass --force to replace it.")
        os.replace(temp, self.dest)
        try:
            fd = os.open(self.dest.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:  # pragma: no cover - some file systems cannot sync a folder
            pass

    def cleanup(self) -> None:
        for path in self.temps:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:  # pragma: no cover
                log.warning("could not remove %s: %s", path, exc)

    def __enter__(self) -> SafeOutput:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt, so `finally` blocks remove temporary files."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
