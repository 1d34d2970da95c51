"""Weight migration end to end: torch.save -> msparity convert (no framework) -> mindspore.load_checkpoint."""

from __future__ import annotations

import importlib
import json

import mindspore as ms
import numpy as np
import pytest
import torch

import ms_worker
import pt_worker
from tests.conftest import run_cli

EXAMPLES = ["mlp", "cnn", "vit"]


def build_pair(example):
    pt_net, (x,) = importlib.import_module(f"examples.{example}_pt").build()
    ms_net, _ = importlib.import_module(f"examples.{example}_ms").build()
    return pt_net, ms_net, x


def outputs_match(pt_net, ms_net, x) -> float:
    pt_net.eval()
    ms_net.set_train(False)
    with torch.no_grad():
        expected = pt_net(x).numpy()
    got = ms_net(ms.Tensor(x.numpy())).asnumpy()
    return float(np.abs(expected - got).max())


@pytest.mark.parametrize("example", EXAMPLES)
def test_state_dict_converts_without_frameworks_and_loads_with_identical_outputs(example, tmp_path):
    pt_net, ms_net, x = build_pair(example)
    torch.save(pt_net.state_dict(), tmp_path / "net.pth")
    pt_worker.get_weight_map(pt_net, weight_map_save_path=tmp_path / "map.json")
    result = run_cli("convert", "--weight-map", str(tmp_path / "map.json"), "--pth", str(tmp_path / "net.pth"),
                     "--out", str(tmp_path / "net.ckpt"), "--json", str(tmp_path / "conv.json"))
    assert result.code == 0, result.stderr
    assert "The list of conversion result" in result.stdout
    param_not_load, ckpt_not_load = ms.load_param_into_net(ms_net, ms.load_checkpoint(str(tmp_path / "net.ckpt")),
                                                           strict_load=True)
    assert param_not_load == []
    assert all(name.endswith("num_batches_tracked") for name in ckpt_not_load)
    assert outputs_match(pt_net, ms_net, x) <= 1e-5
    rows = json.loads((tmp_path / "conv.json").read_text())["tensors"]
    assert len(rows) == len(pt_net.state_dict())


def test_status_strings_and_conv1d_and_bf16_fp16(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1d = torch.nn.Conv1d(4, 3, 2)
            self.bn = torch.nn.BatchNorm1d(3)
            self.emb = torch.nn.Embedding(5, 3)
            self.prelu = torch.nn.PReLU()
            self.bn3 = torch.nn.BatchNorm3d(2)
            self.fp16 = torch.nn.Linear(2, 2).half()
            self.bf = torch.nn.Linear(2, 2).to(torch.bfloat16)

    net = Net()
    name_map, value_map = pt_worker.get_weight_map(net, weight_name_prefix=None)
    assert value_map == {"conv1d.weight": "expand_dims_axis2"}
    assert name_map["prelu.weight"] == "prelu.w" and name_map["bn3.weight"] == "bn3.bn2d.gamma"
    torch.save(net.state_dict(), tmp_path / "n.pth")
    from coordinator import convert_weight

    rows = {r.pt_name: r for r in convert_weight(pt_file_path=tmp_path / "n.pth", ms_file_save_path=tmp_path / "n.ckpt",
                                                 weight_map=(name_map, value_map), print_conv_info=False)}
    assert rows["conv1d.weight"].status == "Value converted" and rows["conv1d.weight"].ms_shape == (3, 4, 1, 2)
    assert rows["bn.weight"].status == "weight->gamma"
    assert rows["bn.running_var"].status == "running_var->moving_variance"
    assert rows["bn3.weight"].status == "Name converted"
    assert rows["emb.weight"].status == "weight->embedding_table"
    assert rows["conv1d.bias"].status == "Consistent"
    loaded = ms.load_checkpoint(str(tmp_path / "n.ckpt"))
    assert loaded["fp16.weight"].dtype == ms.float16 and loaded["bf.weight"].dtype == ms.bfloat16
    assert np.array_equal(loaded["bf.weight"].float().asnumpy(), net.bf.weight.detach().float().numpy())
    assert np.array_equal(loaded["fp16.weight"].asnumpy(), net.fp16.weight.detach().numpy())
    assert loaded["bn.num_batches_tracked"].shape == ()

    prefixed = {r.pt_name: r for r in convert_weight(
        pt_file_path=tmp_path / "n.pth", ms_file_save_path=tmp_path / "p.ckpt", print_conv_info=False,
        weight_map=pt_worker.get_weight_map(net, weight_name_prefix="pre"))}
    assert prefixed["conv1d.weight"].status == "Name converted; Value converted"
    assert prefixed["conv1d.weight"].ms_name == "pre.conv1d.weight"


def test_troubleshooter_map_file_with_dotted_transform_path_works(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv1d(2, 2, 3))
    torch.save(net.state_dict(), tmp_path / "c.pth")
    ts_map = [{"0.weight": "0.weight", "0.bias": "0.bias"},
              {"0.weight": "troubleshooter.migrator.mapping_relation.weight_adapter.trans_conv1d_weight_value"}]
    (tmp_path / "ts.json").write_text(json.dumps(ts_map))
    result = run_cli("convert", "--weight-map", str(tmp_path / "ts.json"), "--pth", str(tmp_path / "c.pth"),
                     "--out", str(tmp_path / "c.ckpt"))
    assert result.code == 0, result.stderr
    assert ms.load_checkpoint(str(tmp_path / "c.ckpt"))["0.weight"].shape == (2, 2, 1, 3)

    ts_map[1]["0.weight"] = "os.system"
    (tmp_path / "evil.json").write_text(json.dumps(ts_map))
    refused = run_cli("convert", "--weight-map", str(tmp_path / "evil.json"), "--pth", str(tmp_path / "c.pth"),
                      "--out", str(tmp_path / "e.ckpt"))
    assert refused.code == 3 and "'os.system'" in refused.stderr and "never imported" in refused.stderr
    assert not (tmp_path / "e.ckpt").exists()


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing_key", "weights missing from the map: fc.bias"),
        ("extra_key", "map entries not in the weights: ghost.weight"),
        ("truncated", "net.pth"),
        ("not_pth", "net.pth"),
    ],
)
def test_bad_inputs_give_one_line_exit_3_and_no_output_file(case, expected, tmp_path):
    net = torch.nn.Sequential()
    net.add_module("fc", torch.nn.Linear(3, 2))
    torch.save(net.state_dict(), tmp_path / "net.pth")
    name_map, value_map = pt_worker.get_weight_map(net)
    if case == "missing_key":
        del name_map["fc.bias"]
    elif case == "extra_key":
        name_map["ghost.weight"] = "ghost.weight"
    elif case == "truncated":
        data = (tmp_path / "net.pth").read_bytes()
        (tmp_path / "net.pth").write_bytes(data[: len(data) // 2])
    else:
        np.save(tmp_path / "x.npy", np.zeros(3))
        (tmp_path / "x.npy").rename(tmp_path / "net.pth")
    (tmp_path / "map.json").write_text(json.dumps([name_map, value_map]))
    result = run_cli("convert", "--weight-map", str(tmp_path / "map.json"), "--pth", str(tmp_path / "net.pth"),
                     "--out", str(tmp_path / "out.ckpt"))
    assert result.code == 3
    assert len(result.stderr.strip().splitlines()) == 1 and expected in result.stderr, result.stderr
    assert not list(tmp_path.glob("*.ckpt")) and not list(tmp_path.glob(".out.ckpt*"))


def test_convert_weight_and_load_and_save_net_and_weight_params(tmp_path):
    pt_net, ms_net, x = build_pair("cnn")
    pt_worker.save_net_and_weight_params(pt_net, path=tmp_path / "pt")
    assert sorted(p.name for p in (tmp_path / "pt").iterdir()) == [
        "torch_net_architecture.txt", "torch_net_map.json", "torch_troubleshooter_create.pth"]
    assert (tmp_path / "pt" / "torch_net_architecture.txt").read_text() == str(pt_net) + "\n"
    rows = ms_worker.convert_weight_and_load(tmp_path / "pt" / "torch_net_map.json",
                                             tmp_path / "pt" / "torch_troubleshooter_create.pth", ms_net)
    assert len(rows) == len(pt_net.state_dict())
    assert outputs_match(pt_net, ms_net, x) <= 1e-5
    ms_worker.save_net_and_weight_params(ms_net, path=tmp_path / "ms")
    assert sorted(p.name for p in (tmp_path / "ms").iterdir()) == [
        "mindspore_net_architecture.txt", "mindspore_troubleshooter_create.ckpt"]
    saved = ms.load_checkpoint(str(tmp_path / "ms" / "mindspore_troubleshooter_create.ckpt"))
    assert np.array_equal(saved["bn1.moving_mean"].asnumpy(), pt_net.bn1.running_mean.numpy())


def test_weight_map_cli_through_a_worker_matches_the_api(tmp_path):
    result = run_cli("weight-map", "--pt-model", "examples.cnn_pt:build", "--out", str(tmp_path / "m.json"),
                     "--prefix", "backbone", "--json", str(tmp_path / "r.json"))
    assert result.code == 0, result.stderr
    name_map, value_map = json.loads((tmp_path / "m.json").read_text())
    pt_net, _, _ = build_pair("cnn")
    assert [name_map, value_map] == list(pt_worker.get_weight_map(pt_net, weight_name_prefix="backbone"))
    assert name_map["bn1.running_mean"] == "backbone.bn1.moving_mean"
    rows = json.loads((tmp_path / "r.json").read_text())["tensors"]
    assert [r["pt"] for r in rows] == list(pt_net.state_dict())
    bn_mean = next(r for r in rows if r["pt"] == "bn1.running_mean")
    assert bn_mean == {"pt": "bn1.running_mean", "ms": "backbone.bn1.moving_mean", "transform": None, "found_by": "rules",
                       "shape": list(pt_net.bn1.running_mean.shape), "dtype": "float32", "module_type": "BatchNorm2d"}


def test_compare_ckpt_cli_ckpt_vs_ckpt_and_pth_vs_ckpt(tmp_path):
    pt_net, ms_net, _ = build_pair("cnn")
    torch.save(pt_net.state_dict(), tmp_path / "net.pth")
    pt_worker.get_weight_map(pt_net, weight_map_save_path=tmp_path / "map.json")
    ms_worker.convert_weight_and_load(tmp_path / "map.json", tmp_path / "net.pth", ms_net, print_conv_info=False)
    ms.save_checkpoint(ms_net, str(tmp_path / "same.ckpt"))
    ms_net.bn1.gamma.set_data(ms_net.bn1.gamma * 1.01)
    ms.save_checkpoint(ms_net, str(tmp_path / "changed.ckpt"))

    same = run_cli("compare-ckpt", str(tmp_path / "net.pth"), str(tmp_path / "same.ckpt"),
                   "--weight-map", str(tmp_path / "map.json"), "--json", str(tmp_path / "r.json"))
    assert same.code == 0, same.stdout + same.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    rows = {r["orig_name"]: r for r in report["shapes"]}
    assert rows["bn1.num_batches_tracked"]["target_name"] is None  # torch-only entry listed, not dropped
    assert "The list of comparison results for shapes" in same.stdout and "Parameter name of torch" in same.stdout

    changed = run_cli("compare-ckpt", str(tmp_path / "same.ckpt"), str(tmp_path / "changed.ckpt"), "--print-level", "2",
                      "--json", str(tmp_path / "c.json"))
    assert changed.code == 1
    values = json.loads((tmp_path / "c.json").read_text())["values"]
    assert [v["ref_name"] for v in values if not v["passed"]] == ["bn1.gamma"]
    assert "bn1.gamma" in changed.stdout and "conv1.weight" not in changed.stdout.split("values")[-1]

    from coordinator.weights.ckpt_compare import compare_ms_ckpt

    result = compare_ms_ckpt(tmp_path / "same.ckpt", tmp_path / "same.ckpt", print_level=0, compare_value=False)
    assert result.passed and result.values == ()


def test_safetensors_in_and_out(tmp_path):
    from safetensors.torch import save_file

    pt_net, ms_net, x = build_pair("vit")
    save_file(pt_net.state_dict(), str(tmp_path / "model.safetensors"))
    pt_worker.get_weight_map(pt_net, weight_map_save_path=tmp_path / "map.json")
    result = run_cli("convert", "--weight-map", str(tmp_path / "map.json"), "--pth", str(tmp_path / "model.safetensors"),
                     "--out", str(tmp_path / "ms.safetensors"))
    assert result.code == 0, result.stderr
    loaded = ms.load_checkpoint(str(tmp_path / "ms.safetensors"), format="safetensors")
    not_loaded, _ = ms.load_param_into_net(ms_net, loaded, strict_load=True)
    assert not_loaded == [] and outputs_match(pt_net, ms_net, x) <= 1e-5
    ms.save_checkpoint(ms_net, str(tmp_path / "ms.ckpt"))
    same = run_cli("compare-ckpt", str(tmp_path / "ms.safetensors"), str(tmp_path / "ms.ckpt"))
    assert same.code == 0, same.stdout + same.stderr


def test_pickled_model_is_refused_unless_trusted_then_a_pt_worker_loads_it(tmp_path):
    pt_net, ms_net, x = build_pair("cnn")
    torch.save(pt_net, tmp_path / "whole.pth")  # a pickled nn.Module, not a state dict
    pt_worker.get_weight_map(pt_net, weight_map_save_path=tmp_path / "map.json")
    args = ("convert", "--weight-map", str(tmp_path / "map.json"), "--pth", str(tmp_path / "whole.pth"),
            "--out", str(tmp_path / "w.ckpt"))
    refused = run_cli(*args)
    assert refused.code == 3 and "refused to unpickle 'examples.cnn_pt.SmallCNN'" in refused.stderr
    assert "--trust-pickle" in refused.stderr and not (tmp_path / "w.ckpt").exists()
    trusted = run_cli(*args, "--trust-pickle")
    assert trusted.code == 0, trusted.stderr
    not_loaded, _ = ms.load_param_into_net(ms_net, ms.load_checkpoint(str(tmp_path / "w.ckpt")), strict_load=True)
    assert not_loaded == [] and outputs_match(pt_net, ms_net, x) <= 1e-5


def test_a_state_dict_saved_one_file_per_rank_converts_and_compares_whole(tmp_path):
    whole = {"fc1.weight": torch.randn(8, 4), "fc1.bias": torch.randn(8), "fc2.weight": torch.randn(3, 8),
             "fc2.bias": torch.randn(3)}
    torch.save(whole, tmp_path / "whole.pth")
    for rank in range(2):  # Megatron's split: fc1 by output rows, fc2 by input columns, fc2.bias on every rank
        torch.save({"fc1.weight": whole["fc1.weight"].chunk(2, 0)[rank].clone(),
                    "fc1.bias": whole["fc1.bias"].chunk(2, 0)[rank].clone(),
                    "fc2.weight": whole["fc2.weight"].chunk(2, 1)[rank].clone(), "fc2.bias": whole["fc2.bias"]},
                   tmp_path / f"r{rank}.pth")
    (tmp_path / "layout.json").write_text(json.dumps({"fc1.weight": "shard(0)", "fc1.bias": "shard(0)",
                                                      "fc2.weight": "shard(1)"}))
    (tmp_path / "map.json").write_text(json.dumps([{k: k for k in whole}, {}]))
    ranks = f"{tmp_path / 'r0.pth'},{tmp_path / 'r1.pth'}"
    for pth, out, extra in ((ranks, "sharded.ckpt", ("--layout", str(tmp_path / "layout.json"))),
                            (str(tmp_path / "whole.pth"), "whole.ckpt", ())):
        result = run_cli("convert", "--weight-map", str(tmp_path / "map.json"), "--pth", pth,
                         "--out", str(tmp_path / out), *extra)
        assert result.code == 0, result.stderr
    loaded = ms.load_checkpoint(str(tmp_path / "sharded.ckpt"))
    assert np.array_equal(loaded["fc2.weight"].asnumpy(), whole["fc2.weight"].numpy())
    same = run_cli("compare-ckpt", str(tmp_path / "sharded.ckpt"), str(tmp_path / "whole.ckpt"))
    assert same.code == 0, same.stdout + same.stderr
    direct = run_cli("compare-ckpt", ranks, str(tmp_path / "whole.ckpt"), "--weight-map", str(tmp_path / "map.json"),
                     "--layout", str(tmp_path / "layout.json"))
    assert direct.code == 0, direct.stdout + direct.stderr
    unjoined = run_cli("convert", "--weight-map", str(tmp_path / "map.json"), "--pth", ranks,
                       "--out", str(tmp_path / "x.ckpt"))
    assert unjoined.code == 3 and "should be the same on every rank" in unjoined.stderr, unjoined.stderr
    assert not (tmp_path / "x.ckpt").exists()
