"""A hand-built ViT trace of both sides, shared by the locate tests: ModuleCall records and their alignment."""

from __future__ import annotations

import contextlib

from coordinator.locate.alignment import align_calls
from proto.worker.module_records import ModuleCall, TensorSummary


def shape_summary(shape) -> TensorSummary:
    return TensorSummary("t", "float32", tuple(shape), 0.0, 0.0, 0.0, 1.0, True)


class Trace:
    """Records ModuleCalls the way the workers' hooks will: one counter, pre- and post-hook."""

    def __init__(self) -> None:
        self.clock, self.calls, self.counts = 0, [], {}

    @contextlib.contextmanager
    def call(self, path, type_, params=(), out=(2, 17, 64), inp=(2, 17, 64), rule=None):
        start, self.clock = self.clock, self.clock + 1
        yield
        end, self.clock = self.clock, self.clock + 1
        index = self.counts[path] = self.counts.get(path, -1) + 1
        full = tuple(f"{path}.{p}" if path else p for p in params)
        ins, outs = (shape_summary(inp),), (shape_summary(out),)
        self.calls.append(ModuleCall(path, type_, rule or type_, index, start, end, ins, outs, full))

    def leaf(self, *args, **kwargs):
        with self.call(*args, **kwargs):
            pass


def vit_trace(ms: bool) -> list[ModuleCall]:
    """Torch: Linear/GELU/LayerNorm, Dropout `pos_drop` called twice. MindSpore: Dense/GELU/LayerNorm,
    the MLP container named `ffn`, the dropout `drop`, and an extra Softmax cell in each attention."""
    t = Trace()
    linear_type, linear_params = ("Dense" if ms else "Linear"), ("weight", "bias")
    norm = ("gamma", "beta") if ms else ("weight", "bias")
    mlp, drop = ("ffn", "drop") if ms else ("mlp", "pos_drop")
    with t.call("", "ViT", ("cls_token", "pos_embed"), out=(2, 10), inp=(2, 3, 32, 32)):
        t.leaf("patch_embed", "Conv2d", ("weight", "bias"), out=(2, 64, 4, 4), inp=(2, 3, 32, 32))
        t.leaf(drop, "Dropout")
        for b in range(2):
            with t.call(f"blocks.{b}", "Block"):
                t.leaf(f"blocks.{b}.norm1", "LayerNorm", norm)
                with t.call(f"blocks.{b}.attn", "Attention"):
                    t.leaf(f"blocks.{b}.attn.qkv", linear_type, linear_params, out=(2, 17, 192))
                    if ms:
                        t.leaf(f"blocks.{b}.attn.softmax", "Softmax", out=(2, 4, 17, 17), inp=(2, 4, 17, 17))
                    t.leaf(f"blocks.{b}.attn.proj", linear_type, linear_params)
                t.leaf(f"blocks.{b}.norm2", "LayerNorm", norm)
                with t.call(f"blocks.{b}.{mlp}", "Mlp"):
                    t.leaf(f"blocks.{b}.{mlp}.fc1", linear_type, linear_params, out=(2, 17, 128))
                    t.leaf(f"blocks.{b}.{mlp}.act", "GELU", out=(2, 17, 128), inp=(2, 17, 128))
                    t.leaf(f"blocks.{b}.{mlp}.fc2", linear_type, linear_params, inp=(2, 17, 128))
        t.leaf("norm", "LayerNorm", norm)
        t.leaf(drop, "Dropout", out=(2, 64), inp=(2, 64))
        t.leaf("head", linear_type, linear_params, out=(2, 10), inp=(2, 64))
    return t.calls


def vit_name_map(pt_calls) -> dict[str, str]:
    renames = {"weight": "gamma", "bias": "beta"}
    names = {}
    for call in pt_calls:
        for name in call.param_names:
            ms = name.replace(".mlp.", ".ffn.")
            if call.type == "LayerNorm":
                stem, _, local = ms.rpartition(".")
                ms = f"{stem}.{renames[local]}"
            names[name] = ms
    return names


def vit_alignment():
    """(torch calls, MindSpore calls, their alignment) of the hand-built ViT."""
    pt, ms = vit_trace(ms=False), vit_trace(ms=True)
    return pt, ms, align_calls(pt, ms, vit_name_map(pt))
