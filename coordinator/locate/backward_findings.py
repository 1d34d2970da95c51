"""Findings of a backward locate that no single module owns: a loss that differs, a graph cut before a module."""

from __future__ import annotations

import dataclasses

from proto.worker.module_records import ModuleCall


def loss_or_cut(located, verdicts, pt_calls: list[ModuleCall]):
    """Backward findings a module cannot own: the loss's gradient differs before any module (blamed on the net's
    root, whose incoming gradient is the loss's), or a module passes no gradient back (a cut graph)."""
    root = next((v for v in verdicts if not v.pair.pt.path), None)
    if root is not None and not root.inputs_match:
        return dataclasses.replace(located, blamed=root, reason=(
            "the gradient of the loss wrt the net's outputs already differs before any module: the two sides' losses "
            "differ (a sum where the other averages, class weights, label smoothing, a different target)"))
    return _cut_graph(located, pt_calls)


def _cut_graph(located, pt_calls: list[ModuleCall]):
    """A blamed module that passes no gradient back on one side: its input was cut from the graph before it (a
    stop_gradient or detach in the module that produced it, the next one in backward order): say where."""
    pair = located.blamed.pair
    if bool(pair.pt.outputs) == bool(pair.ms.outputs):
        return located
    side = "MindSpore" if not pair.ms.outputs else "torch"
    later = [c for c in pt_calls if c.start > pair.pt.end and c.path]
    producer = min(later, key=lambda c: c.start) if later else None
    where = f"pt {producer.path} ({producer.type}) and its counterpart" if producer is not None else "what feeds it"
    reason = (f"{located.reason}: on the {side} side no gradient flows back through it, so its input was cut from "
              f"the graph before it (a stop_gradient or detach); look at {where}")
    return dataclasses.replace(located, reason=reason)
