"""Training-step comparison with real workers: loss, named gradients, updated weights, buffers, Adam moments."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import hand_started_worker, run_cli

PAIR = "tests/fixtures/train_pair_{}.py:{}"


@pytest.fixture(scope="module")
def vit_workers(tmp_path_factory):
    """The seed guide's ViT pair served by two workers started by hand, with a shared token."""
    token = tmp_path_factory.mktemp("token") / "token"
    token.write_text("s3cret\n")
    with hand_started_worker("pt", "examples.vit_pt:build", "--token-file", str(token)) as pt, \
            hand_started_worker("ms", "examples.vit_ms:build", "--token-file", str(token)) as ms:
        yield pt, ms


def _json(path):
    return json.loads(path.read_text())


def test_vit_seed_guide_flow_against_hand_started_workers(vit_workers, tmp_path):
    pt, ms = vit_workers
    base = ["--pt", pt, "--ms", ms, "--token", "s3cret", "--input-shape", "2,3,32,32"]
    compared = run_cli("compare", *base, "--json", str(tmp_path / "compare.json"))
    assert compared.code == 0, compared.stderr + compared.stdout
    for optimizer in ("sgd", "adam"):
        out = tmp_path / f"{optimizer}.json"
        result = run_cli("train-step", *base, "--steps", "3", "--optimizer", optimizer, "--json", str(out))
        assert result.code == 0, result.stderr + result.stdout
        report = _json(out)
        assert report["kind"] == "train-step" and report["passed"]
        assert len(report["loss_curve"]["pt"]) == len(report["loss_curve"]["ms"]) == 3
        for step in report["steps"]:
            assert step["loss_rel_diff"] <= 1e-5
        kinds = {t["kind"] for t in report["steps"][0]["tensors"]}
        assert {"grad", "weight"} <= kinds
        assert ("moment1" in kinds and "moment2" in kinds) == (optimizer == "adam")
        grads = [t for t in report["steps"][0]["tensors"] if t["kind"] == "grad"]
        assert {t["ms"] for t in grads} >= {"blocks.0.norm1.gamma", "head.weight", "cls_token"}
        assert "PASS" in result.stdout


def test_free_running_gives_two_loss_curves(vit_workers, tmp_path):
    pt, ms = vit_workers
    out = tmp_path / "free.json"
    result = run_cli("train-step", "--pt", pt, "--ms", ms, "--token", "s3cret", "--input-shape", "2,3,32,32",
                     "--steps", "3", "--loss", "cross-entropy", "--free-running", "--json", str(out))
    assert result.code == 0, result.stderr + result.stdout
    curve = _json(out)["loss_curve"]
    np.testing.assert_allclose(curve["ms"], curve["pt"], rtol=1e-5)
    assert len(set(np.round(curve["pt"], 6))) == 3  # the nets really trained: a different loss every step


def test_batchnorm_momentum_copied_verbatim_is_named(tmp_path):
    out = tmp_path / "bn.json"
    result = run_cli("train-step", "--pt-model", "examples.cnn_pt:build", "--ms-model",
                     "examples.cnn_ms:build_bn_momentum_bug", "--json", str(out))
    assert result.code == 1, result.stderr + result.stdout
    report = _json(out)
    step = report["steps"][0]
    assert step["loss_passed"]  # the forward uses batch statistics: only the moving statistics go wrong
    failing = {(t["kind"], t["ms"]) for t in step["tensors"] if not t["passed"]}
    assert failing == {("buffer", f"bn{i}.{s}") for i in (1, 2) for s in ("moving_mean", "moving_variance")}
    for row in step["tensors"]:  # a failing row carries its numbers too (it once wrote "comparison": null)
        assert row["comparison"]["max_abs_diff"] > 0 if not row["passed"] else row["comparison"] is not None
    assert "bn1.moving_mean" in result.stdout and "momentum=0.9" in result.stdout
    assert any("BatchNorm moving statistics" in h for h in report["hints"])


def test_factory_loss_and_optimizer_dropout_and_parameter_order(tmp_path):
    out = tmp_path / "factory.json"
    result = run_cli("train-step", "--pt-model", PAIR.format("pt", "build"), "--ms-model", PAIR.format("ms", "build"),
                     "--steps", "3", "--json", str(out))
    assert result.code == 0, result.stderr + result.stdout
    report = _json(out)
    assert report["options"]["loss"] == "factory" and report["options"]["optimizer"] == "factory"
    assert report["order_note"] and "different order" in report["order_note"]
    assert "different order" in result.stdout
    assert all(s["passed"] for s in report["steps"])
    # The nets really trained under the factories' optimizers: the loss moved.
    losses = report["loss_curve"]["pt"]
    assert losses[0] != losses[2]


def test_factory_loss_on_one_side_only_is_a_usage_error():
    result = run_cli("train-step", "--pt-model", PAIR.format("pt", "build_loss_only"), "--ms-model",
                     "examples.mlp_ms:build")
    assert result.code == 2
    assert "only the pt factory supplies a loss" in result.stderr


def test_bad_options_fail_before_spawning():
    result = run_cli("train-step", "--pt-model", "examples.mlp_pt:build", "--ms-model", "examples.mlp_ms:build",
                     "--steps", "0")
    assert result.code == 2 and "--steps must be at least 1" in result.stderr
    result = run_cli("train-step", "--pt-model", "examples.mlp_pt:build", "--ms-model", "examples.mlp_ms:build",
                     "--lr", "-1")
    assert result.code == 2 and "'-1' must be a finite number > 0" in result.stderr


def test_live_nets_in_one_process_through_the_finder(capsys):
    from coordinator import NetDifferenceFinder
    from examples import cnn_ms, cnn_pt

    pt_net, _ = cnn_pt.build()
    ms_net, _ = cnn_ms.build()
    with NetDifferenceFinder(pt_net=pt_net, ms_net=ms_net) as finder:
        report = finder.train_step(auto_inputs=(((4, 3, 32, 32), np.float32),), steps=3, optimizer="adam",
                                   loss="cross-entropy")
    assert report.passed
    assert all(step.loss_rel_diff <= 1e-5 for step in report.steps)
    assert report.steps[0].count("buffer") == 4  # running_mean/var of both BatchNorms, num_batches_tracked dropped
    assert "PASS" in capsys.readouterr().out


def test_a_parameter_the_loss_never_reaches_compares_as_zero_gradients(tmp_path):
    report = tmp_path / "train.json"
    result = run_cli("train-step", "--pt-model", "tests/fixtures/unreached_pair.py:build_pt",
                     "--ms-model", "tests/fixtures/unreached_pair.py:build_ms", "--json", str(report))
    assert result.code == 0, result.stdout + result.stderr
    assert "2 parameter(s) the loss does not reach" in result.stdout and "pooler.bias, pooler.weight" in result.stdout
    rows = {(r["kind"], r["pt"]): r for r in json.loads(report.read_text())["steps"][0]["tensors"]}
    pooler = rows[("grad", "pooler.weight")]
    assert pooler["passed"] and "torch produced no gradient" in pooler["note"]
    assert pooler["comparison"]["max_abs_diff"] == 0.0
    assert all(r["comparison"] is not None for r in rows.values())  # every row carries its numbers, pass or fail
    assert not rows[("grad", "head.weight")]["note"] and rows[("grad", "head.weight")]["comparison"]["total"] == 24
