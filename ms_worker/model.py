"""The ms worker's model: the execution mode and device set, then the net built from a spec."""

from __future__ import annotations

import mindspore as ms

from ms_worker.adapter import MindSporeAdapter
from proto.worker.model_spec import build_parts


def make_adapter(args) -> MindSporeAdapter:
    """The adapter serving the model the worker's command line names (--model, --device, --mode)."""
    ms.set_context(mode=ms.GRAPH_MODE if args.mode == "graph" else ms.PYNATIVE_MODE)
    if args.device:
        target, _, device_id = args.device.partition(":")
        ms.set_device(target, int(device_id) if device_id else None)
    parts = build_parts(args.model)
    adapter = MindSporeAdapter(parts.net, parts.example_inputs, model_spec=args.model, loss=parts.loss,
                               optimizer=parts.optimizer, use_input_values=parts.use_input_values)
    adapter.set_placements(parts.placements)
    adapter.set_activations(parts.activations)
    return adapter
