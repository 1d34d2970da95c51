"""The tensor codec: bit-exact round trips, chunking, golden bytes, malformed streams."""

from __future__ import annotations

import numpy as np
import pytest

from proto import codec
from proto.codec import CodecError, NamedArray
from proto.tensor_pb2 import TensorChunk, TensorHeader


def roundtrip(tensors, chunk_bytes=codec.CHUNK_BYTES):
    return list(codec.decode(codec.encode(tensors, chunk_bytes)))


@pytest.mark.parametrize(
    "dtype", ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
              "uint32", "uint64", "bool", "complex64", "complex128"]
)
def test_every_numpy_dtype_round_trips_bit_exactly(dtype):
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, size=3 * 5 * 16, dtype=np.uint8)
    if dtype == "bool":
        array = (raw[:15] % 2).astype(bool).reshape(3, 5)
    else:
        itemsize = np.dtype(dtype).itemsize
        array = raw[: 15 * itemsize].view(dtype).reshape(3, 5)  # arbitrary bits, NaN payloads included
    (back,) = roundtrip([NamedArray("t", array)])
    assert back.dtype == dtype and back.shape == (3, 5)
    assert back.array.tobytes() == array.tobytes()


def test_bfloat16_travels_as_raw_bits():
    bits = np.array([0x3F80, 0x7FC1, 0xFF80, 0x0001, 0x8000], dtype=np.uint16)  # 1, NaN payload, -inf, subnormal, -0
    (back,) = roundtrip([NamedArray("b", bits, "bfloat16")])
    assert back.dtype == "bfloat16"
    assert back.array.tobytes() == bits.tobytes()
    assert back.numeric()[0] == 1.0 and np.isneginf(back.numeric()[2])


def test_zero_d_empty_and_non_contiguous_arrays():
    scalar = np.array(3.5, dtype=np.float32)
    empty = np.zeros((0, 4), dtype=np.float64)
    base = np.arange(24, dtype=np.int32).reshape(4, 6)
    strided = base[:, ::2].T  # non-contiguous view
    big_endian = np.arange(5, dtype=">f4")
    out = roundtrip([NamedArray("s", scalar), NamedArray("e", empty), NamedArray("v", strided),
                     NamedArray("be", big_endian.astype("<f4"))])
    assert out[0].shape == () and out[0].array == np.float32(3.5)
    assert out[1].shape == (0, 4)
    np.testing.assert_array_equal(out[2].array, strided)
    np.testing.assert_array_equal(out[3].array, np.arange(5, dtype=np.float32))


def test_nan_and_inf_pass_through():
    array = np.array([np.nan, np.inf, -np.inf, 0.0], dtype=np.float32)
    (back,) = roundtrip([NamedArray("x", array)])
    assert back.array.tobytes() == array.tobytes()


def test_large_tensor_is_chunked_with_header_on_first_chunk_only():
    array = np.arange((5 << 20) // 8, dtype=np.float64)  # 5 MiB
    chunks = list(codec.encode([NamedArray("big", array)], chunk_bytes=1 << 20))
    assert len(chunks) == 5
    assert chunks[0].HasField("header") and not any(c.HasField("header") for c in chunks[1:])
    assert all(len(c.data) == 1 << 20 for c in chunks)
    (back,) = codec.decode(chunks)
    np.testing.assert_array_equal(back.array, array)
    assert back.array.flags.writeable


def test_golden_bytes():
    """The encoding of a small int16 tensor, byte for byte (protobuf field numbers per tensor.proto)."""
    array = np.array([[1, 2], [3, 4]], dtype=np.int16)
    (chunk,) = codec.encode([NamedArray("w", array)])
    header = bytes.fromhex("0a0177" "1205696e743136" "1a020202" "2008")  # name, dtype, packed shape, nbytes
    expected = b"\x0a" + bytes([len(header)]) + header + bytes.fromhex("1208" "0100020003000400")
    assert chunk.SerializeToString() == expected


def test_duplicate_names_are_rejected_both_ways():
    a = NamedArray("x", np.zeros(2, np.float32))
    with pytest.raises(CodecError, match="'x': duplicate"):
        list(codec.encode([a, a]))
    chunks = list(codec.encode([a])) * 2
    with pytest.raises(CodecError, match="'x': duplicate"):
        list(codec.decode(chunks))


def _header(name="t", dtype="float32", shape=(2,), nbytes=8):
    return TensorHeader(name=name, dtype=dtype, shape=shape, nbytes=nbytes)


@pytest.mark.parametrize(
    "chunks, message",
    [
        ([TensorChunk(data=b"1234")], "before any header"),
        ([TensorChunk(header=_header(nbytes=12), data=b"")], "needs 8"),
        ([TensorChunk(header=_header(dtype="float128"), data=b"")], "unknown dtype 'float128'"),
        ([TensorChunk(header=_header(), data=b"12345678"), TensorChunk(data=b"9")], "before any header"),
        ([TensorChunk(header=_header(), data=b"123456789")], "more bytes"),
        ([TensorChunk(header=_header(), data=b"1234")], "ended after 4 of 8"),
        ([TensorChunk(header=_header(), data=b"1234"), TensorChunk(header=_header(name="u"))], "moved to 'u'"),
        ([TensorChunk(header=_header(name=""))], "without a name"),
        ([TensorChunk(header=_header(shape=(-2,), nbytes=-8))], "negative dimension"),
    ],
)
def test_malformed_streams_name_the_tensor_and_problem(chunks, message):
    with pytest.raises(CodecError, match=message):
        list(codec.decode(chunks))


def test_array_dtype_must_store_the_wire_dtype():
    with pytest.raises(CodecError, match="does not store bfloat16"):
        NamedArray("b", np.zeros(2, np.float32), "bfloat16")


def test_digests_tell_equal_values_and_are_tagged_with_their_algorithm():
    import hashlib

    a = np.arange(1000, dtype=np.float32)
    b = a.copy()
    b[517] = np.nextafter(b[517], np.float32(np.inf))  # one ulp apart
    digest = codec.digest_of(NamedArray("a", a))
    assert digest == codec.digest_of(NamedArray("other name", a.copy()))
    assert digest == codec.digest_of(NamedArray("a", a.astype(">f4")))  # the wire's bytes, whatever the byte order
    assert digest != codec.digest_of(NamedArray("a", b))
    assert digest.startswith(codec.DIGEST_ALGORITHM) and len(digest) == len(codec.DIGEST_ALGORITHM) + 16
    assert digest != hashlib.sha256(a.tobytes()).digest()[:16]  # a 1.7 worker's: never equal, so compared by value
