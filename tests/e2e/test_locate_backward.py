"""Backward locate with real workers: correct pairs blame nothing; backward-only bugs, a different loss and a
forward bug are each named (the bugs: tests/fixtures/backward_bugs_ms.py)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.conftest import run_cli

BUGS = "tests.fixtures.backward_bugs_ms"


def _locate(pt: str, ms: str, tmp_path, *extra: str):
    result = run_cli("locate", "--pt-model", pt, "--ms-model", ms, "--backward", *extra,
                     "--json", str(tmp_path / "locate.json"))
    return result, json.loads((tmp_path / "locate.json").read_text()) if (tmp_path / "locate.json").exists() else None


@pytest.mark.parametrize("pair", [("examples.mlp_pt:build", "examples.mlp_ms:build"),
                                  ("examples.cnn_pt:build", "examples.cnn_ms:build")], ids=["mlp", "cnn"])
def test_a_correct_pair_blames_nothing_in_the_backward(pair, tmp_path):
    result, report = _locate(*pair, tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    assert report["backward_loss"] == "mse" and report["first_divergent_backward"] is None
    assert report["curve"] and all(row["ratio"] < 10 for row in report["curve"])  # each judged against its floor


@pytest.mark.skipif(importlib.util.find_spec("timm") is None, reason="the realworld packages are not installed")
def test_a_real_port_with_in_place_residuals_blames_nothing(tmp_path):
    """timm's resnet adds its shortcut in place (torch's full backward hooks refuse that; tensor hooks do not)."""
    result, report = _locate("tests.fixtures.realworld.cv_pt:resnet18", "tests.fixtures.realworld.cv_ms:resnet18",
                             tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    assert report["first_divergent_backward"] is None and len(report["curve"]) > 40


@pytest.mark.parametrize("ms, blamed, says", [
    ("scaled_backward", "act2", "1e+06x torch's float32 noise"),  # a custom bprop off by a factor
    ("detached", "fc2", "cut from the graph before it (a stop_gradient or detach); look at pt act1"),
], ids=["scaled-bprop", "stop-gradient"])
def test_a_backward_only_bug_is_named(ms, blamed, says, tmp_path):
    result, report = _locate("examples.mlp_pt:build", f"{BUGS}:{ms}", tmp_path, "--isolate")
    assert result.code == 1, result.stdout + result.stderr
    first = report["first_divergent_backward"]
    assert first["pt"] == blamed and says in first["reason"], first
    assert report["first_divergent"] is None  # the forward agrees
    # the backward replayed alone on torch's exact tensors: the scaled bprop is the cell's own; the cut is before fc2
    assert first["isolated"]["confirmed"] is (ms == "scaled_backward"), first["isolated"]


def test_a_loss_that_sums_where_the_other_averages_is_blamed_on_the_loss(tmp_path):
    result, report = _locate("tests.fixtures.backward_bugs_pt:mean_loss", f"{BUGS}:sum_loss", tmp_path,
                             "--backward", "factory")
    assert result.code == 1, result.stdout + result.stderr
    first = report["first_divergent_backward"]
    assert first["pt"] == "" and "the two sides' losses differ" in first["reason"]


def test_a_forward_bug_is_named_by_the_forward_before_any_backward(tmp_path):
    result, report = _locate("examples.mlp_pt:build", f"{BUGS}:forward_bug", tmp_path)
    assert result.code == 1, result.stdout + result.stderr
    assert report["first_divergent"]["pt"] == "act2" and report["first_divergent_backward"] is None
    assert "fix the forward first" in report["backward_note"]


def test_the_finder_locates_in_the_backward_with_live_nets(capsys):
    """TroubleShooter-style: NetDifferenceFinder(pt_net=..., ms_net=...).locate(..., backward=True), one process."""
    from coordinator import NetDifferenceFinder
    from examples import mlp_pt
    from tests.fixtures import backward_bugs_ms

    pt_net, example = mlp_pt.build()
    ms_net, _ = backward_bugs_ms.scaled_backward()
    with NetDifferenceFinder(pt_net=pt_net, ms_net=ms_net, compare_params=False) as finder:
        report = finder.locate(inputs=tuple(x.numpy() for x in example), backward=True)
    assert report.backward == "mse" and report.blamed.pair.pt.path == "act2"
    assert "FIRST DIVERGENT (backward)" in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("mindone") is None, reason="the realworld packages are not installed")
def test_a_mindone_port_whose_containers_get_no_backward_hook_blames_nothing(tmp_path):
    """MindSpore calls no backward hook for mindone's BERT encoder (it takes a mask, returns a structure): such a
    container is left unjudged, its hooked children are judged."""
    result, report = _locate("tests.fixtures.realworld.hf_pt:bert", "tests.fixtures.realworld.hf_ms:bert", tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    judged = [row for row in report["curve"] if row["ratio"] is not None]
    assert len(judged) > 30 and all(row["ratio"] < 10 for row in judged)
