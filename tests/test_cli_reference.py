"""docs/cli.md is the commands' own help: regenerate it with python -m coordinator.cli_reference."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO, repo_env


def test_the_command_reference_is_current():
    result = subprocess.run([sys.executable, "-m", "coordinator.cli_reference", "--check"], cwd=REPO, env=repo_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
