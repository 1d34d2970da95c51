"""The lower bounds, measured in the bound host: both frameworks in one process, nothing of msparity's on the path.

- forward_bound: max(torch forward, MindSpore forward) + copying every weight into the MindSpore net in
  memory (``Parameter.set_data``), the least any tool that runs both nets and syncs their weights must do;
- convert_bound: ``torch.load`` + ``mindspore.save_checkpoint`` (what a script without a tool does);
- ckpt_compare_bound: ``torch.load`` + ``mindspore.load_checkpoint`` + ``np.allclose`` of every mapped pair;
- npy_bound: ``np.load`` of each pair + ``np.allclose``, one thread.
"""

from __future__ import annotations

import time

import numpy as np

_nets: dict = {}


def setup_nets(key: str, config: dict) -> dict:
    """Build both nets, warm each forward once; the torch tensors' byte counts (for the wire bound)."""
    import mindspore as ms
    import torch

    from bench.models import build_ms, build_pt
    from pt_worker import get_weight_map

    if key in _nets:
        return {"sizes": _nets[key][5], "paired": len(_nets[key][4])}
    pt_net, x = build_pt(config)
    ms_net, _ = build_ms(config)
    name_map, _ = get_weight_map(pt_net)
    state = pt_net.state_dict()
    ms_params = ms_net.parameters_dict()
    pairs = [(state[k], ms_params[v]) for k, v in name_map.items() if v in ms_params]
    sizes = [t.numel() * t.element_size() for t in state.values()]
    _nets[key] = (pt_net, ms_net, x, ms.Tensor(x.numpy()), pairs, sizes)
    with torch.no_grad():
        pt_net(x)
    ms_net(_nets[key][3]).asnumpy()
    return {"sizes": sizes, "paired": len(pairs)}


def keep_only(keys: list[str]) -> None:
    """Drop the nets of the other keys (memory for the next op)."""
    import gc

    for key in set(_nets) - set(keys):
        del _nets[key]
    gc.collect()


def forward_bound(key: str) -> dict:
    import mindspore as ms
    import torch

    pt_net, ms_net, x, ms_x, pairs, _ = _nets[key]
    start = time.perf_counter()
    with torch.no_grad():
        pt_net(x).numpy()
    pt_s = time.perf_counter() - start
    start = time.perf_counter()
    ms_net(ms_x).asnumpy()
    ms_s = time.perf_counter() - start
    start = time.perf_counter()
    for pt_tensor, ms_param in pairs:
        ms_param.set_data(ms.Tensor(pt_tensor.detach().numpy()))
    copy_s = time.perf_counter() - start
    return {"s": max(pt_s, ms_s) + copy_s, "pt": pt_s, "ms": ms_s, "copy": copy_s}


def save_pth(key: str, pth: str, weight_map: str) -> None:
    """P4/P4b's inputs: the torch net's state_dict and its weight map (TroubleShooter's [name_map, value_map])."""
    import torch

    from pt_worker import get_weight_map

    pt_net = _nets[key][0]
    torch.save(pt_net.state_dict(), pth)
    get_weight_map(pt_net, weight_map_save_path=weight_map)


def convert_bound(pth: str, out: str, weight_map: str) -> None:
    import json

    import mindspore as ms
    import torch

    name_map = json.loads(open(weight_map).read())[0]
    state = torch.load(pth, map_location="cpu", weights_only=True)
    ms.save_checkpoint([{"name": name_map.get(k, k), "data": ms.Tensor(v.numpy())} for k, v in state.items()], out)


def ckpt_compare_bound(weight_map: str, pth: str, ckpt: str) -> bool:
    import json

    import mindspore as ms
    import torch

    name_map = json.loads(open(weight_map).read())[0]
    state = torch.load(pth, map_location="cpu", weights_only=True)
    params = ms.load_checkpoint(ckpt)
    return all(np.allclose(v.numpy(), params[name_map[k]].asnumpy(), rtol=1e-4, atol=1e-4)
               for k, v in state.items() if name_map.get(k) in params)


def npy_bound(a: str, b: str) -> bool:
    from pathlib import Path

    ok = True
    for path in sorted(Path(a).iterdir()):
        ref = np.load(path, allow_pickle=False)
        cand = np.load(Path(b) / path.name, allow_pickle=False)
        ok &= ref.shape == cand.shape and bool(np.allclose(ref, cand, rtol=1e-4, atol=1e-4))
    return ok
