"""One coordinator at a time per worker pair, and a worker that a failed or interrupted job leaves correct."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from coordinator.client import WorkerClient
from proto.codec import NamedArray
from proto.errors import WorkerError
from tests.conftest import REPO, hand_started_worker, repo_env, run_cli

MLP = ("examples.mlp_pt:build", "examples.mlp_ms:build")
LEASE = "2"  # seconds a coordinator that stopped calling keeps the workers (30 by default)


@pytest.fixture
def workers():
    env = repo_env(MSPARITY_SESSION_LEASE_S=LEASE)
    with hand_started_worker("pt", MLP[0], env=env) as pt, hand_started_worker("ms", MLP[1], env=env) as ms:
        yield pt, ms


def _pt_weight(address: str) -> np.ndarray:
    with WorkerClient(address, "pt") as client:
        (tensor,) = client.get_weights(["fc1.weight"])
        return np.array(tensor.array)


def _weights_state(address: str, role: str) -> str:
    with WorkerClient(address, role) as client:
        return client.describe().weights_state


def test_a_second_coordinator_is_told_who_is_busy_and_an_interrupted_training_is_undone(workers):
    pt, ms = workers
    before = _pt_weight(pt)
    training = subprocess.Popen(
        [sys.executable, "-m", "coordinator.cli", "train-step", "--pt", pt, "--ms", ms, "--steps", "100000",
         "--free-running", "--no-reference"], cwd=REPO, env=repo_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while _weights_state(pt, "pt") != "changed by TrainStep":  # the other coordinator has started training
            assert time.monotonic() < deadline and training.poll() is None, "train-step never started"
            time.sleep(0.2)
        busy = run_cli("compare", "--pt", pt, "--ms", ms)
        assert busy.code == 3, busy.stdout + busy.stderr
        assert "busy: serving" in busy.stderr and "pid" in busy.stderr and "Traceback" not in busy.stderr
        assert run_cli("ping", "--pt", pt, "--ms", ms).code == 0  # describing a busy worker is fine
    finally:
        training.kill()  # interrupted: it never ends its session
        training.wait()
    time.sleep(float(LEASE) + 0.5)
    after = run_cli("compare", "--pt", pt, "--ms", ms)  # takes the lapsed session over: trained weights go back
    assert after.code == 0, after.stdout + after.stderr
    np.testing.assert_array_equal(_pt_weight(pt), before)
    assert _weights_state(pt, "pt") == "as built"


def test_a_finished_training_puts_both_nets_back(workers):
    pt, ms = workers
    before = _pt_weight(pt)
    trained = run_cli("train-step", "--pt", pt, "--ms", ms, "--steps", "3", "--lr", "0.5")
    assert trained.code == 0, trained.stdout + trained.stderr
    np.testing.assert_array_equal(_pt_weight(pt), before)
    assert (_weights_state(pt, "pt"), _weights_state(ms, "ms")) == ("as built", "set by SetWeights")
    unsynced = run_cli("compare", "--pt", pt, "--ms", ms)
    assert unsynced.code == 0, unsynced.stdout


def test_a_failed_weight_stream_leaves_a_net_that_refuses_to_compute_until_set_again(workers):
    pt, ms = workers
    good = NamedArray("fc1.bias", np.full(32, 5.0, np.float32))
    bad = NamedArray("fc2.bias", np.zeros(3, np.float32))  # the net's is (32,)
    with WorkerClient(pt, "pt") as client:
        with pytest.raises(WorkerError, match="weight problem"):
            client.set_weights(iter([good, bad]))
        with pytest.raises(WorkerError, match=r"partly set by a failed SetWeights \(1 of 6 tensors\)") as refused:
            client.forward([NamedArray("input0", np.ones((2, 16), np.float32))])
        assert refused.value.status == "FAILED_PRECONDITION"
    result = run_cli("compare", "--pt", pt, "--ms", ms, "--no-sync-weights")
    assert result.code == 3 and "set them again" in result.stderr, result.stderr
    synced = run_cli("compare", "--pt-model", MLP[0], "--ms", ms)  # a sync sets the ms net whole again
    assert synced.code == 0, synced.stdout + synced.stderr
