"""save in torch, MindSpore PyNative and MindSpore Graph mode: exact file names and contents; grad dumps compared."""

from __future__ import annotations

import importlib
import os
import subprocess

import mindspore as ms
import numpy as np
import pytest
import torch

import ms_worker
import pt_worker
from coordinator import compare_grads_dir, get_name_map_list_by_number, get_name_map_list_by_shape_edit_distance
from proto.formats.save_names import COUNTER
from tests.conftest import PYTHON, REPO, hand_started_worker, repo_env, run_cli


def listing(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.npy"))


def test_torch_save_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    COUNTER.reset()
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    pt_worker.save("out/a", t)
    pt_worker.save("out/a.npy", [t, t + 1])
    pt_worker.save("out/a", {"x": t, "skip": None, "z": (t, t)}, suffix="pt")
    pt_worker.save(None, t)
    pt_worker.save("", [t, torch.ones(4)])
    pt_worker.save("out/fixed", t, auto_id=False)
    pt_worker.save("out/bf", t.bfloat16())
    assert listing(tmp_path) == sorted([
        "out/0_a.npy", "out/1_a_0.npy", "out/1_a_1.npy", "out/2_a_x_pt.npy", "out/2_a_z_0_pt.npy",
        "out/2_a_z_1_pt.npy", "3_tensor_(2, 3).npy", "4_tensor_(2, 3)_0.npy", "4_tensor_(4,)_1.npy",
        "out/fixed.npy", "out/5_bf.npy"])
    assert np.array_equal(np.load(tmp_path / "out/1_a_1.npy"), (t + 1).numpy())
    assert np.load(tmp_path / "out/5_bf.npy").dtype == np.float32
    assert not list(tmp_path.rglob("*.partial"))
    with pytest.raises(TypeError, match="got int at 1"):
        pt_worker.save("out/bad", [t, 3])


@pytest.mark.parametrize("mode", ["pynative", "graph"])
def test_mindspore_save_inside_construct(mode, tmp_path):
    proc = subprocess.run([PYTHON, str(REPO / "tests/fixtures/ms_save_script.py"), mode, str(tmp_path)],
                          env=repo_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = [f for f in listing(tmp_path) if f != "expected_h1.npy"]
    first_call = ["dump/0_act.npy", "dump/1_act_0_ms.npy", "dump/1_act_1_ms.npy", "dump/2_act_h.npy",
                  "dump/2_act_relu.npy", "3_tensor_(2, 2).npy"]
    second_call = ["dump/4_act.npy", "dump/5_act_0_ms.npy", "dump/5_act_1_ms.npy", "dump/6_act_h.npy",
                   "dump/6_act_relu.npy", "7_tensor_(2, 2).npy"]
    assert files == sorted(first_call + second_call + ["dump/last.npy"])
    expected_h1 = np.load(tmp_path / "expected_h1.npy")
    assert np.array_equal(np.load(tmp_path / "dump/4_act.npy"), np.arange(6, dtype=np.float32).reshape(2, 3) + 1)
    np.testing.assert_allclose(np.load(tmp_path / "dump/5_act_1_ms.npy"), expected_h1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "dump/6_act_relu.npy"), np.maximum(expected_h1, 0), rtol=1e-5, atol=1e-6)
    last = np.load(tmp_path / "dump/last.npy")
    assert last.dtype == np.float32 and np.allclose(last, expected_h1, rtol=1e-2)


def _one_step_grads(tmp_path):
    """Grads of the same cnn (same weights, same input, MSE to zero) saved by each framework as a user would."""
    pt_net, (x,) = importlib.import_module("examples.cnn_pt").build()
    ms_net, _ = importlib.import_module("examples.cnn_ms").build()
    pt_worker.get_weight_map(pt_net, weight_map_save_path=tmp_path / "map.json")
    torch.save(pt_net.state_dict(), tmp_path / "net.pth")
    ms_worker.convert_weight_and_load(tmp_path / "map.json", tmp_path / "net.pth", ms_net, print_conv_info=False)
    pt_net.train()
    ms_net.set_train(True)
    (pt_net(x) ** 2).mean().backward()
    grads = pt_worker.get_pt_grads(pt_net)
    pt_worker.save(str(tmp_path / "pt" / "torch_grads"), grads)

    def loss(inp):
        return (ms_net(inp) ** 2).mean()

    ms_grads = ms.grad(loss, None, ms_net.trainable_params())(ms.Tensor(x.numpy()))
    ms_worker.save(str(tmp_path / "ms" / "ms_grads"), ms_grads)
    return [name for name, p in pt_net.named_parameters()], ms_net


def test_grad_dumps_pair_by_number_and_by_shape(tmp_path):
    COUNTER.reset()
    names, _ = _one_step_grads(tmp_path)
    expected = [(f"0_torch_grads_{n}_{i}.npy", f"1_ms_grads_{i}.npy") for i, n in enumerate(names)]
    assert get_name_map_list_by_number(tmp_path / "pt", tmp_path / "ms") == expected
    assert get_name_map_list_by_shape_edit_distance(tmp_path / "pt", tmp_path / "ms") == expected
    result = compare_grads_dir(tmp_path / "pt", tmp_path / "ms", rtol=1e-4, atol=1e-6)
    assert result.passed and result.compared == len(names)


def test_seed_scenario_grads_on_two_hosts_compared_from_a_third_place(tmp_path):
    COUNTER.reset()
    _one_step_grads(tmp_path)
    os.unlink(next((tmp_path / "ms").glob("1_ms_grads_0.npy")))  # one grad the port failed to produce
    env = repo_env(MSPARITY_TOKEN="grads")
    with hand_started_worker("pt", None, "--serve-dir", str(tmp_path / "pt"), env=env) as gpu_host, \
            hand_started_worker("ms", None, "--serve-dir", str(tmp_path / "ms"), env=env) as ascend_host:
        result = run_cli("compare-grads", str(tmp_path / "pt"), str(tmp_path / "ms"), "--ref-worker", gpu_host,
                         "--cand-worker", ascend_host, "--atol", "1e-6", env=env, cwd=tmp_path)
    assert result.code == 1, result.stderr
    assert "0_torch_grads_conv1.weight_0.npy" in result.stdout and "only" not in result.stderr
    assert "1 files unpaired" in result.stdout and "0 differ" in result.stdout
