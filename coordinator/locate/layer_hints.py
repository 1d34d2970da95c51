"""The likely ported default behind a diverging layer, from LAYER_FACTS.md (torch 2.13, MindSpore 2.10).

HINTS is the table: one row per verified difference (section 2, "Default differences that silently
change results", plus the section 1 rows whose naive port measurably differs). A row names the torch
and MindSpore classes it covers, optional evidence it needs, the cause with its measured naive-port
error, and the fix. Rows whose defaults were verified to agree (``fix=None``) are offered only when no
difference applies, so the message says to look at the port's own code instead.

Evidence keys (all optional; a row whose key is missing from the evidence still applies, a row whose
key has another value does not, and rows confirmed by evidence come first):
``shape_differs`` (bool: output shapes differ), ``training`` (bool: the forward ran in train mode),
``ms_lacks_bias`` (bool: the torch module has a bias, the MindSpore cell none), ``size_factor`` (bool:
the output's spatial sizes differ by a whole factor, as a stride would make them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from proto.worker.module_records import ModuleCall

__all__ = ["HINTS", "Hint", "evidence_from_calls", "hint_for", "hints_for"]

_CONV = frozenset({"Conv1d", "Conv2d", "Conv3d"})
_BATCH_NORM = frozenset({"BatchNorm1d", "BatchNorm2d", "BatchNorm3d"})
_POOL = frozenset({"MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d"})
_DROPOUT = frozenset({"Dropout", "Dropout1d", "Dropout2d", "Dropout3d"})
_RMS_NORM = frozenset({"RMSNorm", "LlamaRMSNorm", "Qwen2RMSNorm", "MistralRMSNorm", "T5LayerNorm"})


@dataclass(frozen=True)
class Hint:
    label: str
    pt_types: frozenset[str]
    ms_types: frozenset[str]
    cause: str
    fix: str | None  # None: verified to agree
    when: Mapping[str, object] = field(default_factory=dict)
    about: str = ""  # the setting it is about (module_settings.SETTINGS): ruled out when both sides hold the same


def _row(label, pt, ms, cause, fix, about="", **when) -> Hint:
    return Hint(label, frozenset(pt), frozenset(ms), cause, fix, when, about)


HINTS: tuple[Hint, ...] = (
    _row("LayerNorm", {"LayerNorm"}, {"LayerNorm"},
         "MindSpore's default epsilon is 1e-7, torch's eps 1e-5 (naive port: 2.8e-5 at input std 1, 0.20 at std"
         " 1e-2, 2.37 at std 1e-3)",
         "pass epsilon=1e-5 (normalized_shape as a tuple; for several axes a positive "
         "begin_norm_axis/begin_params_axis)", about="epsilon"),
    _row("RMSNorm", _RMS_NORM, _RMS_NORM,
         "its epsilon differs from torch's: RMSNorm subtracts no mean, so the epsilon scales every row, small-norm"
         " rows most",
         "pass the torch module's epsilon (HuggingFace: config.rms_norm_eps)", about="epsilon"),
    _row("BatchNorm", _BATCH_NORM, _BATCH_NORM,
         "MindSpore's momentum is the share KEPT of the running stats (default 0.9 = torch's 0.1); a copied "
         "torch momentum=0.1 puts running_mean off by 0.915 after one step",
         "pass momentum=1 - torch momentum", training=True),
    _row("BatchNorm", _BATCH_NORM, _BATCH_NORM,
         "eps differs from torch's (both default to 1e-5; a TF-style eps=1e-3 in the port changes the eval output)",
         "pass eps=<the torch module's eps>", about="epsilon", training=False),
    _row("BatchNorm", _BATCH_NORM, _BATCH_NORM,
         "running_var (unbiased) and eps 1e-5 agree (eval and train forward 4.8e-7)", None),
    _row("GELU", {"GELU"}, {"GELU"},
         "MindSpore's nn.GELU defaults to approximate=True (tanh), torch's to the exact erf form (naive port: "
         "4.7e-4 at x~N(0,3))",
         "use nn.GELU(approximate=False) or ops.gelu (1.0e-6)", about="GELU approximation"),
    _row("Dropout", _DROPOUT, _DROPOUT,
         "MindSpore's first positional argument is keep_prob: Dropout(0.1) zeroes 90% and scales x10 where "
         "torch zeroes 10%",
         "pass nn.Dropout(p=0.1) by keyword", training=True),
    _row("Module mode", _DROPOUT, _DROPOUT,
         "torch modules are created with training=True, MindSpore cells with training=False (a fresh MS Dropout"
         " is the identity)",
         "call net.train(...) / net.set_train(...) explicitly on both sides"),
    _row("BatchNorm", _BATCH_NORM, _BATCH_NORM,
         "a cell in train mode, or use_batch_statistics=True, normalizes with the batch's statistics instead of "
         "the running ones",
         "leave use_batch_statistics=None and call set_train(False) for eval"),
    _row("Linear/Dense", {"Linear"}, {"Dense"},
         "the MindSpore cell has no bias where torch's Linear has one (has_bias=False, or a bias never added)",
         "pass has_bias=True and map the torch bias onto it", ms_lacks_bias=True),
    _row("Linear/Dense", {"Linear"}, {"Dense"},
         "default inits agree (W, b ~ U(+-1/sqrt(fan_in)); converted diff 1.2e-7)",
         None),
    _row("Conv", _CONV | {"ConvTranspose2d"}, _CONV | {"Conv2dTranspose"},
         "MindSpore's has_bias defaults to False (torch bias=True), so the cell has no bias",
         "pass has_bias=True", ms_lacks_bias=True),
    _row("Conv", _CONV, _CONV,
         "the output size differs by a whole factor: the stride differs from torch's",
         "pass the torch module's stride", size_factor=True),
    _row("Conv", _CONV, _CONV,
         "MindSpore's default pad_mode is 'same', torch's padding=0 (Conv2d(3,4,3): output (8,8) vs (6,6))",
         "pass pad_mode='pad', padding=p", shape_differs=True, size_factor=False),
    _row("Conv", _CONV, _CONV,
         "MindSpore's pad_mode='same' pads TF-style (k3 s2: 0 top/left, 1 bottom/right) where torch padding=1 "
         "is symmetric: same shape, diff 2.3",
         "pass pad_mode='pad', padding=1", shape_differs=False),
    _row("Conv", _CONV, _CONV | {"Pad"},
         "torch padding_mode='reflect' has no pad_mode in MindSpore ('pad' pads zeros; naive port 1.05)",
         "use nn.Pad(mode='REFLECT') then the conv with pad_mode='valid' (3.6e-7)", shape_differs=False),
    _row("Conv", _CONV, _CONV,
         "default inits agree (converted diff 2.4e-7)", None),
    _row("ConvTranspose2d", {"ConvTranspose2d"}, {"Conv2dTranspose"},
         "MindSpore's output_padding only zero-pads the final output after the bias (naive port 0.84)",
         "pass padding=(p, p-op, p, p-op) and output_padding=0 (needs p >= op; 1.8e-7)"),
    _row("Embedding", {"Embedding"}, {"Embedding"},
         "MindSpore's default init is N(0, 0.01), torch's N(0, 1)",
         "copy the torch weight into embedding_table"),
    _row("Embedding", {"Embedding"}, {"Embedding"},
         "MindSpore zeroes the padding_idx row but does not mask its gradient (row 0 grad 2.0 vs 0)",
         "mask the padding row's gradient by hand when training", training=True),
    _row("Softmax", {"Softmax"}, {"Softmax"},
         "torch Softmax() with dim=None picks a dim implicitly (1 for 4-D input, 0 for 3-D), MindSpore's axis "
         "is -1 (naive port 0.57 4-D, 0.50 3-D)",
         "pass the same axis on both sides", about="softmax axis"),
    _row("Pool", _POOL, _POOL,
         "torch's stride defaults to kernel_size, MindSpore's to 1 (MaxPool2d(2): output (4,4) vs (7,8))",
         "pass stride=kernel_size", about="stride", shape_differs=True),
    _row("Pool", _POOL, _POOL,
         "MindSpore's pad_mode='same' pads TF-style where torch padding=1 is symmetric: same shape, MaxPool "
         "2.79, AvgPool 0.68",
         "pass pad_mode='pad', padding=p", about="padding", shape_differs=False),
    _row("Pool", _POOL, _POOL,
         "count_include_pad (True both; pad_mode='pad' diff 0) and ceil_mode (False both; MS MaxPool2d sets it "
         "only with pad_mode='pad') agree",
         None),
    _row("Upsample", {"Upsample"}, {"Upsample"},
         "bicubic differs (0.23 default, 0.28 align_corners=False, 1.7e-3 align_corners=True); bilinear and "
         "nearest agree; MS needs recompute_scale_factor=True for a 4-D scale_factor",
         "avoid bicubic or re-implement it"),
    _row("normalize", {"normalize"}, {"L2Normalize"},
         "MindSpore's L2Normalize defaults to axis=0 and epsilon=1e-4 on the sum of squares; F.normalize uses "
         "dim=1, eps=1e-12 on the norm (naive 0.74; tiny-norm rows 0.72)",
         "use L2Normalize(axis=1, epsilon=1e-24)"),
    _row("ReLU6", {"ReLU6"}, {"ReLU6"}, "defaults agree (naive port 0)", None),
    _row("LeakyReLU", {"LeakyReLU"}, {"LeakyReLU"},
         "MindSpore's alpha defaults to 0.2, torch's negative_slope to 0.01 (naive port 4.27 at x~N(0,5))",
         "pass alpha=0.01", about="negative slope"),
    _row("ELU/HSwish/SiLU", {"ELU", "Hardswish", "SiLU"}, {"ELU", "HSwish", "SiLU"},
         "defaults agree (2e-6 / 1e-6 / 1.4e-6; torch Hardswish is MindSpore nn.HSwish)", None),
    _row("InstanceNorm2d", {"InstanceNorm2d"}, {"InstanceNorm2d"},
         "MindSpore nn.InstanceNorm2d fails on CPU (\"Unsupported op [InstanceNorm] on CPU\")",
         "use GroupNorm(C, C) (2.4e-7)"),
    _row("LSTM/GRU", {"LSTM", "GRU"}, {"LSTM", "GRU"},
         "keys and gate order (LSTM i,f,g,o; GRU r,z,n) are identical: a swapped gate block costs 0.59 (LSTM), "
         "0.42 (GRU r<->z)",
         "copy the weights without repacking gates"),
)


def _state(hint: Hint, evidence: Mapping[str, object]) -> int:
    """-1 ruled out by the evidence, 1 confirmed by it, 0 neither."""
    if hint.about and hint.about in evidence.get("settings_equal", ()):
        return -1  # the modules hold the same value: this default is not the cause
    if any(key in evidence and evidence[key] != value for key, value in hint.when.items()):
        return -1
    return 1 if hint.when and all(key in evidence for key in hint.when) else 0


def hints_for(rule_type_pt: str, rule_type_ms: str, evidence: Mapping[str, object] | None = None) -> list[Hint]:
    """Rows that apply to this pair of classes: differences first (confirmed ones first), else agreements."""
    evidence = evidence or {}
    rows = [h for h in HINTS if rule_type_pt in h.pt_types or rule_type_ms in h.ms_types]
    rows = [(state, h) for h in rows if (state := _state(h, evidence)) >= 0]
    differences = [h for state, h in sorted(rows, key=lambda r: -r[0]) if h.fix is not None]
    return differences or [h for _, h in rows]


def hint_for(rule_type_pt: str, rule_type_ms: str, evidence: Mapping[str, object] | None = None) -> str | None:
    """One line naming the likely default behind the divergence and its fix, or None if no row knows it."""
    rows = hints_for(rule_type_pt, rule_type_ms, evidence)
    if not rows:
        return None
    if rows[0].fix is None:
        return f"{rows[0].label}: {rows[0].cause}; look at the port's own code and weights"
    parts = "; or ".join(f"{h.cause}; {h.fix}" for h in rows)
    return f"{rows[0].label} differs: {parts}"


def evidence_from_calls(pt: ModuleCall, ms: ModuleCall, training: bool | None = None) -> dict[str, object]:
    """The evidence hint_for understands, read off two paired calls."""
    def has_bias(call: ModuleCall) -> bool:
        return any(name.rpartition(".")[2] == "bias" for name in call.param_names)

    pt_shapes, ms_shapes = tuple(s.shape for s in pt.outputs), tuple(s.shape for s in ms.outputs)
    evidence: dict[str, object] = {
        "shape_differs": pt_shapes != ms_shapes,
        "ms_lacks_bias": has_bias(pt) and not has_bias(ms),
        "size_factor": pt_shapes != ms_shapes and _whole_factor(pt_shapes, ms_shapes),
    }
    if training is not None:
        evidence["training"] = training
    return evidence


def _whole_factor(pt_shapes, ms_shapes) -> bool:
    """Same ranks and leading (batch, channel) sizes, spatial sizes apart by a whole factor of 2 or more."""
    if not pt_shapes or len(pt_shapes) != len(ms_shapes):
        return False
    a, b = pt_shapes[0], ms_shapes[0]
    if len(a) != len(b) or len(a) < 3 or a[:2] != b[:2]:
        return False
    pairs = [(max(x, y), min(x, y)) for x, y in zip(a[2:], b[2:]) if x != y]
    return bool(pairs) and all(small > 0 and big % small == 0 and big // small >= 2 for big, small in pairs)
