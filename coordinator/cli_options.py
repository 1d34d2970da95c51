"""The options the msparity commands share, declared once: workers, security, tolerances, inputs, weights.

Also the error boundary of every command (``handles_errors``: one line on stderr, the exit code)
and what compare, locate and train-step do before any work (``job_session``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click

from coordinator import metrics, progress, randomness
from coordinator.session import Session, WorkerTarget, open_session
from proto import transport
from proto.codec import NamedArray, TensorSpec
from proto.errors import EXIT_CANNOT_COMPARE, MsparityError
from proto.weights.map_file import WeightMap, load_weight_map
from proto.weights.weight_plan import MAP_STRATEGIES


class FiniteFloat(click.ParamType):
    """A float that must be finite and at least ``minimum`` (above it when ``strict``): a NaN tolerance would
    pass or fail everything, an infinite learning rate steps to inf."""

    name = "float"

    def __init__(self, minimum: float = 0.0, strict: bool = False):
        self.minimum, self.strict = minimum, strict

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or number < self.minimum or (self.strict and number == self.minimum):
            self.fail(f"{value!r} must be a finite number {'>' if self.strict else '>='} {self.minimum:g}", param, ctx)
        return number


class OutputFile(click.Path):
    """A file to write: its folder must exist before any work starts (not after a minute of it)."""

    def __init__(self):
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        path = super().convert(value, param, ctx)
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            self.fail(f"{path}: the folder {folder} does not exist; create it first", param, ctx)
        return path


OUTPUT_FILE = OutputFile()
TOLERANCE = FiniteFloat(0.0)
POSITIVE = FiniteFloat(0.0, strict=True)


def _fail(message: str, code: int) -> None:
    click.echo(f"msparity: error: {message}", err=True)
    sys.exit(code)


def handles_errors(command):
    """Turn library errors into one line on stderr and the matching exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except MsparityError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted; workers this command spawned were stopped, workers it dialled keep running", 130)
        except OSError as exc:
            _fail(f"{exc.filename or ''} {exc.strerror or exc}".strip(), EXIT_CANNOT_COMPARE)

    return wrapper


def _side_options(role: str) -> list:
    return [
        click.option(f"--{role}", f"{role}_address", metavar="HOST:PORT", help=f"address of a running {role} worker"),
        click.option(f"--{role}-model", metavar="SPEC",
                     help=f"spawn a {role} worker for pkg.module:factory or file.py:factory"),
        click.option(f"--{role}-python", metavar="PATH", help=f"python to run a spawned {role} worker with (another env)"),
        click.option(f"--{role}-ranks", type=click.IntRange(1), default=1, metavar="N",
                     help=f"spawn the {role} model as N ranks of one job under "
                          f"{'torchrun' if role == 'pt' else 'msrun'} on this host (default 1: one process)"),
    ]


def security_options() -> list:
    """Token and TLS options for dialing workers started by hand, plus -v."""
    return [
        click.option("--token", envvar="MSPARITY_TOKEN", metavar="TOKEN",
                     help="shared token of workers started by hand (or set MSPARITY_TOKEN)"),
        click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="CA certificate (PEM) to dial workers over TLS"),
        click.option("--tls-server-name", metavar="NAME", help="name to expect in the workers' TLS certificates"),
        click.option("--timeout", type=POSITIVE, default=None, metavar="SECONDS",
                     help="longest any call to a worker may take (default: 600 s for forward, training and "
                          "recording, 120 s for small calls; a dead or stopped worker is noticed in seconds)"),
        click.option("-v", "--verbose", is_flag=True, help="show worker logs"),
    ]


def _with_options(command, options: list):
    for option in reversed(options):
        command = option(command)
    return command


def worker_options(command):
    """--pt/--pt-model, --ms/--ms-model and the connection security options."""
    ms_mode = click.option("--ms-mode", type=click.Choice(["pynative", "graph"]), default="pynative",
                           show_default=True, help="MindSpore execution mode of a spawned ms worker")
    return _with_options(command, [*_side_options("pt"), *_side_options("ms"), ms_mode,
                                   *security_options()])


def pt_worker_options(command):
    """--pt/--pt-model alone, with the connection security options."""
    return _with_options(command, [*_side_options("pt"), *security_options()])


def security_from(opts: dict) -> transport.Security:
    return transport.Security(token=opts["token"], tls_ca=opts["tls_ca"], tls_server_name=opts["tls_server_name"])


def targets_from(opts: dict) -> tuple[WorkerTarget, WorkerTarget, transport.Security]:
    timeout = opts.get("timeout")
    pt = WorkerTarget(address=opts["pt_address"], model_spec=opts["pt_model"], python=opts["pt_python"],
                      timeout=timeout, ranks=opts.get("pt_ranks", 1))
    ms = WorkerTarget(address=opts["ms_address"], model_spec=opts["ms_model"], python=opts["ms_python"],
                      extra_args=("--mode", opts["ms_mode"]), timeout=timeout, ranks=opts.get("ms_ranks", 1))
    return pt, ms, security_from(opts)


def tolerance_options(command):
    options = [
        click.option("--rtol", type=TOLERANCE, help="relative tolerance (with --atol; default per dtype)"),
        click.option("--atol", type=TOLERANCE, help="absolute tolerance (with --rtol; default per dtype)"),
        click.option("--equal-nan", is_flag=True, help="NaN in the same place counts as equal"),
        click.option("--seed", type=int, default=0, show_default=True, help="seed for inputs and both frameworks"),
        *report_options(),
    ]
    return _with_options(command, options)


def report_options(json_help: str = "also write the report as JSON (msparity report re-renders it)",
                   csv_help: str = "also write the main table as CSV") -> list:
    """--json, --csv and --html: the run's report as data, as a table, as a page (docs/reports.md)."""
    return [
        click.option("--json", "json_path", type=OUTPUT_FILE, help=json_help),
        click.option("--csv", "csv_path", type=OUTPUT_FILE, help=csv_help),
        click.option("--html", "html_path", type=OUTPUT_FILE,
                     help="also write the run's page: one self-contained HTML file with plots"),
    ]


def reports_option(**helps):
    """The decorator form of report_options, for commands that take no other shared options."""
    return lambda command: _with_options(command, report_options(**helps))


def input_options(command):
    """--input-shape / --inputs, shared by compare, locate and train-step."""
    return _with_options(command, [
        click.option("--input-shape", multiple=True, metavar="SHAPE[:DTYPE[:LOW..HIGH]]",
                     help="an input to generate, e.g. 2,3,224,224:float32, or token ids 2,16:int64:0..50 (integers "
                          "from [LOW, HIGH); default [0, 100)); repeat for several inputs; train-step: a fresh batch "
                          "per step"),
        click.option("--inputs", multiple=True, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.npy",
                     help="an input from a .npy file (repeat for several inputs)"),
    ])


def weights_options(command):
    """--sync-weights / --weight-map, shared by compare, locate and train-step."""
    return _with_options(command, [
        click.option("--sync-weights/--no-sync-weights", default=True, show_default=True,
                     help="stream the pt weights into the ms net first (off: each side keeps its own)"),
        click.option("--weight-map", "weight_map_path", type=click.Path(path_type=Path),
                     help="map file for names msparity cannot pair itself (start from `msparity weight-map`)"),
        click.option("--map", "map_strategy", type=click.Choice(MAP_STRATEGIES), default="auto", show_default=True,
                     help="without --weight-map, pair weights by: auto (same names, then the layer rules, then "
                          "structure), rules (the layer rules only) or names (every torch name as it is)"),
    ])


def inputs_and_map(input_shape, inputs, weight_map_path):
    """Parse --input-shape / --inputs / --weight-map before any worker starts."""
    user_map = load_weight_map(weight_map_path) if weight_map_path else None
    shapes = [randomness.parse_input_shape(text, i) for i, text in enumerate(input_shape)]
    arrays = randomness.load_input_files(list(inputs)) if inputs else None
    if shapes and arrays:
        raise click.UsageError("give --input-shape or --inputs, not both")
    return shapes, arrays, user_map


def dir_compare_options(default_map: str):
    """Options shared by compare-dirs and compare-grads."""
    options = [
        click.argument("ref"),
        click.argument("cand"),
        click.option("--ref-worker", metavar="HOST:PORT",
                     help="REF is a directory served by this worker (--serve-dir), not a local path"),
        click.option("--cand-worker", metavar="HOST:PORT",
                     help="CAND is a directory served by this worker (--serve-dir), not a local path"),
        click.option("--map", "strategy", type=click.Choice(["name", "number", "shape"]), default=default_map,
                     show_default=True, help="pair files by name, by position in save order, or by shape edit distance"),
        click.option("--name-map", "name_map_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help='JSON list of [ref file, cand file] pairs (null for no partner); overrides --map'),
        click.option("--rtol", type=TOLERANCE, default=1e-4, show_default=True, help="relative tolerance"),
        click.option("--atol", type=TOLERANCE, default=1e-4, show_default=True, help="absolute tolerance"),
        click.option("--equal-nan", is_flag=True, help="NaN in the same place counts as equal"),
        *report_options(csv_help="also write the table as CSV (TroubleShooter's columns)"),
        click.option("--all", "show_all", is_flag=True,
                     help="print every row (by default, beyond 50 pairs only those that differ or lack a partner)"),
        *security_options(),
    ]
    return lambda command: _with_options(command, options)


@dataclass(frozen=True)
class JobInputs:
    """What --input-shape / --inputs / --weight-map said, parsed."""

    shapes: list[TensorSpec]
    arrays: list[NamedArray] | None
    weight_map: WeightMap | None


@contextlib.contextmanager
def job_session(opts: dict, input_shape, inputs, weight_map_path) -> Iterator[tuple[Session, JobInputs]]:
    """The preamble of compare, locate and train-step: usage checks and parsing before any worker starts,
    then both workers (dialled or spawned) in one session, stopped on exit."""
    metrics.resolve_tolerance("float32", opts["rtol"], opts["atol"])  # usage errors before spawning anything
    pt, ms, security = targets_from(opts)
    shapes, arrays, user_map = inputs_and_map(input_shape, inputs, weight_map_path)
    with progress.shown(progress_wanted()), open_session(pt, ms, security, verbose=opts["verbose"]) as session:
        session.map_strategy = opts.get("map_strategy", "auto")
        yield session, JobInputs(shapes, arrays, user_map)


def progress_wanted() -> bool:
    """Progress on stderr unless `msparity -q` (it shows only where stderr is a terminal)."""
    context = click.get_current_context(silent=True)
    return not (context and context.find_root().params.get("quiet"))
