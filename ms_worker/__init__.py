"""MindSpore worker: serves a mindspore model over gRPC; also the mindspore-side TroubleShooter APIs."""

from ms_worker.determinism import fix_random

__all__ = ["fix_random"]
