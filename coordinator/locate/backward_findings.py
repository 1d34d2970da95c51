"""Findings of a backward locate that no single module owns: a loss that differs, a graph cut before a module."""

from __future__ import annotations

import dataclasses

from coordinator.locate.alignment import Alignment, CallPair
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


def unmeasured_containers(alignment: Alignment, pt_calls: list[ModuleCall], ms_calls: list[ModuleCall]) -> Alignment:
    """Containers whose backward hook gave no gradient on one side are left unjudged, not blamed.

    MindSpore calls no backward hook with the gradients of a cell that takes masks or returns a structure
    (mindone's HuggingFace encoders); its children are hooked and judged. A leaf passing no gradient back
    stays a finding: the graph was cut before it.
    """
    def container(call: ModuleCall, calls: list[ModuleCall]) -> bool:
        return call.path == "" or any(c.path.startswith(call.path + ".") for c in calls)

    pairs = []
    for pair in alignment.pairs:
        one_empty = bool(pair.pt.outputs) != bool(pair.ms.outputs)
        empty, calls = (pair.ms, ms_calls) if not pair.ms.outputs else (pair.pt, pt_calls)
        if one_empty and container(empty, calls):
            pair = CallPair(dataclasses.replace(pair.pt, outputs=()), dataclasses.replace(pair.ms, outputs=()),
                            pair.how)
        pairs.append(pair)
    return dataclasses.replace(alignment, pairs=tuple(pairs))
