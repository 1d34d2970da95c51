"""Regenerate the checked-in protobuf/gRPC code: ``python -m proto.generate [--check]``.

protoc runs from the repository root with ``-I .`` so generated modules import each other as
``proto.tensor_pb2``. ``--check`` regenerates into a temporary folder and fails when the
checked-in files differ (a test runs it).
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
REPO_ROOT = PROTO_DIR.parent
PROTO_FILES = ("proto/tensor.proto", "proto/worker.proto", "proto/ms_checkpoint.proto")


def generated_names() -> list[str]:
    """Names of the files protoc writes into proto/ for PROTO_FILES."""
    names = []
    for proto_file in PROTO_FILES:
        stem = Path(proto_file).stem
        names += [f"{stem}_pb2.py", f"{stem}_pb2.pyi", f"{stem}_pb2_grpc.py"]
    return names


def run_protoc(out_dir: Path) -> None:
    """Run grpc_tools.protoc over PROTO_FILES, writing below out_dir."""
    from grpc_tools import protoc  # dev dependency only

    args = [
        "grpc_tools.protoc",
        "-I",
        str(REPO_ROOT),
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(REPO_ROOT / f) for f in PROTO_FILES),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the messages above")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proto.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if checked-in code is stale")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run_protoc(Path(tmp))
        fresh_dir = Path(tmp) / "proto"
        stale = [
            name
            for name in generated_names()
            if not (PROTO_DIR / name).exists() or not filecmp.cmp(fresh_dir / name, PROTO_DIR / name, shallow=False)
        ]
        if args.check:
            if stale:
                print(f"stale generated code: {', '.join(stale)}; run `python -m proto.generate`", file=sys.stderr)
                return 1
            print("generated code is current")
            return 0
        for name in generated_names():
            (PROTO_DIR / name).write_bytes((fresh_dir / name).read_bytes())
        print(f"wrote {len(generated_names())} files into {PROTO_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
