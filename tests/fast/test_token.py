"""A worker started with a shared token refuses calls without it (unary and streaming) and serves calls with it."""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.client import WorkerClient
from proto.codec import NamedArray
from proto.errors import WorkerError
from proto.transport import Security
from tests.fast.expected import X
from tests.fast.numpy_worker import FakeAdapter

TOKEN = "s3cret"


@pytest.fixture
def address(serve):
    """The address of a fake served with the token."""
    return serve(FakeAdapter("pytorch"), "pt", Security(token=TOKEN))


@pytest.mark.parametrize("token", [None, "wrong"])
def test_a_client_without_the_token_is_unauthenticated(address, token):
    with WorkerClient(address, "pt", Security(token=token)) as client:
        for call in (client.describe, lambda: client.forward([NamedArray("input0", X)])):
            with pytest.raises(WorkerError) as info:
                call()
            assert info.value.status == "UNAUTHENTICATED"
            assert "wrong or missing token" in info.value.details


def test_a_client_with_the_token_is_served(address):
    with WorkerClient(address, "pt", Security(token=TOKEN)) as client:
        assert client.describe().framework == "pytorch"
        (output,) = client.forward([NamedArray("input0", X)]).outputs
        assert output.shape == (2, 3) and np.isfinite(output.array).all()
