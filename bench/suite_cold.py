"""The first call in a fresh process (P2 ViT, P2s MLP): a script that imports, builds both nets and compares once.

- msparity: ``NetDifferenceFinder("bench.models:pt_model", "bench.models:ms_model").compare(...)`` (it spawns both
  workers, which import their frameworks and build their nets at the same time);
- TroubleShooter: import it (and so both frameworks), build both nets in the process, compare;
- bound: two fresh processes started together, one importing torch, building and running the torch net,
  the other the same with MindSpore; wall time until both have exited.
Wall time of the whole process, from start to exit.
"""

from __future__ import annotations

import json
import sys

from bench.measure import Goal, entry, interleave, timed
from bench.models import MODEL_ENV, model_config
from bench.procs import fresh_pair, fresh_run
from bench.suite import Context

OURS = """
import numpy as np
from coordinator import NetDifferenceFinder
with NetDifferenceFinder("bench.models:pt_model", "bench.models:ms_model") as finder:
    finder.compare(auto_inputs=((SHAPE, np.float32),))
"""
TS = """
import json, os
import numpy as np
from bench.ts_shim import import_troubleshooter
ts = import_troubleshooter()
from bench.models import MODEL_ENV, build_ms, build_pt
config = json.loads(os.environ[MODEL_ENV])
pt_net, _ = build_pt(config)
ms_net, _ = build_ms(config)
ts.migrator.NetDifferenceFinder(pt_net=pt_net, ms_net=ms_net).compare(auto_inputs=((SHAPE, np.float32),))
"""
BOUND_PT = """
import json, torch
from bench.models import build_pt
net, x = build_pt(json.loads(CONFIG))
with torch.no_grad():
    net(x).numpy()
"""
BOUND_MS = """
import json
from bench.models import build_ms
net, x = build_ms(json.loads(CONFIG))
net(x).asnumpy()
"""


def cold_op(ctx: Context, kind: str) -> None:
    size = ctx.sizes.vit if kind == "vit" else ctx.sizes.mlp
    config = model_config(kind, size)
    shape, text = repr(tuple(size.input_shape())), json.dumps(json.dumps(config))
    model_env = {MODEL_ENV: json.dumps(config)}
    contenders = {"ours": timed(lambda: fresh_run([sys.executable, "-c", OURS.replace("SHAPE", shape)],
                                                  extra_env=model_env), "coord")}
    if ctx.ts is not None:
        contenders["TS"] = timed(lambda: fresh_run([sys.executable, "-c", TS.replace("SHAPE", shape)], ts=True,
                                                   extra_env=model_env), "ts")
    contenders["bound"] = timed(lambda: fresh_pair([[sys.executable, "-c", BOUND_PT.replace("CONFIG", text)],
                                                    [sys.executable, "-c", BOUND_MS.replace("CONFIG", text)]]),
                                "bound")
    op = "P2" if kind == "vit" else "P2s"
    s = interleave(f"{op} fresh", contenders, ctx.sizes.cold_rounds)
    what = f"ViT d{size.depth} b{size.batch}" if kind == "vit" else f"MLP {size.weights / 1e6:.1f}M"
    goal = Goal(min_speedup=3.0) if kind == "vit" else Goal(min_speedup=1.0, strict=True)
    ctx.entries.append(entry(f"{op} NetDifferenceFinder {what}, fresh process", s, "ours", "bound",
                             "TS", goal, "bound: torch and MindSpore fresh processes side by side, import + build + "
                             "forward; peak RSS of a fresh row: the largest of the process and the workers it waited for"))
