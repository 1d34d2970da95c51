"""Progress on stderr: shown on a terminal (a pseudo-terminal here), never on stdout, off with -q or a pipe."""

from __future__ import annotations

import os
import pty
import select
import subprocess

from tests.conftest import PYTHON, REPO, npy_dirs, repo_env, run_cli

PAIR = ("--pt-model", "examples.mlp_pt:build", "--ms-model", "examples.mlp_ms:build")


def run_on_terminal(*args: str, timeout: float = 300, **env: str) -> tuple[int, str, str]:
    """Run msparity with stderr on a pseudo-terminal and stdout on a pipe: (exit code, stdout, terminal text)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([PYTHON, "-m", "coordinator.cli", *args], stdout=subprocess.PIPE, stderr=slave,
                            stdin=subprocess.DEVNULL, cwd=REPO, env=repo_env(COLUMNS="150", **env))
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        stdout = proc.communicate(timeout=timeout)[0].decode()
    finally:
        os.close(master)
    return proc.returncode, stdout, b"".join(chunks).decode(errors="replace")


def test_train_step_shows_what_it_does_on_a_terminal_and_nothing_with_q():
    code, stdout, terminal = run_on_terminal("train-step", *PAIR, "--steps", "3")
    assert code == 0, terminal[-2000:]
    assert "starting the pt worker (importing torch)" in terminal and "importing mindspore" in terminal
    assert "the ms worker reads the pt worker's weights" in terminal and "training steps on both sides" in terminal
    code, _, terminal = run_on_terminal("compare", *PAIR, MSPARITY_WEIGHTS_VIA_COORDINATOR="1")
    assert code == 0 and "streaming the weights pt -> ms" in terminal and "tensors" in terminal
    assert "PASS: 3 training step(s) agree" in stdout and "\x1b" not in stdout  # results stay clean on stdout
    code, stdout, terminal = run_on_terminal("-q", "train-step", *PAIR, "--steps", "2")
    assert code == 0 and "PASS: 2 training step(s) agree" in stdout
    assert "starting the" not in terminal and "training steps" not in terminal


def test_a_dir_compare_counts_files_on_a_terminal_and_stays_silent_on_a_pipe(tmp_path):
    a, b = npy_dirs(tmp_path, 30, 1000, {7: 0.5})
    code, stdout, terminal = run_on_terminal("compare-dirs", str(a), str(b))
    assert code == 1 and "comparing files" in terminal and "7_x.npy" in stdout
    piped = run_cli("compare-dirs", str(a), str(b))
    assert piped.code == 1 and "comparing files" not in piped.stderr and "\x1b" not in piped.stdout
