"""The file operations, each contender warm in its host: P3 compare_npy_dir, P4 convert_weight, P4b compare_pth_and_ckpt.

P4b also times the CLI (``msparity compare-ckpt A.pth B.ckpt --weight-map M``) as a fresh process, start-up
included, against the same bound. The bound host writes the .pth and the weight map; msparity's convert
writes the .ckpt P4b compares.
"""

from __future__ import annotations

import sys

from bench.measure import Goal, entry, interleave, on_host, timed
from bench.models import model_config
from bench.procs import fresh_run
from bench.suite import WARMUP, Context, release

CLI = [sys.executable, "-m", "coordinator.cli"]


def npy_op(ctx: Context) -> None:
    """P3: two dump folders of mixed-shape float32 .npy files (the second perturbed within tolerance)."""
    sz = ctx.sizes
    a, b = ctx.ours.call("ours_ops:make_dumps", root=str(ctx.tmp / "npy"), files=sz.npy_files,
                         mib=float(sz.npy_mib))["result"]
    contenders = {"ours": on_host(ctx.ours, "ours_ops:npy_compare", a=a, b=b)}
    if ctx.ts is not None:
        contenders["TS"] = on_host(ctx.ts, "ts_ops:npy_compare", rss_role="ts", a=a, b=b)
    contenders["bound"] = on_host(ctx.bound, "bound_ops:npy_bound", rss_role="bound", a=a, b=b)
    s = interleave("P3", contenders, sz.rounds, WARMUP)
    ctx.entries.append(entry(f"P3 compare_npy_dir, {sz.npy_files} files, {sz.npy_mib} MiB a side", s, "ours",
                             "bound", "TS", Goal(max_ratio=0.6, min_speedup=2.0),
                             "bound: np.load + np.allclose, one thread"))


def weight_file_ops(ctx: Context, want: set[str]) -> None:
    """P4 (.pth -> .ckpt) and P4b (compare the .pth with the .ckpt) on the ViT's weights."""
    sz = ctx.sizes
    config = model_config("vit", sz.vit)
    pth, wmap, ckpt = (str(ctx.tmp / name) for name in ("vit.pth", "vit_map.json", "vit.ckpt"))
    sizes = ctx.bound.call("bound_ops:setup_nets", key="vit", config=config)["result"]["sizes"]
    ctx.bound.call("bound_ops:save_pth", key="vit", pth=pth, weight_map=wmap)
    ctx.ours.call("ours_ops:convert", weight_map=wmap, pth=pth, out=ckpt)
    mib = sum(sizes) / 2**20
    if "P4" in want:
        contenders = {"ours": on_host(ctx.ours, "ours_ops:convert", weight_map=wmap, pth=pth, out=f"{ckpt}.ours")}
        if ctx.ts is not None:
            contenders["TS"] = on_host(ctx.ts, "ts_ops:convert", rss_role="ts", weight_map=wmap, pth=pth,
                                       out=f"{ckpt}.ts")
        contenders["bound"] = on_host(ctx.bound, "bound_ops:convert_bound", rss_role="bound", pth=pth,
                                      out=f"{ckpt}.bound", weight_map=wmap)
        s = interleave("P4", contenders, sz.rounds, WARMUP)
        ctx.entries.append(entry(f"P4 convert_weight .pth -> .ckpt, {mib:.0f} MiB", s, "ours", "bound", "TS",
                                 Goal(max_ratio=0.7, min_speedup=1.5),
                                 "bound: torch.load + mindspore.save_checkpoint; ours writes atomically, fsynced"))
    if "P4b" in want:
        contenders = {"ours": on_host(ctx.ours, "ours_ops:compare_ckpt", weight_map=wmap, pth=pth, ckpt=ckpt),
                      "ours CLI": timed(lambda: fresh_run([*CLI, "compare-ckpt", pth, ckpt, "--weight-map", wmap]),
                                        "coord")}
        if ctx.ts is not None:
            contenders["TS"] = on_host(ctx.ts, "ts_ops:compare_ckpt", rss_role="ts", weight_map=wmap, pth=pth,
                                       ckpt=ckpt)
        contenders["bound"] = on_host(ctx.bound, "bound_ops:ckpt_compare_bound", rss_role="bound", weight_map=wmap,
                                      pth=pth, ckpt=ckpt)
        s = interleave("P4b", contenders, sz.rounds, WARMUP)
        goal = Goal(max_ratio=1.0, min_speedup=2.0)
        note = "bound: torch.load + mindspore.load_checkpoint + np.allclose"
        ctx.entries.append(entry(f"P4b compare_pth_and_ckpt {mib:.0f} MiB, API", s, "ours", "bound", "TS",
                                 goal, note))
        ctx.entries.append(entry(f"P4b compare_pth_and_ckpt {mib:.0f} MiB, CLI", s, "ours CLI",
                                 "bound", "TS", goal, note + "; the CLI's start-up counted"))
    release(ctx)
