"""The settings of two paired modules, as each worker read them off its module (proto/worker/call_recorder.py).

A hint about a silent default (MindSpore's LayerNorm epsilon is 1e-7, torch's 1e-5) is only advice when
the modules really hold those values: a port may have set epsilon=1e-6 to match timm on purpose. So a
blamed pair's real settings are compared first, named with both values; a setting equal on both sides
rules out the hints about it.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping

# (what, torch attribute names, MindSpore attribute names): the first name present on each side is compared
SETTINGS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("epsilon", ("eps", "variance_epsilon", "epsilon"), ("epsilon", "eps", "variance_epsilon")),
    ("GELU approximation", ("approximate",), ("approximate",)),
    ("negative slope", ("negative_slope",), ("alpha",)),
    ("softmax axis", ("dim",), ("axis",)),
    ("kernel size", ("kernel_size",), ("kernel_size",)),
    ("stride", ("stride",), ("stride",)),
    ("padding", ("padding",), ("padding",)),
    ("dilation", ("dilation",), ("dilation",)),
    ("attention scale", ("scale", "scaling"), ("scale", "scaling")),
)
SYMMETRIC_PAD_MODES = ("pad", "PAD")


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _normal(what: str, value):
    """One spelling per meaning: MindSpore's GELU(approximate=True) is torch's approximate='tanh'; 2 is (2, 2)."""
    if what == "GELU approximation" and isinstance(value, bool):
        return "tanh" if value else "none"
    return value


def _same(a, b) -> bool:
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        a_items = tuple(a) if isinstance(a, (tuple, list)) else (a,)
        b_items = tuple(b) if isinstance(b, (tuple, list)) else (b,)
        longest = max(len(a_items), len(b_items))
        a_items = a_items * longest if len(a_items) == 1 else a_items
        b_items = b_items * longest if len(b_items) == 1 else b_items
        return len(a_items) == len(b_items) and all(_same(x, y) for x, y in zip(a_items, b_items))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=0.0)
    return a == b


def _read(attrs: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, object] | None:
    name = next((n for n in names if n in attrs), None)
    return (name, _value(attrs[name])) if name is not None else None


def compared_settings(pt_attrs: Mapping[str, str], ms_attrs: Mapping[str, str]) -> tuple[list[str], set[str]]:
    """(each setting that differs, named with both sides' values and the fix; the settings equal on both)."""
    differ, equal = [], set()
    for what, pt_names, ms_names in SETTINGS:
        pt, ms = _read(pt_attrs, pt_names), _read(ms_attrs, ms_names)
        if pt is None or ms is None:
            continue
        if _same(_normal(what, pt[1]), _normal(what, ms[1])):
            equal.add(what)
            continue
        wanted = pt[1] if what != "GELU approximation" else pt[1] != "none"
        differ.append(f"{what}: torch {pt[0]}={pt[1]!r}, MindSpore {ms[0]}={ms[1]!r}; pass {ms[0]}={wanted!r}")
    mode = _read(ms_attrs, ("pad_mode",))
    padding = _read(pt_attrs, ("padding",))
    if mode is not None and padding is not None and str(mode[1]) not in SYMMETRIC_PAD_MODES and not _same(padding[1], 0):
        differ.append(f"padding: torch pads {padding[1]!r} on each side, MindSpore pad_mode={mode[1]!r} pads "
                      f"TF-style (one more at the end on even sizes); pass pad_mode='pad', padding={padding[1]!r}")
        equal.discard("padding")
    return differ, equal
