"""python -m bench --smoke runs every operation end to end and writes its JSON (slow: spawns workers, not in CI)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import PYTHON, REPO, repo_env

IDS = ("P1 weight stream", "P2 ", "P2s ", "P3 ", "P4 ", "P4b ", "P5 ", "P6 ")
KEYS = {"name", "ours_s", "bound_s", "ratio", "peer_s", "goal", "ok"}


@pytest.mark.slow
def test_bench_smoke_writes_one_positive_entry_per_operation(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([PYTHON, "-m", "bench", "--smoke", "--json", str(out)], cwd=REPO, env=repo_env(),
                          check=False, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "goals met:" in proc.stdout and "peak RSS MiB" in proc.stdout
    entries = json.loads(out.read_text())
    assert isinstance(entries, list) and entries
    for e in entries:
        assert KEYS <= set(e), e
        assert isinstance(e["name"], str) and isinstance(e["goal"], str) and e["goal"]
        assert e["ok"] in (True, False, None)
        for key in ("ours_s", "bound_s", "ratio"):
            assert isinstance(e[key], (int, float)) and e[key] > 0, (e["name"], key, e[key])
        assert e["peer_s"] is None or e["peer_s"] > 0, e
    for prefix in IDS:
        assert any(e["name"].startswith(prefix) for e in entries), (prefix, [e["name"] for e in entries])
    with_ts = [e for e in entries if e["peer_s"] is not None]
    if "TroubleShooter 1.0.18 from" in proc.stdout:  # installed (or installed now): every TS operation has a number
        assert {e["name"].split()[0] for e in with_ts} >= {"P2", "P2s", "P3", "P4", "P4b"}
