"""Framework-free readers and writers of weight and tensor files (torch .pth, MindSpore .ckpt, safetensors, .npy)."""

from __future__ import annotations

from pathlib import Path

from proto.errors import MsparityError

SUFFIX_KINDS = {".pth": "pth", ".pt": "pth", ".bin": "pth", ".ckpt": "ckpt", ".safetensors": "safetensors"}


def weights_kind(path) -> str:
    """"pth", "ckpt" or "safetensors", by the file's suffix (a clear error otherwise)."""
    kind = SUFFIX_KINDS.get(Path(path).suffix.lower())
    if kind is None:
        raise MsparityError(f"{path}: unknown weights file type; expected .pth/.pt/.bin, .ckpt or .safetensors")
    return kind


def open_weights(path, pth_key: str | None = None):
    """A reader (specs(), read(name), iteration, close(), context manager) for any supported weights file."""
    kind = weights_kind(path)
    if kind == "pth":
        from proto.formats.pth import PthReader

        return PthReader(path, pth_key)
    if kind == "ckpt":
        from proto.formats.ckpt import CkptReader

        return CkptReader(path)
    from proto.formats.safetensors_io import SafetensorsReader

    return SafetensorsReader(path)
