"""PyTorch worker: serves a torch model over gRPC; also the torch-side TroubleShooter APIs."""

from pt_worker.determinism import fix_random
from pt_worker.net_files import save_net_and_weight_params
from pt_worker.weight_map import get_weight_map

__all__ = ["fix_random", "get_weight_map", "save_net_and_weight_params"]
