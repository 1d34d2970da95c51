"""The pt worker as one rank of a torchrun job: torch.distributed's process group (gloo on CPU, nccl for CUDA
devices), and the address swap over it."""

from __future__ import annotations

import datetime
import functools
import os

from proto.worker.rank_job import RankJoin

COLLECTIVE_TIMEOUT_ENV = "MSPARITY_COLLECTIVE_TIMEOUT_S"


def join_ranks(args) -> RankJoin | None:
    """Join the torchrun job this process was started in (WORLD_SIZE > 1); None for one process."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return None
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():  # a factory may have joined itself; the worker joins before building the net
        backend = "cpu:gloo,cuda:nccl" if (args.device or "").startswith("cuda") else "gloo"
        timeout = float(os.environ.get(COLLECTIVE_TIMEOUT_ENV, "600"))
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))

    def gather(data: bytes) -> list[bytes]:
        size = 512
        if len(data) > size:
            raise ValueError(f"an address of {len(data)} bytes: at most {size}")
        mine = torch.zeros(size, dtype=torch.uint8)
        mine[: len(data)] = torch.tensor(list(data), dtype=torch.uint8)
        every = [torch.zeros(size, dtype=torch.uint8) for _ in range(dist.get_world_size())]
        dist.all_gather(every, mine)
        return [bytes(item.numpy()).rstrip(b"\0") for item in every]

    def all_gather_int32(mine):
        rows = [torch.zeros(len(mine), dtype=torch.int32) for _ in range(dist.get_world_size())]
        dist.all_gather(rows, torch.from_numpy(mine))
        return torch.stack(rows).numpy()

    return RankJoin(dist.get_rank(), dist.get_world_size(), "torchrun", gather, all_gather_int32=all_gather_int32)


@functools.cache
def _dtensor_type():
    """torch's DTensor class (None on a torch without it), looked up once: _state asks for every entry."""
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # a torch without DTensor
        return None
    return DTensor


def local_tensor(value):
    """This rank's slice of a DTensor (a view: writing it writes the DTensor); anything else as it is."""
    dtensor = _dtensor_type()
    return value.to_local() if dtensor is not None and isinstance(value, dtensor) else value


def dtensor_placements(state: dict) -> dict[str, tuple[str, int]]:
    """Each DTensor entry's placement over a 1-D mesh of every rank in order: Shard(d) or Replicate."""
    dtensor = _dtensor_type()
    found = {}
    for name, value in state.items():
        if dtensor is None or not isinstance(value, dtensor):
            continue
        mesh, placements = value.device_mesh, value.placements
        ranks = mesh.mesh.flatten().tolist()
        if mesh.ndim != 1 or ranks != list(range(len(ranks))):
            raise ValueError(f"{name}: a DTensor on a {mesh.ndim}-D mesh of ranks {ranks}: msparity joins tensors "
                             "split over one mesh dimension of every rank in order")
        placement = placements[0]
        if placement.is_shard():
            found[name] = ("shard", placement.dim % max(value.ndim, 1))
        elif placement.is_replicate():
            found[name] = ("replicate", 0)
        else:
            raise ValueError(f"{name}: a DTensor holding partial sums ({placement}); msparity reads whole or split "
                             "tensors")
    return found
