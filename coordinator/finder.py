"""NetDifferenceFinder: TroubleShooter's network comparison, over two workers (or live nets in this process).

Same constructor and ``compare`` parameters as TroubleShooter 1.0.18 (docs/troubleshooter-finder.md).
``pt_net`` / ``ms_net`` may be live nets (wrapped in-process by coordinator/local.py), worker
addresses (``host:port``) or model specs (``pkg.module:factory`` / ``file.py:factory``, spawned).
Weights stream pt -> coordinator -> ms through the weight map; inputs are generated once here and
sent to both; both forwards run at the same time, in eval mode. ``compare`` prints TroubleShooter's
tables and returns a FinderResult (``bool()`` is the verdict) instead of None.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from dataclasses import dataclass

from coordinator import metrics
from coordinator.finder_inputs import auto_input_cases, input_cases
from coordinator.metrics import TensorComparison
from coordinator.render.finder_report import print_finder_rows
from coordinator.session import Session, SyncSummary, WorkerTarget, open_session
from coordinator.weights.ckpt_compare import PTH_SHAPE_FIELDS, PTH_VALUE_FIELDS, WeightsComparison, _compare
from coordinator.weights.param_check import check_params
from proto import transport
from proto.codec import NamedArray
from proto.errors import MsparityError, UsageError, WeightMapError
from proto.formats import open_weights
from proto.weights.conversion import ConversionRow, conversion_status
from proto.weights.layer_rules import is_optional_entry
from proto.weights.map_file import WeightMap
from proto.weights.weight_plan import names_weight_map

log = logging.getLogger("msparity")
_KWARGS = {"pt_params_path", "ms_params_path", "auto_conv_ckpt", "compare_params", "fix_seed"}
_ADDRESS = re.compile(f"^{transport.ADDRESS_PATTERN}$")
SEPARATOR_WIDTH = 141


@dataclass(frozen=True)
class OutputRow:
    """One compared output of one input case."""

    case: int
    pt_name: str  # TroubleShooter's naming: step_{case}_out, step_{case}_out_0, step_{case}_{key}
    ms_name: str
    comparison: TensorComparison | None  # None: the shapes differ
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.comparison is not None and self.comparison.passed


@dataclass(frozen=True)
class FinderResult:
    """What one compare() found: weight sync, parameter tables, output rows; ``bool()`` is the verdict."""

    rows: tuple[OutputRow, ...]
    params: WeightsComparison | None
    weights: SyncSummary | None
    seconds: dict

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.passed for r in self.rows) and (self.params is None or self.params.passed)

    def __bool__(self) -> bool:
        return self.passed


def _target(net, role: str) -> WorkerTarget:
    if isinstance(net, WorkerTarget):
        return net
    if isinstance(net, (str, os.PathLike)):
        text = os.fspath(net)
        return WorkerTarget(address=text) if _ADDRESS.match(text) else WorkerTarget(model_spec=text)
    return WorkerTarget(live=net)


def separator(text: str, fill: str) -> str:
    """TroubleShooter's centred separator line."""
    return f"{text:{fill}^{SEPARATOR_WIDTH}}"


def _ts_output_names(names: list[str]) -> list[str]:
    """Our flattened names (output, output.0, output.key) in TroubleShooter's form (out, out_0, key)."""
    shown = []
    for name in names:
        if name == "output":
            shown.append("out")
        else:
            rest = name.partition(".")[2]
            shown.append(f"out_{rest}" if rest.isdigit() else rest)
    return shown


class _HeldWeights:
    """A name -> tensor table with the reader interface the weight comparison takes."""

    def __init__(self, tensors):
        self._tensors = {t.name: t for t in tensors}

    def specs(self):
        from proto.codec import spec_of

        return [spec_of(t) for t in self._tensors.values()]

    def read(self, name: str) -> NamedArray:
        return self._tensors[name]


class NetDifferenceFinder:
    """Compare a PyTorch net and its MindSpore port: weights, then outputs on the same inputs."""

    def __init__(self, pt_net, ms_net, print_level=1, **kwargs):
        unknown = set(kwargs) - _KWARGS - {"security", "verbose"}
        if unknown:
            raise UsageError(f"NetDifferenceFinder: unknown parameter(s) {', '.join(sorted(unknown))} "
                             f"(accepted: {', '.join(sorted(_KWARGS))})")
        self.print_level = print_level
        self._plan = None  # the weight plan of the current call's sync (set by _handle_weights)
        self.pt_params_path = kwargs.get("pt_params_path")
        self.ms_params_path = kwargs.get("ms_params_path")
        self.auto_conv_ckpt = kwargs.get("auto_conv_ckpt", 1)
        self.compare_params = kwargs.get("compare_params", True)
        self.fix_seed = kwargs.get("fix_seed", 16)
        if self.auto_conv_ckpt not in (0, 1, 2):
            raise UsageError(f"auto_conv_ckpt must be 0, 1 or 2, got {self.auto_conv_ckpt!r}")
        if self.ms_params_path and not self.pt_params_path and self.auto_conv_ckpt:
            raise UsageError("only torch -> MindSpore conversion exists: with only ms_params_path, "
                             "set auto_conv_ckpt=0 and make sure both nets start from the same weights")
        self._stack = contextlib.ExitStack()
        try:
            self.session: Session = self._stack.enter_context(open_session(
                _target(pt_net, "pt"), _target(ms_net, "ms"), kwargs.get("security") or transport.Security(),
                verbose=kwargs.get("verbose", False)))
            if self.fix_seed:
                self.session.seed(int(self.fix_seed))
        except BaseException:
            self._stack.close()
            raise

    def close(self) -> None:
        """Stop spawned workers and close connections."""
        self._stack.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            self._stack.close()

    def _print(self, text: str) -> None:
        print(text, flush=True)

    def _weight_map(self) -> WeightMap | None:
        if self.auto_conv_ckpt == 2:  # MSAdapter / mindtorch: names are the same on both sides
            return names_weight_map(self.session.pt.list_parameters())
        return None

    def _load_file(self, role: str, path) -> None:
        """Load a weight file into one side; entries the net has no place for (num_batches_tracked, which
        ``convert`` keeps as TroubleShooter does) are skipped, anything else unknown is refused."""
        worker = self.session.pt if role == "pt" else self.session.ms
        names = {p.name for p in worker.list_parameters().parameters}
        with open_weights(path) as reader:
            tensors = (t for t in reader if t.name in names or not is_optional_entry(t.name))
            result = worker.set_weights(tensors, strict=role == "pt")
        if result.missing:
            log.warning("%s: the %s net has parameters the file lacks: %s", path, role, ", ".join(result.missing[:10]))

    def _handle_weights(self) -> SyncSummary | None:
        self._plan = None  # the plan of this call's sync, once made
        if self.pt_params_path and self.ms_params_path:
            self._load_file("pt", self.pt_params_path)
            self._load_file("ms", self.ms_params_path)
            return None
        if self.pt_params_path:
            self._load_file("pt", self.pt_params_path)
        if self.ms_params_path:
            self._load_file("ms", self.ms_params_path)
        if not self.auto_conv_ckpt:
            log.warning("auto_conv_ckpt=0: make sure both nets start from the same weights")
            return None
        user_map = self._weight_map()
        plan, pt_listing, ms_listing = self.session.planned(user_map)
        if self.auto_conv_ckpt == 1 and self.print_level:
            self._print(separator("Start Converting PyTorch Weights to MindSpore", "="))
        if self.auto_conv_ckpt == 1:
            from coordinator.render import weight_report

            pt_specs = {p.name: p for p in pt_listing.parameters}
            ms_specs = {p.name: p for p in ms_listing.parameters}
            weight_report.print_conversion([
                ConversionRow(m.pt_name, m.ms_name, conversion_status(m.pt_name, m.ms_name, m.transform != "identity"),
                              pt_specs[m.pt_name].shape, ms_specs[m.ms_name].shape) for m in plan.mappings])
        self._plan = plan  # the parameter check's too: the listings cannot change in between
        return self.session.sync_weights(user_map, plan=plan)

    def _compare_params(self) -> WeightsComparison | None:
        self._print(separator(f"Start comparing PyTorch and {'MindTorch' if self.auto_conv_ckpt == 2 else 'MindSpore'} "
                              "parameters", "="))
        try:
            plan = self._plan or self.session.plan_weights(self._weight_map())
        except WeightMapError as exc:  # e.g. auto_conv_ckpt=0 with two files whose names the rules cannot pair
            self._print(f"The parameters were not compared: {exc}. Compare the two files with compare_pth_and_ckpt "
                        "and a weight map, or pass compare_params=False.")
            return None
        result = check_params(self.session, plan)  # digests on both workers: only what differs travels
        if result is None:  # workers that cannot digest: every weight travels
            shown = {m.ms_name: m.pt_name for m in plan.mappings}
            target = _HeldWeights(self.session.ms.get_weights())
            result = _compare(plan.convert(self.session.pt.get_weights(plan.pt_names)), shown.get, target, True,
                              1e-4, 1e-4, False)
        from coordinator.render import weight_report

        weight_report.print_weights_comparison(result, 1, PTH_SHAPE_FIELDS, PTH_VALUE_FIELDS,
                                               "The list of comparison results for values")
        return result

    def compare(self, inputs=None, auto_inputs=None, rtol=1e-4, atol=1e-4, equal_nan=False) -> FinderResult:
        """Sync weights, compare parameters, run both nets on the same inputs and compare every output."""
        seed = int(self.fix_seed or 0)
        cases = auto_input_cases(auto_inputs, seed) if auto_inputs else None
        if cases is None:
            cases = input_cases(inputs)
        seconds: dict[str, float] = {}
        start = time.perf_counter()
        self.session.seed(seed)
        weights = self._handle_weights()
        seconds["weights"] = time.perf_counter() - start
        params = self._compare_params() if self.compare_params is not False else None
        if self.print_level:
            self._print(separator("Start Performing Network Inference", "="))
        rows: list[OutputRow] = []
        seconds["forward"] = 0.0
        for index, case in enumerate(cases):
            if self.print_level:
                self._print(separator(f"Start case {index} inference", "-"))
            rows.extend(self._run_case(index, case, rtol, atol, equal_nan, seconds))
        result = FinderResult(tuple(rows), params, weights, {k: round(v, 4) for k, v in seconds.items()})
        print_finder_rows(result)
        return result

    def train_step(self, inputs=None, auto_inputs=None, steps=1, loss=None, optimizer=None, lr=0.01, rtol=None,
                   atol=None, lockstep=True, float64_reference=True):
        """Sync weights as compare() does, then run ``steps`` training steps on both sides and compare them.

        ``inputs``: one batch (any form compare() takes; the first case is used for every step);
        ``auto_inputs``: shapes, a fresh batch per step. ``loss``/``optimizer``: "mse" | "cross-entropy"
        and "sgd" | "adam", or "factory" / None for the factories' own when both supply one. Prints the
        loss curves and the tensors that differ; returns a TrainReport (``bool()`` is the verdict). Each
        tensor is also judged against torch's own float32 rounding noise (the step run again in float64 from
        the same state); ``float64_reference=False`` skips that copy and judges by rtol/atol alone.
        """
        from coordinator.render.train_report import print_train
        from coordinator.train.train_step import TrainOptions, resolve_choice, run_train_step
        from proto.codec import TensorSpec

        seed = int(self.fix_seed or 0)
        shapes, arrays = None, None
        if auto_inputs:
            case = auto_input_cases(auto_inputs, seed)[0]
            shapes = [TensorSpec(t.name, t.dtype, t.shape) for t in case]
        else:
            arrays = input_cases(inputs)[0]
        pt_desc, ms_desc = self.session.pt_description, self.session.ms_description
        options = TrainOptions(
            loss=resolve_choice("loss", loss, pt_desc.factory_loss, ms_desc.factory_loss, "mse"),
            optimizer=resolve_choice("optimizer", optimizer, pt_desc.factory_optimizer, ms_desc.factory_optimizer,
                                     "sgd"),
            lr=lr, float64_reference=float64_reference)
        self.session.seed(seed)
        self._handle_weights()
        report = run_train_step(self.session, shapes, arrays, steps=steps, options=options, seed=seed, rtol=rtol,
                                atol=atol, sync_weights=False, weight_map=self._weight_map(), lockstep=lockstep)
        print_train(report)
        return report

    def locate(self, inputs=None, auto_inputs=None, rtol=1e-4, atol=1e-4, isolate=False, float64_reference=True,
               backward=False):
        """Sync weights as compare() does, then name the first module where the nets part ways.

        One hooked forward per side on the first input case; prints the per-module error curve and the
        blamed module (with a hint for known default differences); returns a LocateReport (``bool()``
        is True when nothing is blamed). ``float64_reference=False`` skips torch's float64 copy of the net
        (it doubles torch's memory): modules are then judged against torch float32 at 1e-4. ``backward=True``
        (or a loss name: "mse", "cross-entropy", "factory") locates in the backward pass of that loss (msparity
        locate --backward), the forward first.
        """
        from coordinator.locate.locate_run import run_backward_locate, run_locate
        from coordinator.render.locate_report import print_locate

        seed = int(self.fix_seed or 0)
        case = (auto_input_cases(auto_inputs, seed) if auto_inputs else input_cases(inputs))[0]
        self.session.seed(seed)
        self._handle_weights()
        job = dict(input_shapes=None, input_arrays=case, seed=seed, rtol=rtol, atol=atol, sync_weights=False,
                   weight_map=self._weight_map(), isolate_blamed=isolate, float64_reference=float64_reference)
        if backward:
            report = run_backward_locate(self.session, "mse" if backward is True else backward, **job)
        else:
            report = run_locate(self.session, **job)
        print_locate(report)
        return report

    def _run_case(self, index, case, rtol, atol, equal_nan, seconds) -> list[OutputRow]:
        timings = {}

        def timed(role, worker):
            start = time.perf_counter()
            outputs = worker.forward(case).outputs
            timings[role] = time.perf_counter() - start
            return outputs

        start = time.perf_counter()
        pt_out, ms_out = self.session.both(lambda: timed("pt", self.session.pt), lambda: timed("ms", self.session.ms))
        seconds["forward"] += time.perf_counter() - start
        other = "MindTorch" if self.auto_conv_ckpt == 2 else "MindSpore"
        self._print(f"In test case {index}, the PyTorch net inference completed cost {timings['pt']:.5f} seconds.")
        self._print(f"In test case {index}, the {other} net inference completed cost {timings['ms']:.5f} seconds.")
        if len(pt_out) != len(ms_out):
            raise MsparityError(f"case {index}: the nets return different numbers of outputs "
                                f"(PyTorch {len(pt_out)}, MindSpore {len(ms_out)})")
        rows = []
        pt_names = _ts_output_names([t.name for t in pt_out])
        ms_names = _ts_output_names([t.name for t in ms_out])
        for pt_t, ms_t, pt_name, ms_name in zip(pt_out, ms_out, pt_names, ms_names):
            shown_pt, shown_ms = f"step_{index}_{pt_name}", f"step_{index}_{ms_name}"
            if pt_t.shape != ms_t.shape:
                log.warning("case %d: output %s has shape %s in PyTorch, %s in MindSpore", index, pt_name,
                            pt_t.shape, ms_t.shape)
                rows.append(OutputRow(index, shown_pt, shown_ms, None, f"shape {pt_t.shape} vs {ms_t.shape}"))
                continue
            comparison = metrics.compare_tensors(pt_t, ms_t, rtol, atol, equal_nan)
            rows.append(OutputRow(index, shown_pt, shown_ms, comparison))
        return rows
