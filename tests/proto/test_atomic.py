"""Atomic, durable writes (proto.formats.atomic): all or nothing at the path, staged flushes, replaced files."""

from __future__ import annotations

import os
import threading
import time

import pytest

from proto.formats import atomic
from proto.formats.atomic import atomic_binary


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir())


def test_a_large_file_arrives_whole_through_the_staged_flushes(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "FLUSH_EVERY", 1 << 16)
    synced = []
    real = atomic._sync_data
    monkeypatch.setattr(atomic, "_sync_data", lambda fd: (synced.append(threading.current_thread().name), real(fd))[1])
    target = tmp_path / "big.bin"
    blocks = [os.urandom(40_000) for _ in range(20)]
    with atomic_binary(target) as handle:
        for block in blocks:
            handle.write(block)
        for _ in range(500):  # the flusher runs while the writer goes on: give it the time to
            if synced:
                break
            time.sleep(0.01)
        assert not target.exists()  # nothing at the path until it is complete
    assert target.read_bytes() == b"".join(blocks)
    assert synced and set(synced) == {"msparity-flush"}  # flushed while writing, off the writer's thread
    assert _siblings(target) == ["big.bin"]


def test_an_error_while_writing_leaves_the_old_file_and_no_partial_file(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "FLUSH_EVERY", 1 << 10)
    target = tmp_path / "out.ckpt"
    target.write_bytes(b"the old weights")
    with pytest.raises(RuntimeError, match="disk gone"):
        with atomic_binary(target) as handle:
            handle.write(os.urandom(5000))
            raise RuntimeError("disk gone")
    assert target.read_bytes() == b"the old weights"
    assert _siblings(target) == ["out.ckpt"]


def test_a_replaced_file_is_replaced_and_its_space_given_back(tmp_path):
    target = tmp_path / "out.ckpt"
    target.write_bytes(os.urandom(1 << 20))
    for _ in range(3):
        with atomic_binary(target) as handle:
            handle.write(b"new")
    assert target.read_bytes() == b"new"
    for thread in threading.enumerate():
        if thread.name == "msparity-release":
            thread.join(5)
    assert not [h for h in _open_files() if h.startswith(str(tmp_path))]  # the old files' handles are closed: blocks freed


def _open_files() -> list[str]:
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            held.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass  # closed meanwhile (the listing's own handle)
    return held


def test_a_write_back_error_the_flusher_met_fails_the_write_and_keeps_the_old_file(tmp_path, monkeypatch):
    import errno

    monkeypatch.setattr(atomic, "FLUSH_EVERY", 1 << 10)

    def failing(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(atomic, "_sync_data", failing)  # the kernel reports a lost page once, to this call
    target = tmp_path / "out.ckpt"
    target.write_bytes(b"the old weights")
    with pytest.raises(OSError, match="Input/output error"):
        with atomic_binary(target) as handle:
            for _ in range(8):
                handle.write(os.urandom(4096))
                time.sleep(0.01)  # the flusher gets its turn
    assert target.read_bytes() == b"the old weights" and _siblings(target) == ["out.ckpt"]


def test_a_directory_that_cannot_be_synced_does_not_fail_a_finished_write(tmp_path, monkeypatch):
    real = os.fsync

    def no_directories(fd):
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            raise OSError(22, "Invalid argument")
        return real(fd)

    monkeypatch.setattr(os, "fsync", no_directories)
    target = tmp_path / "address"
    with atomic_binary(target) as handle:
        handle.write(b"127.0.0.1:5000")
    assert target.read_bytes() == b"127.0.0.1:5000"
