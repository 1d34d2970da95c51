"""Seeding and deterministic algorithms for torch (the ``fix_random`` API lives here)."""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import torch


def fix_random(seed: int = 16) -> None:
    """Seed Python, numpy and torch, and ask torch for deterministic algorithms."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    deterministic_algorithms()
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def deterministic_algorithms() -> None:
    """torch.use_deterministic_algorithms(True, warn_only=True) without its import of the compiler stack.

    The public call imports torch._inductor to set its ``deterministic`` flag: 2 CPU-seconds in every fresh
    worker, for a compiler an eager worker never runs. The flag is set on inductor only where it is loaded.
    """
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:  # a torch without the private setter: the public call, import and all
        torch.use_deterministic_algorithms(True, warn_only=True)
        return
    setter(True, warn_only=True)
    inductor = sys.modules.get("torch._inductor.config")
    if inductor is not None:
        inductor.deterministic = True
