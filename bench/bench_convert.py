"""Benchmark: .pth -> .ckpt conversion, msparity (no framework) vs torch.load + mindspore.save_checkpoint.

Run: ``.venv/bin/python bench/bench_convert.py [--gib 1.0]``. Each contender runs in its own
process so its peak RSS (ru_maxrss of the child) is its own. The lower bound is reading the .pth
and writing the same number of bytes, measured in the same run. Not a test: it prints ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

MAKE = """
import sys, torch
gib, path, mapfile = float(sys.argv[1]), sys.argv[2], sys.argv[3]
n = int(gib * (1 << 30) / 4)
sizes = [n // 2, n // 4, n // 8, n - n // 2 - n // 4 - n // 8]  # largest tensor: half the model
sd = {f"layer{i}.weight": torch.randn(s // 1024, 1024) for i, s in enumerate(sizes)}
sd["norm.weight"] = torch.randn(1024)
torch.save(sd, path)
import json; json.dump([{k: k for k in sd}, {}], open(mapfile, "w"))
print(max(t.numel() * 4 for t in sd.values()))
"""
OURS = """
import sys
from coordinator.weights.convert import convert_weight
convert_weight(sys.argv[1], sys.argv[2], sys.argv[3], print_conv_info=False, print_save_path=False)
print("torch" in sys.modules, "mindspore" in sys.modules)
"""
BASELINE = """
import sys, torch, mindspore as ms
sd = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
ms.save_checkpoint([{"name": k, "data": ms.Tensor(v.numpy())} for k, v in sd.items()], sys.argv[2])
"""
LOWER_BOUND = """
import sys
with open(sys.argv[1], "rb") as src, open(sys.argv[2], "wb") as dst:
    while chunk := src.read(1 << 24):
        dst.write(chunk)
"""


def run(code: str, *args: str) -> tuple[float, float, str]:
    """(seconds, the child's own peak RSS in MiB, stdout) of ``python -c code args`` in a fresh process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=out, stderr=err, cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        _, status, usage = os.wait4(proc.pid, 0)  # this child's rusage, not the max over all children
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            raise SystemExit(err.read())
        return seconds, usage.ru_maxrss / 1024, out.read().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gib", type=float, default=1.0, help="state_dict size in GiB (default 1)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="msparity-bench-") as tmp:
        pth, mapfile = f"{tmp}/m.pth", f"{tmp}/map.json"
        _, _, largest = run(MAKE, str(args.gib), pth, mapfile)
        largest_mib = int(largest) / (1 << 20)
        file_mib = os.path.getsize(pth) / (1 << 20)
        results = {}
        for name, code, out in [("lower bound (read+write bytes)", LOWER_BOUND, f"{tmp}/copy.bin"),
                                ("msparity convert_weight", OURS, f"{tmp}/ours.ckpt"),
                                ("torch.load + ms.save_checkpoint", BASELINE, f"{tmp}/base.ckpt")]:
            extra = (mapfile, pth, out) if code is OURS else (pth, out)
            seconds, peak, stdout = run(code, *extra)
            results[name] = (seconds, peak, stdout)
            Path(out).unlink()
        bound = results["lower bound (read+write bytes)"][0]
        print(f"state_dict {file_mib:.0f} MiB, largest tensor {largest_mib:.0f} MiB")
        print(f"{'contender':34} {'seconds':>8} {'x bound':>8} {'peak RSS MiB':>13} {'RSS - largest':>14}")
        for name, (seconds, peak, _) in results.items():
            print(f"{name:34} {seconds:8.2f} {seconds / bound:8.2f} {peak:13.0f} {peak - largest_mib:14.0f}")
        print("frameworks imported by msparity convert (torch, mindspore):", results["msparity convert_weight"][2])
        print(json.dumps({k: {"seconds": round(v[0], 3), "peak_rss_mib": round(v[1])} for k, v in results.items()}))


if __name__ == "__main__":
    main()
