"""Locate with real frameworks: correct pairs blame nothing; each injected porting bug is named where it sits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import run_cli


def _locate_live(pt_module, pt_factory, ms_module, ms_factory, isolate=False):
    from coordinator import NetDifferenceFinder

    pt_net, example = getattr(pt_module, pt_factory)()
    ms_net, _ = getattr(ms_module, ms_factory)()
    with NetDifferenceFinder(pt_net=pt_net, ms_net=ms_net, compare_params=False) as finder:
        return finder.locate(inputs=tuple(x.numpy() for x in example), isolate=isolate)


@pytest.mark.parametrize("pair", ["mlp", "cnn", "vit"])
def test_correct_example_pairs_blame_nothing(pair, capsys):
    import importlib

    report = _locate_live(importlib.import_module(f"examples.{pair}_pt"), "build",
                          importlib.import_module(f"examples.{pair}_ms"), "build")
    assert report.passed and report.blamed is None
    judged = [v for v in report.verdicts if not np.isnan(v.out_ratio)]
    assert judged and max(v.out_ratio for v in judged) < 10
    assert not report.alignment.unmatched_pt and not report.alignment.unmatched_ms
    assert "PASS" in capsys.readouterr().out


def test_gelu_approximate_is_blamed_on_the_first_gelu():
    from examples import vit_ms, vit_pt

    report = _locate_live(vit_pt, "build", vit_ms, "build_gelu_bug", isolate=True)
    pair = report.blamed.pair
    assert (pair.pt.path, pair.ms.path, pair.pt.type) == ("blocks.0.mlp.act", "blocks.0.mlp.act", "GELU")
    assert report.isolation.confirmed
    assert "approximate" in report.hint


def test_dropped_residual_blames_the_block_itself():
    from examples import vit_pt
    from tests.fixtures import locate_bugs_ms

    report = _locate_live(vit_pt, "build", locate_bugs_ms, "vit_residual_dropped_one_block", isolate=True)
    pair = report.blamed.pair
    # Every child of blocks.1 matches; the block's own code (the residual add) is what differs.
    assert (pair.pt.path, pair.ms.path) == ("blocks.1", "blocks.1")
    assert report.isolation.confirmed


def test_layernorm_eps_in_one_block_below_the_output_tolerance(tmp_path):
    out = tmp_path / "locate.json"
    result = run_cli("locate", "--pt-model", "examples.vit_pt:build", "--ms-model",
                     "tests/fixtures/locate_bugs_ms.py:vit_layernorm_eps_one_block", "--isolate", "--json", str(out),
                     "--rtol", "1e-4", "--atol", "1e-4")
    assert result.code == 1, result.stderr + result.stdout
    report = json.loads(out.read_text())
    first = report["first_divergent"]
    assert (first["pt"], first["ms"], first["type"]) == ("blocks.1.norm2", "blocks.1.norm2", "LayerNorm")
    assert first["ratio"] >= 10 and first["exact"]["out_err"] >= 10 * first["exact"]["out_floor"]
    assert first["isolated"]["confirmed"]
    assert "epsilon" in first["hint"]
    # Too small for TroubleShooter's default tolerance (1e-4 / 1e-4) at the network output: compare would pass.
    assert all(o["passed"] for o in report["outputs"])
    assert "FIRST DIVERGENT" in result.stdout and "blocks.1.norm2" in result.stdout
    t = report["traffic"]
    assert t["summary_bytes"] + t["fetched_bytes"] < t["full_dump_bytes"]


def test_conv_pad_mode_same_where_torch_pads_one(tmp_path):
    out = tmp_path / "locate.json"
    result = run_cli("locate", "--pt-model", "tests/fixtures/strided_pt.py:build", "--ms-model",
                     "tests/fixtures/strided_ms.py:build_pad_same_bug", "--isolate", "--json", str(out))
    assert result.code == 1, result.stderr + result.stdout
    first = json.loads(out.read_text())["first_divergent"]
    assert (first["pt"], first["ms"], first["type"]) == ("down", "down", "Conv2d")
    assert first["isolated"]["confirmed"]
    assert "pad_mode" in first["hint"]


def test_hooks_do_not_change_the_outputs():
    from coordinator import local
    from examples import vit_ms, vit_pt
    from proto.codec import NamedArray
    from proto.worker.interface import RecordOptions

    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    inputs = [NamedArray("input0", x)]
    for role, net in (("pt", vit_pt.build()[0]), ("ms", vit_ms.build()[0])):
        adapter = local.adapter_for(role, net)
        plain = adapter.forward(inputs).outputs
        calls = adapter.record(inputs, RecordOptions(64, 0, False)).calls
        root = next(c for c in calls if c.path == "")
        recorded = list(adapter.get_activations("f32", [root.key], False, True))
        again = adapter.forward(inputs).outputs
        assert len(plain) == len(recorded) == 1
        np.testing.assert_array_equal(recorded[0].array, plain[0].array)
        np.testing.assert_array_equal(again[0].array, plain[0].array)


def test_torchvision_and_transformer_idioms_a_correct_port_blames_nothing():
    """In-place ReLU reused per block, ``out += identity``, keyword tensor arguments: all recorded as they ran."""
    from tests.fixtures import styles_ms, styles_pt

    report = _locate_live(styles_pt, "build", styles_ms, "build")
    assert report.passed and not report.alignment.unmatched_pt and not report.alignment.unmatched_ms
    relu_calls = [p for p in report.alignment.pairs if p.pt.path == "blocks.0.relu"]
    assert [p.pt.call for p in relu_calls] == [0, 1]
    # Inputs are taken before the in-place ReLU runs: negative values in, none out.
    assert all(p.pt.inputs[0].min < 0 <= p.pt.outputs[0].min for p in relu_calls)
    attn = report.alignment.pair_for("attn#0")
    assert [s.dtype for s in attn.pt.inputs] == ["float32", "bool"] == [s.dtype for s in attn.ms.inputs]


def test_a_bug_in_a_module_called_with_keyword_tensors_is_isolated_with_them():
    from tests.fixtures import styles_ms, styles_pt

    report = _locate_live(styles_pt, "build", styles_ms, "build_mask_fill_bug", isolate=True)
    pair = report.blamed.pair
    # qkv matches and proj's input already differs: the masking between them is attn's own code.
    assert (pair.pt.path, pair.ms.path, pair.pt.type) == ("attn", "attn", "MaskedAttention")
    assert report.isolation.confirmed and report.isolation.ratio >= 10


def test_a_layer_ported_as_another_type_at_the_same_path_is_paired_and_blamed():
    from tests.fixtures import styles_ms, styles_pt

    report = _locate_live(styles_pt, "build", styles_ms, "build_leaky_relu_bug", isolate=True)
    pair = report.blamed.pair
    assert (pair.pt.path, pair.pt.call, pair.pt.type, pair.ms.type) == ("blocks.1.relu", 0, "ReLU", "LeakyReLU")
    assert pair.how == "path, other type" and report.isolation.confirmed
    assert "LeakyReLU" in report.hint


def test_a_torch_net_that_cannot_run_in_float64_is_judged_without_the_reference(tmp_path):
    out = tmp_path / "locate.json"
    args = ("locate", "--pt-model", "tests/fixtures/styles_pt.py:build_float32_only", "--json", str(out))
    good = run_cli(*args, "--ms-model", "tests/fixtures/styles_ms.py:build_float32_only")
    assert good.code == 0, good.stderr + good.stdout
    assert "float64 copy of the torch net did not run" in json.loads(out.read_text())["reference_note"]
    bad = run_cli(*args, "--ms-model", "tests/fixtures/styles_ms.py:build_float32_only_mask_fill_bug")
    assert bad.code == 1, bad.stderr + bad.stdout
    assert json.loads(out.read_text())["first_divergent"]["pt"] == "attn"


def test_no_reference_skips_the_float64_copy_and_still_names_a_clear_bug(tmp_path):
    out = tmp_path / "locate.json"
    result = run_cli("locate", "--pt-model", "tests/fixtures/styles_pt.py:build", "--ms-model",
                     "tests/fixtures/styles_ms.py:build_mask_fill_bug", "--no-reference", "--json", str(out))
    assert result.code == 1, result.stderr + result.stdout
    report = json.loads(out.read_text())
    assert "skipped" in report["reference_note"] and report["first_divergent"]["pt"] == "attn"


def test_a_layer_ported_without_its_bias_is_compared_and_blamed_not_refused(tmp_path):
    out = tmp_path / "locate.json"
    result = run_cli("locate", "--pt-model", "tests/fixtures/styles_pt.py:build", "--ms-model",
                     "tests/fixtures/styles_ms.py:build_head_without_bias", "--json", str(out))
    assert result.code == 1, result.stderr + result.stdout
    report = json.loads(out.read_text())
    assert report["weights"]["missing_bias"] == ["head.bias"]
    assert report["first_divergent"]["pt"] == "head" and "has_bias=True" in report["first_divergent"]["hint"]
    assert "no bias" in result.stdout


def test_isolation_confirms_a_module_whose_output_shape_differs_on_identical_inputs():
    from tests.fixtures import styles_ms, styles_pt

    report = _locate_live(styles_pt, "build", styles_ms, "build_stem_stride_bug", isolate=True)
    assert report.blamed.pair.pt.path == "stem" and report.blamed.signal == "shape"
    assert report.isolation.confirmed and "shapes differ" in report.isolation.note
