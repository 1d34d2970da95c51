"""bench/bench_locate.py --quick runs end to end and prints its ratios (slow: spawns three workers)."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import PYTHON, REPO, repo_env


@pytest.mark.slow
def test_bench_locate_quick_prints_its_ratios():
    proc = subprocess.run([PYTHON, str(REPO / "bench" / "bench_locate.py"), "--quick"], cwd=REPO, env=repo_env(),
                          check=False, capture_output=True, text=True, timeout=280, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "ratio locate / compare, correct port:" in out
    assert "ratio locate / compare, buggy port:" in out
    assert "ratio (summary+fetched)/full_dump" in out
    assert "correct port: " in out and "blamed: nothing" in out
