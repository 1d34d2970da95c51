"""coordinator/locate/verdict.py: judging each aligned pair and blaming the first divergent module."""

from __future__ import annotations

import math

import pytest

from coordinator.locate.alignment import align_calls
from coordinator.locate.verdict import PairErrors, first_divergent, judge
from tests.coordinator.locate_helpers import Trace, vit_alignment

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


@pytest.fixture(scope="module")
def vit():
    return vit_alignment()


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


def test_a_long_curve_shows_a_window_around_the_blamed_row_with_real_indices():
    from types import SimpleNamespace

    from coordinator.render.locate_report import WINDOW, shown_rows

    def verdict(end, diverges=False):
        return SimpleNamespace(pair=SimpleNamespace(pt=SimpleNamespace(end=end)), output_diverges=diverges)

    curve = [verdict(end, diverges=end >= 300) for end in range(400)]
    blamed = curve[300]
    report = SimpleNamespace(verdicts=list(reversed(curve)), blamed=blamed,
                             located=SimpleNamespace(first_diverging=blamed))
    rows = shown_rows(report)
    assert [i for i, _ in rows] == list(range(300 - WINDOW, 300 + WINDOW + 1))
    assert (300, blamed) in rows
    assert len(shown_rows(report, all_rows=True)) == 400
    quiet = SimpleNamespace(verdicts=curve, blamed=None, located=SimpleNamespace(first_diverging=None))
    assert [i for i, _ in shown_rows(quiet)] == list(range(40))
