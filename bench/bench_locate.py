"""Benchmark: ``locate`` against one plain ``compare`` of the same pair, on a ViT bigger than the examples.

Run: ``.venv/bin/python bench/bench_locate.py [--depth 8 --dim 256 --image 64 --batch 8] [--repeat 5] [--quick]``.
Spawns one pt worker and two ms workers on loopback (the ViT classes of examples/vit_*.py at the size
the options give; the factories in bench/locate_models.py, e.g. ``bench/locate_models.py:build_big_pt``,
read it from the environment), then times, in the same run and against the same warm workers,
interleaved round by round:
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
import sys
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]  # the repo's packages, and the sibling modules below

from locate_meter import CpuMeter, Round, Runs, side_breakdown  # noqa: E402
from locate_models import BUGS, CONFIG_ENV, QUICK, Config  # noqa: E402

from coordinator import randomness  # noqa: E402
from coordinator.compare import choose_input_specs, run_compare  # noqa: E402
from coordinator.locate.locate_run import run_locate  # noqa: E402
from coordinator.session import Session, WorkerTarget, open_session, open_worker  # noqa: E402

MODELS = HERE / "locate_models.py"  # the spawned workers' model specs point into it
COMPARE_OK, LOCATE_OK = "plain compare (correct port)", "locate (correct port)"
LOCATE_NOREF = "locate --no-reference (correct)"
COMPARE_BUG = "plain compare (buggy port)"


def _mib(n: int) -> str:
    return f"{n / 2**20:10.2f}"


def _ratio(a: float, b: float) -> str:
    """a / b as "1.23x", or "n/a" when b is too small to divide by (a CPU clock tick is 10 ms)."""
    return f"{a / b:.2f}x" if b > 1e-6 and not math.isnan(a) and not math.isnan(b) else "n/a"


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def parse_args() -> argparse.Namespace:
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
    return parser.parse_args()


def config_from(args: argparse.Namespace) -> Config:
    """The net the options ask for; --quick also sets args to 1 round, no warm-up."""
    if args.quick:
        args.repeat, args.warmup = 1, 0
        return Config(**{**asdict(QUICK), "bug": args.bug})
    return Config(image=args.image, patch=args.patch, dim=args.dim, depth=args.depth, heads=args.heads,
                  hidden=args.hidden or 4 * args.dim, batch=args.batch, bug=args.bug)


def open_sessions(stack: contextlib.ExitStack, ms_args: tuple[str, ...]) -> tuple[Session, Session]:
    """(correct session, buggy session): one torch worker shared by two ms workers, closed with the stack."""
    session = stack.enter_context(open_session(
        WorkerTarget(model_spec=f"{MODELS}:build_big_pt"),
        WorkerTarget(model_spec=f"{MODELS}:build_big_ms", extra_args=ms_args)))
    bug_ms = stack.enter_context(open_worker("ms", WorkerTarget(model_spec=f"{MODELS}:build_big_ms_bug",
                                                                extra_args=ms_args)))
    bug_session = Session(session.pt, bug_ms)  # the same torch worker against the buggy port
    stack.callback(bug_session.close)
    bug_session.describe()
    return session, bug_session


def contenders_for(session: Session, bug_session: Session, isolate: bool, locate_bug_name: str) -> dict:
    """name -> (job, the compare it is set against)."""
    contenders = {
        COMPARE_OK: (lambda: run_compare(session), COMPARE_OK),
        LOCATE_OK: (lambda: run_locate(session), COMPARE_OK),
    }
    if "float64_reference" in inspect.signature(run_locate).parameters:  # older trees lack it
        # the same locate without torch's float64 copy: what the reference costs
        contenders[LOCATE_NOREF] = (lambda: run_locate(session, float64_reference=False), COMPARE_OK)
    contenders[COMPARE_BUG] = (lambda: run_compare(bug_session), COMPARE_BUG)
    contenders[locate_bug_name] = (lambda: run_locate(bug_session, isolate_blamed=isolate), COMPARE_BUG)
    return contenders


def time_rounds(contenders: dict, warmup: int, repeat: int, settle: float, meter: CpuMeter) -> dict[str, Runs]:
    """Every contender once a round, warm-up rounds first; each round printed as it ends."""
    runs = {name: Runs(name, warmup, []) for name in contenders}
    for round_ in range(warmup + repeat):
        for name, (fn, _) in contenders.items():  # interleaved, so drift hits every contender alike
            runs[name].rounds.append(Round(*meter.measure(fn, settle)))
        label = "warm-up" if round_ < warmup else "round"
        print(f"  {label} {round_ + 1}: " + "  ".join(f"{r.rounds[-1].wall:.2f}s" for r in runs.values()),
              flush=True)
    return runs


def print_times(pairs: list[tuple[Runs, Runs]]) -> None:
    """The wall-seconds table (with the median round's phases) and the CPU-seconds table."""
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


def print_ratios(ratio_rows: list[tuple[str, Runs, Runs]]) -> None:
    """locate / compare for each (label, locate runs, compare runs)."""
    print()
    for label, loc, cmp_ in ratio_rows:
        ratio = loc.median / cmp_.median
        lw, cw = loc.median_report.seconds.get("weights", 0.0), cmp_.median_report.seconds.get("weights", 0.0)
        lr = loc.median_report.seconds.get("record", 0.0)
        cf = cmp_.median_report.seconds.get("forward", 0.0)
        print(f"ratio locate / compare, {label}: {ratio:.2f}x median wall, {_ratio(loc.best, cmp_.best)} best wall, "
              f"{_ratio(loc.cpu_median, cmp_.cpu_median)} CPU (goal <= 2x: "
              f"{'met' if ratio <= 2 else 'NOT met'} on median wall); without the weight sync both do: "
              f"{_ratio(loc.median - lw, cmp_.median - cw)}; record / forward phase: {_ratio(lr, cf)}")


def print_bytes(ok_report, bug_report, parameter_elements: int) -> None:
    """What locate moved on each port, against a full dump of every call."""
    print()
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
          f"(weights streamed pt -> ms by both jobs, not in these: {parameter_elements * 4 / 2**20:.2f} MiB)")


def print_blame(ok_report, bug_report, cfg: Config) -> None:
    """What each port's locate blamed, and whether the buggy port's blame is the injected bug."""
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


def print_breakdown(breakdown: list[tuple[str, str, float, float]]) -> None:
    """The side_breakdown rows, and the differences between them: where the record phase goes."""
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


def main() -> None:
    args = parse_args()
    cfg = config_from(args)
    os.environ[CONFIG_ENV] = json.dumps(asdict(cfg))  # spawned workers inherit it

    ms_args = ("--mode", args.ms_mode)
    isolate = not args.no_isolate
    locate_bug_name = f"locate{' --isolate' if isolate else ''} (buggy port)"
    tokens = (cfg.image // cfg.patch) ** 2 + 1
    print(f"ViT image {cfg.image} patch {cfg.patch} ({tokens} tokens) dim {cfg.dim} depth {cfg.depth} "
          f"heads {cfg.heads} hidden {cfg.hidden}, batch {cfg.batch}; buggy port: {cfg.bug} in block "
          f"{cfg.bug_block}; {os.cpu_count()} cores, ms mode {args.ms_mode}; "
          f"{args.warmup} warm-up + {args.repeat} timed rounds; load average {_load()}", flush=True)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        session, bug_session = open_sessions(stack, ms_args)
        startup = time.perf_counter() - start
        desc = session.pt_description
        print(f"workers started in {startup:.1f} s (not counted); {desc.parameter_count} parameter tensors, "
              f"{desc.parameter_elements:,} values ({desc.parameter_elements * 4 / 2**20:.1f} MiB float32)",
              flush=True)
        contenders = contenders_for(session, bug_session, isolate, locate_bug_name)
        meter = CpuMeter()
        runs = time_rounds(contenders, args.warmup, args.repeat, args.settle, meter)
        breakdown = []
        if not args.no_breakdown:
            inputs = randomness.generate_inputs(choose_input_specs([], desc, session.ms_description), 0)
            breakdown = side_breakdown(session, inputs, args.repeat, meter, args.settle)

    print(f"load average at the end {_load()} (other processes on these cores skew wall times; CPU seconds less)")
    print_times([(run, runs[contenders[name][1]]) for name, run in runs.items()])
    compare_ok, locate_ok = runs[COMPARE_OK], runs[LOCATE_OK]
    compare_bug, locate_bug = runs[COMPARE_BUG], runs[locate_bug_name]
    ratio_rows = [("correct port", locate_ok, compare_ok), ("buggy port", locate_bug, compare_bug)]
    if LOCATE_NOREF in runs:
        ratio_rows.insert(1, ("correct port, no float64 reference", runs[LOCATE_NOREF], compare_ok))
    print_ratios(ratio_rows)
    print_bytes(locate_ok.median_report, locate_bug.median_report, desc.parameter_elements)
    print_blame(locate_ok.median_report, locate_bug.median_report, cfg)
    if breakdown:
        print_breakdown(breakdown)


if __name__ == "__main__":
    main()
