"""Spawned workers never outlive the coordinator: Ctrl-C, errors, or the coordinator killed."""

from __future__ import annotations

import signal
import subprocess
import time

import psutil
import pytest

from tests.conftest import PYTHON, REPO, repo_env

SLOW = ["--pt-model", "tests/fixtures/dtypes_pt.py:slow_build", "--ms-model", "tests/fixtures/dtypes_ms.py:slow_build",
        "--no-sync-weights"]


def start_coordinator():
    proc = subprocess.Popen([PYTHON, "-m", "coordinator.cli", "compare", *SLOW], cwd=REPO, env=repo_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    workers: list[psutil.Process] = []
    while time.monotonic() < deadline:  # wait until both workers run and are busy in forward
        workers = [c for c in psutil.Process(proc.pid).children(recursive=True)
                   if any(arg.endswith("_worker") for arg in c.cmdline())]
        if len(workers) == 2 and all(w.cpu_percent(0.2) < 50 for w in workers):
            time.sleep(2)
            break
        time.sleep(0.5)
    assert len(workers) == 2, "workers did not start"
    return proc, workers


def assert_gone(workers, within: float = 15.0):
    gone, alive = psutil.wait_procs(workers, timeout=within)
    assert not alive, f"workers still running: {[w.pid for w in alive]}"


@pytest.mark.parametrize("how", ["sigint", "sigkill"])
def test_spawned_workers_stop_with_the_coordinator(how):
    proc, workers = start_coordinator()
    if how == "sigint":
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    else:
        proc.kill()  # no cleanup code runs: the workers must notice their stdin closing
        proc.communicate(timeout=30)
    assert_gone(workers)
