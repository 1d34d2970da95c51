"""A model saved one file per rank (``rank0.pth,rank1.pth``, in rank order) read as one: whole tensors, one at a
time, joined by a layout (``{"name": "shard(DIM)"}``; tensors it does not name are replicated, and checked equal
on every rank). convert and compare-ckpt take such a set wherever they take one file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from proto.codec import NamedArray, TensorSpec
from proto.errors import MsparityError
from proto.formats import open_weights, weights_kind
from proto.weights.shards import joined, parse_placements, whole_shape


def rank_paths(path) -> list[str]:
    """The files of a per-rank set written ``a,b,...`` (one path: itself)."""
    return [part for part in str(path).split(",") if part] or [str(path)]


def set_kind(path) -> str:
    """The weights kind of a file or of every file of a set (they must agree)."""
    kinds = {weights_kind(p) for p in rank_paths(path)}
    if len(kinds) > 1:
        raise MsparityError(f"{path}: the ranks' files are of different kinds ({', '.join(sorted(kinds))})")
    return kinds.pop()


def load_layout(path) -> dict:
    """A --layout file: a JSON object of tensor name -> "replicate" | "shard(DIM)"."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MsparityError(f"--layout {path}: not a readable JSON object ({exc})") from None
    if not isinstance(data, dict):
        raise MsparityError(f"--layout {path}: expected a JSON object of tensor name -> 'shard(DIM)' or 'replicate'")
    return data


class ShardedWeights:
    """The reader interface of proto.formats (specs, read, iteration, close) over one reader per rank."""

    def __init__(self, readers: list, layout: dict | None, label: str):
        self._readers = readers
        self._label = label
        per_rank = [{s.name: s for s in r.specs()} for r in readers]
        names = list(per_rank[0])
        for rank, specs in enumerate(per_rank[1:], 1):
            if set(specs) != set(names):
                odd = sorted(set(specs) ^ set(names))
                raise MsparityError(f"{label}: rank {rank}'s file and rank 0's hold different tensors "
                                    f"({', '.join(odd[:6])}); give the files of one save, in rank order")
        self._placements = parse_placements(layout, names)
        self._specs = []
        for name in names:
            kind, dim = self._placements.get(name, ("replicate", 0))
            shape = whole_shape([specs[name].shape for specs in per_rank], kind, dim)
            self._specs.append(TensorSpec(name, per_rank[0][name].dtype, shape))

    def specs(self) -> list[TensorSpec]:
        return list(self._specs)

    def read(self, name: str) -> NamedArray:
        kind, dim = self._placements.get(name, ("replicate", 0))
        return joined([reader.read(name) for reader in self._readers], kind, dim)

    def __iter__(self) -> Iterator[NamedArray]:
        for spec in self._specs:
            yield self.read(spec.name)

    def close(self) -> None:
        for reader in self._readers:
            reader.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_weight_set(path, pth_key: str | None = None, layout_path=None):
    """A reader of one weights file, or of a per-rank set joined by the layout file."""
    paths = rank_paths(path)
    if len(paths) == 1:
        if layout_path is not None:
            raise MsparityError(f"--layout joins one file per rank: give them as rank0.pth,rank1.pth (got {path})")
        return open_weights(paths[0], pth_key)
    readers = []
    try:
        for part in paths:
            readers.append(open_weights(part, pth_key))
        return ShardedWeights(readers, load_layout(layout_path) if layout_path is not None else None, str(path))
    except BaseException:
        for reader in readers:
            reader.close()
        raise
