"""Seeding and deterministic settings for mindspore (the ``fix_random`` API lives here)."""

from __future__ import annotations

import os
import random

import mindspore as ms
import numpy as np


def fix_random(seed: int = 16) -> None:
    """Seed Python, numpy and mindspore, and ask mindspore for deterministic kernels."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    ms.set_seed(seed)
    try:
        ms.set_deterministic(True)
    except (AttributeError, RuntimeError, TypeError):  # older releases / backends without the switch
        pass
