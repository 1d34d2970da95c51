"""The fast tier needs no framework: a fresh interpreter imports all of it and compares, loading neither."""

from __future__ import annotations

import subprocess

from tests.conftest import PYTHON, REPO, repo_env

CHECK = """
import importlib, pkgutil, sys
import tests.fast
for info in pkgutil.iter_modules(tests.fast.__path__, "tests.fast."):
    importlib.import_module(info.name)
from coordinator.compare import run_compare
from coordinator.local import LocalWorker
from coordinator.session import Session, WorkerTarget, open_session
from proto.worker.serve import create_server
from tests.fast.numpy_worker import FakeAdapter

servers = [create_server(FakeAdapter(framework, init_seed=i), role)
           for i, (framework, role) in enumerate([("pytorch", "pt"), ("mindspore", "ms")])]
for server, _ in servers:
    server.start()
with open_session(*(WorkerTarget(address=address) for _, address in servers)) as session:
    assert run_compare(session).passed
session = Session(LocalWorker(FakeAdapter("pytorch", 1), "pt"), LocalWorker(FakeAdapter("mindspore", 2), "ms"))
assert run_compare(session).passed
session.close()
for server, _ in servers:
    server.stop(None).wait()
print(sorted(m for m in ("torch", "mindspore", "pt_worker", "ms_worker") if m in sys.modules))
"""


def test_the_tier_imports_and_compares_without_a_framework():
    result = subprocess.run([PYTHON, "-c", CHECK], cwd=REPO, env=repo_env(), capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
