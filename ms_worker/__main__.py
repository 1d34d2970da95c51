"""``python -m ms_worker --listen HOST:PORT --model SPEC``: serve a MindSpore model over gRPC."""

from __future__ import annotations

import sys

from proto.worker import serve


def make_adapter(args):
    from ms_worker.model import make_adapter  # mindspore is imported only once the options parse

    return make_adapter(args)


def main(argv: list[str] | None = None) -> int:
    parser = serve.build_parser("msparity-ms-worker", "Serve a MindSpore model to an msparity coordinator.")
    parser.add_argument("--mode", choices=("pynative", "graph"), default="pynative",
                        help="MindSpore execution mode (default pynative)")
    return serve.serve("ms", parser.parse_args(argv), make_adapter)


if __name__ == "__main__":
    sys.exit(main())
