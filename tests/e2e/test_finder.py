"""NetDifferenceFinder with TroubleShooter's call forms: live nets in this process, spawned specs, addresses."""

from __future__ import annotations

import mindspore as ms
import numpy as np
import pytest
import torch

import ms_worker
import pt_worker
from coordinator import NetDifferenceFinder
from examples import cnn_ms, cnn_pt, mlp_ms, mlp_pt
from proto.errors import UsageError, WorkerError
from proto.formats.npy_files import NpyFileError
from tests.conftest import hand_started_worker


@pytest.fixture(scope="module")
def live_cnn():
    pt_net, (x,) = cnn_pt.build()
    ms_net, _ = cnn_ms.build()
    finder = NetDifferenceFinder(pt_net=pt_net, ms_net=ms_net)
    yield finder, x
    finder.close()


def test_every_inputs_form_in_one_process(live_cnn, tmp_path, capsys):
    finder, x = live_cnn
    np.save(tmp_path / "x.npy", x.numpy())
    forms = {
        "tuple of arrays": ((x.numpy(),), 1),
        "one array": (x.numpy(), 1),
        "list of cases": ([(x.numpy(),), (x.numpy() * 2,)], 2),
        "torch tensors": ([(x,)], 1),
        "mindspore tensors": ([(ms.Tensor(x.numpy()),)], 1),
        "npy path": ((str(tmp_path / "x.npy"),), 1),
        "list of bare items": ([x.numpy()], 1),
    }
    for form, (inputs, cases) in forms.items():
        result = finder.compare(inputs=inputs)
        assert result.passed, form
        assert [r.pt_name for r in result.rows] == [f"step_{i}_out" for i in range(cases)], form
        assert result.params is not None and result.params.passed
    out = capsys.readouterr().out
    assert "The comparison results of Net" in out and "Start comparing PyTorch and MindSpore parameters" in out
    assert "In test case 1, the MindSpore net inference completed cost" in out


def test_auto_inputs_forms_and_their_errors(live_cnn):
    finder, x = live_cnn
    shape = tuple(x.shape)
    one = finder.compare(auto_inputs=((shape, np.float32),))
    assert one.passed and len(one.rows) == 1
    three = finder.compare(auto_inputs={"input": ((shape, np.float32),), "num": 3})
    assert three.passed and [r.case for r in three.rows] == [0, 1, 2]
    for bad, message in ((([1, 2], np.float32), "must be"), ({"input": ((shape, np.float32),)}, "'num'"),
                         ([(shape, np.float32)], "tuple or a dict"), ({"input": ((shape, "f4"),), "num": 1.5}, "int")):
        with pytest.raises(UsageError, match=message):
            finder.compare(auto_inputs=bad)
    with pytest.raises(UsageError, match=r"inputs\[0\]: inputs must be numpy arrays"):
        finder.compare(inputs=[(object(),)])
    with pytest.raises(NpyFileError, match="missing.npy: no such file"):
        finder.compare(inputs=("missing.npy",))


def test_params_paths_take_precedence_and_kwargs_are_checked(tmp_path):
    pt_net, (x,) = mlp_pt.build()
    ms_net, _ = mlp_ms.build()
    torch.save(pt_net.state_dict(), tmp_path / "net.pth")
    pt_worker.get_weight_map(pt_net, weight_map_save_path=tmp_path / "map.json")
    ms_worker.convert_weight_and_load(tmp_path / "map.json", tmp_path / "net.pth", ms_net, print_conv_info=False)
    ms.save_checkpoint(ms_net, str(tmp_path / "net.ckpt"))
    fresh_pt, _ = mlp_pt.build()
    for p in fresh_pt.parameters():
        torch.nn.init.zeros_(p)
    with NetDifferenceFinder(fresh_pt, mlp_ms.build()[0], pt_params_path=str(tmp_path / "net.pth"),
                             ms_params_path=str(tmp_path / "net.ckpt")) as finder:
        assert finder.compare(inputs=(x.numpy(),)).passed
    with pytest.raises(UsageError, match="unknown parameter"):
        NetDifferenceFinder(pt_net, ms_net, inputs=1)
    with pytest.raises(UsageError, match="auto_conv_ckpt=0"):
        NetDifferenceFinder(pt_net, ms_net, ms_params_path=str(tmp_path / "net.ckpt"))


def test_specs_and_addresses_a_gelu_port_bug_fails_and_is_named():
    with NetDifferenceFinder("examples.vit_pt:build", "examples.vit_ms:build_gelu_bug", compare_params=False) as f:
        result = f.compare(auto_inputs=(((2, 3, 32, 32), np.float32),))
        assert not result.passed and [r.pt_name for r in result.rows if not r.passed] == ["step_0_out"]
    with hand_started_worker("pt", "examples.mlp_pt:build") as pt, hand_started_worker("ms", "examples.mlp_ms:build") as ms_:
        with NetDifferenceFinder(pt, ms_, print_level=0) as f:
            assert f.compare(auto_inputs=(((4, 16), np.float32),)).passed


def _forward_error(pt_net, ms_net) -> WorkerError:
    with NetDifferenceFinder(pt_net=pt_net, ms_net=ms_net, compare_params=False, print_level=0) as finder:
        with pytest.raises(WorkerError) as failed:
            finder.compare(inputs=(np.zeros((2, 5), np.float32),))  # the MLP takes 16 features
    return failed.value


def test_a_failing_forward_is_the_same_worker_error_in_process_and_over_grpc(capsys):
    live = _forward_error(mlp_pt.build()[0], mlp_ms.build()[0])
    spawned = _forward_error("examples.mlp_pt:build", "examples.mlp_ms:build")
    for error in (live, spawned):
        assert (error.rpc, error.status) == ("Forward", "INVALID_ARGUMENT")
        assert error.worker.startswith("pt worker")
        assert "forward failed on inputs (input0 [2, 5] float32)" in error.details
    assert live.worker == "pt worker in this process"
    # the servicer prefixes its details with the worker and the RPC; the rest is the adapter's own line
    assert spawned.details == f"pt worker Forward: {live.details}"


def test_a_ckpt_from_convert_loads_into_the_finder_and_unpairable_names_skip_the_parameter_table(tmp_path, capsys):
    from coordinator import convert_weight
    from tests.fixtures import renamed_ms, renamed_pt

    pt_net, (x,) = cnn_pt.build()
    torch.save(pt_net.state_dict(), tmp_path / "cnn.pth")
    pt_worker.get_weight_map(pt_net, weight_map_save_path=tmp_path / "map.json")
    convert_weight(str(tmp_path / "map.json"), str(tmp_path / "cnn.pth"), str(tmp_path / "cnn.ckpt"),
                   print_conv_info=False)  # keeps num_batches_tracked, as TroubleShooter does
    with NetDifferenceFinder(cnn_pt.build()[0], cnn_ms.build()[0], pt_params_path=str(tmp_path / "cnn.pth"),
                             ms_params_path=str(tmp_path / "cnn.ckpt"), print_level=0) as finder:
        assert finder.compare(inputs=(x.numpy(),)).passed

    renamed = renamed_pt.build()[0]
    torch.save(renamed.state_dict(), tmp_path / "renamed.pth")
    ms_net = renamed_ms.build()[0]
    ms_net.extra = ms.Parameter(ms.Tensor(np.zeros(5, np.float32)), name="extra")  # no torch entry can feed it
    ms.save_checkpoint(ms_net, str(tmp_path / "renamed.ckpt"))
    with NetDifferenceFinder(renamed, ms_net, pt_params_path=str(tmp_path / "renamed.pth"), auto_conv_ckpt=0,
                             ms_params_path=str(tmp_path / "renamed.ckpt"), compare_params=True) as finder:
        result = finder.compare(inputs=(np.zeros((4, 8), np.float32),))
    assert result.params is None and result.rows  # the outputs are still compared
    out = capsys.readouterr().out
    assert "The parameters were not compared:" in out and "ms parameters no pt entry maps to (1): extra" in out


def test_the_parameter_check_moves_only_what_differs_and_says_what_streaming_everything_says(tmp_path):
    from coordinator.finder import _HeldWeights
    from coordinator.weights.ckpt_compare import _compare
    from coordinator.weights.param_check import check_params

    pt_net, (x,) = cnn_pt.build()
    torch.save(pt_net.state_dict(), tmp_path / "cnn.pth")
    ms_net = cnn_ms.build()[0]
    with NetDifferenceFinder(pt_net, ms_net, pt_params_path=str(tmp_path / "cnn.pth"), print_level=0) as finder:
        finder.compare(inputs=(x.numpy(),))  # weights synced: every parameter exact
        ms_net.bn1.gamma.set_data(ms_net.bn1.gamma * 1.01)  # then one drifts
        session = finder.session
        plan = session.plan_weights(None)
        streamed, get_weights = [], session.pt.get_weights
        session.pt.get_weights = lambda names=(): (streamed.extend(names), get_weights(names))[1]
        quick = check_params(session, plan)
        del session.pt.get_weights
        shown = {m.ms_name: m.pt_name for m in plan.mappings}
        full = _compare(plan.convert(session.pt.get_weights(plan.pt_names)), shown.get,
                        _HeldWeights(session.ms.get_weights()), True, 1e-4, 1e-4, False)
    assert quick.shape_rows == full.shape_rows
    assert [(v.ref_name, v.cand_name, v.passed) for v in quick.values] == \
        [(v.ref_name, v.cand_name, v.passed) for v in full.values]
    assert [v.ref_name for v in quick.values if not v.passed] == ["bn1.weight"]
    assert streamed == ["bn1.weight"]  # every other tensor was proven exact by digests, renamed ones too
    drifted = next(v for v in quick.values if not v.passed)
    assert drifted.max_abs_diff == next(v for v in full.values if not v.passed).max_abs_diff > 0
