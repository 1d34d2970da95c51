"""MindSpore ``.ckpt`` files without mindspore: streamed in, streamed out (LAYER_FACTS.md section 3).

A file is a sequence of serialized one-Value Checkpoint messages (wire field 1, length-delimited),
optionally followed by ``b"crc_num"`` and a 10-byte CRC. The reader walks those records with a
memory map, so only the tensor being read is in memory; the writer appends records as tensors
arrive and splits parameters over 512 MiB along axis 0, as mindspore.save_checkpoint does.
"""

from __future__ import annotations

import binascii
import math
import mmap
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from proto.codec import NamedArray, TensorSpec
from proto.errors import MsparityError
from proto.formats import ckpt_values
from proto.formats.atomic import atomic_binary

SPLIT_BYTES = 512 << 20
CRC_MARK = b"crc_num"
CRC_TRAILER = len(CRC_MARK) + 10


class CkptFormatError(MsparityError):
    """A .ckpt that cannot be read; the message names the file and the parameter."""


def write_ckpt(path: str | Path, tensors: Iterable[NamedArray], crc_check: bool = False) -> int:
    """Write tensors to path atomically, one record at a time; returns how many were written."""
    count = 0
    crc = 0
    seen: set[str] = set()
    with atomic_binary(path) as handle:
        for tensor in tensors:
            if tensor.name in seen:
                raise CkptFormatError(f"{path}: parameter {tensor.name!r} given twice")
            seen.add(tensor.name)
            array = tensor.array
            parts = [array]
            if array.nbytes > SPLIT_BYTES and array.ndim:
                parts = np.array_split(array, min(array.shape[0], math.ceil(array.nbytes / SPLIT_BYTES)))
            for part in parts:
                for piece in ckpt_values.value_record(tensor.name, part, tensor.dtype, tensor.shape):
                    handle.write(piece)
                    if crc_check:
                        crc = binascii.crc32(piece, crc)
            count += 1
        if crc_check:
            handle.write(CRC_MARK + crc.to_bytes(10, byteorder="big"))
    return count


def _varint(buffer, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while pos < end:
        byte = buffer[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            break
    raise ValueError("bad varint")


def _delimited(buffer, pos: int, end: int, key: int) -> tuple[int, int] | None:
    """(start, stop) of the length-delimited field whose key byte is at pos, or None for another key."""
    if pos >= end or buffer[pos] != key:
        return None
    size, start = _varint(buffer, pos + 1, end)
    return start, start + size


class CkptReader:
    """Reads a .ckpt record by record; ``specs()`` and iteration never hold more than one tensor."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._file = open(self.path, "rb")
        except FileNotFoundError:
            raise CkptFormatError(f"{self.path}: no such checkpoint file") from None
        except OSError as exc:
            raise CkptFormatError(f"{self.path}: cannot read ({exc.strerror})") from None
        size = self.path.stat().st_size
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        self._end = size
        if size >= CRC_TRAILER and self._map[size - CRC_TRAILER : size - 10] == CRC_MARK:
            self._end = size - CRC_TRAILER
        self._records = self._scan()
        self._by_name: dict[str, list[tuple[int, int]]] | None = None
        self._specs: list[TensorSpec] = []

    def _scan(self) -> list[tuple[int, int]]:
        """(start, end) of each Value record's payload."""
        records = []
        pos = 0
        try:
            while pos < self._end:
                if self._map[pos] != 0x0A:  # field 1, wire type 2
                    raise ValueError(f"unexpected byte 0x{self._map[pos]:02x} at offset {pos}")
                length, start = _varint(self._map, pos + 1, self._end)
                if start + length > self._end:
                    raise ValueError(f"record at offset {pos} runs past the end (truncated file?)")
                records.append((start, start + length))
                pos = start + length
        except ValueError as exc:
            raise CkptFormatError(f"{self.path}: not a MindSpore checkpoint ({exc})") from None
        if not records:
            raise CkptFormatError(f"{self.path}: empty checkpoint, nothing to read")
        return records

    def _fields(self, start: int, end: int):
        """(tag, wire dtype, shape, content start, content end) of a record written the usual way (fields in
        order, dims unpacked: mindspore's writer and ours), read in place; None for any other (protobuf reads it)."""
        buf = self._map
        try:
            tag = _delimited(buf, start, end, 0x0A)  # Value.tag
            tensor = tag and _delimited(buf, tag[1], end, 0x12)  # Value.tensor, the rest of the record
            if not tensor or tensor[1] != end:
                return None
            pos, dims = tensor[0], []
            while pos < end and buf[pos] == 0x08:  # TensorProto.dims, one varint each
                dim, pos = _varint(buf, pos + 1, end)
                if dim >= 1 << 63:
                    return None  # a negative dimension: protobuf's reading says what is wrong
                dims.append(dim)
            tensor_type = _delimited(buf, pos, end, 0x12)
            content = tensor_type and _delimited(buf, tensor_type[1], end, 0x1A)
            if not content or content[1] != end:
                return None
            name = bytes(buf[tag[0]:tag[1]]).decode("utf-8")
            wire = ckpt_values.WIRE_FROM_MS_TYPE.get(bytes(buf[tensor_type[0]:tensor_type[1]]).decode("ascii"))
        except (ValueError, IndexError):
            return None
        if wire is None:
            return None
        return name, wire, (() if dims == [0] else tuple(dims)), content[0], end  # dims [0]: mindspore's scalar

    def _decode(self, start: int, end: int) -> tuple[str, str, tuple[int, ...], bytes]:
        fields = self._fields(start, end)
        if fields is not None:
            tag, wire, dims, content_start, content_end = fields
            return tag, wire, dims, self._map[content_start:content_end]  # one copy, out of the page cache
        try:
            return ckpt_values.decode_value(bytes(self._map[start:end]))
        except ckpt_values.CheckpointValueError as exc:
            raise CkptFormatError(f"{self.path}: {exc}") from None
        except Exception as exc:  # protobuf's DecodeError and friends
            raise CkptFormatError(f"{self.path}: corrupt record at offset {start} ({type(exc).__name__})") from None

    def _values(self) -> Iterator[tuple[str, str, tuple[int, ...], bytes]]:
        for start, end in self._records:
            yield self._decode(start, end)

    def __iter__(self) -> Iterator[NamedArray]:
        """Tensors in file order; split parameters are joined back."""
        pending: list[tuple[str, str, tuple[int, ...], bytes]] = []
        for value in self._values():
            if pending and value[0] != pending[0][0]:
                yield self._join(pending)
                pending = []
            pending.append(value)
        if pending:
            yield self._join(pending)

    def _join(self, parts) -> NamedArray:
        tag, wire, dims, _ = parts[0]
        content = parts[0][3] if len(parts) == 1 else b"".join(p[3] for p in parts)
        try:
            return ckpt_values.named_array(tag, wire, dims, content)
        except ckpt_values.CheckpointValueError as exc:
            raise CkptFormatError(f"{self.path}: {exc}") from None

    def _index(self) -> dict[str, list[tuple[int, int]]]:
        """Parameter name -> its records, built on first use (one pass, one record in memory)."""
        if self._by_name is None:
            self._by_name = {}
            self._specs = []
            for start, end in self._records:
                fields = self._fields(start, end)
                tag, wire, dims = fields[:3] if fields is not None else self._decode(start, end)[:3]
                if tag not in self._by_name:
                    self._by_name[tag] = []
                    self._specs.append(TensorSpec(tag, wire, dims))
                self._by_name[tag].append((start, end))
        return self._by_name

    def specs(self) -> list[TensorSpec]:
        """Name, dtype and shape of each parameter, in file order."""
        self._index()
        return list(self._specs)

    def read(self, name: str) -> NamedArray:
        """One parameter by name."""
        records = self._index().get(name)
        if records is None:
            raise CkptFormatError(f"{self.path}: no parameter {name!r}")
        return self._join([self._decode(start, end) for start, end in records])

    def close(self) -> None:
        if isinstance(self._map, mmap.mmap):
            self._map.close()
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_ckpt(path: str | Path) -> dict[str, NamedArray]:
    """Every parameter of a .ckpt (convenience; holds them all)."""
    with CkptReader(path) as reader:
        return {t.name: t for t in reader}
