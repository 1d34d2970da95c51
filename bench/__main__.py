"""``python -m bench [--quick | --smoke] [--only P1,P3] [--json FILE]``: msparity next to its lower bounds and
TroubleShooter 1.0.18, measured in the same run (issue 17). See bench/README.md."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

OPS = ("P1", "P2", "P2s", "P3", "P4", "P4b", "P5", "P6")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller nets and files: under 15 minutes on 2 cores")
    mode.add_argument("--smoke", action="store_true", help="tiny sizes, one round: checks the suite runs (the test)")
    parser.add_argument("--only", default="", help=f"comma-separated ids to run, of {','.join(OPS)} (default: all)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per contender (default 3; smoke 1)")
    parser.add_argument("--no-ts", action="store_true", help="leave TroubleShooter out (TS column n/a)")
    parser.add_argument("--json", metavar="FILE", help="write the entries as a JSON list")
    args = parser.parse_args(argv)
    args.want = set(x.strip() for x in args.only.split(",") if x.strip()) or set(OPS)
    unknown = args.want - set(OPS)
    if unknown:
        parser.error(f"--only: unknown id(s) {', '.join(sorted(unknown))}; known: {', '.join(OPS)}")
    return args


def _ts_host(args, hosts):
    from bench import ts_shim
    from bench.procs import Host

    if args.no_ts:
        print("TroubleShooter left out (--no-ts): TS column n/a")
        return None
    problem = ts_shim.ensure_installed()
    if problem:
        print(problem + "; TS column n/a", flush=True)
        return None
    host = Host("ts", ts=True)
    hosts.append(host)
    print(f"TroubleShooter {host.call('ts_ops:version')['result']} from {ts_shim.TS_DIR}", flush=True)
    return host


def run(args) -> int:
    from bench import sizes as sizes_module
    from bench import suite, suite_cold, suite_files
    from bench.procs import Host
    from bench.table import print_table, write_json

    sizes = sizes_module.MODES["quick" if args.quick else "smoke" if args.smoke else "full"]
    if args.rounds:
        sizes = replace(sizes, rounds=args.rounds, cold_rounds=args.rounds)
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"msparity bench, mode {sizes.mode}; {os.cpu_count()} cores, load average {load}")
    for line in sizes.lines():
        print(f"  {line}")
    started = time.perf_counter()
    hosts: list = []
    with tempfile.TemporaryDirectory(prefix="msparity-bench-") as tmp, contextlib.ExitStack() as stack:
        stack.callback(lambda: [h.close() for h in reversed(hosts)])
        for label in ("ours", "bound", "sink", "relay"):
            hosts.append(Host(label))
        ours, bound, sink, relay = hosts
        sink_addr = sink.call("bare_grpc:serve_sink")["result"]
        ctx = suite.Context(sizes, Path(tmp), ours, bound, sink_addr,
                            relay.call("bare_grpc:serve_relay", sink=sink_addr)["result"], _ts_host(args, hosts))
        steps = [({"P1", "P2"}, lambda: suite.vit_ops(ctx, args.want)),
                 ({"P4", "P4b"}, lambda: suite_files.weight_file_ops(ctx, args.want)),
                 ({"P2"}, lambda: suite_cold.cold_op(ctx, "vit")),
                 ({"P2s"}, lambda: suite.mlp_warm(ctx)),
                 ({"P2s"}, lambda: suite_cold.cold_op(ctx, "mlp")),
                 ({"P3"}, lambda: suite_files.npy_op(ctx)),
                 ({"P5"}, lambda: suite.locate_op(ctx)),
                 ({"P6"}, lambda: suite.big_stream(ctx))]
        for ids, step in steps:
            if ids & args.want:
                try:
                    step()
                except Exception as exc:  # one op failing is reported; the others still run
                    ctx.failures.append(f"{'/'.join(sorted(ids))}: {exc}")
                    print(f"FAILED {'/'.join(sorted(ids))}: {str(exc)[-3000:]}", file=sys.stderr, flush=True)
    ctx.entries.sort(key=lambda e: OPS.index(e.name.split()[0]))  # in id order, whatever order they ran in
    print_table(ctx.entries)
    met = sum(1 for e in ctx.entries if e.ok)
    print(f"\ngoals met: {met} of {len(ctx.entries)}; whole run {time.perf_counter() - started:.0f} s "
          f"(mode {sizes.mode}); load average at the end {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    for failure in ctx.failures:
        print(f"FAILED {failure.splitlines()[0][:300]}")
    if args.json:
        write_json(ctx.entries, args.json)
    return 1 if ctx.failures else 0


def main(argv=None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
