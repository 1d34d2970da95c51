"""Directories of saved tensors, local or served by a worker, behind one small interface.

A ``TensorDir`` lists its ``.npy`` files by header (name, dtype, shape, ctime) and streams chosen
files in a given order. Reading runs ahead of the consumer in a background thread, so disk or
network I/O overlaps the comparison.
"""

from __future__ import annotations

import math
import os
import queue
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from coordinator.client import WorkerClient
from proto import dtypes, transport
from proto.codec import NamedArray
from proto.errors import UsageError
from proto.formats.npy_files import NPY_SUFFIX, NpyEntry, describe_npy, list_npy_dir, load_npy

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
            self._entries = _list_plain(self.path)
        return self._entries

    def stream(self, names: Sequence[str]) -> Iterator[NamedArray]:
        for name in names:
            yield self.load(name)

    def load(self, name: str, buffer: bytearray | None = None) -> NamedArray:
        """One file's array, as load_npy reads it; a plain header is read straight into the array (one copy).

        With ``buffer``, an array that fits is a view of it (the caller reuses the buffer once done with the array).
        """
        path = self.path / name
        try:
            loaded = _read_plain(path, name, buffer)
        except (OSError, ValueError, dtypes.UnknownDtypeError):
            loaded = None
        return loaded if loaded is not None else load_npy(path, name)

    def close(self) -> None:
        pass


def _plain_header(handle) -> tuple[np.dtype, tuple[int, ...], int] | None:
    """(dtype, shape, data offset) of a .npy header (numpy's own reader) holding plain numbers in C order in this
    machine's byte order, else None (load_npy then reads it, or names the problem)."""
    version = npy_format.read_magic(handle)
    if version == (1, 0):
        shape, fortran, dtype = npy_format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, fortran, dtype = npy_format.read_array_header_2_0(handle)
    else:
        return None
    if fortran or dtype.kind not in "fiubc" or not dtype.isnative or dtype.fields is not None:
        return None
    return dtype, tuple(shape), handle.tell()


def _read_plain(path: Path, name: str, buffer: bytearray | None = None) -> NamedArray | None:
    """The array of a .npy file with a plain header, or None (then load_npy reads it, or says why not)."""
    with open(path, "rb", buffering=0) as handle:
        header = _plain_header(handle)
        if header is None:
            return None
        dtype, shape, offset = header
        count = math.prod(shape)
        if buffer is not None and count * dtype.itemsize <= len(buffer):
            array = np.frombuffer(buffer, dtype, count).reshape(shape)
        else:
            array = np.empty(shape, dtype)
        handle.seek(offset)
        if not _fill(handle, array.reshape(-1).view(np.uint8)):
            return None  # cut short: load_npy names the problem
    return NamedArray(name, array, dtypes.wire_dtype_from_numpy(dtype))


def _fill(handle, view: np.ndarray) -> bool:
    """Read into view until it is full (one read returns at most 2 GiB); False at an early end of file."""
    done = 0
    while done < view.size:
        got = handle.readinto(view[done:])
        if not got:
            return False
        done += got
    return True


def _describe_plain(path: Path) -> NpyEntry:
    """describe_npy's entry, from one small read where the header is plain."""
    try:
        with open(path, "rb", buffering=0) as handle:
            header = _plain_header(handle)
            ctime = os.fstat(handle.fileno()).st_ctime
        if header is not None:
            dtype, shape, _ = header
            return NpyEntry(path.name, dtypes.wire_dtype_from_numpy(dtype), shape, math.prod(shape) * dtype.itemsize,
                            ctime)
    except (OSError, ValueError, dtypes.UnknownDtypeError):
        pass
    return describe_npy(path)  # it reads the header numpy's way, or names the problem


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _list_plain(directory: Path) -> list[NpyEntry]:
    """list_npy_dir's listing (the .npy files directly inside, in name order), with the cheaper header read."""
    try:
        with os.scandir(directory) as found:
            names = sorted(e.name for e in found if e.name.endswith(NPY_SUFFIX) and len(e.name) > 4 and _is_file(e))
    except OSError:
        return list_npy_dir(directory)  # not a directory, or unreadable: its error
    return [_describe_plain(directory / name) for name in names]


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
