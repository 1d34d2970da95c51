"""MindSpore worker: serves a mindspore model over gRPC; also the mindspore-side TroubleShooter APIs."""

from ms_worker.determinism import fix_random
from ms_worker.net_files import save_net_and_weight_params
from ms_worker.saving import save
from ms_worker.weights import convert_weight_and_load

__all__ = ["convert_weight_and_load", "fix_random", "save", "save_net_and_weight_params"]
