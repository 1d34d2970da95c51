"""Fixtures of the fast tier: numpy fake workers served in-process on 127.0.0.1:0 (no torch, no mindspore)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from coordinator.client import WorkerClient
from proto.transport import Security
from proto.worker.serve import create_server
from tests.fast.numpy_worker import FakeAdapter


@pytest.fixture
def serve():
    """A function that serves an adapter in-process on a free loopback port and returns the address; stops all after."""
    servers = []

    def start(adapter, worker_name: str = "pt", security: Security | None = None, served=None) -> str:
        server, address = create_server(adapter, worker_name, "127.0.0.1:0", security or Security(), served)
        server.start()
        servers.append(server)
        return address

    yield start
    for server in servers:
        server.stop(grace=None).wait()


@dataclass(frozen=True)
class Served:
    """A fake adapter served over gRPC, and a client dialled to it."""

    adapter: FakeAdapter
    client: WorkerClient


@pytest.fixture
def pt(serve):
    """A "pytorch" fake worker behind a gRPC server in this process."""
    adapter = FakeAdapter("pytorch")
    with WorkerClient(serve(adapter, "pt"), "pt") as client:
        yield Served(adapter, client)
