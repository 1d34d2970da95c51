"""TroubleShooter 1.0.18's side of each operation, run in the TroubleShooter host (PYTHONPATH has .bench/troubleshooter)."""

from __future__ import annotations

import numpy as np

from bench.ts_shim import import_troubleshooter

ts = import_troubleshooter()
_finders: dict = {}


def version() -> str:
    return ts.__version__


def setup_finder(key: str, config: dict) -> None:
    """Both nets built in this process, as a TroubleShooter user does, and one finder kept for every round."""
    from bench.models import build_ms, build_pt

    pt_net, _ = build_pt(config)
    ms_net, _ = build_ms(config)
    _finders[key] = ts.migrator.NetDifferenceFinder(pt_net=pt_net, ms_net=ms_net)


def keep_only(keys: list[str]) -> None:
    """Drop the other finders and their nets (memory for the next op)."""
    import gc

    for key in set(_finders) - set(keys):
        del _finders[key]
    gc.collect()


def finder_compare(key: str, shape: list[int]) -> None:
    _finders[key].compare(auto_inputs=((tuple(shape), np.float32),))


def npy_compare(a: str, b: str) -> None:
    ts.migrator.compare_npy_dir(a, b)


def convert(weight_map: str, pth: str, out: str) -> None:
    ts.migrator.convert_weight(weight_map_path=weight_map, pt_file_path=pth, ms_file_save_path=out)


def compare_ckpt(weight_map: str, pth: str, ckpt: str) -> None:
    ts.migrator.compare_pth_and_ckpt(weight_map, pth, ckpt)
