"""Benchmark: comparing two directories of saved tensors, locally and through two loopback workers.

Run: ``.venv/bin/python bench/bench_compare_dirs.py [--files 1000] [--mib 500]``. Writes two dumps of
mixed-shape float32 files (the second slightly perturbed), then times, in the same run:
- lower bound: plain ``np.load`` of each pair + the same metrics, one thread;
- msparity local: ``compare_dirs`` on the two local directories;
- msparity remote: ``compare_dirs`` on the same directories served by two workers over loopback.
Prints the ratios to the lower bound. Not a test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from coordinator import metrics  # noqa: E402
from coordinator.client import WorkerClient  # noqa: E402
from coordinator.dirs.dir_compare import compare_dirs  # noqa: E402
from coordinator.dirs.tensor_dirs import LocalDir, RemoteDir  # noqa: E402
from proto.codec import NamedArray  # noqa: E402


def make_dumps(root: Path, files: int, mib: float) -> tuple[Path, Path, int]:
    """Two dumps of `files` mixed-shape float32 arrays, about `mib` MiB each."""
    rng = np.random.default_rng(0)
    a, b = root / "a", root / "b"
    a.mkdir()
    b.mkdir()
    # sizes spread over three orders of magnitude, like activations and grads of a real net
    weights = rng.lognormal(0.0, 1.5, files)
    elements = np.maximum(1, (weights / weights.sum() * mib * (1 << 20) / 4).astype(np.int64))
    total = 0
    for i, n in enumerate(elements):
        cols = int(2 ** rng.integers(0, 8))
        shape = (max(1, int(n) // cols), cols)
        x = rng.standard_normal(shape, dtype=np.float32)
        np.save(a / f"{i}_t.npy", x)
        x[..., 0] += np.float32(1e-6)
        np.save(b / f"{i}_t.npy", x)
        total += 2 * x.nbytes
    return a, b, total


def lower_bound(a: Path, b: Path) -> float:
    start = time.perf_counter()
    for path in sorted(a.iterdir()):
        o = np.load(path, allow_pickle=False)
        t = np.load(b / path.name, allow_pickle=False)
        metrics.compare_tensors(NamedArray(path.name, o, "float32"), NamedArray(path.name, t, "float32"), 1e-4, 1e-4)
    return time.perf_counter() - start


def start_worker(directory: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "pt_worker", "--serve-dir", str(directory)], cwd=REPO,
                            stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    return proc, proc.stdout.readline().strip()




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--mib", type=float, default=500.0, help="size of each dump")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        a, b, total = make_dumps(Path(tmp), args.files, args.mib)
        print(f"{args.files} files per side, {total / 2**20:.0f} MiB in all, {os.cpu_count()} cores")
        lower = lower_bound(a, b)
        start = time.perf_counter()
        local = compare_dirs(LocalDir(a), LocalDir(b))
        local_s = time.perf_counter() - start
        workers = [start_worker(a), start_worker(b)]
        try:
            clients = [WorkerClient(address, "bench") for _, address in workers]
            for client in clients:
                client.describe()
            start = time.perf_counter()
            remote = compare_dirs(RemoteDir(clients[0], "."), RemoteDir(clients[1], "."))
            remote_s = time.perf_counter() - start
        finally:
            for proc, _ in workers:
                proc.terminate()
                proc.wait()
        assert local.compared == remote.compared == args.files and local.passed == remote.passed
        print(f"lower bound (np.load + metrics, 1 thread): {lower:6.2f} s  {total / lower / 2**20:7.0f} MiB/s")
        print(f"msparity local dirs:                       {local_s:6.2f} s  ratio {local_s / lower:.2f}")
        print(f"msparity two loopback workers:             {remote_s:6.2f} s  ratio {remote_s / lower:.2f}")


if __name__ == "__main__":
    main()
