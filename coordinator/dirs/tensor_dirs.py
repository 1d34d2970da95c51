"""Directories of saved tensors, local or served by a worker, behind one small interface.

A ``TensorDir`` lists its ``.npy`` files by header (name, dtype, shape, ctime) and streams chosen
files in a given order. Reading runs ahead of the consumer in a background thread, so disk or
network I/O overlaps the comparison.
"""

from __future__ import annotations

import os
import queue
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from coordinator.client import WorkerClient
from proto import transport
from proto.codec import NamedArray
from proto.errors import UsageError
from proto.formats.npy_files import NpyEntry, list_npy_dir, load_npy

# "host:port:dir" or "[v6]:port:dir" names a directory served by a worker (--serve-dir).
_REMOTE = re.compile(f"^(?P<address>{transport.ADDRESS_PATTERN}):(?P<path>.*)$")
READ_AHEAD = 4  # tensors buffered per side


class LocalDir:
    """A directory on this machine."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.label = str(path)
        self._entries: list[NpyEntry] | None = None

    def entries(self) -> list[NpyEntry]:
        if self._entries is None:
            self._entries = list_npy_dir(self.path)
        return self._entries

    def stream(self, names: Sequence[str]) -> Iterator[NamedArray]:
        for name in names:
            yield load_npy(self.path / name, name)

    def close(self) -> None:
        pass


class RemoteDir:
    """A directory served by a worker (``--serve-dir``); files stream over gRPC, nothing lands on disk here."""

    def __init__(self, client: WorkerClient, path: str, owns_client: bool = False):
        self.client = client
        self.path = path
        self._owns_client = owns_client
        self._resolved: str | None = None
        self._entries: list[NpyEntry] | None = None
        self.label = f"{client.address}:{path}"

    def entries(self) -> list[NpyEntry]:
        if self._entries is None:
            listing = self.client.list_dir(self.path)
            self._resolved, self._entries = listing.path, list(listing.entries)
            self.label = f"{self.client.address}:{self._resolved}"
        return self._entries

    def stream(self, names: Sequence[str]) -> Iterator[NamedArray]:
        return self.client.get_tensors(self.path, names) if names else iter(())

    def close(self) -> None:
        if self._owns_client:
            self.client.close()


TensorDir = LocalDir | RemoteDir


def open_dir(spec, worker: str | None = None, security: transport.Security = transport.Security(),
             role: str = "ref") -> TensorDir:
    """A TensorDir from a path, a ``host:port:dir`` string, or a TensorDir; ``worker`` makes spec a served path."""
    if isinstance(spec, (LocalDir, RemoteDir)):
        return spec
    if spec is None:
        raise UsageError(f"the {role} directory cannot be None")
    text = os.fspath(spec)
    if worker is None and not os.path.exists(text):
        match = _REMOTE.match(text)
        if match:
            worker, text = match.group("address"), match.group("path")
    if worker is None:
        return LocalDir(text)
    return RemoteDir(WorkerClient(worker, role, security), text, owns_client=True)


class _End:
    pass


def read_ahead(source: Iterator[NamedArray], depth: int = READ_AHEAD) -> Iterator[NamedArray]:
    """Iterate source in a background thread, up to depth items ahead; errors surface in order."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def pump():
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(_End())
        except BaseException as exc:  # handed to the consumer, raised there
            items.put(exc)

    thread = threading.Thread(target=pump, name="msparity-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if isinstance(item, _End):
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        close = getattr(source, "close", None)
        if close is not None and not thread.is_alive():
            close()
