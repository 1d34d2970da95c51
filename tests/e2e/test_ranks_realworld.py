"""Locate across layouts on code nobody here wrote: HuggingFace's Llama split over 2 torch ranks by its own
``base_model_tp_plan`` (tests/fixtures/realworld/hf_tp_pt.py), its slices declared from that plan
(pt_worker/ranks.py), against mindone's Llama in one MindSpore process."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.distributed.tensor import Replicate, Shard
from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel

from pt_worker.ranks import activations_for_tp_plan
from tests.conftest import run_cli
from tests.e2e.rank_jobs import rank_job

PT, MS = "tests.fixtures.realworld.hf_tp_pt:llama", "tests.fixtures.realworld.hf_ms:llama"


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.up, self.act, self.down = nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4)
        self.drop = nn.Dropout(0.0)

    def forward(self, x):
        return self.drop(self.down(self.act(self.up(x))))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.layers = nn.Embedding(10, 4), nn.ModuleList([Mlp(), Mlp()])

    def forward(self, ids):
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x)
        return x


HF_PLAN = {"embed": "rowwise", "layers.*.up": "colwise", "layers.*.down": "rowwise"}


def test_a_plan_declares_the_slices_of_every_module_it_matches():
    assert activations_for_tp_plan(Net(), HF_PLAN) == {  # a row-parallel Embedding takes whole ids, gives whole rows
        "layers.0.up": {"outputs": "shard(-1)"}, "layers.0.down": {"inputs": "shard(-1)"},
        "layers.1.up": {"outputs": "shard(-1)"}, "layers.1.down": {"inputs": "shard(-1)"}}
    styles = {"layers.0.up": ColwiseParallel(output_layouts=Replicate()), "layers.1.up": ColwiseParallel(),
              "layers.*.down": RowwiseParallel(output_layouts=Shard(1))}  # torch's styles; 0.up gathers its output
    assert activations_for_tp_plan(Net(), styles) == {
        "layers.1.up": {"outputs": "shard(-1)"}, "layers.0.down": {"inputs": "shard(-1)", "outputs": "shard(1)"},
        "layers.1.down": {"inputs": "shard(-1)", "outputs": "shard(1)"}}
    outer = nn.Sequential()
    outer.add_module("model", Net())
    assert activations_for_tp_plan(outer, HF_PLAN, prefix="model")["model.layers.1.down"] == {"inputs": "shard(-1)"}


def test_a_traced_forward_follows_a_slice_into_the_modules_it_feeds_and_no_further():
    ids = torch.tensor([[1, 2, 3]])
    found = activations_for_tp_plan(Net(), HF_PLAN, inputs=(ids,), extra={"layers.1.drop": "replicate"})
    assert found["layers.0.act"] == found["layers.1.act"] == {"inputs": "shard(-1)", "outputs": "shard(-1)"}
    assert "layers.0.drop" not in found  # fed the whole output of a row-parallel layer
    assert found["layers.1.drop"] == {"outputs": "replicate"}  # extra: by hand, over what was derived
    with pytest.raises(ValueError, match="'layers.*.gate' matches no module"):
        activations_for_tp_plan(Net(), {"layers.*.gate": "colwise"})
    with pytest.raises(ValueError, match="the style 'sequence_parallel'"):
        activations_for_tp_plan(Net(), {"layers.*.up": "sequence_parallel"})


@pytest.fixture(scope="module")
def llama_ranks(tmp_path_factory):
    with rank_job("pt", PT, 2, tmp_path_factory.mktemp("hf-ranks")) as pt:
        yield pt


def test_llama_split_by_its_plan_locates_clean_forward_and_backward_against_mindone(llama_ranks, tmp_path):
    result = run_cli("locate", "--backward", "--pt", llama_ranks, "--ms-model", MS, "--json", str(tmp_path / "l.json"))
    assert result.code == 0 and "PASS" in result.stdout, result.stdout + result.stderr
    report = json.loads((tmp_path / "l.json").read_text())
    assert report["first_divergent"] is None and report["first_divergent_backward"] is None
    judged = {row["pt"]: row for row in report["curve"]}  # the derived act_fn declaration paired and judged it
    assert judged["layers.0.mlp.act_fn"]["ms"] == "layers.0.mlp.act_fn" and judged["layers.0.mlp.act_fn"]["ratio"] < 10
    assert not report["unmatched"], report["unmatched"]


@pytest.mark.parametrize("bug, module", [("tests.fixtures.realworld.hf_tp_bugs_ms:llama_gelu_mlp", "layers.0.mlp.act_fn"),
                                         ("tests.fixtures.realworld.hf_ms:llama_rmsnorm_eps",
                                          "layers.0.input_layernorm")])
def test_a_mindone_bug_is_located_across_the_layouts(llama_ranks, bug, module, tmp_path):
    located = run_cli("locate", "--pt", llama_ranks, "--ms-model", bug, "--json", str(tmp_path / "l.json"))
    assert located.code == 1, located.stdout + located.stderr
    found = json.loads((tmp_path / "l.json").read_text())["first_divergent"]
    assert (found["pt"], found["ms"]) == (module, module), found


def test_an_undeclared_act_fn_is_named_not_blamed_on_its_parent(tmp_path):
    with rank_job("pt", "tests.fixtures.realworld.hf_tp_pt:llama_plan_only", 2, tmp_path) as pt:
        result = run_cli("locate", "--pt", pt, "--ms-model", "tests.fixtures.realworld.hf_tp_bugs_ms:llama_gelu_mlp")
    assert result.code == 3 and "'layers.0.mlp.act_fn' inputs are [2, 12, 32]" in result.stderr, result.stderr
    assert '"activations": {"layers.0.mlp.act_fn": {"inputs": "shard(-1)"}}' in result.stderr
