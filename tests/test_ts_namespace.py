"""``import msparity as ts``: TroubleShooter 1.0.18 scripts run with only their import changed."""

from __future__ import annotations

import re
import subprocess
import textwrap

import mindspore as ms
import numpy as np
import pytest
import torch

import msparity as ts
from examples import mlp_ms, mlp_pt
from tests.conftest import PYTHON, REPO, repo_env


def run_script(code: str, folder, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run code as a user's script file in folder (MindSpore Graph mode needs source on disk), a fresh process."""
    script = folder / "script.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run([PYTHON, str(script)], cwd=folder, env=repo_env(), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


NO_FRAMEWORK = """
    import sys
    import msparity as ts

    def frameworks():
        return sorted(m for m in ("torch", "mindspore") if m in sys.modules)

    assert frameworks() == [], frameworks()
    print("version", ts.__version__)
    # framework-free names resolve without importing a framework
    assert callable(ts.migrator.compare_npy_dir) and callable(ts.migrator.convert_weight)
    assert ts.migrator.NetDifferenceFinder.__name__ == "NetDifferenceFinder"
    assert callable(ts.save) and callable(ts.fix_random) and callable(ts.widget.fix_random)
    for get in (lambda: ts.save_grad, lambda: ts.migrator.api_dump_start, lambda: ts.widget.load_ms_weight2net):
        try:
            get()
        except AttributeError as error:
            print("error", error)
        else:
            raise AssertionError("no AttributeError")
    try:
        ts.no_such_name
    except AttributeError as error:
        print("plain", error)
    assert frameworks() == [], frameworks()
    print("ok")
"""


def test_import_and_framework_free_names_load_no_framework_and_missing_names_say_why(tmp_path):
    result = run_script(NO_FRAMEWORK, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "ok" and re.fullmatch(r"version \d+\.\d+\.\d+\S*", lines[0])
    errors = [line.removeprefix("error ") for line in lines if line.startswith("error ")]
    assert errors[0].startswith("msparity does not provide TroubleShooter's 'save_grad'; ")
    assert errors[1].startswith("msparity does not provide TroubleShooter's 'migrator.api_dump_start'; ")
    assert "ts.migrator.compare_npy_dir" in errors[1]
    assert errors[2] == ("msparity does not provide TroubleShooter's 'widget.load_ms_weight2net'; "
                         "use mindspore.load_param_into_net(net, mindspore.load_checkpoint(file))")
    assert "plain module 'msparity' has no attribute 'no_such_name'" in lines


GRAPH_MODE_SAVE = """
    import os, sys
    import numpy as np
    import msparity as ts          # imported before mindspore: save is pinned on the compiler's lookup
    import mindspore as ms
    from mindspore import nn
    if WITH_TORCH:
        import torch

    ms.set_context(mode=ms.GRAPH_MODE)

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.dense = nn.Dense(3, 2)

        def construct(self, x):
            y = self.dense(x)
            ts.save("ms_ts_save/dense", y)
            ts.migrator.save("ms_ts_save/pair", (x, {"a": y}), suffix="ms")
            return y

    y = Net()(ms.Tensor(np.ones((2, 3), np.float32)))
    ts.save("ms_ts_save/eager", y)
    if WITH_TORCH:
        ts.save("ms_ts_save/torch", torch.ones(2))
    print(sorted(os.listdir("ms_ts_save")))
    assert ("torch" in sys.modules) == WITH_TORCH
    np.testing.assert_array_equal(np.load("ms_ts_save/0_dense.npy"), y.asnumpy())
    np.testing.assert_array_equal(np.load("ms_ts_save/2_eager.npy"), y.asnumpy())
"""


@pytest.mark.parametrize("with_torch", [False, True], ids=["mindspore-only", "torch-too"])
def test_save_inside_a_graph_mode_construct(with_torch, tmp_path):
    result = run_script(f"WITH_TORCH = {with_torch}\n" + textwrap.dedent(GRAPH_MODE_SAVE), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    expected = ["0_dense.npy", "1_pair_0_ms.npy", "1_pair_1_a_ms.npy", "2_eager.npy"] + (["3_torch.npy"] * with_torch)
    assert result.stdout.splitlines()[-1] == str(expected)


# The MindSpore migration guide's ViT example, fully-automatic scheme, with only the import changed.
VIT_GUIDE = """
    import numpy as np
    import msparity as ts

    from examples.vit_ms import ViT as create_model
    from examples.vit_pt import ViT as create_pt_model


    def auto_run_ms_net(num_classes):
        ts.widget.fix_random(16)
        model = create_model(num_classes=num_classes)
        pt_model = create_pt_model(num_classes=num_classes)
        diff_finder = ts.migrator.NetDifferenceFinder(pt_net=pt_model,
                                                      ms_net=model)
        diff_finder.compare(auto_inputs=(((2, 3, 32, 32), np.float32),))


    auto_run_ms_net(10)
"""


def test_migration_guide_vit_script_runs_with_only_the_import_changed(tmp_path):
    result = run_script(VIT_GUIDE, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The comparison results of Net" in result.stdout
    assert re.search(r"step_0_out\s*\S\s*step_0_out\s*\S\s*True\s", result.stdout), result.stdout[-2000:]


def test_weight_migration_through_the_namespace(tmp_path, capsys):
    pt_net, (x,) = mlp_pt.build()
    name_map, value_map = ts.migrator.get_weight_map(pt_net=pt_net, weight_map_save_path=str(tmp_path / "map.json"))
    assert name_map["fc1.weight"] == "fc1.weight" and value_map == {}
    torch.save(pt_net.state_dict(), tmp_path / "net.pth")
    ts.migrator.convert_weight(weight_map_path=str(tmp_path / "map.json"), pt_file_path=str(tmp_path / "net.pth"),
                               ms_file_save_path=str(tmp_path / "net.ckpt"))
    assert (tmp_path / "net.ckpt").is_file()
    ckpt = ms.load_checkpoint(str(tmp_path / "net.ckpt"))
    state = pt_net.state_dict()
    assert sorted(ckpt) == sorted(state)
    for name, value in state.items():
        np.testing.assert_array_equal(ckpt[name].asnumpy(), value.numpy())
    assert ts.migrator.compare_pth_and_ckpt(str(tmp_path / "map.json"), str(tmp_path / "net.pth"),
                                            str(tmp_path / "net.ckpt"))
    assert "The list of conversion result" in capsys.readouterr().out

    ms_net, _ = mlp_ms.build()
    ts.migrator.convert_weight_and_load(str(tmp_path / "map.json"), str(tmp_path / "net.pth"), ms_net)
    np.testing.assert_allclose(ms_net(ms.Tensor(x.numpy())).asnumpy(), pt_net(x).detach().numpy(), rtol=1e-5,
                               atol=1e-6)

    ts.migrator.save_net_and_weight_params(pt_net, path=str(tmp_path / "pt"))
    ts.migrator.save_net_and_weight_params(ms_net, path=str(tmp_path / "ms"))
    assert sorted(p.name for p in (tmp_path / "pt").iterdir()) == [
        "torch_net_architecture.txt", "torch_net_map.json", "torch_troubleshooter_create.pth"]
    assert sorted(p.name for p in (tmp_path / "ms").iterdir()) == [
        "mindspore_net_architecture.txt", "mindspore_troubleshooter_create.ckpt"]
    created = str(tmp_path / "ms/mindspore_troubleshooter_create.ckpt")
    assert ts.migrator.compare_ms_ckpt(str(tmp_path / "net.ckpt"), created)
    with pytest.raises(ValueError, match="torch.nn.Module or a mindspore.nn.Cell, got dict"):
        ts.migrator.save_net_and_weight_params({})


def test_save_both_frameworks_then_compare_npy_dir(tmp_path):
    ts.fix_random(7)
    a, b = torch.rand(3, 4), torch.rand(5)
    ts.fix_random(7)
    assert torch.equal(torch.rand(3, 4), a)
    ts.save(str(tmp_path / "pt/out"), {"a": a, "b": b}, suffix="x")
    ts.save(str(tmp_path / "pt/y"), a * 2)
    ts.save(str(tmp_path / "ms/out"), {"a": ms.Tensor(a.numpy()), "b": ms.Tensor(b.numpy())}, suffix="x")
    ts.save(str(tmp_path / "ms/y"), ms.Tensor(a.numpy()) * 2)
    names = sorted(p.name for p in (tmp_path / "pt").iterdir()), sorted(p.name for p in (tmp_path / "ms").iterdir())
    assert [re.sub(r"^\d+_", "", n) for n in names[0]] == ["out_a_x.npy", "out_b_x.npy", "y.npy"]
    assert [re.sub(r"^\d+_", "", n) for n in names[1]] == ["out_a_x.npy", "out_b_x.npy", "y.npy"]

    pt_dir, ms_dir = str(tmp_path / "pt"), str(tmp_path / "ms")
    by_number = ts.migrator.get_name_map_list_by_number(pt_dir, ms_dir)
    result = ts.migrator.compare_npy_dir(pt_dir, ms_dir, name_map_list=by_number)
    assert result and result.compared == 3 and not result.unpaired

    ts.save(str(tmp_path / "ms2/out"), [ms.Tensor(a.numpy()), ms.Tensor(b.numpy()) + 1], auto_id=False)
    ts.save(str(tmp_path / "pt2/out"), [a, b], auto_id=False)
    differs = ts.migrator.compare_npy_dir(str(tmp_path / "pt2"), str(tmp_path / "ms2"))
    assert not differs and [r.passed for r in differs.rows] == [True, False]

    with pytest.raises(ValueError, match="only output_mode='npy' is supported"):
        ts.save(str(tmp_path / "p"), a, output_mode="print")
    with pytest.raises(TypeError, match="pass suffix='torch'"):
        ts.save(str(tmp_path / "p"), a, "torch")
    with pytest.raises(TypeError, match="torch or mindspore Tensor.*got ndarray"):
        ts.save(str(tmp_path / "p"), [np.ones(2)])


def test_fix_random_asks_torch_for_deterministic_algorithms_without_loading_its_compiler():
    code = ("import sys, torch; from pt_worker.determinism import fix_random; fix_random(3); "
            "print(torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(), "
            "'torch._inductor' in sys.modules, torch.initial_seed())")
    proc = subprocess.run([PYTHON, "-c", code], cwd=REPO, env=repo_env(), capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.stdout.split() == ["True", "True", "False", "3"], proc.stderr[-2000:]
