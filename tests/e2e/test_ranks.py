"""Sharded nets: each side one worker per rank under its own launcher (torchrun, msrun), 2 ranks a side on CPU.

The coordinator dials rank 0, finds the other ranks, sends every compute call to all of them in one order,
gathers whole tensors from the ranks' slices and cuts them again for the other side, whose number of ranks may
differ (pt TP=2 vs ms TP=1 and vs ms TP=2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from coordinator.client import WorkerClient
from proto.errors import WorkerError
from tests.conftest import PYTHON, REPO, hand_started_worker, repo_env, run_cli
from tests.e2e.rank_jobs import rank_job

PT, MS = "examples.tp_block_pt:build", "examples.tp_block_ms:build"


@pytest.fixture(scope="module")
def groups(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ranks")
    with rank_job("pt", PT, 2, tmp) as pt, rank_job("ms", MS, 2, tmp) as ms:
        yield pt, ms


@pytest.fixture(scope="module")
def one_pt():
    """The same block in one torch process."""
    with hand_started_worker("pt", PT) as pt:
        yield pt


@pytest.fixture(scope="module")
def undeclared_pt(tmp_path_factory):
    """pt TP=2 with its weights' placements but no "activations"."""
    with rank_job("pt", "tests.fixtures.tp_undeclared_pt:build", 2, tmp_path_factory.mktemp("undeclared")) as pt:
        yield pt


def test_tp2_against_tp1_and_tp2_compares_and_trains_the_same(groups, tmp_path):
    pt, ms = groups
    ping = run_cli("ping", "--pt", pt, "--ms", ms)
    assert ping.code == 0 and "2 ranks (torchrun)" in ping.stdout and "2 ranks (msrun)" in ping.stdout, ping.stderr
    for ms_side in (("--ms", ms), ("--ms-model", MS)):
        result = run_cli("compare", "--pt", pt, *ms_side, "--json", str(tmp_path / "c.json"))
        assert result.code == 0, result.stdout + result.stderr
        report = json.loads((tmp_path / "c.json").read_text())
        assert report["weights"]["loaded"] == 8 and report["outputs"][0]["max_abs_diff"] < 1e-5
    steps = run_cli("train-step", "--pt", pt, "--ms", ms, "--steps", "2", "--json", str(tmp_path / "t.json"))
    assert steps.code == 0, steps.stdout + steps.stderr
    grads = {t["pt"]: t for t in json.loads((tmp_path / "t.json").read_text())["steps"][1]["tensors"]
             if t["kind"] == "grad"}
    # the whole gradients: a shard's would have half the rows (fc1) or columns (fc2)
    assert set(grads) == {"norm.weight", "norm.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                          "head.weight", "head.bias"}
    assert all(t["passed"] for t in grads.values())


def test_a_rank_refuses_a_call_that_does_not_reach_every_rank(groups):
    pt, _ = groups
    with WorkerClient(pt, "pt") as rank0:
        rank1 = rank0.describe().rank_addresses[1]
    with WorkerClient(rank1, "pt") as client:
        assert client.describe().rank == 1
        listing = client.list_parameters()  # read-only calls run no collective: served as they come
        assert {p.name: p.placement for p in listing.parameters}["fc1.weight"] == "shard"
        with pytest.raises(WorkerError, match="rank 1 of 2 of a distributed job"):
            client.forward([])


def test_locate_pairs_equal_layouts_and_judges_whole_activations_across_different_ones(groups, tmp_path):
    pt, ms = groups
    same = run_cli("locate", "--pt", pt, "--ms", ms)
    assert same.code == 0 and "PASS: every paired module is within float32 noise" in same.stdout, same.stderr
    # pt TP=2 against one MindSpore process: the declared slices of fc1 and act are gathered on the torch ranks
    located = run_cli("locate", "--isolate", "--pt", pt, "--ms-model", "examples.tp_block_ms:build_tanh_gelu",
                      "--json", str(tmp_path / "l.json"))
    assert located.code == 1, located.stdout + located.stderr
    report = json.loads((tmp_path / "l.json").read_text())
    assert (report["first_divergent"]["pt"], report["first_divergent"]["ms"]) == ("act", "act")
    assert "approximate='tanh'" in report["first_divergent"]["hint"]
    # replayed on both torch ranks, each on its slice of MindSpore's input, the outputs gathered
    isolated = report["first_divergent"]["isolated"]
    assert isolated["confirmed"] and isolated["ratio"] > 100 and isolated["pt_on_ms_inputs_err"] > 1e-4, isolated
    backward = run_cli("locate", "--backward", "--pt", pt, "--ms-model", MS)
    assert backward.code == 0 and "PASS" in backward.stdout, backward.stdout + backward.stderr


def test_undeclared_slices_across_different_layouts_are_named_not_judged(undeclared_pt):
    result = run_cli("locate", "--pt", undeclared_pt, "--ms-model", MS)
    assert result.code == 3, result.stdout + result.stderr
    assert "the pt side's 'fc1' outputs are [2, 8, 32] against [2, 8, 64] on the other" in result.stderr, result.stderr
    assert '"activations": {"fc1": {"outputs": "shard(-1)"}}' in result.stderr


@pytest.mark.parametrize("bug, module", [("build_missing_all_reduce", "fc2"), ("build_bias_on_every_rank", "fc2"),
                                         ("build_wrong_gather_order", "head")])
def test_a_tensor_parallel_bug_on_the_ms_ranks_is_located_to_its_layer(groups, one_pt, undeclared_pt, bug, module,
                                                                       tmp_path):
    pt, _ = groups
    with rank_job("ms", f"examples.tp_block_ms:{bug}", 2, tmp_path) as ms:
        compare = run_cli("compare", "--pt", pt, "--ms", ms)
        located = run_cli("locate", "--isolate", "--pt", pt, "--ms", ms, "--json", str(tmp_path / "l.json"))
        # and against one torch process: the ms ranks' declared slices and partial sums are made whole
        alone = run_cli("locate", "--pt", one_pt, "--ms", ms, "--json", str(tmp_path / "one.json"))
        if bug == "build_missing_all_reduce":  # activations declared on the ms side only: whole ones compare
            one_sided = run_cli("locate", "--pt", undeclared_pt, "--ms", ms)
            assert one_sided.code == 3 and "pt side's 'fc1' outputs are [2, 8, 32]" in one_sided.stderr, one_sided.stderr
    if bug == "build_missing_all_reduce":  # neither side declares: rank 0 pairs with rank 0, fc2 is not replayed
        (tmp_path / "u").mkdir()
        with rank_job("ms", "tests.fixtures.tp_undeclared_ms:build_missing_all_reduce", 2, tmp_path / "u") as ms:
            unreplayed = run_cli("locate", "--isolate", "--pt", undeclared_pt, "--ms", ms)
        assert unreplayed.code == 1, unreplayed.stdout + unreplayed.stderr
        assert "not replayed: --isolate replays 'fc2' on every ms rank" in unreplayed.stdout.replace("\n", " ")
    assert compare.code == 1 and "FAIL" in compare.stdout, compare.stdout + compare.stderr
    assert json.loads((tmp_path / "l.json").read_text())["first_divergent"]["isolated"]["confirmed"]
    for result, report in ((located, "l.json"), (alone, "one.json")):
        assert result.code == 1, result.stdout + result.stderr
        found = json.loads((tmp_path / report).read_text())
        assert (found["first_divergent"]["pt"], found["first_divergent"]["ms"]) == (module, module)
        if bug == "build_missing_all_reduce":  # fc2's outputs are not whole on the ms ranks: said so
            assert "the ms ranks' outputs of 'fc2' differ (rank 0 and rank 1)" in found["first_divergent"]["hint"]
    if module == "head":  # the right logits in the wrong places
        assert "in other places along dim 2" in found["first_divergent"]["hint"], found["first_divergent"]


def test_a_rank_killed_mid_forward_is_named_within_10_s(tmp_path):
    with rank_job("pt", "tests.fixtures.tp_slow_pt:build", 2, tmp_path) as pt:
        with WorkerClient(pt, "pt") as rank0:
            address = rank0.describe().rank_addresses[1]
        with WorkerClient(address, "pt") as rank1:
            victim = rank1.describe().pid
        compare = subprocess.Popen([PYTHON, "-m", "coordinator.cli", "-q", "compare", "--pt", pt, "--ms-model", MS],
                                   cwd=REPO, env=repo_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not os.path.exists(f"/proc/{victim}") or "sleeping" not in (tmp_path / "pt-launcher.log").read_text():
            assert time.monotonic() < deadline and compare.poll() is None, compare.communicate()
            time.sleep(0.1)
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        _, stderr = compare.communicate(timeout=60)
        named = time.monotonic() - killed
    assert compare.returncode == 3, stderr
    assert "rank 1 at" in stderr and "gone" in stderr, stderr
    assert named < 10, named


def test_torchs_own_tensor_parallelism_is_read_from_the_dtensors(groups, tmp_path):
    _, ms = groups  # the ms side declares its placements; the pt side's come from parallelize_module's DTensors
    with rank_job("pt", "examples.tp_block_dtensor_pt:build", 2, tmp_path) as pt:
        with WorkerClient(pt, "pt") as rank0:
            placed = {p.name: (p.placement, p.shard_dim) for p in rank0.list_parameters().parameters}
        compare = run_cli("compare", "--pt", pt, "--ms", ms)
        steps = run_cli("train-step", "--pt", pt, "--ms", ms, "--steps", "2")
    assert placed["fc1.weight"] == ("shard", 0) and placed["fc2.weight"] == ("shard", 1)
    assert placed["fc2.bias"] == ("replicate", 0) and placed["norm.weight"] == ("", 0)
    assert compare.code == 0, compare.stdout + compare.stderr
    assert steps.code == 0 and "PASS: 2 training step(s) agree" in steps.stdout, steps.stdout + steps.stderr


def test_huggingface_llama_split_by_its_own_tp_plan_matches_mindones_in_one_process(tmp_path):
    with rank_job("pt", "tests.fixtures.realworld.hf_tp_pt:llama", 2, tmp_path) as pt:
        with WorkerClient(pt, "pt") as rank0:
            placed = {p.name: (p.placement, p.shard_dim, p.shape) for p in rank0.list_parameters().parameters}
        compare = run_cli("compare", "--pt", pt, "--ms-model", "tests.fixtures.realworld.hf_ms:llama")
        steps = run_cli("train-step", "--pt", pt, "--ms-model", "tests.fixtures.realworld.hf_ms:llama", "--steps", "2")
    assert placed["layers.0.self_attn.q_proj.weight"][:2] == ("shard", 0)  # column-wise: half the rows here
    assert placed["layers.0.mlp.down_proj.weight"][:2] == ("shard", 1)
    assert compare.code == 0 and "PASS" in compare.stdout, compare.stdout + compare.stderr
    assert steps.code == 0 and "PASS: 2 training step(s) agree" in steps.stdout, steps.stdout + steps.stderr


def test_a_tp_pair_given_as_two_specs_is_spawned_under_both_launchers(tmp_path):
    located = run_cli("locate", "--pt-model", PT, "--pt-ranks", "2", "--ms-model", "examples.tp_block_ms:build_tanh_gelu",
                      "--ms-ranks", "2", "--json", str(tmp_path / "l.json"))
    assert located.code == 1, located.stdout + located.stderr
    report = json.loads((tmp_path / "l.json").read_text())
    assert (report["workers"]["pt"]["world_size"], report["workers"]["ms"]["world_size"]) == (2, 2)
    assert report["first_divergent"]["ms"] == "act"
    dialled = run_cli("compare", "--pt", "127.0.0.1:1", "--pt-ranks", "2", "--ms-model", MS)
    assert dialled.code == 2 and "--pt-ranks spawns the model" in dialled.stderr, dialled.stderr
