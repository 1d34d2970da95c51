"""Spawn a worker on loopback, learn its address from its first stdout line, and always stop it.

Each spawned worker gets a fresh random token (through its environment, never argv) and
``--exit-with-parent``, so it also exits if the coordinator dies without cleaning up.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from proto.errors import MsparityError, one_line

STARTUP_TIMEOUT_S = 300.0  # importing a framework and building a net can take a while on a busy host
REPO_ROOT = Path(__file__).resolve().parent.parent
TOKEN_ENV = "MSPARITY_TOKEN"


@dataclass
class SpawnedWorker:
    role: str
    address: str
    token: str
    process: subprocess.Popen
    log_path: Path | None
    job_dir: Path | None = None  # a launcher's job (ranks > 1): its address file and logs, and a whole session

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker: close its stdin, then SIGTERM, then SIGKILL; remove its log. A launcher's ranks
        (its session) are signalled with it, so none is left behind."""
        proc = self.process
        if self.job_dir is not None:
            self._stop_job(timeout)
        elif proc.poll() is None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for stream in (proc.stdout, proc.stdin):
            if stream is not None and not stream.closed:
                stream.close()
        if self.job_dir is not None:
            shutil.rmtree(self.job_dir, ignore_errors=True)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)

    def _stop_job(self, timeout: float) -> None:
        stop_launched(self.process, 2.0, timeout)


def stop_launched(proc: subprocess.Popen, first_wait: float, term_wait: float) -> None:
    """Stop a launcher started in a session of its own (torchrun, msrun) and every rank with it: stdin closed
    (torchrun's ranks exit on it; msrun does not pass it on), then SIGTERM and SIGKILL to the whole session."""
    with contextlib.suppress(OSError):
        proc.stdin.close()
    for sig, wait_s in ((None, first_wait), (signal.SIGTERM, term_wait), (signal.SIGKILL, None)):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # a rank that outlived its launcher


def _log_tail(path: Path | None, lines: int = 3) -> str:
    if path is None or not path.exists():
        return ""
    text = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return " | ".join(text[-lines:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launcher_command(role: str, ranks: int, python: str, worker_args: list[str], job_dir: Path) -> list[str]:
    """The worker as ``ranks`` ranks under its framework's launcher: torchrun (pt), msrun (ms), on this host."""
    if role == "pt":
        return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", "-m", "pt_worker",
                *worker_args]
    script = job_dir / "ms_rank.py"  # msrun runs a script, with the `python` on PATH
    script.write_text("import sys\nfrom ms_worker.__main__ import main\nsys.exit(main())\n")
    return [python, "-m", "mindspore.parallel.cluster.run", f"--worker_num={ranks}", f"--local_worker_num={ranks}",
            f"--master_port={_free_port()}", f"--log_dir={job_dir / 'logs'}", "--join=True", str(script),
            *worker_args]


def spawn_worker(
    role: str,
    model_spec: str,
    python: str | None = None,
    extra_args: tuple[str, ...] = (),
    verbose: bool = False,
    startup_timeout: float = STARTUP_TIMEOUT_S,
    ranks: int = 1,
) -> SpawnedWorker:
    """Start ``python -m {role}_worker`` on 127.0.0.1:0 and wait for its address line; ``ranks`` > 1: that many
    ranks under torchrun / msrun, rank 0's address read from the file it writes."""
    token = secrets.token_urlsafe(24)
    env = dict(os.environ)
    env[TOKEN_ENV] = token
    # The worker's environment may have only its framework: make the repo's packages importable.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    python = python or sys.executable
    worker_args = ["--listen", "127.0.0.1:0", "--model", model_spec, "--exit-with-parent", *extra_args]
    job_dir = None
    if ranks > 1:
        job_dir = Path(tempfile.mkdtemp(prefix=f"msparity-{role}-ranks-"))
        worker_args += ["--address-file", str(job_dir / "address")]
        env["PATH"] = os.pathsep.join(filter(None, [str(Path(python).parent), env.get("PATH")]))
        command = launcher_command(role, ranks, python, worker_args, job_dir)
    else:
        command = [python, "-m", f"{role}_worker", *worker_args]
    log_path = None
    if verbose:
        stderr = None
    else:
        fd, name = tempfile.mkstemp(prefix=f"msparity-{role}-worker-", suffix=".log")
        log_path = Path(name)
        stderr = fd
    try:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env,
            start_new_session=True,  # Ctrl-C reaches the coordinator only; it stops the worker itself
        )
    except OSError as exc:
        if log_path is not None:
            log_path.unlink(missing_ok=True)
        raise MsparityError(f"cannot start the {role} worker with {command[0]}: {exc}") from None
    finally:
        if log_path is not None:
            os.close(stderr)
    worker = SpawnedWorker(role, "", token, process, log_path, job_dir)
    if job_dir is not None:
        worker.address = _job_address(worker, model_spec, ranks, startup_timeout)
        return worker

    first_line: list[bytes] = []
    reader = threading.Thread(target=lambda: first_line.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(startup_timeout)
    address = first_line[0].decode(errors="replace").strip() if first_line else ""
    if not address or ":" not in address:
        try:  # stdout closed early: the worker is exiting; let it finish writing its reason
            exited = process.wait(timeout=5.0) if first_line else process.poll()
        except subprocess.TimeoutExpired:
            exited = None
        tail = _log_tail(log_path)
        worker.stop(timeout=2.0)
        if not first_line:
            reason = f"did not report its address within {startup_timeout:.0f}s"
        else:
            reason = f"exited with code {exited}" if exited is not None else f"printed {address!r} instead of its address"
        raise MsparityError(
            f"the {role} worker for model {model_spec!r} {reason}" + (f": {one_line(tail)}" if tail else "")
        )
    worker.address = address
    return worker


def _job_address(worker: SpawnedWorker, model_spec: str, ranks: int, startup_timeout: float) -> str:
    """Rank 0's address from the file it writes once every rank joined; a launcher that exits first is named."""
    address_file = worker.job_dir / "address"
    deadline = time.monotonic() + startup_timeout
    while not address_file.exists():
        exited = worker.process.poll()
        if exited is not None or time.monotonic() > deadline:
            logs = [worker.log_path, *sorted((worker.job_dir / "logs").glob("*.log"))]
            tail = " | ".join(t for t in (_log_tail(p) for p in logs) if t)
            worker.stop(timeout=2.0)
            reason = (f"exited with code {exited}" if exited is not None else
                      f"did not report rank 0's address within {startup_timeout:.0f}s")
            launcher = "torchrun" if worker.role == "pt" else "msrun"
            raise MsparityError(f"the {worker.role} worker for model {model_spec!r} as {ranks} ranks under {launcher} "
                                f"{reason}" + (f": {one_line(tail)}" if tail else ""))
        time.sleep(0.1)
    return address_file.read_text().strip()
