"""Seeding and deterministic algorithms for torch (the ``fix_random`` API lives here)."""

from __future__ import annotations

import os
import random

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
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
