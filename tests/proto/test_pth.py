"""torch .pth read without torch: bit-exact values, views, and refusal of anything but tensors."""

from __future__ import annotations

import io
import pickle
import subprocess
import zipfile

import numpy as np
import pytest
import torch

from proto.formats.pth import PthFormatError, PthReader, UntrustedPickleError, read_pth
from tests.conftest import PYTHON, REPO, repo_env


def bits(t: torch.Tensor) -> bytes:
    t = t.detach().contiguous()
    return (t.view(torch.uint16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()


def test_every_dtype_and_views_read_bit_exactly(tmp_path):
    base = torch.randn(6, 4)
    sd = {
        "f32": torch.randn(3, 5), "f64": torch.randn(2, dtype=torch.float64), "f16": torch.randn(4).half(),
        "bf16": torch.randn(3, 3).to(torch.bfloat16), "i64": torch.arange(5), "i32": torch.arange(3, dtype=torch.int32),
        "i8": torch.tensor([-3, 4], dtype=torch.int8), "u8": torch.tensor([250, 1], dtype=torch.uint8),
        "b": torch.tensor([True, False]), "scalar": torch.tensor(7), "empty": torch.zeros(0, 3),
        "tied_a": base, "tied_b": base, "transposed": base.t(), "slice": base[2:5], "column": base[:, 1],
    }
    torch.save(sd, tmp_path / "all.pth")
    got = read_pth(tmp_path / "all.pth")
    assert list(got) == list(sd)
    for name, tensor in sd.items():
        assert got[name].shape == tuple(tensor.shape), name
        assert got[name].array.tobytes() == bits(tensor), name
    assert got["bf16"].dtype == "bfloat16" and got["scalar"].shape == ()


def test_state_dicts_parameters_and_specs_without_reading_data(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    torch.save(net.state_dict(keep_vars=True), tmp_path / "p.pth")
    with PthReader(tmp_path / "p.pth") as reader:
        specs = {s.name: s for s in reader.specs()}
        assert specs["1.num_batches_tracked"].dtype == "int64" and specs["1.num_batches_tracked"].shape == ()
        assert specs["0.weight"].shape == (4, 3, 3, 3)
        assert reader.read("0.weight").array.tobytes() == bits(net[0].weight)


def test_nested_checkpoint_needs_a_key(tmp_path):
    net = torch.nn.Linear(2, 2)
    torch.save({"model": net.state_dict(), "epoch": 3}, tmp_path / "ck.pth")
    with pytest.raises(PthFormatError, match=r"ck.pth: no tensors at the top level .*one of \['model'\]"):
        PthReader(tmp_path / "ck.pth")
    assert set(read_pth(tmp_path / "ck.pth", key="model")) == {"weight", "bias"}


def test_pickled_model_is_refused(tmp_path):
    torch.save(torch.nn.Linear(2, 2), tmp_path / "model.pth")
    with pytest.raises(UntrustedPickleError, match=r"model.pth: refused to unpickle 'torch.nn.modules.linear.Linear'"):
        PthReader(tmp_path / "model.pth")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_code_executing_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "side_effect"
    payload = pickle.dumps({"weight": _Exploit(marker)}, protocol=2)
    with zipfile.ZipFile(tmp_path / "evil.pth", "w") as archive:
        archive.writestr("evil/data.pkl", payload)
        archive.writestr("evil/byteorder", "little")
    with pytest.raises(UntrustedPickleError, match=r"refused to unpickle '(__builtin__|builtins)\.exec'"):
        PthReader(tmp_path / "evil.pth")
    assert not marker.exists()
    pickle.loads(payload)  # the same payload does run when unpickled freely: the test can fail
    assert marker.exists()


def test_broken_files_give_one_line_errors_naming_the_file(tmp_path):
    torch.save({"w": torch.randn(64, 64)}, tmp_path / "ok.pth")
    data = (tmp_path / "ok.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    (tmp_path / "noise.pth").write_bytes(np.random.default_rng(0).bytes(1000))
    # a storage whose size does not match its declared element count
    buffer = io.BytesIO()
    with zipfile.ZipFile(tmp_path / "ok.pth") as src, zipfile.ZipFile(buffer, "w") as dst:
        for item in src.infolist():
            content = src.read(item)
            dst.writestr(item, content[:-4] if "/data/" in item.filename else content)
    (tmp_path / "short.pth").write_bytes(buffer.getvalue())
    for name, message in [("cut.pth", "not a torch zip"), ("noise.pth", "not a torch zip"),
                          ("missing.pth", "no such file")]:
        with pytest.raises(PthFormatError, match=message) as info:
            read_pth(tmp_path / name)
        assert name in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(PthFormatError, match=r"short.pth: tensor 'w': storage holds 16380 bytes, expected 16384"):
        read_pth(tmp_path / "short.pth")


def test_reading_a_pth_imports_no_framework(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "w.pth")
    code = ("import sys; from proto.formats.pth import read_pth; "
            f"t = read_pth({str(tmp_path / 'w.pth')!r})['w']; assert t.array.tolist() == [1.0, 1.0]; "
            "assert 'torch' not in sys.modules and 'mindspore' not in sys.modules")
    result = subprocess.run([PYTHON, "-c", code], cwd=REPO, env=repo_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
