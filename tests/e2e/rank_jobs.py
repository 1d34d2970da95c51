"""Workers started as the ranks of a distributed job, as a person starts them: torchrun and msrun, on loopback."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

from coordinator.spawn import stop_launched
from tests.conftest import PYTHON, REPO, repo_env

BIN = Path(PYTHON).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def rank_job(role: str, spec: str, ranks: int, tmp: Path, timeout: float = 120):
    """Start `ranks` workers of role under its launcher; yield rank 0's address. Every rank stops on exit (they read
    the launcher's stdin, --exit-with-parent), and the launcher's whole session is killed after."""
    address_file = tmp / f"{role}-address"
    worker = ["--listen", "127.0.0.1:0", "--model", spec, "--address-file", str(address_file), "--exit-with-parent"]
    if role == "pt":
        command = [str(BIN / "torchrun"), "--standalone", f"--nproc-per-node={ranks}", "-m", "pt_worker", *worker]
    else:
        command = [str(BIN / "msrun"), f"--worker_num={ranks}", f"--local_worker_num={ranks}",
                   f"--master_port={_free_port()}", f"--log_dir={tmp / 'msrun-logs'}", "--join=True",
                   str(BIN / "msparity-ms-worker"), *worker]
    env = repo_env(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")  # msrun starts each rank with `python`
    log = open(tmp / f"{role}-launcher.log", "wb")
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not address_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                logs = "".join(p.read_text(errors="replace")[-1500:] for p in sorted(tmp.rglob("*.log")))
                raise AssertionError(f"{role} ranks did not start (launcher exit {proc.poll()}): {logs}")
            time.sleep(0.2)
        yield address_file.read_text().strip()
    finally:
        stop_launched(proc, 1.0, 5.0)
        log.close()
