"""Generated protobuf code is current, and `proto` is ours (PyPI's proto-plus ships a `proto` too)."""

from __future__ import annotations

import subprocess

import proto
from tests.conftest import PYTHON, REPO, repo_env


def test_proto_package_is_the_repos():
    assert proto.__file__ is not None and str(REPO / "proto") in proto.__file__


def test_generated_code_is_current():
    result = subprocess.run([PYTHON, "-m", "proto.generate", "--check"], cwd=REPO, env=repo_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "current" in result.stdout
