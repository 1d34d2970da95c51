"""Shared helpers: run the CLI as a subprocess, start workers by hand as real processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def repo_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("MSPARITY_TOKEN", None)
    env.update(extra)
    return env


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 400) -> CliResult:
    """Run ``msparity ARGS`` as a real process."""
    proc = subprocess.run(
        [PYTHON, "-m", "coordinator.cli", *args],
        cwd=cwd or REPO, env=env or repo_env(), capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def npy_dirs(root: Path, count: int, size: int, differ: dict[int, float]) -> tuple[Path, Path]:
    """Two dump folders a, b of count files ``{i}_x.npy`` (size elements, all i); b's file i is off by differ[i]."""
    import numpy as np

    a, b = root / "a", root / "b"
    a.mkdir()
    b.mkdir()
    for i in range(count):
        np.save(a / f"{i}_x.npy", np.full(size, i, np.float32))
        np.save(b / f"{i}_x.npy", np.full(size, i + differ.get(i, 0.0), np.float32))
    return a, b


@contextlib.contextmanager
def hand_started_worker(role: str, spec: str | None, *args: str, env: dict | None = None, cwd: Path | None = None):
    """Start ``python -m {role}_worker`` as a person would in a shell (spec None: no --model); yield its address."""
    model = ["--model", spec] if spec is not None else []
    proc = subprocess.Popen(
        [PYTHON, "-m", f"{role}_worker", "--listen", "127.0.0.1:0", *model, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env=env or repo_env(), cwd=cwd or REPO, text=True,
    )
    try:
        address = proc.stdout.readline().strip()
        if not address:
            proc.wait(timeout=30)
            raise AssertionError(f"{role} worker did not start: {proc.stderr.read()}")
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.fixture
def cli():
    return run_cli
