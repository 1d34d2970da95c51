"""torch's legacy (non-zip) .pth read without torch: bit-exact values, views, and refusal of anything but tensors."""

from __future__ import annotations

import io
import os
import pickle
import shlex
import struct
import subprocess
import tarfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

from proto.formats.pth import PthFormatError, PthReader, UntrustedPickleError, read_pth
from tests.conftest import PYTHON, REPO, repo_env
from tests.proto.test_pth import bits

MAGIC, VERSION = 0x1950A86A20F9469CFC6C, 1001
SYS_INFO = {"protocol_version": VERSION, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 8}}


def save_legacy(obj, path, **kwargs) -> None:
    torch.save(obj, path, _use_new_zipfile_serialization=False, **kwargs)


class _Pid:
    """Pickles as the persistent id it carries (a storage reference)."""

    def __init__(self, pid):
        self.pid = pid


class _Tensor:
    """Pickles as torch pickles a tensor: a call of a _rebuild_tensor function on a storage reference."""

    def __init__(self, pid, offset, size, stride, rebuild=torch._utils._rebuild_tensor_v2):
        extra = (False, OrderedDict()) if rebuild is torch._utils._rebuild_tensor_v2 else ()
        self.args, self.rebuild = (_Pid(pid), offset, size, stride, *extra), rebuild

    def __reduce__(self):
        return self.rebuild, self.args


def legacy_bytes(obj, storages: dict[str, np.ndarray], sys_info=SYS_INFO, keys=None) -> bytes:
    """A legacy file laid out as torch's _legacy_save does, with hand-made storage ids (views included)."""
    out = io.BytesIO()

    class Pickler(pickle.Pickler):
        def persistent_id(self, item):
            return item.pid if isinstance(item, _Pid) else None

    for header in (MAGIC, VERSION, sys_info):
        Pickler(out, protocol=2).dump(header)
    Pickler(out, protocol=2).dump(obj)
    pickle.dump(sorted(storages) if keys is None else keys, out, protocol=2)
    for key in sorted(storages):
        out.write(struct.pack("<q", storages[key].size) + storages[key].tobytes())
    return out.getvalue()


def test_every_dtype_and_views_read_bit_exactly(tmp_path):
    base = torch.randn(6, 4)
    sd = {
        "f32": torch.randn(3, 5), "f64": torch.randn(2, dtype=torch.float64), "f16": torch.randn(4).half(),
        "bf16": torch.randn(3, 3).to(torch.bfloat16), "i64": torch.arange(5), "i32": torch.arange(3, dtype=torch.int32),
        "i8": torch.tensor([-3, 4], dtype=torch.int8), "u8": torch.tensor([250, 1], dtype=torch.uint8),
        "b": torch.tensor([True, False, True]), "scalar": torch.tensor(7), "empty": torch.zeros(0, 3),
        "tied_a": base, "tied_b": base, "transposed": base.t(), "slice": base[2:5], "column": base[:, 1],
        "bf16_t": torch.randn(2, 5).to(torch.bfloat16).t(),
    }
    save_legacy(sd, tmp_path / "all.pth")
    got = read_pth(tmp_path / "all.pth")
    assert list(got) == list(sd)
    for name, tensor in sd.items():
        assert got[name].shape == tuple(tensor.shape), name
        assert got[name].array.tobytes() == bits(tensor), name
        assert got[name].array.flags.c_contiguous, name
    assert got["bf16"].dtype == "bfloat16" and got["bf16"].array.dtype == np.uint16
    assert got["f16"].dtype == "float16" and got["b"].dtype == "bool" and got["i64"].dtype == "int64"
    assert got["scalar"].shape == ()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_any_pickle_protocol_torch_writes(tmp_path, protocol):
    sd = {"w": torch.randn(3, 2), "t": torch.randn(2, 3).t()}
    save_legacy(sd, tmp_path / "p.pth", pickle_protocol=protocol)
    got = read_pth(tmp_path / "p.pth")
    assert {name: t.array.tobytes() for name, t in got.items()} == {name: bits(t) for name, t in sd.items()}


def test_state_dicts_parameters_and_specs_without_reading_data(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    save_legacy(net.state_dict(keep_vars=True), tmp_path / "p.pth")
    with PthReader(tmp_path / "p.pth") as reader:
        specs = {s.name: s for s in reader.specs()}
        assert specs["1.num_batches_tracked"].dtype == "int64" and specs["1.num_batches_tracked"].shape == ()
        assert specs["0.weight"].shape == (4, 3, 3, 3)
        assert reader.read("0.weight").array.tobytes() == bits(net[0].weight)
        assert [t.name for t in reader] == list(net.state_dict())


def test_nested_checkpoint_needs_a_key(tmp_path):
    net = torch.nn.Linear(2, 2)
    save_legacy({"model": net.state_dict(), "epoch": 3}, tmp_path / "ck.pth")
    with pytest.raises(PthFormatError, match=r"ck.pth: no tensors at the top level .*one of \['model'\]"):
        PthReader(tmp_path / "ck.pth")
    got = read_pth(tmp_path / "ck.pth", key="model")
    assert set(got) == {"weight", "bias"} and got["weight"].array.tobytes() == bits(net.weight)


def test_storage_views_of_old_files_match_torch(tmp_path):
    """torch < 0.4 wrote storage views: ('storage', type, root key, location, root numel, (view key, offset, size))."""
    root = np.arange(12, dtype=np.float32) * 1.5
    longs = np.arange(4, dtype=np.int64) - 2
    view = ("storage", torch.FloatStorage, "root", "cpu", 12, ("view", 3, 6))
    sd = OrderedDict(
        whole=_Tensor(("storage", torch.FloatStorage, "root", "cpu", 12, None), 0, (3, 4), (4, 1)),
        on_view=_Tensor(view, 1, (2, 2), (2, 1)),  # root elements 4, 5, 6, 7
        on_view_t=_Tensor(view, 0, (3, 2), (1, 3)),  # transposed within the view: root 3..8
        v1=_Tensor(("storage", torch.LongStorage, "longs", "cpu", 4, None), 1, (3,), (1,),
                   rebuild=torch._utils._rebuild_tensor),  # torch 0.3's rebuild function
    )
    (tmp_path / "old.pth").write_bytes(legacy_bytes(sd, {"root": root, "longs": longs}))
    expected = torch.load(tmp_path / "old.pth", weights_only=False)
    got = read_pth(tmp_path / "old.pth")
    assert list(got) == list(expected)
    for name, tensor in expected.items():
        assert got[name].shape == tuple(tensor.shape) and got[name].array.tobytes() == bits(tensor), name
    assert got["on_view"].array.tolist() == [[6.0, 7.5], [9.0, 10.5]] and got["v1"].dtype == "int64"


def test_pickled_model_is_refused(tmp_path):
    save_legacy(torch.nn.Linear(2, 2), tmp_path / "model.pth")
    with pytest.raises(UntrustedPickleError, match=r"model.pth: refused to unpickle 'torch.nn.modules.linear.Linear'"):
        PthReader(tmp_path / "model.pth")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@pytest.mark.parametrize("where", ["sys_info", "object", "storage list"])
def test_code_executing_pickle_is_refused_without_running(tmp_path, where):
    marker = tmp_path / "side_effect"
    exploit = _Exploit(marker)
    data = legacy_bytes({"weight": exploit} if where == "object" else {}, {},
                        sys_info=exploit if where == "sys_info" else SYS_INFO,
                        keys=[exploit] if where == "storage list" else None)
    (tmp_path / "evil.pth").write_bytes(data)
    with pytest.raises(UntrustedPickleError, match=r"evil.pth: refused to unpickle '(posix|os|nt)\.system'") as info:
        PthReader(tmp_path / "evil.pth")
    assert "\n" not in str(info.value)
    assert not marker.exists()
    pickle.loads(pickle.dumps(exploit, protocol=2))  # the same payload does run when unpickled freely
    assert marker.exists()


def test_every_truncation_gives_a_one_line_error_naming_the_file(tmp_path):
    save_legacy({"w": torch.randn(4, 3), "b": torch.arange(3), "e": torch.zeros(0)}, tmp_path / "ok.pth")
    data = (tmp_path / "ok.pth").read_bytes()
    for cut in range(1, len(data)):
        (tmp_path / "cut.pth").write_bytes(data[:cut])
        with pytest.raises(PthFormatError) as info:
            read_pth(tmp_path / "cut.pth")
        message = str(info.value)
        assert "cut.pth" in message and "\n" not in message, (cut, message)
        assert "truncated" in message or "corrupt" in message, (cut, message)


def test_broken_files_give_one_line_errors_naming_the_file(tmp_path):
    floats = np.ones(4, dtype=np.float32)
    ref = ("storage", torch.FloatStorage, "k", "cpu", 4, None)
    cases = {
        "big_endian.pth": (legacy_bytes({}, {}, sys_info={**SYS_INFO, "little_endian": False}), "big-endian"),
        "count.pth": (legacy_bytes({"w": _Tensor(ref[:4] + (5, None), 0, (5,), (1,))}, {"k": floats}),
                      r"storage k holds 4 elements, its tensors expect 5"),
        "no_data.pth": (legacy_bytes({"w": _Tensor(ref, 0, (4,), (1,))}, {"k": floats}, keys=[]),
                        "no data for storage k"),
        "stray_key.pth": (legacy_bytes({"w": _Tensor(ref, 0, (4,), (1,))}, {"k": floats}, keys=["k", "x"]),
                          "unexpected storage 'x'"),
        "outside.pth": (legacy_bytes({"w": _Tensor(ref, 2, (4,), (1,))}, {"k": floats}),
                        "tensor 'w': view runs outside its storage"),
        "bad_view.pth": (legacy_bytes({"w": _Tensor(ref[:5] + (("v", 2, 4),), 0, (4,), (1,))}, {"k": floats}),
                         "storage view v runs outside storage k"),
        "version.pth": (legacy_bytes({}, {}).replace(pickle.dumps(VERSION, 2), pickle.dumps(1000, 2), 1),
                        "protocol version 1000 is not supported"),
        "junk.pth": (pickle.dumps(MAGIC, 2) + b"\x00" * 64, "corrupt legacy checkpoint"),
        "forged.pth": (b"".join(pickle.dumps(item, 2) for item in (MAGIC, VERSION, SYS_INFO))
                       + b"\x80\x04\x8e" + struct.pack("<Q", 1 << 24), "truncated legacy checkpoint"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(tarfile.TarInfo("pickle"), io.BytesIO())
    (tmp_path / "tar.pth").write_bytes(buffer.getvalue())
    cases["tar.pth"] = (b"", "tar archive")
    (tmp_path / "noise.pth").write_bytes(b"\x80\x02K\x01." + bytes(100))
    cases["noise.pth"] = (b"", r"not a torch zip checkpoint nor a legacy one \(truncated, or another format\)")
    for name, (_content, message) in cases.items():
        with pytest.raises(PthFormatError, match=message) as info:
            read_pth(tmp_path / name)
        assert name in str(info.value) and "\n" not in str(info.value), name


def test_reading_a_legacy_pth_imports_no_framework(tmp_path):
    save_legacy({"w": torch.ones(2), "t": torch.arange(4.0).reshape(2, 2).t()}, tmp_path / "w.pth")
    code = ("import sys; from proto.formats.pth import read_pth; "
            f"got = read_pth({str(tmp_path / 'w.pth')!r}); assert got['w'].array.tolist() == [1.0, 1.0]; "
            "assert got['t'].array.tolist() == [[0.0, 2.0], [1.0, 3.0]]; "
            "assert 'torch' not in sys.modules and 'mindspore' not in sys.modules")
    result = subprocess.run([PYTHON, "-c", code], cwd=REPO, env=repo_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
