"""Benchmark: ``locate`` against one plain ``compare`` of the same pair, on a ViT bigger than the examples.

Run: ``.venv/bin/python bench/bench_locate.py [--depth 8 --dim 256 --image 64 --batch 8] [--repeat 5] [--quick]``.
Spawns one pt worker and two ms workers on loopback (the ViT classes of examples/vit_*.py at the size
the options give; the factories below, e.g. ``bench/bench_locate.py:build_big_pt``, read it from the
environment), then times, in the same run and against the same warm workers, interleaved round by round:
- lower bound: ``run_compare`` (weights streamed pt -> ms, one forward per side, outputs compared);
- ``run_locate`` on the correct port (nothing should be blamed), and the same with
  ``float64_reference=False`` (``locate --no-reference``, where the tree has it): what the reference costs;
- ``run_compare`` and ``run_locate(isolate_blamed=True)`` on a buggy port (one block's LayerNorm
  epsilon 1e-6 instead of 1e-5, as tests/fixtures/locate_bugs_ms.py does; ``--bug`` picks another).
Counted: everything inside ``run_compare`` / ``run_locate``, weight sync included (both jobs do it).
Not counted: spawning the workers (framework imports, building the nets; printed apart), and a
``--settle`` pause before each measurement. ``--warmup`` rounds come first (shown as "first": cold
in-session, e.g. MindSpore's first PyNative ops), then ``--repeat`` rounds: best and median wall
seconds, and CPU seconds of every process (/proc, less skewed by other load); ratios use medians.
Then each side alone (plain forward; hooked record without and with sketches; with the float64
reference) shows where locate's record phase goes, and the bytes locate moved (summaries + full
tensors fetched) are set against a full dump of every call. Not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
THIS = Path(__file__).resolve()
CONFIG_ENV = "MSPARITY_BENCH_LOCATE"  # JSON of Config, read by the factories in the spawned workers
BUGS = ("eps", "gelu", "residual")
COMPARE_OK, LOCATE_OK = "plain compare (correct port)", "locate (correct port)"
LOCATE_NOREF = "locate --no-reference (correct)"
COMPARE_BUG = "plain compare (buggy port)"


@dataclass(frozen=True)
class Config:
    image: int = 64
    patch: int = 8
    dim: int = 256
    depth: int = 8
    heads: int = 8
    hidden: int = 1024
    batch: int = 8
    classes: int = 10
    bug: str = "eps"

    @property
    def bug_block(self) -> int:
        return self.depth // 2

    @property
    def expected_blame(self) -> str:
        i = self.bug_block
        return {"eps": f"blocks.{i}.norm2", "gelu": f"blocks.{i}.mlp.act", "residual": f"blocks.{i}"}[self.bug]

    def vit_kwargs(self) -> dict:
        return {"image": self.image, "patch": self.patch, "dim": self.dim, "depth": self.depth, "heads": self.heads,
                "hidden": self.hidden, "num_classes": self.classes}


QUICK = Config(image=32, patch=8, dim=64, depth=2, heads=4, hidden=128, batch=2)  # the bundled example's size


def _config() -> Config:
    text = os.environ.get(CONFIG_ENV)
    return Config(**json.loads(text)) if text else Config()


# -- factories, run inside the spawned workers (each imports only its framework) -------------------

def build_big_pt():
    """examples.vit_pt.ViT at the benchmark's size, and an example batch."""
    import torch

    from examples import vit_pt

    cfg = _config()
    torch.manual_seed(0)
    return vit_pt.ViT(**cfg.vit_kwargs()), (torch.randn(cfg.batch, 3, cfg.image, cfg.image),)


def _ms_example(cfg: Config):
    import numpy as np
    from mindspore import Tensor

    return (Tensor(np.zeros((cfg.batch, 3, cfg.image, cfg.image), np.float32)),)


def build_big_ms():
    """examples.vit_ms.ViT at the benchmark's size: the correct port."""
    from examples import vit_ms

    cfg = _config()
    return vit_ms.ViT(**cfg.vit_kwargs()), _ms_example(cfg)


def build_big_ms_bug():
    """The port with one porting bug in block depth // 2 (Config.bug)."""
    from mindspore import nn, ops

    from examples import vit_ms

    cfg = _config()
    net = vit_ms.ViT(**cfg.vit_kwargs())
    block = net.blocks[cfg.bug_block]
    if cfg.bug == "eps":
        block.norm2.layer_norm = ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=1e-6)
    elif cfg.bug == "gelu":
        block.mlp.act = nn.GELU(approximate=True)
    else:
        block.residual = False
    return net, _ms_example(cfg)


# -- measuring ---------------------------------------------------------------------------------------

class CpuMeter:
    """CPU seconds (user + system) of this process and of each worker it spawned, from /proc (Linux; else none).

    Less sensitive than wall time to other processes on the same cores, so it is printed beside it.
    """

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.pids: dict[int, str] = {}
        proc = Path("/proc")
        if not proc.is_dir():
            return
        for entry in proc.iterdir():
            fields = self._fields(entry.name) if entry.name.isdigit() else None
            if fields is None or int(fields[1]) != os.getpid():
                continue
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            role = ("ms_bug" if "build_big_ms_bug" in cmd else "ms" if "ms_worker" in cmd else
                    "pt" if "pt_worker" in cmd else None)
            if role:
                self.pids[int(entry.name)] = role

    @staticmethod
    def _fields(pid: str) -> list[str] | None:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        return stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state ppid ... utime(11) stime(12)

    def read(self) -> dict[str, float]:
        times = os.times()
        out = {"coordinator": times.user + times.system}
        for pid, role in self.pids.items():
            fields = self._fields(str(pid))
            if fields is not None:
                out[role] = (int(fields[11]) + int(fields[12])) / self.tick
        return out

    def measure(self, fn, settle: float = 0.0):
        """(wall seconds, CPU seconds by process, fn's result), after settle seconds of quiet (not counted).

        MindSpore's threads keep spinning for up to ~0.25 s after a request; the pause keeps that
        out of the next measurement (and off the cores it runs on).
        """
        time.sleep(settle)
        before = self.read()
        wall, result = _timed(fn)
        after = self.read()
        return wall, {k: after[k] - before.get(k, 0.0) for k in after}, result


@dataclass
class Round:
    wall: float
    cpu: dict
    report: object

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu.values())


@dataclass
class Runs:
    """The rounds of one contender: warm-up rounds first, then the timed ones."""

    name: str
    warmup: int
    rounds: list

    def timed(self) -> list[Round]:
        return self.rounds[self.warmup:] or self.rounds

    @property
    def first(self) -> float:
        return self.rounds[0].wall

    @property
    def best(self) -> float:
        return min(r.wall for r in self.timed())

    @property
    def median(self) -> float:
        return statistics.median(r.wall for r in self.timed())

    @property
    def cpu_median(self) -> float:
        return statistics.median(r.cpu_total for r in self.timed())

    @property
    def median_round(self) -> Round:
        """The (lower) median round by wall time, so its phases add up to a real run."""
        ordered = sorted(self.timed(), key=lambda r: r.wall)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def median_report(self):
        return self.median_round.report


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def side_breakdown(session, inputs, times: int, meter: CpuMeter,
                   settle: float) -> list[tuple[str, str, float, float]]:
    """Each side alone (the other idle): plain forward, then record with more and more of locate's work.

    Rows of (side, what, best wall seconds, best CPU seconds of that side's worker).
    """
    from proto.worker.interface import RecordOptions
    from proto.worker.module_records import SKETCH_SIZE

    pt, ms = session.pt, session.ms
    steps = [
        ("pt", "forward (plain, as compare)", lambda: pt.forward(inputs)),
        ("pt", "record: hooks + copies + stats, no sketch", lambda: pt.record(inputs, RecordOptions(0, 0, False))),
        ("pt", f"record: + {SKETCH_SIZE}-bucket sketches", lambda: pt.record(inputs, RecordOptions(SKETCH_SIZE, 0, False))),
        ("pt", "record: + float64 reference (as locate)", lambda: pt.record(inputs, RecordOptions(SKETCH_SIZE, 0, True))),
        ("ms", "forward (plain, as compare)", lambda: ms.forward(inputs)),
        ("ms", "record: hooks + copies + stats, no sketch", lambda: ms.record(inputs, RecordOptions(0, 0, False))),
        ("ms", f"record: + {SKETCH_SIZE}-bucket sketches (as locate)",
         lambda: ms.record(inputs, RecordOptions(SKETCH_SIZE, 0, False))),
    ]
    rows = []
    for side, what, fn in steps:
        measured = [meter.measure(fn, settle) for _ in range(max(1, times))]
        rows.append((side, what, min(m[0] for m in measured), min(m[1].get(side, math.nan) for m in measured)))
    return rows


def _mib(n: int) -> str:
    return f"{n / 2**20:10.2f}"


def _ratio(a: float, b: float) -> str:
    """a / b as "1.23x", or "n/a" when b is too small to divide by (a CPU clock tick is 10 ms)."""
    return f"{a / b:.2f}x" if b > 1e-6 and not math.isnan(a) and not math.isnan(b) else "n/a"


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    d = Config()
    parser.add_argument("--depth", type=int, default=d.depth, help=f"transformer blocks (default {d.depth})")
    parser.add_argument("--dim", type=int, default=d.dim, help=f"embedding width (default {d.dim})")
    parser.add_argument("--heads", type=int, default=d.heads, help=f"attention heads (default {d.heads})")
    parser.add_argument("--hidden", type=int, default=None, help="MLP width (default 4 x dim)")
    parser.add_argument("--image", type=int, default=d.image, help=f"image side (default {d.image})")
    parser.add_argument("--patch", type=int, default=d.patch, help=f"patch side (default {d.patch})")
    parser.add_argument("--batch", type=int, default=d.batch, help=f"batch size (default {d.batch})")
    parser.add_argument("--bug", choices=BUGS, default="eps",
                        help="the buggy port: eps (LayerNorm epsilon 1e-6 in one block), gelu (tanh GELU in one "
                             "block), residual (one block's MLP residual dropped)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds (default 3); ratios use the median")
    parser.add_argument("--warmup", type=int, default=1, help="rounds before the timed ones (default 1)")
    parser.add_argument("--settle", type=float, default=0.5,
                        help="idle seconds before each measurement, not counted (default 0.5)")
    parser.add_argument("--no-isolate", action="store_true", help="locate the buggy port without --isolate")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the per-side breakdown")
    parser.add_argument("--ms-mode", choices=("pynative", "graph"), default="pynative",
                        help="MindSpore mode of the ms workers (locate records in PyNative either way)")
    parser.add_argument("--quick", action="store_true",
                        help="the bundled example's size (depth 2, dim 64, image 32, batch 2), 1 round, no warm-up")
    args = parser.parse_args()
    if args.quick:
        cfg = Config(**{**asdict(QUICK), "bug": args.bug})
        args.repeat, args.warmup = 1, 0
    else:
        cfg = Config(image=args.image, patch=args.patch, dim=args.dim, depth=args.depth, heads=args.heads,
                     hidden=args.hidden or 4 * args.dim, batch=args.batch, bug=args.bug)
    os.environ[CONFIG_ENV] = json.dumps(asdict(cfg))  # spawned workers inherit it

    from coordinator import randomness
    from coordinator.compare import choose_input_specs, run_compare
    from coordinator.locate.locate_run import run_locate
    from coordinator.session import Session, WorkerTarget, open_session, open_worker

    ms_args = ("--mode", args.ms_mode)
    isolate = not args.no_isolate
    locate_bug_name = f"locate{' --isolate' if isolate else ''} (buggy port)"
    no_reference = "float64_reference" in inspect.signature(run_locate).parameters  # older trees lack it
    tokens = (cfg.image // cfg.patch) ** 2 + 1
    print(f"ViT image {cfg.image} patch {cfg.patch} ({tokens} tokens) dim {cfg.dim} depth {cfg.depth} "
          f"heads {cfg.heads} hidden {cfg.hidden}, batch {cfg.batch}; buggy port: {cfg.bug} in block "
          f"{cfg.bug_block}; {os.cpu_count()} cores, ms mode {args.ms_mode}; "
          f"{args.warmup} warm-up + {args.repeat} timed rounds; load average {_load()}", flush=True)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        session = stack.enter_context(open_session(
            WorkerTarget(model_spec=f"{THIS}:build_big_pt"),
            WorkerTarget(model_spec=f"{THIS}:build_big_ms", extra_args=ms_args)))
        bug_ms = stack.enter_context(open_worker("ms", WorkerTarget(model_spec=f"{THIS}:build_big_ms_bug",
                                                                    extra_args=ms_args)))
        bug_session = Session(session.pt, bug_ms)  # the same torch worker against the buggy port
        stack.callback(bug_session.close)
        bug_session.describe()
        startup = time.perf_counter() - start
        desc = session.pt_description
        print(f"workers started in {startup:.1f} s (not counted); {desc.parameter_count} parameter tensors, "
              f"{desc.parameter_elements:,} values ({desc.parameter_elements * 4 / 2**20:.1f} MiB float32)",
              flush=True)

        # name -> (job, the compare it is set against)
        contenders = {
            COMPARE_OK: (lambda: run_compare(session), COMPARE_OK),
            LOCATE_OK: (lambda: run_locate(session), COMPARE_OK),
        }
        if no_reference:  # the same locate without torch's float64 copy: what the reference costs
            contenders[LOCATE_NOREF] = (lambda: run_locate(session, float64_reference=False), COMPARE_OK)
        contenders[COMPARE_BUG] = (lambda: run_compare(bug_session), COMPARE_BUG)
        contenders[locate_bug_name] = (lambda: run_locate(bug_session, isolate_blamed=isolate), COMPARE_BUG)
        runs = {name: Runs(name, args.warmup, []) for name in contenders}
        meter = CpuMeter()
        for round_ in range(args.warmup + args.repeat):
            for name, (fn, _) in contenders.items():  # interleaved, so drift hits every contender alike
                runs[name].rounds.append(Round(*meter.measure(fn, args.settle)))
            label = "warm-up" if round_ < args.warmup else "round"
            print(f"  {label} {round_ + 1}: " + "  ".join(f"{r.rounds[-1].wall:.2f}s" for r in runs.values()),
                  flush=True)

        breakdown = []
        if not args.no_breakdown:
            inputs = randomness.generate_inputs(choose_input_specs([], desc, session.ms_description), 0)
            breakdown = side_breakdown(session, inputs, args.repeat, meter, args.settle)

    print(f"load average at the end {_load()} (other processes on these cores skew wall times; CPU seconds less)")
    pairs = [(run, runs[contenders[name][1]]) for name, run in runs.items()]
    compare_ok, locate_ok = runs[COMPARE_OK], runs[LOCATE_OK]
    compare_bug, locate_bug = runs[COMPARE_BUG], runs[locate_bug_name]
    print()
    header = (f"{'wall seconds':34} {'first':>6} {'best':>6} {'median':>6} {'x compare':>9}   "
              "phases of the median round (report.seconds)")
    print(header)
    print("-" * len(header))
    for run, baseline in pairs:
        median = run.median_round
        phases = dict(median.report.seconds)
        rest = max(0.0, median.wall - sum(phases.values()))  # describe, weight plan, root outputs, building reports
        text = "  ".join(f"{k} {v:.2f}" for k, v in phases.items()) + f"  rest {rest:.2f}"
        print(f"{run.name:34} {run.first:6.2f} {run.best:6.2f} {run.median:6.2f} "
              f"{_ratio(run.median, baseline.median):>9}   {text}")
    print()
    header = f"{'CPU seconds (all processes)':34} {'median':>6} {'x compare':>9}   by process, in the median round"
    print(header)
    print("-" * len(header))
    for run, baseline in pairs:
        by_process = "  ".join(f"{k} {v:.2f}" for k, v in run.median_round.cpu.items() if v >= 0.005)
        print(f"{run.name:34} {run.cpu_median:6.2f} {_ratio(run.cpu_median, baseline.cpu_median):>9}   "
              f"{by_process}")

    print()
    ratio_rows = [("correct port", locate_ok, compare_ok), ("buggy port", locate_bug, compare_bug)]
    if LOCATE_NOREF in runs:
        ratio_rows.insert(1, ("correct port, no float64 reference", runs[LOCATE_NOREF], compare_ok))
    for label, loc, cmp_ in ratio_rows:
        ratio = loc.median / cmp_.median
        lw, cw = loc.median_report.seconds.get("weights", 0.0), cmp_.median_report.seconds.get("weights", 0.0)
        lr = loc.median_report.seconds.get("record", 0.0)
        cf = cmp_.median_report.seconds.get("forward", 0.0)
        print(f"ratio locate / compare, {label}: {ratio:.2f}x median wall, {_ratio(loc.best, cmp_.best)} best wall, "
              f"{_ratio(loc.cpu_median, cmp_.cpu_median)} CPU (goal <= 2x: "
              f"{'met' if ratio <= 2 else 'NOT met'} on median wall); without the weight sync both do: "
              f"{_ratio(loc.median - lw, cmp_.median - cw)}; record / forward phase: {_ratio(lr, cf)}")

    print()
    ok_report, bug_report = locate_ok.median_report, locate_bug.median_report
    print(f"{'bytes (MiB)':34} {'correct port':>12} {'buggy port':>12}")
    t_ok, t_bug = ok_report.traffic, bug_report.traffic
    for key, label in (("summary_bytes", "summaries (all calls, 3 runs)"), ("fetched_bytes", "full tensors fetched"),
                       ("full_dump_bytes", "full dump of every call")):
        print(f"{label:34} {_mib(t_ok[key]):>12} {_mib(t_bug[key]):>12}")
    moved_ok = t_ok["summary_bytes"] + t_ok["fetched_bytes"]
    moved_bug = t_bug["summary_bytes"] + t_bug["fetched_bytes"]
    print(f"{'moved (summaries + fetched)':34} {_mib(moved_ok):>12} {_mib(moved_bug):>12}")
    print(f"ratio (summary+fetched)/full_dump, correct port: {moved_ok / t_ok['full_dump_bytes']:.4f}; "
          f"buggy port: {moved_bug / t_bug['full_dump_bytes']:.4f}  "
          f"(weights streamed pt -> ms by both jobs, not in these: {desc.parameter_elements * 4 / 2**20:.2f} MiB)")

    print()
    print(f"correct port: {len(ok_report.verdicts)} paired calls; blamed: "
          f"{ok_report.blamed.pair.pt.path if ok_report.blamed else 'nothing'}")
    blamed = bug_report.blamed
    if blamed is None:
        print(f"buggy port: nothing blamed (expected {cfg.expected_blame})")
    else:
        iso = bug_report.isolation
        print(f"buggy port: blamed {blamed.pair.pt.path} ({blamed.pair.pt.type}) at {blamed.out_ratio:.3g}x its floor, "
              f"expected {cfg.expected_blame}: {'yes' if blamed.pair.pt.path == cfg.expected_blame else 'NO'}"
              + (f"; isolation {'confirmed' if iso.confirmed else 'not confirmed'}" if iso is not None else ""))

    if breakdown:
        print()
        print("each side alone, the other idle (best of --repeat; the gRPC round trip included):")
        print(f"  {'':52} {'wall s':>7} {'CPU s':>7}")
        for side, what, wall, cpu in breakdown:
            print(f"  {side + ' ' + what:52} {wall:7.3f} {cpu:7.3f}")
        (_, _, *pt_fwd), (_, _, *pt_rec0), (_, _, *pt_rec), (_, _, *pt_f64), (_, _, *ms_fwd), (_, _, *ms_rec0), \
            (_, _, *ms_rec) = breakdown
        for i, unit in ((0, "wall"), (1, "CPU")):
            print(f"  {unit:4} pt: hooks+copies+stats {pt_rec0[i] - pt_fwd[i]:+.3f} s, sketches "
                  f"{pt_rec[i] - pt_rec0[i]:+.3f} s, float64 reference {pt_f64[i] - pt_rec[i]:+.3f} s, record / "
                  f"forward {_ratio(pt_f64[i], pt_fwd[i])};  ms: hooks+copies+stats {ms_rec0[i] - ms_fwd[i]:+.3f} s, "
                  f"sketches {ms_rec[i] - ms_rec0[i]:+.3f} s, record / forward {_ratio(ms_rec[i], ms_fwd[i])}")


if __name__ == "__main__":
    main()
