"""MindSpore .ckpt without mindspore: our files load in mindspore, mindspore's files read here."""

from __future__ import annotations

import mindspore as ms
import numpy as np
import pytest

from proto.codec import NamedArray
from proto.formats import ckpt


def sample():
    rng = np.random.default_rng(0)
    return [
        NamedArray("w", rng.standard_normal((3, 4)).astype(np.float32)),
        NamedArray("step", np.array(7, np.int64)),
        NamedArray("h", rng.standard_normal(5).astype(np.float16)),
        NamedArray("b", np.array([0x3F80, 0xC000, 0x7F80], np.uint16), "bfloat16"),
        NamedArray("m", np.array([True, False])),
        NamedArray("e", np.zeros((0, 3), np.float32)),
    ]


@pytest.mark.parametrize("crc", [False, True])
def test_our_file_loads_in_mindspore_bit_exactly(tmp_path, crc):
    path = tmp_path / "a.ckpt"
    assert ckpt.write_ckpt(path, sample(), crc_check=crc) == 6
    loaded = ms.load_checkpoint(str(path), crc_check=crc)
    for tensor in sample():
        value = loaded[tensor.name]
        got = value.view(ms.uint16).asnumpy() if tensor.dtype == "bfloat16" else value.asnumpy()
        assert got.shape == tensor.shape and got.tobytes() == tensor.array.tobytes(), tensor.name


def test_mindspore_files_read_here(tmp_path):
    path = tmp_path / "m.ckpt"
    ms.save_checkpoint([{"name": "x", "data": ms.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))},
                        {"name": "n", "data": ms.Tensor(np.array(3, np.int32))}], str(path), crc_check=True)
    with ckpt.CkptReader(path) as reader:
        assert [(s.name, s.dtype, s.shape) for s in reader.specs()] == [("x", "float32", (2, 3)), ("n", "int32", ())]
        np.testing.assert_array_equal(reader.read("x").array, np.arange(6).reshape(2, 3))
        assert [t.name for t in reader] == ["x", "n"]


def test_large_parameters_split_like_mindspore_and_join_back(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt, "SPLIT_BYTES", 64)
    big = NamedArray("big", np.arange(100, dtype=np.float32).reshape(25, 4))  # 400 bytes -> 7 parts
    ckpt.write_ckpt(tmp_path / "s.ckpt", [big, NamedArray("tail", np.ones(2, np.float32))])
    with ckpt.CkptReader(tmp_path / "s.ckpt") as reader:
        assert len(reader._records) == 8
        np.testing.assert_array_equal(reader.read("big").array, big.array)
    np.testing.assert_array_equal(ms.load_checkpoint(str(tmp_path / "s.ckpt"))["big"].asnumpy(), big.array)


def test_bad_files_name_the_file(tmp_path):
    ckpt.write_ckpt(tmp_path / "ok.ckpt", sample())
    data = (tmp_path / "ok.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[:-7])
    (tmp_path / "junk.ckpt").write_bytes(b"\x00garbage")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    for name, message in [("cut.ckpt", "truncated"), ("junk.ckpt", "not a MindSpore checkpoint"),
                          ("empty.ckpt", "empty checkpoint"), ("none.ckpt", "no such checkpoint")]:
        with pytest.raises(ckpt.CkptFormatError, match=message) as info:
            ckpt.read_ckpt(tmp_path / name)
        assert name in str(info.value)


def test_failed_write_leaves_no_file(tmp_path):
    def tensors():
        yield NamedArray("a", np.zeros(2, np.float32))
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError):
        ckpt.write_ckpt(tmp_path / "x.ckpt", tensors())
    assert list(tmp_path.iterdir()) == []


def test_zero_copy_records_equal_protobufs_own_serialisation():
    from proto.formats import ckpt_values

    for tensor in sample():
        pieces = ckpt_values.value_record(tensor.name, tensor.array, tensor.dtype, tensor.shape)
        assert b"".join(bytes(p) for p in pieces) == ckpt_values.encode_value(
            tensor.name, tensor.array, tensor.dtype, tensor.shape), tensor.name


def test_records_read_in_place_agree_with_protobuf_and_any_other_shape_goes_to_protobuf(tmp_path):
    from proto.formats import ckpt_values
    from proto.ms_checkpoint_pb2 import Checkpoint

    ours, theirs = tmp_path / "ours.ckpt", tmp_path / "ms.ckpt"
    ckpt.write_ckpt(ours, sample())
    ms.save_checkpoint([{"name": t.name, "data": ms.Tensor(t.array)} for t in sample() if t.dtype != "bfloat16"],
                       str(theirs))
    for path in (ours, theirs):
        with ckpt.CkptReader(path) as reader:
            for start, end in reader._records:
                fields = reader._fields(start, end)
                assert fields is not None, path  # both writers' records are read in place
                tag, wire, dims, content = ckpt_values.decode_value(bytes(reader._map[start:end]))
                assert fields[:3] == (tag, wire, dims) and reader._map[fields[3]:fields[4]] == content
    # packed dims and fields out of order: protobuf's business, read the same
    value = Checkpoint.Value(tag="p")
    value.tensor.dims.extend([2, 3])
    value.tensor.tensor_type = "Float32"
    value.tensor.tensor_content = np.arange(6, dtype=np.float32).tobytes()
    raw = value.SerializeToString()
    tensor = raw[raw.index(b"\x12", 3):]  # field 2 onwards, then the tag after it
    swapped = tensor + raw[:raw.index(b"\x12", 3)]
    packed = raw.replace(b"\x08\x02\x08\x03", b"\x0a\x02\x02\x03")  # the same length, packed
    assert packed != raw
    for payload in (packed, swapped):
        odd = tmp_path / "odd.ckpt"
        odd.write_bytes(b"\x0a" + bytes([len(payload)]) + payload)
        with ckpt.CkptReader(odd) as reader:
            assert reader._fields(*reader._records[0]) is None
            (back,) = list(reader)
            assert back.name == "p" and back.shape == (2, 3)
            np.testing.assert_array_equal(back.array, np.arange(6, dtype=np.float32).reshape(2, 3))
