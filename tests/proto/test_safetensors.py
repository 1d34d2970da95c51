"""Our streamed safetensors files against the safetensors package, bf16 included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import save_file
from safetensors.torch import save_file as save_torch

from proto.codec import NamedArray, TensorSpec
from proto.formats.safetensors_io import SafetensorsFormatError, SafetensorsReader, write_safetensors


def test_written_files_read_back_in_the_package_bit_exactly(tmp_path):
    tensors = [NamedArray("w", np.arange(12, dtype=np.float32).reshape(3, 4)), NamedArray("s", np.array(3, np.int64)),
               NamedArray("b", np.array([0x3F80, 0xC000], np.uint16), "bfloat16"), NamedArray("e", np.zeros((0, 2), np.float16))]
    specs = [TensorSpec(t.name, t.dtype, t.shape) for t in tensors]
    assert write_safetensors(tmp_path / "a.safetensors", specs, tensors, {"format": "pt"}) == 4
    with safe_open(str(tmp_path / "a.safetensors"), framework="pt") as f:
        assert f.metadata() == {"format": "pt"}
        assert torch.equal(f.get_tensor("w"), torch.arange(12, dtype=torch.float32).reshape(3, 4))
        assert f.get_tensor("s").item() == 3
        assert f.get_tensor("b").dtype == torch.bfloat16 and f.get_tensor("b").float().tolist() == [1.0, -2.0]
        assert tuple(f.get_tensor("e").shape) == (0, 2)


def test_package_files_read_here(tmp_path):
    save_file({"x": np.arange(6, dtype=np.int32).reshape(2, 3)}, str(tmp_path / "n.safetensors"))
    save_torch({"h": torch.randn(3, 2).to(torch.bfloat16)}, str(tmp_path / "t.safetensors"))
    with SafetensorsReader(tmp_path / "n.safetensors") as reader:
        assert reader.specs() == [TensorSpec("x", "int32", (2, 3))]
        np.testing.assert_array_equal(reader.read("x").array, np.arange(6).reshape(2, 3))
    with SafetensorsReader(tmp_path / "t.safetensors") as reader:
        (h,) = list(reader)
        with safe_open(str(tmp_path / "t.safetensors"), framework="pt") as f:
            assert h.array.tobytes() == f.get_tensor("h").view(torch.uint16).numpy().tobytes()


def test_bad_files_and_failed_writes(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 20)
    with pytest.raises(SafetensorsFormatError, match="junk.safetensors: not a safetensors file"):
        SafetensorsReader(tmp_path / "junk.safetensors")
    spec = [TensorSpec("a", "float32", (2,))]
    with pytest.raises(SafetensorsFormatError, match="never arrived"):
        write_safetensors(tmp_path / "x.safetensors", spec, [])
    assert not (tmp_path / "x.safetensors").exists()
