"""The coordinator and proto import no framework (DESIGN.md section 2)."""

from __future__ import annotations

import subprocess

from tests.conftest import PYTHON, REPO, repo_env

CHECK = """
import importlib, pkgutil, sys
import coordinator, proto
names = []
for package in (coordinator, proto):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name in ("coordinator.local", "proto.generate"):
            continue
        importlib.import_module(info.name)
        names.append(info.name)
loaded = sorted(m for m in ("torch", "mindspore", "pt_worker", "ms_worker") if m in sys.modules)
print(len(names), loaded)
assert not loaded, loaded
"""


def test_importing_every_coordinator_and_proto_module_loads_no_framework():
    result = subprocess.run([PYTHON, "-c", CHECK], cwd=REPO, env=repo_env(), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    count = int(result.stdout.split()[0])
    files = [f for package in ("coordinator", "proto") for f in (REPO / package).rglob("*.py")]
    expected = len([f for f in files if f.name != "__init__.py" or f.parent.name not in ("coordinator", "proto")]) - 2
    assert count == expected and count > 40


def test_coordinator_local_imports_frameworks_only_when_used():
    code = "import coordinator.local, sys; assert 'torch' not in sys.modules and 'mindspore' not in sys.modules"
    result = subprocess.run([PYTHON, "-c", code], cwd=REPO, env=repo_env(), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
