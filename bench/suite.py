"""The operations on running workers: P1 weight stream, P2 / P2s NetDifferenceFinder (warm), P5 locate, P6 a big stream.

Each op starts the worker pair it needs (not counted), opens one session from the coordinator host, sets up
TroubleShooter's and the bound's nets in their hosts, then interleaves the contenders round by round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.measure import Entry, Goal, entry, interleave, median, on_host
from bench.models import model_config
from bench.procs import Host, rss_mib, start_pair
from bench.sizes import Sizes

WARMUP = 1


@dataclass
class Context:
    sizes: Sizes
    tmp: Path
    ours: Host  # the coordinator: numpy + grpcio
    bound: Host  # both frameworks, for the bounds
    sink: str  # bare grpcio sink and relay addresses (the wire bounds)
    relay: str
    ts: Host | None  # TroubleShooter 1.0.18, None when not installed
    entries: list[Entry] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _mib(sizes: list[int]) -> float:
    return sum(sizes) / 2**20


class Pair:
    """A pt and an ms worker for one net and the coordinator host's finder on them; closed on exit."""

    def __init__(self, ctx: Context, key: str, config: dict):
        self.ctx, self.key = ctx, key
        self.pt, self.ms, token = start_pair(config)
        self.start_rss = {"pt": rss_mib(self.pt.pid), "ms": rss_mib(self.ms.pid)}
        try:
            self.info = ctx.ours.call("ours_ops:open_pair", key=key, pt=self.pt.address, ms=self.ms.address,
                                      token=token)["result"]
        except BaseException:
            self.close_workers()
            raise

    @property
    def workers(self):
        return (self.pt, self.ms)

    def ours(self, function: str, **kwargs):
        return on_host(self.ctx.ours, function, self.workers, key=self.key, **kwargs)

    def close_workers(self) -> None:
        self.pt.close()
        self.ms.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.ctx.ours.call("ours_ops:close_pair", key=self.key)
        finally:
            self.close_workers()


def release(ctx: Context, keep: tuple[str, ...] | list[str] = ()) -> None:
    """Free the nets the bound and TroubleShooter hosts hold for other keys (the machine is shared: 23 GiB)."""
    ctx.bound.call("bound_ops:keep_only", keys=list(keep))
    if ctx.ts is not None:
        ctx.ts.call("ts_ops:keep_only", keys=[])


def _wire(ctx: Context, sizes: list[int]) -> dict:
    return {"1 bare hop": on_host(ctx.bound, "bare_grpc:stream", rss_role="bound", address=ctx.sink, sizes=sizes),
            "2 bare hops": on_host(ctx.bound, "bare_grpc:stream", rss_role="bound", address=ctx.relay, sizes=sizes)}


def _finder_contenders(ctx: Context, pair: Pair, key: str, shape: list[int]) -> dict:
    contenders = {"finder": pair.ours("ours_ops:finder_compare", shape=shape),
                  "compare": pair.ours("ours_ops:run_compare", shape=shape)}
    if ctx.ts is not None:
        contenders["TS"] = on_host(ctx.ts, "ts_ops:finder_compare", rss_role="ts", key=key, shape=shape)
    contenders["bound"] = on_host(ctx.bound, "bound_ops:forward_bound", rss_role="bound", key=key)
    return contenders


def _bound_parts(samples) -> str:
    mid = sorted(samples, key=lambda s: s.seconds)[(len(samples) - 1) // 2].result
    return f"bound = max(pt fwd {mid['pt']:.3f}, ms fwd {mid['ms']:.3f}) + weight copy {mid['copy']:.3f} s"


def vit_ops(ctx: Context, want: set[str]) -> None:
    """P1 (the ViT's weight stream) and P2 (NetDifferenceFinder and compare on running workers, warm)."""
    vit = ctx.sizes.vit
    config = model_config("vit", vit)
    with Pair(ctx, "vit", config) as pair:
        sizes = ctx.bound.call("bound_ops:setup_nets", key="vit", config=config)["result"]["sizes"]
        if ctx.ts is not None and "P2" in want:
            ctx.ts.call("ts_ops:setup_finder", key="vit", config=config)
        if "P1" in want:
            s = interleave("P1", {"sync": pair.ours("ours_ops:sync"), **_wire(ctx, sizes)}, ctx.sizes.rounds, WARMUP)
            ctx.entries.append(entry(
                f"P1 weight stream, {len(sizes)} tensors / {_mib(sizes):.0f} MiB", s, "sync",
                "1 bare hop", None, Goal(max_ratio=1.2),
                note=f"two bare hops {median(s['2 bare hops']):.3f} s (pt -> coordinator -> ms is two)"))
        if "P2" in want:
            shape = list(vit.input_shape())
            s = interleave("P2", _finder_contenders(ctx, pair, "vit", shape), ctx.sizes.rounds, WARMUP)
            goal = Goal(max_ratio=1.3, min_speedup=2.0)
            note = _bound_parts(s["bound"]) + "; TS: one process, both nets live"
            what = f"ViT d{vit.depth} b{vit.batch}, running workers"
            ctx.entries.append(entry(f"P2 NetDifferenceFinder {what}", s, "finder", "bound", "TS", goal, note))
            ctx.entries.append(entry(f"P2 compare {what}", s, "compare", "bound", "TS", goal, note))
    release(ctx, keep=["vit"])  # the bound host's ViT writes P4's .pth next


def mlp_warm(ctx: Context) -> None:
    """P2s warm: the finder on a 2.9M-parameter MLP, where fixed costs dominate."""
    mlp = ctx.sizes.mlp
    config = model_config("mlp", mlp)
    with Pair(ctx, "mlp", config) as pair:
        ctx.bound.call("bound_ops:setup_nets", key="mlp", config=config)
        if ctx.ts is not None:
            ctx.ts.call("ts_ops:setup_finder", key="mlp", config=config)
        shape = list(mlp.input_shape())
        s = interleave("P2s", _finder_contenders(ctx, pair, "mlp", shape), ctx.sizes.rounds, WARMUP)
        ctx.entries.append(entry(f"P2s NetDifferenceFinder MLP {mlp.weights / 1e6:.1f}M, running workers", s, "finder", "bound",
                                 "TS", Goal(max_ratio=2.0, min_speedup=1.0, strict=True), _bound_parts(s["bound"])))
    release(ctx)


def locate_op(ctx: Context) -> None:
    """P5: locate (float64 reference on) against one plain compare of the same pair, same workers."""
    vit = ctx.sizes.locate_vit
    with Pair(ctx, "loc", model_config("vit", vit)) as pair:
        contenders = {"locate": pair.ours("ours_ops:locate", reference=True),
                      "compare": pair.ours("ours_ops:run_compare"),
                      "locate --no-reference": pair.ours("ours_ops:locate", reference=False)}
        s = interleave("P5", contenders, ctx.sizes.rounds, WARMUP)
        ctx.entries.append(entry(f"P5 locate vs one compare, ViT d{vit.depth} b{vit.batch}",
                                 s, "locate", "compare", None, Goal(max_ratio=1.5),
                                 f"--no-reference {median(s['locate --no-reference']):.3f} s"))


def big_stream(ctx: Context) -> None:
    """P6: a big state dict streamed pt -> ms: coordinator peak RSS, and no worker holding the model twice."""
    big = ctx.sizes.big
    w, n = big.width, big.layers
    sizes = [w * w * 4, w * 4] * n
    model = _mib(sizes)
    with Pair(ctx, "big", model_config("big", big)) as pair:
        # each worker's own weight: the torch net is filled at build, MindSpore's initialises lazily (not resident yet)
        base = {"pt": pair.start_rss["pt"] - model, "ms": pair.start_rss["ms"]}
        s = interleave("P6", {"sync": pair.ours("ours_ops:sync"), "1 bare hop": _wire(ctx, sizes)["1 bare hop"]},
                       ctx.sizes.rounds, WARMUP)
        e = entry(f"P6 {model / 1024:.2f} GiB state dict streamed", s, "sync", "1 bare hop", None,
                  Goal())
        rss = e.rss["ours"]
        held = {role: (rss.get(role, 0.0) - base[role]) / model for role in ("pt", "ms")}
        ok = rss.get("coord", 0.0) < 1024 and all(x <= 1.2 for x in held.values())
        e.goal = Goal(extra=("coordinator peak < 1 GiB, each worker's peak - its framework <= 1.2x the model", ok))
        e.note = (f"coordinator peak {rss.get('coord', 0):.0f} MiB; above the framework each worker peaked at "
                  + ", ".join(f"{role} {x:.2f}x" for role, x in held.items()) + " the model"
                  f" (framework: pt {base['pt']:.0f}, ms {base['ms']:.0f} MiB)")
        ctx.entries.append(e)
