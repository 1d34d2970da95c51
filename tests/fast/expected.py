"""What the tiny numpy net should compute, written out in float64 apart from the fake, for tests to check against."""

from __future__ import annotations

import numpy as np

X = (np.arange(8, dtype=np.float32).reshape(2, 4) - 3.5) / 4  # one (2, 4) batch, negative and positive values
TARGET = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)


def linear(params: dict[str, np.ndarray], path: str, x: np.ndarray) -> np.ndarray:
    """``x W^T + b`` of the layer at path."""
    return np.asarray(x, np.float64) @ params[f"{path}.weight"].T.astype(np.float64) + params[f"{path}.bias"]


def forward(params: dict[str, np.ndarray], x: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """The eval-mode output: ``fc2(relu(fc1(x))) + offset``."""
    return linear(params, "fc2", np.maximum(linear(params, "fc1", x), 0)) + offset


def mse_grads(params: dict[str, np.ndarray], x: np.ndarray, target: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """The mse loss of one batch and the gradient of every parameter (chain rule through fc2, relu, fc1)."""
    x = np.asarray(x, np.float64)
    pre = linear(params, "fc1", x)
    hidden = np.maximum(pre, 0)
    residual = linear(params, "fc2", hidden) - target
    d_out = 2 * residual / residual.size
    d_pre = np.where(pre > 0, d_out @ params["fc2.weight"].astype(np.float64), 0.0)
    grads = {"fc1.weight": np.einsum("bo,bi->oi", d_pre, x), "fc1.bias": d_pre.sum(axis=0),
             "fc2.weight": np.einsum("bo,bi->oi", d_out, hidden), "fc2.bias": d_out.sum(axis=0)}
    return float(np.mean(residual**2)), grads
