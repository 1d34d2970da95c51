"""The ms worker as one rank of an msrun job: mindspore.communication's init (before the net is built), and
the address swap over AllGather."""

from __future__ import annotations

import os

from proto.worker.rank_job import RankJoin


def join_ranks(args) -> RankJoin | None:
    """Join the msrun job this process was started in (MS_ROLE set); None for one process."""
    role = os.environ.get("MS_ROLE")
    if not role:
        return None
    import mindspore as ms
    import numpy as np
    from mindspore.communication import get_group_size, get_rank, init

    ms.set_context(mode=ms.GRAPH_MODE if getattr(args, "mode", "pynative") == "graph" else ms.PYNATIVE_MODE)
    target, _, device_id = (args.device or "CPU").partition(":")
    ms.set_device(target, int(device_id) if device_id else None)
    init()
    if role == "MS_SCHED":
        return RankJoin(0, 0, "msrun", lambda data: [data], scheduler=True)
    world = get_group_size()
    if world <= 1:
        return None

    def gather(data: bytes) -> list[bytes]:
        size = 512
        if len(data) > size:
            raise ValueError(f"an address of {len(data)} bytes: at most {size}")
        mine = np.zeros((1, size), np.int32)
        mine[0, : len(data)] = list(data)
        every = ms.ops.AllGather()(ms.Tensor(mine)).asnumpy()
        return [bytes(row.astype(np.uint8)).rstrip(b"\0") for row in every]

    def all_gather_int32(mine):
        return ms.ops.AllGather()(ms.Tensor(mine.reshape(1, -1))).asnumpy()

    return RankJoin(get_rank(), world, "msrun", gather, all_gather_int32=all_gather_int32)
