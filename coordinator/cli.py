"""``msparity``: the command line over the coordinator's library calls.

Exit codes: 0 within tolerance, 1 compared and found differences, 2 usage error, 3 could not
compare (worker unreachable, bad file, nothing to compare). Results go to stdout, errors and logs
to stderr.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from coordinator import progress
from coordinator.cli_options import (
    OUTPUT_FILE,
    POSITIVE,
    TOLERANCE,
    dir_compare_options,
    handles_errors,
    input_options,
    job_session,
    progress_wanted,
    reports_option,
    security_from,
    targets_from,
    tolerance_options,
    weights_options,
    worker_options,
)
from coordinator.compare import run_compare
from coordinator.render import compare_report
from coordinator.render.report_io import write_atomic, write_reports
from coordinator.session import open_worker
from proto.errors import EXIT_DIFFERENT, EXIT_OK, MsparityError, UsageError
from proto.weights.weight_plan import MAP_STRATEGIES

EXAMPLES = ("vit", "cnn", "mlp")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="msparity")
@click.option("-q", "--quiet", is_flag=True,
              help="no progress on stderr (it shows only on a terminal: spinners while workers start, bars for "
                   "weight streams, files and steps)")
def main(quiet):
    """Prove a PyTorch net and its MindSpore port compute the same thing, across processes or hosts."""


@main.command()
@worker_options
@handles_errors
def ping(**opts):
    """Dial the workers given (one or both) and describe them."""
    pt, ms, security = targets_from(opts)
    given = [(role, target) for role, target in (("pt", pt), ("ms", ms)) if target.address or target.model_spec]
    if not given:
        raise UsageError("give --pt ADDRESS and/or --ms ADDRESS (or --pt-model / --ms-model SPEC) to ping")
    start = time.perf_counter()
    for role, target in given:
        with open_worker(role, target, security, verbose=opts["verbose"]) as worker:
            desc = worker.describe()
        click.echo(
            f"{role}: {desc.framework} {desc.framework_version}, python {desc.python_version}, device {desc.device}, "
            f"host {desc.hostname}, protocol {desc.protocol_version}, model {desc.model_spec} ({desc.model_class}, "
            f"{desc.parameter_count} tensors), weights {desc.weights_state or 'as built'}"
            + (f"; {desc.world_size} ranks ({desc.launcher}) at {', '.join(desc.rank_addresses)}"
               if desc.world_size > 1 else "")
        )
    click.echo(f"{' and '.join(role for role, _ in given)} answered in {time.perf_counter() - start:.2f}s")


def _compare(opts: dict, input_shape: tuple[str, ...], inputs: tuple[Path, ...], sync_weights: bool = True,
             weight_map_path: Path | None = None) -> int:
    with job_session(opts, input_shape, inputs, weight_map_path) as (session, job):
        result = run_compare(session, job.shapes, job.arrays, seed=opts["seed"], rtol=opts["rtol"], atol=opts["atol"],
                             equal_nan=opts["equal_nan"], sync_weights=sync_weights, weight_map=job.weight_map)
    return _finish(result, compare_report.print_compare, compare_report.compare_to_dict, opts)


def _finish(result, print_result, to_dict, opts: dict) -> int:
    """Print a job's report, write its JSON, CSV table and HTML page when asked; the exit code of its verdict."""
    print_result(result)
    _reports(lambda: to_dict(result), opts)
    return EXIT_OK if result.passed else EXIT_DIFFERENT


def _reports(data, opts: dict) -> None:
    """Write --json / --csv / --html from the report's JSON form (data() builds it only when one is asked)."""
    if opts.get("json_path") or opts.get("html_path") or opts.get("csv_path"):
        write_reports(data(), opts.get("json_path"), opts.get("csv_path"), opts.get("html_path"))


@main.command()
@worker_options
@tolerance_options
@input_options
@weights_options
@handles_errors
def compare(input_shape, inputs, sync_weights, weight_map_path, **opts):
    """Same weights, same inputs, both nets in eval mode: compare their outputs."""
    sys.exit(_compare(opts, input_shape, inputs, sync_weights, weight_map_path))


@main.command()
@worker_options
@tolerance_options
@input_options
@click.option("--isolate", is_flag=True,
              help="replay the blamed module on the exact inputs the other side's module saw, to confirm it")
@click.option("--no-reference", is_flag=True,
              help="skip torch's float64 copy of the net (it doubles the torch worker's memory while locate runs); "
                   "modules are then judged against torch float32 at 1e-4 relative error")
@click.option("--all", "all_rows", is_flag=True, help="print every paired module's row (default: a window around "
                                                         "the blamed one, with the rows' real indices)")
@click.option("--backward", "backward_loss", type=click.Choice(["mse", "cross-entropy", "factory"]), default=None,
              is_flag=False, flag_value="mse",
              help="locate in the backward pass of this loss (default mse, as train-step): the first module whose "
                   "gradient passed on diverges while the gradient flowing into it matches")
@weights_options
@handles_errors
def locate(input_shape, inputs, isolate, no_reference, all_rows, backward_loss, sync_weights, weight_map_path, **opts):
    """Name the first module whose output diverges while its inputs match (judged against float32 noise)."""
    from coordinator.locate.locate_run import run_backward_locate, run_locate
    from coordinator.render.locate_report import locate_to_dict, print_locate

    with job_session(opts, input_shape, inputs, weight_map_path) as (session, job):
        how = dict(input_shapes=job.shapes, input_arrays=job.arrays, seed=opts["seed"], rtol=opts["rtol"],
                   atol=opts["atol"], sync_weights=sync_weights, weight_map=job.weight_map, isolate_blamed=isolate,
                   float64_reference=not no_reference)
        result = run_backward_locate(session, backward_loss, **how) if backward_loss else run_locate(session, **how)
    sys.exit(_finish(result, lambda r: print_locate(r, all_rows=all_rows), locate_to_dict, opts))


@main.command("train-step")
@worker_options
@tolerance_options
@input_options
@click.option("--steps", type=int, default=1, show_default=True, help="training steps to run and compare")
@click.option("--lr", type=POSITIVE, default=0.01, show_default=True, help="learning rate, the same on both sides")
@click.option("--optimizer", type=click.Choice(["sgd", "adam", "factory"]), default=None,
              help="sgd (plain, no momentum) or adam (torch's formula on both sides); default: the factories' "
                   "own when both supply one, else sgd")
@click.option("--loss", type=click.Choice(["mse", "cross-entropy", "factory"]), default=None,
              help="mse against generated targets, cross-entropy against generated class indices; default: the "
                   "factories' own when both supply one, else mse")
@click.option("--free-running", is_flag=True,
              help="let each side follow its own trajectory (default: re-sync the pt state into ms before each step)")
@click.option("--no-reference", is_flag=True,
              help="skip torch's float64 copy of each step (a tensor is then judged by rtol/atol alone, not against "
                   "torch's own float32 rounding noise)")
@weights_options
@handles_errors
def train_step(input_shape, inputs, steps, lr, optimizer, loss, free_running, no_reference, sync_weights,
               weight_map_path, **opts):
    """Same weights, same batches: run training steps on both sides, compare loss, grads, weights, buffers."""
    from coordinator.render.train_report import print_train, train_to_dict
    from coordinator.train.train_step import TrainOptions, check_options, resolve_choice, run_train_step

    check_options(TrainOptions(loss=loss or "mse", optimizer=optimizer or "sgd", lr=lr), steps)
    with job_session(opts, input_shape, inputs, weight_map_path) as (session, job):
        pt_desc, ms_desc = session.pt_description, session.ms_description
        options = TrainOptions(
            loss=resolve_choice("loss", loss, pt_desc.factory_loss, ms_desc.factory_loss, "mse"),
            optimizer=resolve_choice("optimizer", optimizer, pt_desc.factory_optimizer, ms_desc.factory_optimizer,
                                     "sgd"),
            lr=lr, float64_reference=not no_reference)
        result = run_train_step(session, job.shapes, job.arrays, steps=steps, options=options, seed=opts["seed"],
                                rtol=opts["rtol"], atol=opts["atol"], sync_weights=sync_weights,
                                weight_map=job.weight_map, lockstep=not free_running)
    sys.exit(_finish(result, print_train, train_to_dict, opts))


@main.command("weight-map")
@click.option("--prefix", "weight_name_prefix", metavar="PREFIX", help="put PREFIX. before every MindSpore name")
@click.option("--out", "out_path", required=True, type=OUTPUT_FILE,
              help="map file to write ([name_map, value_map] JSON, as TroubleShooter's get_weight_map)")
@click.option("--map", "map_strategy", type=click.Choice(MAP_STRATEGIES), default=None,
              help="auto (same names, layer rules, then structure: needs the ms side; the default with it), rules "
                   "(the layer rules; the default without it) or names")
@reports_option(json_help="also write a report: one row per tensor (pt name, ms name, transform, how it was found, "
                          "shape)", csv_help="also write that table as CSV")
@worker_options
@handles_errors
def weight_map_command(weight_name_prefix, out_path, map_strategy, **opts):
    """Write the weight map of a torch net: against its MindSpore port (--ms/--ms-model) found automatically,
    or by the layer rules over the torch net alone."""
    from coordinator.weights.map_job import make_weight_map

    result = make_weight_map(targets_from(opts), map_strategy, weight_name_prefix, opts["verbose"])
    write_atomic(out_path, result.json())
    weight_map = result.weight_map
    renamed = sum(1 for k, v in weight_map.name_map.items() if k != v)
    click.echo(f"wrote {out_path}: {len(weight_map.name_map)} entries, {renamed} renamed, "
               f"{len(weight_map.value_map)} value transforms" + (f"; {result.how}" if result.how else ""))
    _reports(lambda: result.to_dict(out_path), opts)


@main.command()
@click.option("--weight-map", "weight_map_path", required=True, type=click.Path(path_type=Path),
              help="map file from get_weight_map / msparity weight-map (TroubleShooter's format works)")
@click.option("--pth", "pth_path", required=True, type=click.Path(path_type=Path),
              help="torch state_dict: .pth/.pt/.bin, or .safetensors; one file per rank: r0.pth,r1.pth (with --layout)")
@click.option("--layout", "layout_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSON {"tensor name": "shard(DIM)"} joining a state dict saved one file per rank (others replicated)')
@click.option("--out", "out_path", required=True, type=OUTPUT_FILE,
              help="MindSpore weights to write: .ckpt, or .safetensors")
@click.option("--pth-key", metavar="KEY", help="the state dict's key inside a checkpoint dict (e.g. model)")
@click.option("--trust-pickle", is_flag=True,
              help="the .pth is a pickled whole model you trust: a spawned pt worker unpickles it with torch")
@reports_option(json_help="also write the table as JSON", csv_help="also write the table as CSV")
@handles_errors
def convert(weight_map_path, pth_path, layout_path, out_path, pth_key, trust_pickle, **opts):
    """Convert a torch .pth into a MindSpore .ckpt by a weight map (no framework needed)."""
    from coordinator.render.weight_report import convert_to_dict
    from coordinator.weights.convert import convert_weight

    rows = convert_weight(weight_map_path, pth_path, out_path, print_save_path=False, pth_key=pth_key,
                          trust_pickle=trust_pickle, layout=layout_path)
    click.echo(f"wrote {out_path}: {len(rows)} tensors")
    _reports(lambda: convert_to_dict(rows, out_path), opts)


@main.command("compare-ckpt")
@click.argument("orig", type=click.Path(path_type=Path))
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--weight-map", "weight_map_path", type=click.Path(path_type=Path),
              help="map file: needed for .pth vs .ckpt; for two .ckpt it only names rows by their torch names")
@click.option("--layout", "orig_layout", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='ORIG saved one file per rank (a,b,...): JSON {"tensor name": "shard(DIM)"} joining them')
@click.option("--target-layout", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="the same for TARGET")
@click.option("--rtol", type=TOLERANCE, default=1e-4, show_default=True, help="relative tolerance")
@click.option("--atol", type=TOLERANCE, default=1e-4, show_default=True, help="absolute tolerance")
@click.option("--equal-nan", is_flag=True, help="NaN in the same place counts as equal")
@click.option("--print-level", type=click.IntRange(0, 2), default=1, show_default=True,
              help="0 nothing, 1 every row, 2 only rows that differ")
@reports_option(json_help="also write the result as JSON", csv_help="also write one row per parameter as CSV")
@handles_errors
def compare_ckpt(orig, target, weight_map_path, orig_layout, target_layout, rtol, atol, equal_nan, print_level, **opts):
    """Compare two weight files (.pth/.ckpt/.safetensors); a .pth goes first and through --weight-map."""
    from coordinator.render.weight_report import weights_to_dict
    from coordinator.weights.ckpt_compare import compare_weight_files

    result = compare_weight_files(orig, target, weight_map_path, rtol=rtol, atol=atol, equal_nan=equal_nan,
                                  print_level=print_level, orig_layout=orig_layout, target_layout=target_layout)
    _reports(lambda: weights_to_dict(result), opts)
    click.echo("PASS: the weights agree" if result.passed else "FAIL: the weights differ")
    sys.exit(EXIT_OK if result.passed else EXIT_DIFFERENT)


def _compare_dirs(kind: str, compare_shape: bool, ref, cand, ref_worker, cand_worker, strategy, name_map_path,
                  rtol, atol, equal_nan, json_path, csv_path, show_all=False, html_path=None, **opts) -> int:
    import json

    from coordinator.dirs.dir_compare import compare_dirs
    from coordinator.dirs.tensor_dirs import open_dir
    from coordinator.render.dir_report import print_dir_comparison, write_csv, write_dir_json
    from proto.errors import UsageError

    name_map = None
    if name_map_path is not None:
        try:
            name_map = json.loads(name_map_path.read_text())
        except ValueError as exc:
            raise UsageError(f"--name-map {name_map_path}: not JSON ({exc})") from None
        if not isinstance(name_map, list):
            raise UsageError(f"--name-map {name_map_path}: expected a JSON list of [ref, cand] pairs")
    security = security_from(opts)
    with progress.shown(progress_wanted()):
        result = compare_dirs(open_dir(ref, ref_worker, security, "ref"), open_dir(cand, cand_worker, security, "cand"),
                              rtol=rtol, atol=atol, equal_nan=equal_nan, strategy=strategy, name_map_list=name_map,
                              progress=progress.callback("comparing files", "files"))
    print_dir_comparison(result, compare_shape, show_all=show_all)
    if json_path:
        write_dir_json(json_path, result, kind)
    if html_path:
        from coordinator.render.dir_report import dir_comparison_to_dict

        write_reports(dir_comparison_to_dict(result, kind), html_path=html_path)
    if csv_path:
        write_csv(csv_path, result, compare_shape)
    return EXIT_OK if result.passed else EXIT_DIFFERENT


@main.command()
@click.argument("run_json", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--html", "html_path", type=OUTPUT_FILE, help="the page to write")
@click.option("--csv", "csv_path", type=OUTPUT_FILE, help="the main table to write as CSV")
@handles_errors
def report(run_json, html_path, csv_path):
    """Re-render a saved --json report as its HTML page (plots, sortable tables, the verdict at the top) or its
    main table as CSV."""
    if not html_path and not csv_path:
        raise UsageError("say what to write: --html PAGE and/or --csv TABLE")
    import json

    try:
        data = json.loads(run_json.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MsparityError(f"{run_json}: not a JSON report ({exc})") from None
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("msparity.report/"):
        raise MsparityError(f"{run_json}: not an msparity report (no msparity.report schema); write one with --json")
    if csv_path and data.get("kind") in ("compare-dirs", "compare-grads"):
        raise UsageError(f"{run_json}: a {data['kind']} report's CSV is written by the run itself (--csv)")
    write_reports(data, csv_path=csv_path, html_path=html_path)
    for path, what in ((html_path, "page"), (csv_path, "table")):
        if path:
            click.echo(f"wrote {path}: the {data.get('kind', 'report')} {what}")


@main.command("compare-dirs")
@dir_compare_options("name")
@handles_errors
def compare_dirs_command(**opts):
    """Compare two directories of saved .npy tensors (local, or served by workers on other hosts)."""
    sys.exit(_compare_dirs("compare-dirs", False, **opts))


@main.command("compare-grads")
@dir_compare_options("shape")
@handles_errors
def compare_grads_command(**opts):
    """Compare two gradient dumps; files pair by shape edit distance unless told otherwise."""
    sys.exit(_compare_dirs("compare-grads", True, **opts))


@main.command()
@click.option("--example", type=click.Choice(EXAMPLES), default="vit", show_default=True, help="bundled model pair")
@tolerance_options
@click.option("-v", "--verbose", is_flag=True, help="show worker logs")
@handles_errors
def demo(example, **opts):
    """Spawn pt and ms workers for a bundled example pair and compare them."""
    opts.update(pt_address=None, ms_address=None, pt_python=None, ms_python=None, ms_mode="pynative", token=None,
                tls_ca=None, tls_server_name=None,
                pt_model=f"examples.{example}_pt:build", ms_model=f"examples.{example}_ms:build")
    sys.exit(_compare(opts, (), ()))


if __name__ == "__main__":
    main()
