"""Lazy name resolution shared by the msparity namespace modules (imports nothing heavy)."""

from __future__ import annotations

import importlib

_GRADS = ("not supported (no gradient hooks); take gradients after backward (ts.widget.get_pt_grads for torch, "
          "mindspore.grad / value_and_grad for MindSpore) and write them with ts.save")
_API_DUMP = ("not supported; save the tensors you need with ts.save and compare the directories with "
             "ts.migrator.compare_npy_dir")
_PROPOSER = "not supported (TroubleShooter's error-proposal tool has no msparity counterpart)"
_TRACKER = "not supported (TroubleShooter's line tracker has no msparity counterpart)"

# TroubleShooter 1.0.18 names msparity leaves out ("sub.name" inside ts.sub): name -> what to use instead.
NOT_PROVIDED: dict[str, str] = {
    "save_grad": _GRADS,
    "proposal": _PROPOSER,
    "proposer": _PROPOSER,
    "tracking": _TRACKER,
    "tracker": _TRACKER,
    "common": "not supported (TroubleShooter-internal helpers)",
    "FRAMEWORK_TYPE": "not supported; msparity picks the framework per call (check sys.modules yourself)",
    "migrator.save_grad": _GRADS,
    "migrator.api_dump_start": _API_DUMP,
    "migrator.api_dump_init": _API_DUMP,
    "migrator.api_dump_stop": _API_DUMP,
    "migrator.api_dump_compare": _API_DUMP,
    "migrator.cal_algorithm": "use coordinator.metrics.compare_tensors on NamedArray pairs (not a drop-in: its "
                              "mean/max diffs are over all elements, TroubleShooter's over the unequal ones)",
    "migrator.cal_cosine_sim": "use coordinator.metrics.compare_tensors(...).cosine_similarity (not a drop-in: "
                               "0, not nan, for a zero tensor against a non-zero one)",
    "migrator.fix_random": "use ts.fix_random or ts.widget.fix_random (the migration guide's link text says "
                           "ts.migrator.fix_random, but TroubleShooter 1.0.18 has no such name either)",
    "widget.load_ms_weight2net": "use mindspore.load_param_into_net(net, mindspore.load_checkpoint(file))",
    "widget.object_load": "use json.load",
    "widget.object_dump": "use json.dump",
    "widget.precision_tracker": "not supported",
    "widget.save_convert": "not supported; ts.save writes .npy files directly (also in MindSpore Graph mode on CPU), "
                           "so there is no print file to convert",
    "widget.loss_compare": "not supported",
}


def not_provided(qualified: str) -> AttributeError | None:
    """The one-line AttributeError for a TroubleShooter name msparity leaves out, or None if not one."""
    advice = NOT_PROVIDED.get(qualified)
    if advice is None:
        return None
    return AttributeError(f"msparity does not provide TroubleShooter's {qualified!r}; {advice}")


def resolve(module_name: str, name: str, exports: dict[str, str], prefix: str = ""):
    """``getattr(import_module(exports[name]), name)``; AttributeError (with advice) for anything else."""
    source = exports.get(name)
    if source is not None:
        return getattr(importlib.import_module(source), name)
    error = not_provided(prefix + name)
    if error is not None:
        raise error
    raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
