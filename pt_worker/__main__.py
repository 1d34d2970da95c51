"""``python -m pt_worker --listen HOST:PORT --model SPEC``: serve a PyTorch model over gRPC."""

from __future__ import annotations

import sys

from proto.worker import serve


def make_adapter(args):
    from pt_worker.model import make_adapter  # torch is imported only once the options parse

    return make_adapter(args)


def main(argv: list[str] | None = None) -> int:
    parser = serve.build_parser("msparity-pt-worker", "Serve a PyTorch model to an msparity coordinator.")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow --model pickle:PATH, which unpickles a whole model (runs code from the file)")
    return serve.serve("pt", parser.parse_args(argv), make_adapter)


if __name__ == "__main__":
    sys.exit(main())
