"""Directories served by real workers (--serve-dir): remote comparison and confinement."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from coordinator.client import WorkerClient
from proto.errors import WorkerError
from tests.conftest import hand_started_worker, npy_dirs, repo_env, run_cli


@pytest.fixture
def dumps(tmp_path):
    rng = np.random.default_rng(3)
    ref, cand = tmp_path / "host_a" / "dump", tmp_path / "host_b" / "dump"
    ref.mkdir(parents=True)
    cand.mkdir(parents=True)
    for i in range(8):
        x = rng.standard_normal((16, i + 3)).astype(np.float32)
        np.save(ref / f"{i}_act.npy", x)
        np.save(cand / f"{i}_act.npy", x + np.float32(0.01) * (i == 5))
    return ref, cand


def test_two_workers_serve_two_dirs_and_the_coordinator_compares_them(dumps, tmp_path):
    ref, cand = dumps
    env = repo_env(MSPARITY_TOKEN="s3cret")
    with hand_started_worker("pt", None, "--serve-dir", str(ref.parent), env=env) as a, \
            hand_started_worker("ms", None, "--serve-dir", str(cand), env=env) as b:
        result = run_cli("compare-dirs", "dump", str(cand), "--ref-worker", a, "--cand-worker", b,
                         "--json", str(tmp_path / "r.json"), env=env)
        assert result.code == 1, result.stderr
        report = json.loads((tmp_path / "r.json").read_text())
        assert report["kind"] == "compare-dirs" and report["compared"] == 8
        assert [p["orig"]["name"] for p in report["pairs"] if not p["passed"]] == ["5_act.npy"]
        assert report["orig_dir"] == f"{a}:{ref}"
        # host:port:dir form, same files on both sides: passes
        same = run_cli("compare-dirs", f"{b}:{cand}", f"{b}:.", env=env)
        assert same.code == 0, same.stderr + same.stdout
        assert "PASS: 8 pairs compared" in same.stdout
        wrong_token = run_cli("compare-dirs", "dump", str(cand), "--ref-worker", a, env=repo_env(MSPARITY_TOKEN="x"))
        assert wrong_token.code == 3 and "UNAUTHENTICATED" in wrong_token.stderr


def test_served_roots_refuse_escapes(dumps, tmp_path):
    ref, _ = dumps
    secret = tmp_path / "secret"
    secret.mkdir()
    np.save(secret / "0_key.npy", np.arange(4))
    os.symlink(secret, ref / "link_out")
    os.symlink(secret / "0_key.npy", ref / "9_leak.npy")
    with hand_started_worker("pt", None, "--serve-dir", str(ref)) as address, \
            WorkerClient(address, "ref") as client:
        listing = client.list_dir(str(ref))
        assert listing.path == str(ref.resolve())
        assert "9_leak.npy" not in [e.name for e in listing.entries] and len(listing.entries) == 8
        for bad in ("../secret", str(secret), "link_out", "/etc", "dump/../../secret"):
            with pytest.raises(WorkerError) as refused:
                client.list_dir(bad)
            assert refused.value.status in ("PERMISSION_DENIED", "NOT_FOUND"), bad
        for name in ("9_leak.npy", "../secret/0_key.npy", "/etc/passwd"):
            with pytest.raises(WorkerError, match="PERMISSION_DENIED"):
                list(client.get_tensors(".", [name]))
        with pytest.raises(WorkerError, match="without --model|directories only"):
            client.list_parameters()
        (ref / "7_act.npy").unlink()
        np.save(ref / "7_act.npy", np.array([object()], dtype=object), allow_pickle=True)
        with pytest.raises(WorkerError, match="7_act.npy.*pickled"):
            client.list_dir(".")


def test_a_worker_without_model_or_dirs_says_what_to_give():
    with pytest.raises(AssertionError, match="--serve-dir"):
        with hand_started_worker("pt", None):
            pass


def test_a_large_comparison_prints_what_failed_and_all_rows_on_request(tmp_path):
    a, b = npy_dirs(tmp_path, 120, 8, {7: 1.0, 90: 1.0})
    short = run_cli("compare-dirs", str(a), str(b), "--csv", str(tmp_path / "all.csv"))
    assert short.code == 1
    assert "showing 2 of 120 rows" in short.stdout and "7_x.npy" in short.stdout and "3_x.npy" not in short.stdout
    assert len((tmp_path / "all.csv").read_text().splitlines()) == 121  # the file has every row
    full = run_cli("compare-dirs", str(a), str(b), "--all")
    assert "3_x.npy" in full.stdout and "showing" not in full.stdout
