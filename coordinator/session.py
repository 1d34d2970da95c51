"""A Session drives a pt and an ms worker side by side, whatever they are behind.

Workers are gRPC clients (dialled or spawned on loopback) or, in same-process mode, live adapters
from coordinator/local.py; all offer the proto.worker.interface.ModelWorker methods, so everything above
this module is the same in the three modes. Calls to the two sides run concurrently.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from coordinator import progress, spawn
from coordinator.client import WorkerClient
from proto import transport
from proto.codec import NamedArray
from proto.errors import MsparityError, UsageError, WeightMapError, WorkerError
from proto.weights import weight_plan
from proto.weights.map_file import WeightMap
from proto.worker.interface import PROTOCOL_VERSION, ForwardResult, ModelWorker, WorkerDescription
from proto.worker.weight_pull import SOURCE_UNREACHABLE

log = logging.getLogger("msparity")

EXPECTED_FRAMEWORK = {"pt": "pytorch", "ms": "mindspore"}


@dataclass(frozen=True)
class WorkerTarget:
    """How to reach one side: an address to dial, a model spec to spawn, or a live net."""

    address: str | None = None
    model_spec: str | None = None
    live: object | None = None
    python: str | None = None  # interpreter for a spawned worker (another venv / conda env)
    extra_args: tuple[str, ...] = ()
    timeout: float | None = None  # --timeout: seconds any call to it may take (coordinator.client)
    ranks: int = 1  # a spawned worker as this many ranks under torchrun / msrun on this host

    def check(self, role: str) -> None:
        given = [x for x in (self.address, self.model_spec, self.live) if x is not None]
        if len(given) != 1:
            raise UsageError(f"give exactly one of --{role} ADDRESS or --{role}-model SPEC")
        if self.ranks > 1 and self.model_spec is None:
            raise UsageError(f"--{role}-ranks spawns the model as a job of ranks: give it with --{role}-model SPEC "
                             f"(a job started by hand is dialled at rank 0 with --{role})")


ROUTE_DIRECT, ROUTE_RELAYED = "worker to worker", "through the coordinator"
RELAY_ENV = "MSPARITY_WEIGHTS_VIA_COORDINATOR"  # "1": never ask the ms worker to read the pt worker itself


@dataclass(frozen=True)
class SyncSummary:
    """What streaming the torch weights into the MindSpore net did."""

    loaded: int
    dropped: tuple[str, ...]
    transformed: tuple[str, ...]
    seconds: float
    missing_bias: tuple[str, ...] = ()  # torch biases not copied: the MindSpore layer has no bias
    how: str = ""  # how the weights were paired (the auto matcher's summary)
    kept: tuple[str, ...] = ()  # frozen MindSpore parameters no torch entry feeds (they keep the port's values)
    route: str = ROUTE_RELAYED  # ROUTE_DIRECT: the ms worker read the pt worker's weights itself

    def to_dict(self) -> dict:
        return {"loaded": self.loaded, "dropped": list(self.dropped), "transformed": list(self.transformed),
                "missing_bias": list(self.missing_bias), "how": self.how, "kept": list(self.kept),
                "seconds": round(self.seconds, 4), "route": self.route}

    def note(self) -> str:
        """What the sync left out, and how names were paired when not all by name or rule ("" when nothing)."""
        parts = [_dropped_text(self.dropped)] if self.dropped else []
        if self.kept:
            parts.append(f"not fed, frozen, kept as the port computes them: {', '.join(self.kept)}")
        if "by structure" in self.how:
            parts.append(self.how)
        if self.missing_bias:
            parts.append(f"[yellow]not copied, the MindSpore layer has no bias[/]: {', '.join(self.missing_bias)}")
        return "; ".join(parts)


def _dropped_text(dropped: tuple[str, ...]) -> str:
    batches = [name for name in dropped if name.endswith("num_batches_tracked")]
    others = [name for name in dropped if name not in batches]
    parts = [f"{len(batches)} num_batches_tracked (MindSpore keeps no such counter)"] if batches else []
    return "dropped " + ", ".join(parts + others)


def check_description(role: str, description: WorkerDescription) -> None:
    """Refuse a worker of the wrong framework or of another protocol major version."""
    if description.framework != EXPECTED_FRAMEWORK[role]:
        raise UsageError(f"the {role} side is a {description.framework} worker; swap --pt and --ms?")
    if description.protocol_version.split(".")[0] != PROTOCOL_VERSION.split(".")[0]:
        raise MsparityError(
            f"the {role} worker speaks protocol {description.protocol_version}, this coordinator {PROTOCOL_VERSION}; "
            "install the same msparity version on both hosts"
        )


class Session:
    """The pt and ms workers of one comparison."""

    def __init__(self, pt: ModelWorker, ms: ModelWorker):
        self.pt = pt
        self.ms = ms
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="msparity-session")
        self.map_strategy = "auto"  # how weights pair without a map: auto | rules | names (weight_plan.map_for)
        self.pt_description: WorkerDescription | None = None
        self.ms_description: WorkerDescription | None = None
        self.direct_weights: bool | None = None  # whether the ms worker reads the pt worker's weights (None: untried)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def both(self, pt_call: Callable, ms_call: Callable) -> tuple:
        """Run pt_call() and ms_call() concurrently; re-raise the first failure (pt's first)."""
        pt_future = self._pool.submit(pt_call)
        ms_future = self._pool.submit(ms_call)
        pt_error = pt_future.exception()
        ms_error = ms_future.exception()
        if pt_error is not None:
            raise pt_error
        if ms_error is not None:
            raise ms_error
        return pt_future.result(), ms_future.result()

    def describe(self) -> tuple[WorkerDescription, WorkerDescription]:
        """Describe both workers; refuse a wrong framework or another protocol major version."""
        pt_desc, ms_desc = self.both(self.pt.describe, self.ms.describe)
        check_description("pt", pt_desc)
        check_description("ms", ms_desc)
        self.pt_description, self.ms_description = pt_desc, ms_desc
        return pt_desc, ms_desc

    def seed(self, seed: int) -> None:
        self.both(lambda: self.pt.seed(seed), lambda: self.ms.seed(seed))

    def plan_weights(self, user_map: WeightMap | None = None) -> weight_plan.WeightPlan:
        return self.planned(user_map)[0]

    def planned(self, user_map: WeightMap | None = None):
        """(the weight plan, the pt listing, the ms listing) from one ListParameters on each side."""
        pt_listing, ms_listing = self.both(self.pt.list_parameters, self.ms.list_parameters)
        return weight_plan.plan_from_listings(pt_listing, ms_listing, user_map, self.map_strategy), pt_listing, ms_listing

    def sync_weights(self, user_map: WeightMap | None = None, plan: weight_plan.WeightPlan | None = None) -> SyncSummary:
        """Stream the torch weights through the map (found automatically by default) straight into the MindSpore net.

        Every MindSpore parameter must be set, but for the frozen ones the plan keeps (nothing in torch's state
        feeds them: a rotary inv_freq torch holds as a non-persistent buffer). ``plan``: one just made for
        user_map (not made again)."""
        start = time.perf_counter()
        plan = plan if plan is not None else self.plan_weights(user_map)
        result, route = self._pulled(plan), ROUTE_DIRECT
        if result is None:
            names = plan.pt_names
            stream = progress.counted(self.pt.get_weights(names), "streaming the weights pt -> ms", len(names),
                                      "tensors", nbytes=lambda tensor: tensor.array.nbytes)
            result, route = self.ms.set_weights(plan.convert(stream), strict=not plan.kept), ROUTE_RELAYED
        unset = sorted(set(result.missing) - set(plan.kept))
        if unset:
            raise WeightMapError(f"the ms net has parameters the weight stream did not set: {', '.join(unset[:10])}")
        transformed = tuple(m.pt_name for m in plan.mappings if m.transform != "identity")
        return SyncSummary(result.loaded, plan.dropped, transformed, time.perf_counter() - start, plan.missing_bias,
                           plan.how, plan.kept, route)

    def _pulled(self, plan: weight_plan.WeightPlan):
        """The ms worker reads the pt worker's weights itself (one hop); None where it cannot (a live net, a group
        of ranks, a worker older than 1.6, or the pt worker out of its reach): then they go through us."""
        remote = isinstance(self.pt, WorkerClient) and isinstance(self.ms, WorkerClient)
        if not remote or self.direct_weights is False or os.environ.get(RELAY_ENV) == "1":
            return None
        try:
            with progress.activity("the ms worker reads the pt worker's weights"):
                result = self.ms.pull_weights(self.pt, plan.mappings, strict=not plan.kept)
        except WorkerError as exc:
            if SOURCE_UNREACHABLE not in str(exc) and exc.status != "UNIMPLEMENTED":
                raise
            log.info("weights go through the coordinator: %s", exc)
            self.direct_weights = False  # asked once a session
            return None
        self.direct_weights = True
        return result

    def prepare(self, seed: int, sync_weights: bool, user_map: WeightMap | None = None,
                ) -> tuple[WorkerDescription, WorkerDescription, SyncSummary | None, float]:
        """What every job starts with: both descriptions, Seed on both, the pt weights streamed into ms.

        Returns (pt description, ms description, the sync summary or None, seconds spent).
        """
        if self.pt_description is None or self.ms_description is None:
            self.describe()
        start = time.perf_counter()
        self.seed(seed)
        sync = self.sync_weights(user_map) if sync_weights else None
        return self.pt_description, self.ms_description, sync, time.perf_counter() - start

    def forward(self, inputs: list[NamedArray], train_mode: bool = False) -> tuple[ForwardResult, ForwardResult]:
        """Run both nets on the same inputs at the same time."""
        return self.both(lambda: self.pt.forward(inputs, train_mode), lambda: self.ms.forward(inputs, train_mode))


def _connect(role: str, target: WorkerTarget, security: transport.Security, verbose: bool, on_exit: Callable):
    """The worker of one side and, for one process dialled, the description it just gave (None otherwise)."""
    target.check(role)
    if target.live is not None:
        from coordinator import local  # the only path that imports a framework, lazily

        worker = local.adapter_for(role, target.live)
        on_exit(lambda: _end_session(worker))  # the caller's own net: trained weights go back
        return worker, None
    address, worker_security = target.address, security
    if target.model_spec is not None:
        spawned = spawn.spawn_worker(role, target.model_spec, python=target.python,
                                     extra_args=target.extra_args, verbose=verbose, ranks=target.ranks)
        on_exit(spawned.stop)
        address, worker_security = spawned.address, transport.Security(token=spawned.token)
    client = WorkerClient(address, role, worker_security, timeout=target.timeout)
    on_exit(client.close)  # ends our session on it first
    description = client.describe()
    if description.world_size > 1:  # rank 0 of a torchrun / msrun job: the side is all its ranks
        from coordinator.rank_group import RankGroup

        group = RankGroup.dial(client, description, worker_security, target.timeout)
        on_exit(group.close)
        return group, None  # its description counts the whole net's values: described again
    return client, description


def _end_session(client: ModelWorker) -> None:
    """Put back what this session's training changed and free the worker; a worker gone already is no error."""
    try:
        result = client.end_session()
    except WorkerError:
        return
    if result.restored:
        log.info("%s: %s", getattr(client, "label", "worker"), result.note)


@contextlib.contextmanager
def open_worker(role: str, target: WorkerTarget, security: transport.Security = transport.Security(),
                verbose: bool = False) -> Iterator[ModelWorker]:
    """Connect to (or spawn) one worker; stop it on exit if spawned."""
    with contextlib.ExitStack() as stack:
        worker, description = _connect(role, target, security, verbose, stack.callback)
        check_description(role, description or worker.describe())
        yield worker


@contextlib.contextmanager
def open_session(
    pt: WorkerTarget,
    ms: WorkerTarget,
    security: transport.Security = transport.Security(),
    verbose: bool = False,
) -> Iterator[Session]:
    """Connect to (or spawn) both workers; stop what was spawned on exit, errors and Ctrl-C too."""
    pt.check("pt")
    ms.check("ms")
    lock = threading.Lock()
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(max_workers=2) as pool:

        def on_exit(cleanup: Callable) -> None:
            with lock:
                stack.callback(cleanup)

        # Spawned workers start concurrently: importing a framework dominates start-up.
        with progress.activity(_starting_text(pt, ms)):
            futures = [pool.submit(_connect, role, target, security, verbose, on_exit)
                       for role, target in (("pt", pt), ("ms", ms))]
            connected = [f.exception() or f.result() for f in futures]
        for item in connected:
            if isinstance(item, BaseException):
                raise item
        session = Session(*(worker for worker, _ in connected))
        stack.callback(session.close)
        pt_desc, ms_desc = (description for _, description in connected)
        if pt_desc is not None and ms_desc is not None:  # each side just described itself: not asked again
            check_description("pt", pt_desc)
            check_description("ms", ms_desc)
            session.pt_description, session.ms_description = pt_desc, ms_desc
        else:
            session.describe()
        yield session


def _starting_text(pt: WorkerTarget, ms: WorkerTarget) -> str:
    """What the spinner says while both sides come up: spawned workers spend seconds importing a framework."""
    parts = [f"starting the {role} worker (importing {framework})" if target.model_spec is not None else
             f"connecting to the {role} worker at {target.address}" if target.address else f"building the {role} net"
             for role, target, framework in (("pt", pt, "torch"), ("ms", ms, "mindspore"))]
    return " and ".join(parts)
