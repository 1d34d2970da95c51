"""PyTorch worker: serves a torch model over gRPC; also the torch-side TroubleShooter APIs."""

from pt_worker.determinism import fix_random

__all__ = ["fix_random"]
