"""``python -m pt_worker --listen HOST:PORT --model SPEC``: serve a PyTorch model over gRPC."""

from __future__ import annotations

import sys

from proto.worker import serve


def make_adapter(args):
    from proto.worker.model_spec import ModelParts, build_parts
    from pt_worker.adapter import TorchAdapter
    from pt_worker.model import PICKLE_SPEC_PREFIX, load_pickled

    if args.model.startswith(PICKLE_SPEC_PREFIX):
        parts = ModelParts(load_pickled(args.model[len(PICKLE_SPEC_PREFIX):], args.trust_pickle))
    else:
        parts = build_parts(args.model)
    return TorchAdapter(parts.net, parts.example_inputs, model_spec=args.model, device=args.device, loss=parts.loss,
                        optimizer=parts.optimizer)


def main(argv: list[str] | None = None) -> int:
    parser = serve.build_parser("msparity-pt-worker", "Serve a PyTorch model to an msparity coordinator.")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow --model pickle:PATH, which unpickles a whole model (runs code from the file)")
    return serve.serve("pt", parser.parse_args(argv), make_adapter)


if __name__ == "__main__":
    sys.exit(main())
