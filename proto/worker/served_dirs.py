"""The directories a worker serves (--serve-dir), behind the DirectoryServer half of the interface."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from proto.codec import NamedArray
from proto.errors import FailedPrecondition
from proto.formats.npy_files import NpyFileError, ServedRoots, load_npy
from proto.worker.interface import DirListing


class ServedDirectories:
    """ListDir and GetTensors over the roots a worker was started with; nothing outside them is read."""

    def __init__(self, roots: ServedRoots):
        self.roots = roots

    def list_dir(self, path: str) -> DirListing:
        """A served directory, resolved on this host, and its .npy files (described by header)."""
        try:
            directory, entries = self.roots.list_dir(path)
        except NpyFileError as exc:
            raise FailedPrecondition(str(exc)) from None
        return DirListing(str(directory), tuple(entries))

    def get_tensors(self, path: str, names: Sequence[str]) -> Iterator[NamedArray]:
        """The named .npy files of a served directory, in the order given; every name is checked first."""
        directory = self.roots.resolve_dir(path)
        files = [self.roots.resolve_file(directory, name) for name in names]  # refuse before streaming
        return self._load(list(names), files)

    @staticmethod
    def _load(names: list[str], files: list) -> Iterator[NamedArray]:
        for name, file in zip(names, files):
            try:
                yield load_npy(file, name)
            except NpyFileError as exc:
                raise FailedPrecondition(str(exc)) from None
