"""Write a file atomically: into a temporary sibling, fsynced, renamed into place only when complete (the rename
fsynced too).

Durability costs a flush of every byte to the disk. A file's bytes start for the disk while the rest is still
being written (a flusher thread syncs what is written so far every FLUSH_EVERY bytes), so the last fsync waits
only for the tail: 114 MB, 0.077 s -> 0.060 s here. A file replaced keeps its blocks until the last handle on it
closes; that handle is closed in the background, so freeing them (26 ms for 114 MB here) is not waited for.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO, Iterator

FLUSH_EVERY = 16 << 20
_sync_data = getattr(os, "fdatasync", os.fsync)  # macOS and Windows have no fdatasync


class _StagedFlush:
    """A binary handle whose written bytes a background thread syncs every FLUSH_EVERY bytes."""

    def __init__(self, handle: BinaryIO):
        self._handle = handle
        self._since = 0
        self._wanted = threading.Event()
        self._done = False
        self._error: OSError | None = None
        self._thread: threading.Thread | None = None

    def write(self, data) -> int:
        written = self._handle.write(data)
        self._since += memoryview(data).nbytes
        if self._since >= FLUSH_EVERY:
            self._since = 0
            self._handle.flush()
            if self._thread is None:
                self._thread = threading.Thread(target=self._flush, name="msparity-flush", daemon=True)
                self._thread.start()
            self._wanted.set()
        return written

    def _flush(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._done:
                return
            try:
                _sync_data(self._handle.fileno())
            except OSError as exc:  # raised in the writer's thread by finish(): the kernel reports it only once
                self._error = exc
                return

    def finish(self, report: bool = True) -> None:
        """Stop the flusher, raising what it met; then everything written is flushed once more by the caller."""
        self._done = True
        self._wanted.set()
        if self._thread is not None:
            self._thread.join()
        if report and self._error is not None:
            raise self._error

    def __getattr__(self, name):
        return getattr(self._handle, name)


def _held(path: Path) -> int | None:
    """A handle on the file now at path, so that replacing it frees nothing yet; None when there is none."""
    if os.name != "posix":
        return None  # elsewhere a file held open cannot be replaced
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None  # opening a device or a FIFO could do something, or wait
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None  # nothing there (or not ours to read): nothing to free
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for something else meanwhile
        os.close(fd)
        return None
    return fd


def _close_later(fd: int | None) -> None:
    if fd is None:
        return
    try:
        threading.Thread(target=os.close, args=(fd,), name="msparity-release", daemon=False).start()
    except RuntimeError:  # no thread to be had (at interpreter shutdown): free the blocks now
        os.close(fd)


@contextlib.contextmanager
def atomic_binary(path: str | Path) -> Iterator[BinaryIO]:
    """Yield a binary handle; on success the data appears at path, on any error nothing does."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            staged = _StagedFlush(handle)
            try:
                yield staged
            except BaseException:
                staged.finish(report=False)  # the writer's own error is the one to raise
                raise
            staged.finish()
            handle.flush()
            os.fsync(handle.fileno())
        replaced = _held(path)
        try:
            os.replace(tmp, path)
        finally:
            _close_later(replaced)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_directory(path.parent if str(path.parent) else Path("."))


def _sync_directory(folder: Path) -> None:
    """The rename itself made durable (POSIX: the directory's entry is flushed with the directory). Best effort:
    the file is in place already, and a directory we may not read, or a filesystem that cannot sync one, must
    not turn a finished write into an error."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

