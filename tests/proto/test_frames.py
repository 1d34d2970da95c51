"""Tensor streams as bytes (proto.frames): protobuf's own bytes, read without its copies, any other shape
handed to protobuf; and decoding into memory a caller places."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf.message import DecodeError

from proto import codec, frames
from proto.codec import CodecError, NamedArray
from proto.tensor_pb2 import TensorChunk, TensorHeader

TENSORS = [NamedArray("w", np.arange(300_000, dtype=np.float32).reshape(600, 500)),
           NamedArray("s", np.array(2.5, np.float64)), NamedArray("e", np.zeros((0, 3), np.int8)),
           NamedArray("b", np.array([0x3F80, 0x7FC1], np.uint16), "bfloat16")]


@pytest.mark.parametrize("size", [1 << 10, 1 << 20])
def test_frames_are_protobufs_bytes(size):
    messages = list(codec.encode(TENSORS, size))
    raw = list(codec.encode_frames(TENSORS, size))
    assert raw == [m.SerializeToString() for m in messages]


def test_parsed_frames_equal_protobufs_parse_and_decode_bit_exactly():
    raw = list(codec.encode_frames(TENSORS, 1 << 12))
    parsed = [frames.parse_chunk(r) for r in raw]
    for frame, r in zip(parsed, raw):
        message = TensorChunk.FromString(r)
        assert (frame.header is None) == (not message.HasField("header"))
        if frame.header is not None:
            assert frame.header == message.header
        assert bytes(frame.data) == message.data
    assert isinstance(parsed[1].data, memoryview)  # a view into the received bytes, not a copy
    out = list(codec.decode(parsed))
    assert [t.name for t in out] == [t.name for t in TENSORS]
    for back, sent in zip(out, TENSORS):
        assert back.dtype == sent.dtype and back.shape == sent.shape
        assert back.array.tobytes() == sent.array.tobytes()


def _field(number: int, payload: bytes) -> bytes:
    return bytes([(number << 3) | 2]) + frames._varint(len(payload)) + payload


@pytest.mark.parametrize("raw", [
    _field(2, b"abcd") + _field(1, TensorHeader(name="t", dtype="uint8", shape=[4], nbytes=4).SerializeToString()),
    _field(2, b"ab") + _field(2, b"abcd"),  # a repeated field: the last one counts
    _field(1, TensorHeader(name="t").SerializeToString()) + _field(2, b"") + _field(7, b"future"),
    b"",
])
def test_any_other_message_shape_is_read_as_protobuf_reads_it(raw):
    frame, message = frames.parse_chunk(raw), TensorChunk.FromString(raw)
    assert frame == frames.frame_of(message)


@pytest.mark.parametrize("raw", [b"\x12\x05abc", b"\x0a\x80", b"\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
                                 b"\x12\x80\x80\x80\x80\x80\x00"])  # a zero length in 6 bytes: protobuf refuses it
def test_a_truncated_message_is_refused_as_protobuf_refuses_it(raw):
    with pytest.raises(DecodeError):
        frames.parse_chunk(raw)


def test_varints_match_protobufs_at_every_length():
    for value in (1, 127, 128, 16_383, 16_384, (1 << 21) + 5, (1 << 35) + 3):
        assert TensorHeader(nbytes=value).SerializeToString() == b"\x20" + frames._varint(value)  # field 4, varint


def test_decoding_into_placed_memory_writes_it_and_yields_a_view_of_it():
    target = np.full((600, 500), -1.0, np.float32)
    flat = target.reshape(-1).view(np.uint8)
    asked = []

    def place(header):
        asked.append(header.name)
        return flat if header.name == "w" else None

    out = list(codec.decode(codec.encode_frames(TENSORS, 1 << 12), place=place))
    assert asked == ["w", "s", "e", "b"]
    np.testing.assert_array_equal(target, TENSORS[0].array)
    assert np.shares_memory(out[0].array, target) and not np.shares_memory(out[1].array, target)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@pytest.mark.parametrize("placed", [np.zeros(10, np.uint8), np.zeros(2, np.float32), _read_only(np.zeros(8, np.uint8))],
                         ids=["wrong size", "not bytes", "read-only"])
def test_placed_memory_of_the_wrong_size_or_kind_is_not_used(placed):
    tensor = NamedArray("t", np.arange(2, dtype=np.float32))
    (back,) = codec.decode(codec.encode([tensor]), place=lambda header: placed)
    assert not np.shares_memory(back.array, placed)
    np.testing.assert_array_equal(back.array, tensor.array)


def test_a_malformed_stream_into_placed_memory_still_names_the_tensor():
    chunks = list(codec.encode_frames([NamedArray("w", np.zeros(1000, np.float32))], 1000))[:2]
    target = np.zeros(4000, np.uint8)
    with pytest.raises(CodecError, match="'w': stream ended after 2000 of 4000"):
        list(codec.decode([frames.parse_chunk(c) for c in chunks], place=lambda header: target))
