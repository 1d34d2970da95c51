"""msparity's side of each operation, run in the coordinator host (numpy + grpcio only: no framework imported here).

Sessions to running workers are opened once and kept, as a user keeps workers running between compares.
"""

from __future__ import annotations

import numpy as np

_finders: dict = {}


def open_pair(key: str, pt: str, ms: str, token: str) -> dict:
    """A NetDifferenceFinder on the running pt and ms workers at these addresses; what the pt net holds."""
    from coordinator import NetDifferenceFinder
    from proto import transport

    finder = NetDifferenceFinder(pt, ms, security=transport.Security(token=token))
    _finders[key] = finder
    desc = finder.session.pt_description
    return {"tensors": desc.parameter_count, "values": desc.parameter_elements}


def close_pair(key: str) -> None:
    _finders.pop(key).close()


def finder_compare(key: str, shape: list[int]) -> bool:
    """TroubleShooter's call: weights converted and streamed, parameters compared, both forwards, outputs compared."""
    result = _finders[key].compare(auto_inputs=((tuple(shape), np.float32),))
    return bool(result)


def run_compare(key: str, shape: list[int] | None = None) -> bool:
    """What ``msparity compare --pt ADDR --ms ADDR --input-shape ...`` does, minus starting the CLI process."""
    from coordinator.compare import run_compare as compare
    from proto.codec import TensorSpec

    shapes = [TensorSpec("x", "float32", tuple(shape))] if shape else None  # None: the factories' example inputs
    report = compare(_finders[key].session, input_shapes=shapes)
    return bool(report)


def sync(key: str) -> int:
    """Stream the torch weights through the map into the MindSpore net (P1, P6)."""
    return _finders[key].session.sync_weights().loaded


def locate(key: str, reference: bool = True) -> bool:
    from coordinator.locate.locate_run import run_locate

    return run_locate(_finders[key].session, float64_reference=reference).blamed is None


def npy_compare(a: str, b: str) -> bool:
    from coordinator import compare_npy_dir

    return bool(compare_npy_dir(a, b))


def convert(weight_map: str, pth: str, out: str) -> int:
    from coordinator import convert_weight

    return len(convert_weight(weight_map, pth, out))


def compare_ckpt(weight_map: str, pth: str, ckpt: str) -> bool:
    from coordinator import compare_pth_and_ckpt

    return bool(compare_pth_and_ckpt(weight_map, pth, ckpt))


def make_dumps(root: str, files: int, mib: float) -> list[str]:
    """P3's two dump folders (bench_compare_dirs's mixed shapes); their paths."""
    from pathlib import Path

    from bench.bench_compare_dirs import make_dumps as make

    Path(root).mkdir(parents=True, exist_ok=True)
    a, b, _ = make(Path(root), files, mib)
    return [str(a), str(b)]
