"""``python -m ms_worker --listen HOST:PORT --model SPEC``: serve a MindSpore model over gRPC."""

from __future__ import annotations

import sys

from proto.worker import serve


def make_adapter(args):
    import mindspore as ms

    from ms_worker.adapter import MindSporeAdapter
    from proto.worker.model_spec import build_parts

    ms.set_context(mode=ms.GRAPH_MODE if args.mode == "graph" else ms.PYNATIVE_MODE)
    if args.device:
        target, _, device_id = args.device.partition(":")
        ms.set_device(target, int(device_id) if device_id else None)
    parts = build_parts(args.model)
    return MindSporeAdapter(parts.net, parts.example_inputs, model_spec=args.model, loss=parts.loss,
                            optimizer=parts.optimizer)


def main(argv: list[str] | None = None) -> int:
    parser = serve.build_parser("msparity-ms-worker", "Serve a MindSpore model to an msparity coordinator.")
    parser.add_argument("--mode", choices=("pynative", "graph"), default="pynative",
                        help="MindSpore execution mode (default pynative)")
    return serve.serve("ms", parser.parse_args(argv), make_adapter)


if __name__ == "__main__":
    sys.exit(main())
