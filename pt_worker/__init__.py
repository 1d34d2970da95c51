"""PyTorch worker: serves a torch model over gRPC; also the torch-side TroubleShooter APIs."""

from pt_worker.determinism import fix_random
from pt_worker.net_files import save_net_and_weight_params
from pt_worker.saving import get_pt_grads, save
from pt_worker.weights import get_weight_map

__all__ = ["fix_random", "get_pt_grads", "get_weight_map", "save", "save_net_and_weight_params"]
