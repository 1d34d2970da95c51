"""locate's framework-free pieces: tensor summaries and sketches, module alignment, verdict, hints."""

from __future__ import annotations

import contextlib
import hashlib
import math
import subprocess

import numpy as np
import pytest

from coordinator.locate import layer_hints
from coordinator.locate.alignment import align_calls
from coordinator.locate.verdict import PairErrors, first_divergent, judge
from proto.worker import module_records
from proto.worker.module_records import ModuleCall, TensorSummary, estimate_rel_error, summarize
from tests.conftest import PYTHON, REPO, repo_env

# -- summaries and sketches -------------------------------------------------------------------------


def test_statistics_match_numpy_in_float64():
    x = np.random.default_rng(0).standard_normal((3, 70_000)).astype(np.float32)  # several chunks
    s = summarize("x", x)
    wide = x.astype(np.float64)
    assert (s.name, s.dtype, s.shape, s.finite) == ("x", "float32", (3, 70_000), True)
    assert s.min == wide.min() and s.max == wide.max()
    assert s.mean == pytest.approx(wide.mean(), rel=1e-12)
    assert s.norm == pytest.approx(np.linalg.norm(wide), rel=1e-12)
    assert s.sketch.shape == (256,) and s.sketch.dtype == np.float64


def test_sketch_is_linear():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((40, 50)), rng.standard_normal((40, 50))
    combined = summarize("c", a + 2 * b, sketch_size=64).sketch
    assert np.allclose(combined, summarize("a", a, 64).sketch + 2 * summarize("b", b, 64).sketch, rtol=0, atol=1e-9)
    # every element lands in exactly one bucket with sign +-1: the sketch of ones counts signed elements
    codes = module_records.sketch_codes(2000, 64)
    signs = np.where(codes % 2 == 1, -1.0, 1.0)
    expected = np.bincount(codes // 2, weights=signs, minlength=64)
    assert np.array_equal(summarize("ones", np.ones(2000), 64).sketch, expected)


ERROR_KINDS = [((64, 197, 96), "noise"), ((8, 4096), "scaled"), ((32, 256), "one channel"), ((5000,), "sparse")]


@pytest.mark.parametrize("shape, kind", ERROR_KINDS)
def test_error_estimate_within_20_percent(shape, kind):
    rng = np.random.default_rng(len(kind))
    ref = rng.standard_normal(shape) * 3.0
    diff = np.zeros(shape)
    if kind == "noise":
        diff = rng.standard_normal(shape) * 1e-4
    elif kind == "scaled":
        diff = ref * 1e-3
    elif kind == "one channel":  # structured: the last axis has the sketch's period
        diff[..., 7] = rng.standard_normal(shape[0]) * 1e-2
    else:
        diff[rng.choice(ref.size, 3, replace=False)] = [1.0, -2.0, 0.5]
    cand = (ref + diff).astype(np.float32)
    true = np.linalg.norm(cand.astype(np.float64) - ref) / np.linalg.norm(ref)
    estimate = estimate_rel_error(summarize("ref", ref), summarize("cand", cand))
    assert estimate == pytest.approx(true, rel=0.2)


def test_error_estimate_spread_is_about_sqrt_2_over_k():
    rng = np.random.default_rng(3)
    ratios = []
    for seed in range(40):
        ref = rng.standard_normal(20_000)
        cand = ref + rng.standard_normal(20_000) * 1e-3
        true = np.linalg.norm(cand - ref) / np.linalg.norm(ref)
        ratios.append(estimate_rel_error(summarize("r", ref, seed=seed), summarize("c", cand, seed=seed)) / true)
    assert abs(np.mean(ratios) - 1) < 0.03
    assert np.std(ratios) < 0.08  # ~sqrt(2/256)/2 = 0.044 for the norm


SKETCH_IN_SUBPROCESS = """
import hashlib, numpy as np
from proto.worker.module_records import sketch_codes, summarize
x = (np.arange(300_013, dtype=np.float64) % 97 - 48.0).astype(np.float32).reshape(7, -1)
s = summarize("x", x, sketch_size=128, seed=11)
digest = lambda a: hashlib.sha256(a.tobytes()).hexdigest()
print(digest(sketch_codes(300_013, 128, 11)), digest(s.sketch))
"""


def test_sketch_is_identical_in_separate_processes():
    runs = [
        subprocess.run([PYTHON, "-c", SKETCH_IN_SUBPROCESS], cwd=REPO, env=repo_env(), capture_output=True,
                       text=True, timeout=120)
        for _ in range(2)
    ]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr + runs[1].stderr
    assert runs[0].stdout == runs[1].stdout
    x = (np.arange(300_013, dtype=np.float64) % 97 - 48.0).astype(np.float32).reshape(7, -1)
    here = hashlib.sha256(summarize("x", x, sketch_size=128, seed=11).sketch.tobytes()).hexdigest()
    assert runs[0].stdout.split()[1] == here


def test_codes_depend_on_seed_and_index_only_and_stream_past_the_cache(monkeypatch):
    long = module_records.sketch_codes(10_001, 100, seed=5)
    assert np.array_equal(module_records.sketch_codes(333, 100, seed=5), long[:333])
    assert not np.array_equal(module_records.sketch_codes(333, 100, seed=6), long[:333])
    assert long.max() < 200 and len(np.unique(long)) == 200
    monkeypatch.setattr(module_records, "CACHE_ELEMENTS", 1000)
    monkeypatch.setattr(module_records, "CHUNK_ELEMENTS", 999)  # odd chunk starts: word alignment
    monkeypatch.setattr(module_records, "_CACHE", module_records._CodeCache())
    x = np.random.default_rng(4).standard_normal(10_001)
    streamed = summarize("x", x, sketch_size=100, seed=5).sketch
    expected = np.bincount(long // 2, weights=np.where(long % 2 == 1, -x, x), minlength=100)
    assert np.allclose(streamed, expected, rtol=0, atol=1e-10)


def test_non_float_non_finite_empty_and_bfloat16_tensors():
    ints = summarize("i", np.arange(10, dtype=np.int64).reshape(2, 5))
    assert (ints.min, ints.max, ints.mean, ints.sketch.size) == (0.0, 9.0, 4.5, 0)
    assert summarize("b", np.array([True, False, True])).mean == pytest.approx(2 / 3)
    bad = summarize("n", np.array([1.0, np.nan, np.inf, -3.0], np.float32))
    assert (bad.finite, bad.min, bad.max, bad.mean, bad.norm) == (False, -3.0, 1.0, -1.0, math.sqrt(10))
    assert np.all(np.isfinite(bad.sketch))
    empty = summarize("e", np.zeros((0, 3), np.float32))
    assert empty.shape == (0, 3) and math.isnan(empty.min) and empty.norm == 0 and not empty.sketch.any()
    scalar = summarize("s", np.float32(-2.5))
    assert scalar.shape == () and scalar.norm == 2.5
    bf16 = summarize("bf", np.array([0x3F80, 0xC000], np.uint16), dtype="bfloat16")  # 1.0, -2.0
    assert (bf16.dtype, bf16.min, bf16.max, bf16.sketch.tolist()) == ("bfloat16", -2.0, 1.0, [1.0, -2.0])
    assert summarize("x", np.ones(4), sketch_size=0).sketch.size == 0
    with pytest.raises(ValueError):
        summarize("x", np.ones(4), sketch_size=-1)


def test_estimate_is_nan_or_inf_when_it_cannot_be_measured():
    ref = summarize("r", np.ones((4, 4)))
    assert estimate_rel_error(ref, summarize("c", np.ones((4, 4)))) == 0.0
    assert math.isnan(estimate_rel_error(ref, summarize("c", np.ones(16))))  # shape
    assert math.isnan(estimate_rel_error(ref, summarize("c", np.ones((4, 4)), seed=1)))  # seed
    assert math.isnan(estimate_rel_error(ref, summarize("c", np.ones((4, 4)), sketch_size=0)))
    assert math.isnan(estimate_rel_error(summarize("i", np.ones(3, np.int32)), summarize("i", np.ones(3, np.int32))))
    assert estimate_rel_error(ref, summarize("c", np.full((4, 4), np.nan))) == math.inf
    assert math.isnan(estimate_rel_error(summarize("c", np.full((4, 4), np.nan)), ref))


def test_records_round_trip_through_dicts():
    s = summarize("x", np.arange(6, dtype=np.float32).reshape(2, 3), sketch_size=8, seed=3)
    call = ModuleCall("blocks.0.fc1", "Linear", "Linear", 1, 4, 7, (s,), (s,), ("blocks.0.fc1.weight",))
    back = ModuleCall.from_dict(call.to_dict())
    assert back == call and back.key == "blocks.0.fc1#1"
    assert np.array_equal(back.inputs[0].sketch, s.sketch) and back.inputs[0].sketch_seed == 3
    with pytest.raises(ValueError):
        s.sketch[0] = 1.0  # read-only: the summary is a value
    empty = summarize("e", np.zeros(0, np.float32)).to_dict()
    empty.update(min=None, max="inf")  # how msparity's JSON writes NaN and infinities
    back = TensorSummary.from_dict(empty)
    assert math.isnan(back.min) and back.max == math.inf


# -- a hand-built ViT trace on both sides -----------------------------------------------------------


def shape_summary(shape) -> TensorSummary:
    return TensorSummary("t", "float32", tuple(shape), 0.0, 0.0, 0.0, 1.0, True)


class Trace:
    """Records ModuleCalls the way the workers' hooks will: one counter, pre- and post-hook."""

    def __init__(self) -> None:
        self.clock, self.calls, self.counts = 0, [], {}

    @contextlib.contextmanager
    def call(self, path, type_, params=(), out=(2, 17, 64), inp=(2, 17, 64), rule=None):
        start, self.clock = self.clock, self.clock + 1
        yield
        end, self.clock = self.clock, self.clock + 1
        index = self.counts[path] = self.counts.get(path, -1) + 1
        full = tuple(f"{path}.{p}" if path else p for p in params)
        ins, outs = (shape_summary(inp),), (shape_summary(out),)
        self.calls.append(ModuleCall(path, type_, rule or type_, index, start, end, ins, outs, full))

    def leaf(self, *args, **kwargs):
        with self.call(*args, **kwargs):
            pass


def vit_trace(ms: bool) -> list[ModuleCall]:
    """Torch: Linear/GELU/LayerNorm, Dropout `pos_drop` called twice. MindSpore: Dense/GELU/LayerNorm,
    the MLP container named `ffn`, the dropout `drop`, and an extra Softmax cell in each attention."""
    t = Trace()
    linear_type, linear_params = ("Dense" if ms else "Linear"), ("weight", "bias")
    norm = ("gamma", "beta") if ms else ("weight", "bias")
    mlp, drop = ("ffn", "drop") if ms else ("mlp", "pos_drop")
    with t.call("", "ViT", ("cls_token", "pos_embed"), out=(2, 10), inp=(2, 3, 32, 32)):
        t.leaf("patch_embed", "Conv2d", ("weight", "bias"), out=(2, 64, 4, 4), inp=(2, 3, 32, 32))
        t.leaf(drop, "Dropout")
        for b in range(2):
            with t.call(f"blocks.{b}", "Block"):
                t.leaf(f"blocks.{b}.norm1", "LayerNorm", norm)
                with t.call(f"blocks.{b}.attn", "Attention"):
                    t.leaf(f"blocks.{b}.attn.qkv", linear_type, linear_params, out=(2, 17, 192))
                    if ms:
                        t.leaf(f"blocks.{b}.attn.softmax", "Softmax", out=(2, 4, 17, 17), inp=(2, 4, 17, 17))
                    t.leaf(f"blocks.{b}.attn.proj", linear_type, linear_params)
                t.leaf(f"blocks.{b}.norm2", "LayerNorm", norm)
                with t.call(f"blocks.{b}.{mlp}", "Mlp"):
                    t.leaf(f"blocks.{b}.{mlp}.fc1", linear_type, linear_params, out=(2, 17, 128))
                    t.leaf(f"blocks.{b}.{mlp}.act", "GELU", out=(2, 17, 128), inp=(2, 17, 128))
                    t.leaf(f"blocks.{b}.{mlp}.fc2", linear_type, linear_params, inp=(2, 17, 128))
        t.leaf("norm", "LayerNorm", norm)
        t.leaf(drop, "Dropout", out=(2, 64), inp=(2, 64))
        t.leaf("head", linear_type, linear_params, out=(2, 10), inp=(2, 64))
    return t.calls


def vit_name_map(pt_calls) -> dict[str, str]:
    renames = {"weight": "gamma", "bias": "beta"}
    names = {}
    for call in pt_calls:
        for name in call.param_names:
            ms = name.replace(".mlp.", ".ffn.")
            if call.type == "LayerNorm":
                stem, _, local = ms.rpartition(".")
                ms = f"{stem}.{renames[local]}"
            names[name] = ms
    return names


@pytest.fixture(scope="module")
def vit():
    pt, ms = vit_trace(ms=False), vit_trace(ms=True)
    return pt, ms, align_calls(pt, ms, vit_name_map(pt))


def test_alignment_pairs_every_torch_module_of_the_vit(vit):
    pt, ms, alignment = vit
    pairs = {p.pt.key: (p.ms.key, p.how) for p in alignment.pairs}
    assert len(pairs) == len(pt) and not alignment.unmatched_pt
    assert pairs["#0"] == ("#0", "params")
    assert pairs["blocks.0.mlp.fc1#0"] == ("blocks.0.ffn.fc1#0", "params")
    assert pairs["blocks.1.norm2#0"] == ("blocks.1.norm2#0", "params")
    assert pairs["blocks.0#0"] == ("blocks.0#0", "path")
    assert pairs["blocks.1.mlp#0"] == ("blocks.1.ffn#0", "order")
    assert pairs["blocks.0.mlp.act#0"] == ("blocks.0.ffn.act#0", "order")
    # the module called twice pairs call k with call k
    assert pairs["pos_drop#0"] == ("drop#0", "order") and pairs["pos_drop#1"] == ("drop#1", "order")
    assert [p.pt.end for p in alignment.pairs] == sorted(p.pt.end for p in alignment.pairs)
    extra = {u.call.key: u.reason for u in alignment.unmatched_ms}
    assert set(extra) == {"blocks.0.attn.softmax#0", "blocks.1.attn.softmax#0"}
    assert "no torch call" in extra["blocks.0.attn.softmax#0"]


def test_alignment_reports_extra_calls_and_incompatible_types():
    t = Trace()
    t.leaf("fc", "Linear", ("weight",))
    t.leaf("fc", "Linear", ("weight",))
    t.leaf("act", "ReLU")
    pt = t.calls
    m = Trace()
    m.leaf("fc", "Dense", ("weight",))
    m.leaf("tanh", "Tanh")
    m.leaf("sig", "Sigmoid")
    alignment = align_calls(pt, m.calls, {"fc.weight": "fc.weight"})
    assert [(p.pt.key, p.ms.key) for p in alignment.pairs] == [("fc#0", "fc#0")]
    reasons = {u.call.key: u.reason for u in alignment.unmatched_pt}
    assert "called 2 time(s) in torch, 1 in MindSpore" in reasons["fc#1"]
    assert "act#0" in reasons and [u.call.key for u in alignment.unmatched_ms] == ["tanh#0", "sig#0"]
    # One leaf left on each side between the same paired calls, same shapes: a swapped layer, paired.
    m = Trace()
    m.leaf("fc", "Dense", ("weight",))
    m.leaf("tanh", "Tanh")
    alignment = align_calls(pt, m.calls, {"fc.weight": "fc.weight"})
    assert ("act#0", "tanh#0", "order, other type") in [(p.pt.key, p.ms.key, p.how) for p in alignment.pairs]


def test_same_path_other_type_pairs_only_when_calls_and_shapes_agree():
    t = Trace()
    t.leaf("act", "ReLU")
    t.leaf("pool", "MaxPool2d", out=(2, 4))
    m = Trace()
    m.leaf("act", "LeakyReLU")
    m.leaf("pool", "AvgPool2d", out=(2, 5))
    alignment = align_calls(t.calls, m.calls, {})
    assert [(p.pt.key, p.ms.key, p.how) for p in alignment.pairs] == [("act#0", "act#0", "path, other type")]
    assert [u.call.key for u in alignment.unmatched_pt] == ["pool#0"]


def test_roots_pair_whatever_their_classes():
    t, m = Trace(), Trace()
    with t.call("", "VisionTransformer"):
        t.leaf("act", "ReLU")
    with m.call("", "ViTPort"):
        m.leaf("act", "ReLU")
    alignment = align_calls(t.calls, m.calls, {})
    assert [(p.pt.key, p.ms.key, p.how) for p in alignment.pairs] == [("act#0", "act#0", "path"), ("#0", "#0", "root")]


def test_parameters_in_a_child_cell_pair_with_the_compatible_ancestor():
    # MindSpore BatchNorm3d keeps its parameters in a nested BatchNorm2d `bn2d`
    t = Trace()
    t.leaf("bn", "BatchNorm3d", ("weight", "bias"), out=(2, 4, 3, 3, 3))
    m = Trace()
    with m.call("bn", "BatchNorm3d", out=(2, 4, 3, 3, 3)):
        m.leaf("bn.bn2d", "BatchNorm2d", ("gamma", "beta"), out=(2, 4, 9, 3))
    alignment = align_calls(t.calls, m.calls, {"bn.weight": "bn.bn2d.gamma", "bn.bias": "bn.bn2d.beta"})
    assert [(p.pt.key, p.ms.key, p.how) for p in alignment.pairs] == [("bn#0", "bn#0", "params")]
    assert [u.call.key for u in alignment.unmatched_ms] == ["bn.bn2d#0"]


# -- verdict ----------------------------------------------------------------------------------------

NOISE = PairErrors(out_err=2e-7, out_floor=1e-7, in_err=2e-7, in_floor=1e-7, allclose_passed=True)
BAD = PairErrors(out_err=3e-3, out_floor=1e-7, in_err=3e-3, in_floor=1e-7, allclose_passed=False)


def errors_after(alignment, first_bad: str, bad_out_only: set[str] = frozenset(), overrides=None):
    """Noise up to first_bad (completion order); from it on outputs diverge, and inputs after it."""
    errors, seen = {}, False
    for pair in alignment.pairs:
        key = pair.pt.key
        if key == first_bad:
            errors[key] = PairErrors(3e-3, 1e-7, 2e-7, 1e-7, False)
            seen = True
        elif seen or key in bad_out_only:
            errors[key] = BAD
        else:
            errors[key] = NOISE
    errors.update(overrides or {})
    return errors


def test_blames_the_injected_module(vit):
    _, _, alignment = vit
    located = first_divergent(judge(alignment, errors_after(alignment, "blocks.0.mlp.act#0")), alignment)
    assert not located and located.blamed.key == "blocks.0.mlp.act#0"
    assert located.blamed.pair.ms.path == "blocks.0.ffn.act" and located.blamed.out_ratio == pytest.approx(3e3)
    assert "GELU" in located.reason
    curve = located.curve
    assert [c.pt_path for c in curve] == [p.pt.path for p in alignment.pairs]
    assert curve[0].out_err == 2e-7 and curve[-1].ratio == pytest.approx(3e3)


def test_blames_the_parent_when_a_childs_inputs_already_differ(vit):
    _, _, alignment = vit
    # attention math between qkv and proj lives in Attention.forward: proj's inputs already differ
    inside = PairErrors(3e-3, 1e-7, 2e-7, 1e-7, False)  # Attention's inputs still match
    overrides = {"blocks.1.attn.proj#0": BAD, "blocks.1.attn#0": inside}
    errors = errors_after(alignment, "blocks.1.attn.proj#0", overrides=overrides)
    located = first_divergent(judge(alignment, errors), alignment)
    assert located.blamed.key == "blocks.1.attn#0"
    assert located.first_diverging.key == "blocks.1.attn.proj#0"
    assert "blocks.1.attn.softmax" in located.reason  # the unpaired cell inside is named


def test_an_error_below_the_divergence_bar_that_grows_past_it_is_blamed_where_it_starts(vit):
    _, _, alignment = vit
    # A LayerNorm epsilon at 8.6x its floor, lifted past 10x by the MLP after it: the norm is blamed.
    keys = [p.pt.key for p in alignment.pairs]
    norm = next(k for k in keys if k.startswith("blocks.1.norm2"))
    after = keys[keys.index(norm) + 1]
    overrides = {norm: PairErrors(8.6e-6, 1e-6, 1e-6, 1e-6, True), after: PairErrors(1.05e-5, 1e-6, 8.6e-6, 1e-6, True)}
    errors = {k: NOISE for k in keys} | overrides
    located = first_divergent(judge(alignment, errors), alignment)
    assert located.blamed.key == norm and located.first_diverging.key == after
    assert "grows from there" in located.reason
    # The same small error that reaches nothing past 10x is not blamed, but named as worth a look.
    quiet = first_divergent(judge(alignment, {k: NOISE for k in keys} | {norm: overrides[norm]}))
    assert quiet.blamed is None and "worth a look" in quiet.reason and "blocks.1.norm2" in quiet.reason


def test_blames_a_parent_whose_children_all_match(vit):
    _, _, alignment = vit
    located = first_divergent(judge(alignment, errors_after(alignment, "blocks.0#0")))
    assert located.blamed.key == "blocks.0#0"


def test_nothing_blamed_within_noise_and_zero_floors_do_not_blame_rounding(vit):
    _, _, alignment = vit
    errors = {p.pt.key: NOISE for p in alignment.pairs}
    errors["patch_embed#0"] = PairErrors(1e-12, 0.0, 0.0, 0.0, True)  # exact in torch, 1e-12 off in MindSpore
    errors["pos_drop#0"] = PairErrors(2e-6, 0.0, 0.0, 0.0, True)
    located = first_divergent(judge(alignment, errors))
    assert located and located.blamed is None and located.first_allclose_failure is None
    assert "within float32 noise" in located.reason
    errors["pos_drop#0"] = PairErrors(5e-6, 0.0, 0.0, 0.0, True)  # 5x: not blamed, named as worth a look
    located = first_divergent(judge(alignment, errors))
    assert located.blamed is None and "worth a look: pt pos_drop" in located.reason
    errors["pos_drop#0"] = PairErrors(2e-5, 0.0, 0.0, 0.0, True)  # >= 10 * 1e-6: a real difference
    assert first_divergent(judge(alignment, errors)).blamed.key == "pos_drop#0"


def test_allclose_is_the_second_signal(vit):
    _, _, alignment = vit
    errors = {p.pt.key: NOISE for p in alignment.pairs}
    errors["blocks.0.norm1#0"] = PairErrors(3e-7, 1e-7, 2e-7, 1e-7, False)  # fails allclose, within noise
    located = first_divergent(judge(alignment, errors))
    assert located.blamed is None and located.first_allclose_failure.key == "blocks.0.norm1#0"
    errors["blocks.0.norm1#0"] = PairErrors(math.nan, math.nan, 2e-7, 1e-7, False)  # not measured
    verdicts = judge(alignment, errors)
    assert first_divergent(verdicts).blamed.key == "blocks.0.norm1#0"
    assert next(v for v in verdicts if v.key == "blocks.0.norm1#0").signal == "allclose"
    missing = judge(alignment, {})
    assert {v.signal for v in missing} == {"unknown"} and first_divergent(missing).blamed is None


def test_shape_mismatch_diverges_and_within_tolerance_noise_is_still_reported():
    t = Trace()
    t.leaf("conv", "Conv2d", ("weight",), out=(1, 4, 6, 6), inp=(1, 3, 8, 8))
    m = Trace()
    m.leaf("conv", "Conv2d", ("weight",), out=(1, 4, 8, 8), inp=(1, 3, 8, 8))
    alignment = align_calls(t.calls, m.calls, {"conv.weight": "conv.weight"})
    verdicts = judge(alignment, {"conv#0": PairErrors(math.nan, 1e-7, 0.0, 0.0)})
    assert verdicts[0].signal == "shape" and verdicts[0].output_diverges and verdicts[0].out_ratio == math.inf
    located = first_divergent(verdicts)
    assert located.blamed.key == "conv#0" and "(1, 4, 6, 6)" in located.reason
    quiet = judge(alignment, {"conv#0": PairErrors(2e-5, 1e-7, 0.0, 0.0, True)}, abs_floor=0.0)
    assert quiet[0].signal == "shape"
    m2 = Trace()
    m2.leaf("conv", "Conv2d", ("weight",), out=(1, 4, 6, 6), inp=(1, 3, 8, 8))
    same = align_calls(t.calls, m2.calls, {"conv.weight": "conv.weight"})
    v = judge(same, {"conv#0": PairErrors(2e-5, 1e-7, 0.0, 0.0, True)})[0]
    assert v.output_diverges and v.allclose_passed and "within rtol/atol" in v.note


# -- hints ------------------------------------------------------------------------------------------


DIFFERENCES = [h for h in layer_hints.HINTS if h.fix is not None]


@pytest.mark.parametrize("row", DIFFERENCES, ids=lambda h: f"{h.label}:{h.fix[:20]}")
def test_every_difference_row_is_offered_for_its_types(row):
    pt, ms = sorted(row.pt_types)[0], sorted(row.ms_types)[0]
    line = layer_hints.hint_for(pt, ms, dict(row.when))
    assert line is not None and "\n" not in line
    assert row.cause in line and row.fix in line


@pytest.mark.parametrize("pt, ms", [("ReLU6", "ReLU6"), ("ELU", "ELU"), ("Hardswish", "HSwish"), ("Linear", "Dense")])
def test_agreeing_rows_say_the_defaults_agree(pt, ms):
    assert "agree" in layer_hints.hint_for(pt, ms, {"ms_lacks_bias": False})


def test_hints_carry_layer_facts_numbers_and_follow_the_evidence():
    assert layer_hints.hint_for("LayerNorm", "LayerNorm", None).startswith(
        "LayerNorm differs: MindSpore's default epsilon is 1e-7, torch's eps 1e-5")
    assert "epsilon=1e-5" in layer_hints.hint_for("LayerNorm", "LayerNorm", None)
    assert "approximate=False" in layer_hints.hint_for("GELU", "GELU", None)
    assert "alpha=0.01" in layer_hints.hint_for("LeakyReLU", "LeakyReLU", None)
    assert "keep_prob" in layer_hints.hint_for("Dropout", "Dropout", {"training": True})
    assert "keep_prob" not in layer_hints.hint_for("Dropout", "Dropout", {"training": False})
    assert "momentum=1 - torch momentum" in layer_hints.hint_for("BatchNorm2d", "BatchNorm2d", {"training": True})
    wider = layer_hints.hint_for("Conv2d", "Conv2d", {"shape_differs": True, "ms_lacks_bias": False})
    assert "pad_mode='pad', padding=p" in wider and "has_bias" not in wider and "TF-style" not in wider
    same_shape = layer_hints.hint_for("Conv2d", "Conv2d", {"shape_differs": False, "ms_lacks_bias": True})
    assert same_shape.index("has_bias=True") < same_shape.index("TF-style")
    assert "stride=kernel_size" in layer_hints.hint_for("MaxPool2d", "MaxPool2d", {"shape_differs": True})
    assert "axis" in layer_hints.hint_for("Softmax", "Softmax", None)
    assert layer_hints.hint_for("Attention", "Attention", None) is None


def test_evidence_read_off_two_calls():
    t = Trace()
    t.leaf("conv", "Conv2d", ("weight", "bias"), out=(1, 4, 6, 6))
    m = Trace()
    m.leaf("conv", "Conv2d", ("weight",), out=(1, 4, 8, 8))
    evidence = layer_hints.evidence_from_calls(t.calls[0], m.calls[0], training=False)
    assert evidence == {"shape_differs": True, "ms_lacks_bias": True, "size_factor": False, "training": False}
    assert "has_bias=True" in layer_hints.hint_for("Conv2d", "Conv2d", evidence)
    m = Trace()
    m.leaf("conv", "Conv2d", ("weight", "bias"), out=(1, 4, 12, 12))  # stride 1 where torch strides 2
    evidence = layer_hints.evidence_from_calls(t.calls[0], m.calls[0], training=False)
    assert evidence["size_factor"] and layer_hints.hint_for("Conv2d", "Conv2d", evidence).startswith(
        "Conv differs: the output size differs by a whole factor: the stride differs")


def test_a_tensor_no_larger_than_the_sketch_is_its_own_sketch_and_its_error_is_exact():
    rng = np.random.default_rng(4)
    ref = rng.standard_normal((4, 8))
    cand = ref + rng.standard_normal((4, 8)) * 1e-3
    a, b = summarize("a", ref, sketch_size=32), summarize("b", cand, sketch_size=32)
    assert a.sketch.size == 32 and np.array_equal(a.sketch, ref.reshape(-1))
    exact = np.linalg.norm(cand - ref) / np.linalg.norm(ref)
    assert estimate_rel_error(a, b) == pytest.approx(exact, rel=1e-12)
    assert summarize("big", np.ones(33), sketch_size=32).sketch.size == 32


def test_a_path_pairing_must_agree_with_the_parameter_pairings():
    """mindcv's features.3 is not torchvision's features.3 when their convs pair elsewhere."""
    t = Trace()
    with t.call("features.3", "InvertedResidual", inp=(2, 8), out=(2, 8)):
        t.leaf("features.3.conv", "Conv2d", ("weight",), inp=(2, 8), out=(2, 8))
    with t.call("features.4", "InvertedResidual", inp=(2, 8), out=(2, 16)):
        t.leaf("features.4.conv", "Conv2d", ("weight",), inp=(2, 8), out=(2, 16))
    m = Trace()
    with m.call("features.3", "InvertedResidual", inp=(2, 4), out=(2, 8)):
        m.leaf("features.3.conv", "Conv2d", ("weight",), inp=(2, 4), out=(2, 8))
    with m.call("features.5", "InvertedResidual", inp=(2, 8), out=(2, 8)):
        m.leaf("features.5.conv", "Conv2d", ("weight",), inp=(2, 8), out=(2, 8))
    with m.call("features.6", "InvertedResidual", inp=(2, 8), out=(2, 16)):
        m.leaf("features.6.conv", "Conv2d", ("weight",), inp=(2, 8), out=(2, 16))
    name_map = {"features.3.conv.weight": "features.5.conv.weight", "features.4.conv.weight": "features.6.conv.weight"}
    alignment = align_calls(t.calls, m.calls, name_map)
    pairs = {p.pt.path: p.ms.path for p in alignment.pairs}
    assert pairs == {"features.3.conv": "features.5.conv", "features.4.conv": "features.6.conv",
                     "features.3": "features.5", "features.4": "features.6"}


def _padded_pool_port(out: int) -> list[ModuleCall]:
    m = Trace()
    with m.call("pool", "SequentialCell", inp=(2, 4, 8, 8), out=(2, 4, out, out)):
        m.leaf("pool.0", "Pad", inp=(2, 4, 8, 8), out=(2, 4, 10, 10))
        m.leaf("pool.1", "MaxPool2d", inp=(2, 4, 10, 10), out=(2, 4, out, out))
    return m.calls


@pytest.mark.parametrize("ms_out", [4, 8], ids=["same-shape", "stride-lost"])
def test_a_layer_ported_inside_a_container_pairs_with_the_container(ms_out):
    """torch MaxPool2d(padding=1) ~ MindSpore SequentialCell(Pad, MaxPool2d) at the same path; a port whose
    pool lost its stride still pairs (same inputs), so its output shape is what gets blamed."""
    t = Trace()
    t.leaf("pool", "MaxPool2d", inp=(2, 4, 8, 8), out=(2, 4, 4, 4))
    alignment = align_calls(t.calls, _padded_pool_port(ms_out), {})
    assert [(p.pt.key, p.ms.key, p.how) for p in alignment.pairs] == [("pool#0", "pool#0", "path, container")]
    assert [u.call.path for u in alignment.unmatched_ms] == ["pool.0", "pool.1"]
