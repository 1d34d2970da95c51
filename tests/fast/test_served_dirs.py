"""A directories-only worker (no model): ListDir and GetTensors inside its served root, nothing outside it."""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.client import WorkerClient
from proto.codec import NamedArray
from proto.errors import WorkerError
from proto.formats.npy_files import ServedRoots
from proto.worker.served_dirs import ServedDirectories

A = np.arange(6, dtype=np.float32).reshape(2, 3)
B = np.array([3, 1, 4, 1], dtype=np.int64)


@pytest.fixture
def served(serve, tmp_path):
    """(a client of a worker serving tmp_path/root, that root); root/grads holds a.npy and b.npy."""
    root = tmp_path / "root"
    (root / "grads").mkdir(parents=True)
    np.save(root / "grads" / "a.npy", A)
    np.save(root / "grads" / "b.npy", B)
    (root / "grads" / "notes.txt").write_text("not a tensor")
    np.save(tmp_path / "secret.npy", np.zeros(1))
    address = serve(None, "pt", served=ServedDirectories(ServedRoots([root])))
    with WorkerClient(address, "pt") as client:
        yield client, root


def _failure(call) -> WorkerError:
    """The WorkerError call() raises."""
    with pytest.raises(WorkerError) as info:
        call()
    return info.value


def test_list_dir_describes_the_npy_files(served):
    client, root = served
    listing = client.list_dir("grads")
    assert listing.path == str((root / "grads").resolve())
    assert [(e.name, e.dtype, e.shape, e.nbytes) for e in listing.entries] == [
        ("a.npy", "float32", (2, 3), 24), ("b.npy", "int64", (4,), 32)]


def test_get_tensors_streams_them_in_the_order_asked(served):
    client, _ = served
    got = list(client.get_tensors("grads", ["b", "a.npy"]))
    assert [(t.name, t.dtype) for t in got] == [("b", "int64"), ("a.npy", "float32")]
    np.testing.assert_array_equal(got[0].array, B)
    np.testing.assert_array_equal(got[1].array, A)


@pytest.mark.parametrize("call", [
    lambda c: c.list_dir(".."),
    lambda c: c.list_dir("grads/../.."),
    lambda c: list(c.get_tensors("..", ["secret"])),
    lambda c: list(c.get_tensors("grads", ["../../secret"])),
], ids=["list ..", "list grads/../..", "read from ..", "read ../../secret"])
def test_dot_dot_is_refused(served, call):
    client, _ = served
    error = _failure(lambda: call(client))
    assert error.status == "PERMISSION_DENIED"


def test_an_absolute_path_outside_the_root_is_refused(served):
    client, root = served
    error = _failure(lambda: client.list_dir(str(root.parent)))
    assert error.status == "PERMISSION_DENIED" and "outside the served directories" in error.details


def test_the_model_rpcs_need_a_model(served):
    client, _ = served
    description = client.describe()
    assert (description.framework, description.model_class) == ("pytorch", "(no model: serves directories)")
    error = _failure(lambda: client.forward([NamedArray("input0", A)]))
    assert (error.rpc, error.status) == ("Forward", "FAILED_PRECONDITION")
    assert "serves directories only" in error.details
