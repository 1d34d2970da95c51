"""The bad-input matrix: every family of wrong input a careful tester tried, each a real command.

Each case asserts the exit code (3: cannot compare, 2: usage), a one-line message naming the culprit,
no Python traceback, and no file left behind (no output, no ``.partial``). Crafted pickles that would
run code write a marker file that must never appear. Cases that need workers share one hand-started
pair of the bundled MLP.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import socket
import struct
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import hand_started_worker, repo_env, run_cli

MLP = ("examples.mlp_pt:build", "examples.mlp_ms:build")


class _Evil:
    """Unpickling this runs ``touch MARKER`` (what a pickled payload can do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _torch_zip(path: Path, pickled: bytes, storages: dict[str, bytes] | None = None) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", "little")
        for key, data in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", data)


def _crafted_tensor_pickle(size: tuple, stride: tuple, numel: int) -> bytes:
    """A state dict {"w": tensor} as torch pickles it, with the size / stride given (protocol 2, by hand)."""
    out = io.BytesIO()
    p = pickle._Pickler(out, protocol=2)  # noqa: SLF001 (the pure-Python pickler writes GLOBAL by name)
    p.write(pickle.PROTO + b"\x02")
    p.write(pickle.GLOBAL + b"collections\nOrderedDict\n" + pickle.EMPTY_TUPLE + pickle.REDUCE)
    p.write(pickle.MARK)
    p.save("w")
    p.write(pickle.GLOBAL + b"torch._utils\n_rebuild_tensor_v2\n")
    p.write(pickle.MARK)
    p.write(pickle.MARK)
    p.save("storage")
    p.write(pickle.GLOBAL + b"torch\nFloatStorage\n")
    p.save("0")
    p.save("cpu")
    p.save(numel)
    p.write(pickle.TUPLE + pickle.BINPERSID)
    for value in (0, size, stride, False):
        p.save(value)
    p.write(pickle.GLOBAL + b"collections\nOrderedDict\n" + pickle.EMPTY_TUPLE + pickle.REDUCE)
    p.write(pickle.TUPLE + pickle.REDUCE)
    p.write(pickle.SETITEMS + pickle.STOP)
    return out.getvalue()


def _safetensors(path: Path, header: bytes, data: bytes = b"") -> None:
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Every bad file of the matrix, and a good one of each kind to compare against."""
    import torch

    d = tmp_path_factory.mktemp("bad")
    f: dict[str, Path] = {}
    torch.save({"w": torch.ones(2, 2), "b": torch.zeros(2)}, d / "good.pth")
    f["good.pth"] = d / "good.pth"
    good = (d / "good.pth").read_bytes()
    (d / "map.json").write_text(json.dumps([{"w": "w", "b": "b"}, {}]))
    f["map"] = d / "map.json"
    f["empty.pth"] = d / "empty.pth"
    f["empty.pth"].write_bytes(b"")
    f["truncated.pth"] = d / "truncated.pth"
    f["truncated.pth"].write_bytes(good[: len(good) // 2])
    flipped = bytearray(good)
    for i in range(len(flipped) - 200, len(flipped)):  # the zip's central directory
        flipped[i] ^= 0xFF
    f["flipped.pth"] = d / "flipped.pth"
    f["flipped.pth"].write_bytes(bytes(flipped))
    f["marker"] = d / "PWNED"
    _torch_zip(d / "evil_zip.pth", pickle.dumps({"w": _Evil(f["marker"])}, protocol=2))
    f["evil_zip.pth"] = d / "evil_zip.pth"
    f["evil_legacy.pth"] = d / "evil_legacy.pth"
    f["evil_legacy.pth"].write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
                                     + pickle.dumps(_Evil(f["marker"]), protocol=2))
    _torch_zip(d / "negative.pth", _crafted_tensor_pickle((-3,), (1,), 4), {"0": b"\0" * 16})
    f["negative.pth"] = d / "negative.pth"
    _torch_zip(d / "stride0.pth", _crafted_tensor_pickle((1 << 20, 1 << 20), (0, 0), 1), {"0": b"\0" * 4})
    f["stride0.pth"] = d / "stride0.pth"
    torch.save({"w": torch.zeros(3, dtype=torch.float8_e4m3fn)}, d / "float8.pth")
    f["float8.pth"] = d / "float8.pth"
    torch.save({"w": torch.full((2, 2), 7, dtype=torch.uint16), "b": torch.full((2,), 9, dtype=torch.uint32)},
               d / "uint.pth")
    f["uint.pth"] = d / "uint.pth"
    torch.save(torch.nn.Linear(2, 2), d / "module.pth")
    f["module.pth"] = d / "module.pth"

    entry = {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
    _safetensors(d / "good.safetensors", json.dumps(entry).encode(), b"\0" * 16)
    f["good.safetensors"] = d / "good.safetensors"
    f["empty.safetensors"] = d / "empty.safetensors"
    f["empty.safetensors"].write_bytes(b"")
    f["truncated.safetensors"] = d / "truncated.safetensors"
    f["truncated.safetensors"].write_bytes((d / "good.safetensors").read_bytes()[:20])
    _safetensors(d / "string.safetensors", b'"just a string"')
    f["string.safetensors"] = d / "string.safetensors"
    _safetensors(d / "deep.safetensors", b"[" * 100_000 + b"]" * 100_000)
    f["deep.safetensors"] = d / "deep.safetensors"
    _safetensors(d / "negshape.safetensors", json.dumps(
        {"w": {"dtype": "F32", "shape": [-2, 2], "data_offsets": [0, 16]}}).encode(), b"\0" * 16)
    f["negshape.safetensors"] = d / "negshape.safetensors"
    _safetensors(d / "overlap.safetensors", json.dumps(
        {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
         "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}).encode(), b"\0" * 24)
    f["overlap.safetensors"] = d / "overlap.safetensors"
    (d / "hugehdr.safetensors").write_bytes(struct.pack("<Q", 1 << 60) + b"{}")
    f["hugehdr.safetensors"] = d / "hugehdr.safetensors"

    f["empty.ckpt"] = d / "empty.ckpt"
    f["empty.ckpt"].write_bytes(b"")
    f["garbage.ckpt"] = d / "garbage.ckpt"
    f["garbage.ckpt"].write_bytes(os.urandom(4096))

    for name in ("dir_a", "dir_b"):
        (d / name).mkdir()
        np.save(d / name / "0_x.npy", np.ones(4, np.float32))
    f["dir_a"], f["dir_b"] = d / "dir_a", d / "dir_b"
    (d / "dir_bad").mkdir()
    (d / "dir_bad" / "0_x.npy").write_bytes(b"not an npy at all")
    f["dir_bad"] = d / "dir_bad"
    (d / "dir_pickle").mkdir()
    np.save(d / "dir_pickle" / "0_x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    f["dir_pickle"] = d / "dir_pickle"
    (d / "dup.json").write_text(json.dumps([["0_x.npy", "0_x.npy"], ["0_x.npy", "0_x.npy"]]))
    f["dup.json"] = d / "dup.json"

    maps = {"notjson": "{not json", "number": "42", "badtransform": json.dumps([{"w": "w"}, {"w": "explode(1)"}]),
            "importpath": json.dumps([{"w": "w"}, {"w": "os.system"}]),
            "listnosplit": json.dumps([{"w": ["a", "b"]}, {}]), "splitnolist": json.dumps([{"w": "a"}, {"w": "split(0)"}]),
            "missing": json.dumps([{"nothere": "w"}, {}])}
    for name, text in maps.items():
        (d / f"{name}.map.json").write_text(text)
        f[f"{name}.map"] = d / f"{name}.map.json"
    np.savez(d / "inputs.npz", x=np.ones((2, 16), np.float32))
    f["inputs.npz"] = d / "inputs.npz"
    (d / "exit7.py").write_text("import sys\n\ndef build():\n    sys.exit(7)\n")
    f["exit7"] = d / "exit7.py"
    f["token_empty"] = d / "token_empty"
    f["token_empty"].write_text("\n")
    f["out"] = d / "out"
    f["out"].mkdir()
    return f


@pytest.fixture(scope="module")
def workers():
    with hand_started_worker("pt", MLP[0]) as pt, hand_started_worker("ms", MLP[1]) as ms:
        yield ("--pt", pt, "--ms", ms)


@pytest.fixture(scope="module")
def silent_listener():
    """A TCP port that accepts and answers garbage: not a gRPC worker."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nhello")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    server.close()


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def _convert(pth: str, weight_map: str = "map"):
    """``convert`` of one of the files into the case's empty output folder."""
    return lambda f, o: ["convert", "--weight-map", f[weight_map], "--pth", f[pth], "--out", o / "x.ckpt"]


# (id, argv builder (files, out folder) -> argv, exit code, what the one-line message must contain)
FILE_CASES = [
    ("pth-missing", lambda f, o: ["convert", "--weight-map", f["map"], "--pth", o / "nope.pth", "--out", o / "x.ckpt"],
     3, "nope.pth: no such file"),
    ("pth-empty", _convert("empty.pth"),
     3, "empty.pth"),
    ("pth-truncated", _convert("truncated.pth"), 3, "truncated.pth"),
    ("pth-bit-flipped", _convert("flipped.pth"), 3, "flipped.pth"),
    ("pth-code-in-zip", _convert("evil_zip.pth"), 3, "refused to unpickle 'posix.system'"),
    ("pth-code-legacy", _convert("evil_legacy.pth"), 3, "evil_legacy.pth"),
    ("pth-a-pickled-module", _convert("module.pth"), 3, "a pickled model?"),
    ("pth-negative-size", _convert("negative.pth"), 3, "tensor 'w': size [-3]"),
    ("pth-stride0-4TB", _convert("stride0.pth"), 3, "damaged or crafted"),
    ("pth-float8", lambda f, o: ["compare-ckpt", f["float8.pth"], f["good.safetensors"], "--weight-map", f["map"]],
     3, "float8_e4m3fn"),
    ("pth-is-the-output", lambda f, o: ["convert", "--weight-map", f["map"], "--pth", f["good.pth"], "--out",
                                        f["good.pth"]], 3, "that is the torch file being converted"),
    ("out-folder-missing", lambda f, o: ["convert", "--weight-map", f["map"], "--pth", f["good.pth"], "--out",
                                         o / "nodir" / "x.ckpt"], 2, "does not exist; create it first"),
    ("st-empty", lambda f, o: ["compare-ckpt", f["empty.safetensors"], f["good.safetensors"]], 3, "empty.safetensors"),
    ("st-truncated", lambda f, o: ["compare-ckpt", f["truncated.safetensors"], f["good.safetensors"]], 3,
     "truncated.safetensors"),
    ("st-string-header", lambda f, o: ["compare-ckpt", f["string.safetensors"], f["good.safetensors"]], 3,
     "header is a JSON str"),
    ("st-deep-json", lambda f, o: ["compare-ckpt", f["deep.safetensors"], f["good.safetensors"]], 3, "nests too deeply"),
    ("st-negative-shape", lambda f, o: ["compare-ckpt", f["negshape.safetensors"], f["good.safetensors"]], 3,
     "do not fit shape [-2, 2]"),
    ("st-overlap", lambda f, o: ["compare-ckpt", f["overlap.safetensors"], f["good.safetensors"]], 3,
     "'a' and 'b' overlap"),
    ("st-header-too-long", lambda f, o: ["compare-ckpt", f["hugehdr.safetensors"], f["good.safetensors"]], 3,
     "does not fit the file"),
    ("ckpt-empty", lambda f, o: ["compare-ckpt", f["empty.ckpt"], f["good.safetensors"]], 3, "empty.ckpt"),
    ("ckpt-garbage", lambda f, o: ["compare-ckpt", f["garbage.ckpt"], f["good.safetensors"]], 3, "garbage.ckpt"),
    ("ckpt-missing", lambda f, o: ["compare-ckpt", o / "none.ckpt", f["good.safetensors"]], 3, "none.ckpt: no such"),
    ("npy-dir-missing", lambda f, o: ["compare-dirs", o / "nodir", f["dir_a"]], 3, "nodir: not a directory"),
    ("npy-not-npy", lambda f, o: ["compare-dirs", f["dir_bad"], f["dir_a"]], 3, "0_x.npy"),
    ("npy-pickled-object", lambda f, o: ["compare-dirs", f["dir_pickle"], f["dir_a"]], 3, "0_x.npy"),
    ("npy-duplicate-pairs", lambda f, o: ["compare-dirs", f["dir_a"], f["dir_b"], "--name-map", f["dup.json"]], 2,
     "repeats the pair"),
    ("npy-rtol-nan", lambda f, o: ["compare-dirs", f["dir_a"], f["dir_b"], "--rtol", "nan"], 2, "'nan' must be a finite"),
    ("npy-atol-negative", lambda f, o: ["compare-dirs", f["dir_a"], f["dir_b"], "--atol", "-1"], 2, "'-1' must be a finite"),
    ("npy-csv-folder-missing", lambda f, o: ["compare-dirs", f["dir_a"], f["dir_b"], "--csv", o / "no" / "x.csv"], 2,
     "does not exist"),
    ("map-not-json", _convert("good.pth", "notjson.map"), 3, "not a JSON weight map"),
    ("map-a-number", _convert("good.pth", "number.map"), 3, "expected [name_map, value_map]"),
    ("map-unknown-transform", _convert("good.pth", "badtransform.map"), 3, "'explode(1)' is not one msparity knows"),
    ("map-import-path", _convert("good.pth", "importpath.map"), 3, "never imported"),
    ("map-list-without-split", _convert("good.pth", "listnosplit.map"), 3, "give it a split"),
    ("map-split-without-list", _convert("good.pth", "splitnolist.map"), 3, "map it to the list"),
    ("map-names-missing", _convert("good.pth", "missing.map"), 3, "nothere"),
]


@pytest.mark.parametrize("argv, code, says", [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_a_bad_file_or_option_gets_one_line_and_leaves_nothing(files, argv, code, says, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli(*map(str, argv(files, out)), timeout=120)
    _assert_one_line(result, code, says)
    assert not list(out.iterdir()), list(out.iterdir())  # no output, no .partial
    assert not files["marker"].exists()  # nothing from a pickle ran


def test_state_dicts_with_torch_2_13_unsigned_dtypes_are_data(files, tmp_path):
    """torch writes uint16/32/64 with _rebuild_tensor_v3: admitted, converted and compared end to end."""
    (tmp_path / "m.json").write_text(json.dumps([{"w": "w", "b": "b"}, {}]))
    converted = run_cli("convert", "--weight-map", str(tmp_path / "m.json"), "--pth", str(files["uint.pth"]),
                        "--out", str(tmp_path / "u.ckpt"))
    assert converted.code == 0, converted.stderr
    same = run_cli("compare-ckpt", str(files["uint.pth"]), str(tmp_path / "u.ckpt"), "--weight-map",
                   str(tmp_path / "m.json"), "--json", str(tmp_path / "r.json"))
    assert same.code == 0, same.stdout + same.stderr
    assert len(json.loads((tmp_path / "r.json").read_text())["values"]) == 2


WORKER_CASES = [
    ("input-shape-empty", lambda f, w: ["compare", *w, "--input-shape", "0,16"], 2, "at least 1"),
    ("input-shape-not-numbers", lambda f, w: ["compare", *w, "--input-shape", "a,b"], 2, "comma-separated integers"),
    ("input-shape-37GiB", lambda f, w: ["compare", *w, "--input-shape", "100000,100000"], 2, "GiB"),
    ("input-npz", lambda f, w: ["compare", *w, "--inputs", f["inputs.npz"]], 3, "an .npz archive"),
    ("input-missing", lambda f, w: ["compare", *w, "--inputs", "/nonexistent/x.npy"], 3, "x.npy"),
    ("input-wrong-shape", lambda f, w: ["compare", *w, "--input-shape", "2,5"], 3, "Forward"),
    ("rtol-nan", lambda f, w: ["compare", *w, "--rtol", "nan"], 2, "'nan' must be a finite"),
    ("lr-inf", lambda f, w: ["train-step", *w, "--lr", "inf"], 2, "'inf' must be a finite"),
    ("lr-zero", lambda f, w: ["train-step", *w, "--lr", "0"], 2, "'0' must be a finite number > 0"),
    ("json-folder-missing", lambda f, w: ["compare", *w, "--json", "/nonexistent/dir/r.json"], 2, "does not exist"),
    ("map-strategy-unknown", lambda f, w: ["compare", *w, "--map", "magic"], 2, "magic"),
    ("timeout-negative", lambda f, w: ["compare", *w, "--timeout", "-5"], 2, "'-5' must be a finite"),
    ("wrong-token", lambda f, w: ["compare", *w, "--token", "not-the-token"], 3, None),  # the workers have none: ok
]


@pytest.mark.parametrize("argv, code, says", [c[1:] for c in WORKER_CASES], ids=[c[0] for c in WORKER_CASES])
def test_a_bad_job_option_gets_one_line(files, workers, argv, code, says):
    result = run_cli(*map(str, argv(files, workers)), timeout=120)
    if says is None:  # a token the workers do not ask for is not an error
        assert result.code == 0, result.stderr
        return
    _assert_one_line(result, code, says)


def test_unreachable_and_non_grpc_listeners_are_named_within_seconds(silent_listener):
    for address, says in ((_free_port(), "cannot reach it"), (silent_listener, "cannot reach it")):
        result = run_cli("ping", "--pt", address, timeout=60)
        _assert_one_line(result, 3, says)
        assert address in result.stderr


def test_a_worker_with_a_token_refuses_a_wrong_one(tmp_path):
    env = repo_env(MSPARITY_TOKEN="right")
    with hand_started_worker("pt", MLP[0], env=env) as pt:
        _assert_one_line(run_cli("ping", "--pt", pt, env=repo_env(MSPARITY_TOKEN="wrong")), 3, "UNAUTHENTICATED")
        _assert_one_line(run_cli("ping", "--pt", pt), 3, "UNAUTHENTICATED")
        assert run_cli("ping", "--pt", pt, "--token", "right").code == 0


def _start_worker(role: str, *args: str, env=None):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", f"{role}_worker", *args], capture_output=True, text=True,
                          env=env or repo_env(), timeout=120, stdin=subprocess.DEVNULL)


START_CASES = [
    ("pt-open-to-all-without-token", "pt", lambda f: ["--listen", "0.0.0.0:0", "--model", MLP[0]], 2,
     "reachable from other hosts and no token"),
    ("ms-open-to-all-without-token", "ms", lambda f: ["--listen", "[::]:0", "--model", MLP[1]], 2,
     "reachable from other hosts and no token"),
    ("no-model", "pt", lambda f: [], 2, "give --model SPEC"),
    ("model-not-found", "pt", lambda f: ["--model", "no_such_module:build"], 3, "no_such_module"),
    ("factory-calls-sys-exit", "pt", lambda f: ["--model", f"{f['exit7']}:build"], 3, "it called sys.exit(7)"),
    ("token-file-missing", "pt", lambda f: ["--model", MLP[0], "--token-file", "/nonexistent/token"], 3, "token"),
    ("token-file-empty", "ms", lambda f: ["--model", MLP[1], "--token-file", f["token_empty"]], 3, "is empty"),
    ("abbreviated-option", "pt", lambda f: ["--model", MLP[0], "--tok", "abc"], 2, "No such option '--tok'"),
]


@pytest.mark.parametrize("role, argv, code, says", [c[1:] for c in START_CASES], ids=[c[0] for c in START_CASES])
def test_a_worker_that_cannot_start_says_why_in_one_line(files, role, argv, code, says):
    result = _start_worker(role, *map(str, argv(files)))
    assert result.returncode == code, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not result.stdout.strip()  # no address printed: nothing listens


def test_a_port_in_use_is_a_bind_error_not_a_model_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = _start_worker("pt", "--listen", address, "--model", MLP[0])
    assert result.returncode == 3 and f"cannot listen on {address}" in result.stderr, result.stderr
    assert "building model" not in result.stderr


def _assert_one_line(result, code: int, says: str) -> None:
    text = result.stdout + result.stderr
    assert result.code == code, text
    assert "Traceback" not in text, text
    message = [line for line in result.stderr.splitlines() if line.strip()]
    assert message and says in message[-1], text
    assert len([line for line in message if "error" in line.lower()]) <= 2, text  # click usage has a header line
