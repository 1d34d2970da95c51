"""What both workers' save_net_and_weight_params share: the folder and the printed architecture."""

from __future__ import annotations

import os
from pathlib import Path

from proto.formats.atomic import atomic_binary


def require_net(net, expected: type, expected_name: str, other: str) -> None:
    """TroubleShooter's error when save_net_and_weight_params gets a net of the other framework (or none)."""
    if not isinstance(net, expected):
        raise ValueError("For the 'save_net_and_weight_params', the type of the 'net' parameter must be "
                         f"'{expected_name}' here (use {other})")


def output_folder(path) -> Path:
    """path (default: the current directory), created with mode 0o700 if missing."""
    folder = Path(path if path is not None else os.getcwd())
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def write_architecture(file: Path, net) -> None:
    """``str(net)`` and a newline, as ``print(net)`` shows it, written atomically."""
    with atomic_binary(file) as handle:
        handle.write((str(net) + "\n").encode("utf-8"))
