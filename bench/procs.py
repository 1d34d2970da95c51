"""The processes the suite measures: warm hosts (python -m bench.host), spawned workers, fresh one-shot runs; peak RSS.

Peak RSS is the kernel's high-water mark (VmHWM in /proc/PID/status), reset before each measurement by
writing 5 to /proc/PID/clear_refs, so a number is the peak of that one call, not of the process's life.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.models import MODEL_ENV

REPO = Path(__file__).resolve().parent.parent
TS_DIR = REPO / ".bench" / "troubleshooter"


class BenchError(RuntimeError):
    pass


def _status(pid: int) -> dict[str, int]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0]) * 1024
    return out


def peak_mib(pid: int) -> float:
    return _status(pid).get("VmHWM", 0) / 2**20


def rss_mib(pid: int) -> float:
    return _status(pid).get("VmRSS", 0) / 2**20


def reset_peak(pid: int) -> None:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux, or not allowed: the peak is then the process's lifetime peak


def env(ts: bool = False, **extra: str) -> dict[str, str]:
    """The environment of a child: the repo importable; with ts, TroubleShooter's own target directory too."""
    out = dict(os.environ)
    paths = [str(REPO)] + ([str(TS_DIR)] if ts else []) + [p for p in [out.get("PYTHONPATH")] if p]
    out["PYTHONPATH"] = os.pathsep.join(paths)
    out.pop("MSPARITY_TOKEN", None)
    out.update(extra)
    return out


class Host:
    """A helper process that keeps its imports, nets and sessions warm and runs one call at a time on request."""

    def __init__(self, label: str, ts: bool = False):
        self.label = label
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"msparity-bench-{label}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.host"], cwd=REPO, env=env(ts),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def call(self, function: str, **kwargs):
        """Run bench.FUNCTION(**kwargs) there: {"s": wall seconds, "result": what it returned, "peak_mib": ...}."""
        self.proc.stdin.write(json.dumps({"call": function, "kwargs": kwargs}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.log.seek(0)
            raise BenchError(f"{self.label} host died in {function}: {self.log.read()[-2000:]}")
        reply = json.loads(line)
        if "error" in reply:
            raise BenchError(f"{self.label} host, {function}: {reply['error']}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


class Worker:
    """A pt or ms worker on 127.0.0.1:0 serving one bench.models net, with the suite's token."""

    def __init__(self, role: str, config: dict, token: str):
        self.role = role
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"msparity-bench-{role}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"{role}_worker", "--listen", "127.0.0.1:0", "--model", f"bench.models:{role}_model",
             "--exit-with-parent"], cwd=REPO, env=env(MSPARITY_TOKEN=token, **{MODEL_ENV: json.dumps(config)}),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.address = ""

    def wait_ready(self) -> str:
        self.address = self.proc.stdout.readline().strip()
        if ":" not in self.address:
            self.log.seek(0)
            raise BenchError(f"the {self.role} worker did not start: {self.log.read()[-2000:]}")
        return self.address

    @property
    def pid(self) -> int:
        return self.proc.pid

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


def start_pair(config: dict) -> tuple[Worker, Worker, str]:
    """A pt and an ms worker for one net, started together (framework imports overlap); and their token."""
    token = secrets.token_urlsafe(16)
    pair = Worker("pt", config, token), Worker("ms", config, token)
    for worker in pair:
        worker.wait_ready()
    return pair[0], pair[1], token


def fresh_run(argv: list[str], ts: bool = False, extra_env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one fresh process from start to exit; raises on a non-zero exit."""
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO, env=env(ts, **(extra_env or {})), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            raise BenchError(f"{' '.join(argv[:4])}... exited {proc.returncode}: {err.read()[-2000:]}")
        return seconds, usage.ru_maxrss / 1024


def fresh_pair(argvs: list[list[str]]) -> tuple[float, float]:
    """(wall seconds until the last exits, largest peak RSS MiB) of fresh processes started at the same time."""
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        procs = [subprocess.Popen(a, cwd=REPO, env=env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=err) for a in argvs]
        peak = 0.0
        for proc in procs:
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            peak = max(peak, usage.ru_maxrss / 1024)
        seconds = time.perf_counter() - start
        if any(p.returncode for p in procs):
            err.seek(0)
            raise BenchError(f"a fresh bound process failed: {err.read()[-2000:]}")
        return seconds, peak
