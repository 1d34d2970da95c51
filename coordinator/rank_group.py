"""One side of a comparison that runs as several ranks (torchrun, msrun): the worker interface over one client
per rank, so a session uses a sharded net as it uses one process.

Dialled at rank 0, the group reads every rank's address from its Describe. Each call that may run collectives
goes to every rank at once with one sequence number, which each rank runs in order (proto/worker/rank_job.py);
outputs come from rank 0 (the net's outputs are whole on every rank). Weights travel one whole tensor at a time:
a tensor placed ``shard(d)`` is joined from the ranks' slices on the way out and cut into them on the way in,
so the two sides may use different numbers of ranks. When a call fails, every rank is probed and the ones that
are gone are named.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import numpy as np

from coordinator.client import WorkerClient
from proto import transport
from proto.codec import NamedArray
from proto.errors import MsparityError, WorkerError
from proto.weights.shards import joined, sliced, split_sizes, whole_shape
from proto.worker.interface import ForwardResult, ParameterListing, SetWeightsResult, WorkerDescription

PROBE_TIMEOUT_S = 1.0
_END = object()


class IsolationRefused(MsparityError):
    """A replay across ranks that cannot be made (locate then reports its finding without the replay)."""


class RankGroup:
    """The ranks of one side, behind the worker interface."""

    def __init__(self, clients: list[WorkerClient], description: WorkerDescription):
        self.clients = clients
        self.role = clients[0].role
        self.address = clients[0].address
        self.label = f"{self.role} worker group ({len(clients)} ranks, rank 0 at {self.address})"
        self._description = description
        self._order = threading.Lock()
        self._numbers = itertools.count()
        self._pool = ThreadPoolExecutor(max_workers=2 * len(clients), thread_name_prefix=f"msparity-{self.role}-ranks")
        self._listings: list[ParameterListing] | None = None
        self._placements: dict[str, tuple[str, int, list[int]]] | None = None

    @classmethod
    def dial(cls, first: WorkerClient, description: WorkerDescription, security: transport.Security,
             timeout: float | None = None) -> RankGroup:
        """The group rank 0 (already dialled, described) belongs to: dial the others and check who they are."""
        world = description.world_size
        if description.rank != 0:
            raise MsparityError(f"{first.label} is rank {description.rank} of {world}: dial rank 0 "
                                f"({description.rank_addresses[0] if description.rank_addresses else 'its address'})")
        clients = [first, *(WorkerClient(a, first.role, security, timeout) for a in description.rank_addresses[1:])]
        group = cls(clients, description)
        for rank, client in enumerate(clients[1:], 1):
            other = client.describe()
            if other.rank != rank or other.world_size != world or other.model_spec != description.model_spec:
                group.close()
                raise MsparityError(f"{client.label} says it is rank {other.rank} of {other.world_size} serving "
                                    f"{other.model_spec!r}; rank 0 listed it as rank {rank} of {world} serving "
                                    f"{description.model_spec!r}")
        return group

    # -- calls on every rank --------------------------------------------------------------------------

    def _each(self, call: Callable[[WorkerClient], object], ordered: bool = True) -> list:
        """call(client) on every rank at once (ordered: under one sequence number); the results by rank."""
        if ordered:
            with self._order:
                number = next(self._numbers)
        else:
            number = None

        def run(client: WorkerClient):
            if number is None:
                return call(client)
            with client.ordered(number):
                return call(client)

        futures = [self._pool.submit(run, client) for client in self.clients]
        # on the first failure, probe at once: a launcher soon takes the other ranks down too, and the first to go
        # is the one to name (the calls still out end when the session closes its channels)
        wait(futures, return_when=FIRST_EXCEPTION)
        failed = [(rank, f.exception()) for rank, f in enumerate(futures) if f.done() and f.exception() is not None]
        if failed:
            raise self._failure(failed)
        return [f.result() for f in futures]

    def _failure(self, failed: list[tuple[int, BaseException]]) -> BaseException:
        """The error of a failed call, naming the ranks that are gone (each probed with a short Describe)."""
        def alive(client: WorkerClient) -> bool:
            try:
                client.describe(connect_timeout=PROBE_TIMEOUT_S)
                return True
            except WorkerError:
                return False

        with ThreadPoolExecutor(max_workers=len(self.clients)) as probes:
            gone = [rank for rank, up in enumerate(probes.map(alive, self.clients)) if not up]
        error = failed[0][1]
        if gone:
            where = ", ".join(f"rank {r} at {self.clients[r].address}" for r in gone)
            return MsparityError(f"{self.role} side: {where} of {len(self.clients)} ranks {'is' if len(gone) == 1 else 'are'} "
                                 f"gone (the process died or hangs); restart the job ({error})")
        return error

    # -- the worker interface -------------------------------------------------------------------------

    def describe(self, connect_timeout: float | None = None) -> WorkerDescription:
        """Rank 0's description, counting the whole net's values (each rank holds only its slices)."""
        first = self.clients[0].describe() if connect_timeout is None else self.clients[0].describe(connect_timeout)
        whole = sum(math.prod(p.shape) for p in self.list_parameters().parameters)
        self._description = dataclasses.replace(first, parameter_elements=whole)
        return self._description

    def seed(self, seed: int) -> None:
        self._each(lambda c: c.seed(seed), ordered=False)

    def _rank_listings(self) -> list[ParameterListing]:
        if self._listings is None:
            self._listings = self._each(lambda c: c.list_parameters(), ordered=False)
        return self._listings

    def list_parameters(self) -> ParameterListing:
        """Rank 0's listing with every sharded tensor at its whole shape."""
        listings = self._rank_listings()
        shapes = {p.name: [] for p in listings[0].parameters}
        for listing in listings:
            for p in listing.parameters:
                shapes.setdefault(p.name, []).append(p.shape)
        return dataclasses.replace(listings[0], parameters=tuple(
            dataclasses.replace(p, shape=whole_shape(shapes[p.name], p.placement, p.shard_dim))
            for p in listings[0].parameters))

    def _placement(self, name: str) -> tuple[str, int, list[int]]:
        """(placement, dim, each rank's extent along dim) of a tensor, from the ranks' listings."""
        if self._placements is None:
            listings = self._rank_listings()
            shapes = [{p.name: p.shape for p in listing.parameters} for listing in listings]
            self._placements = {
                p.name: (p.placement, p.shard_dim,
                         split_sizes([s[p.name] for s in shapes], p.shard_dim) if p.placement == "shard" else [])
                for p in listings[0].parameters}
        return self._placements.get(name, ("", 0, []))

    def _joined(self, streams: list) -> Iterator[NamedArray]:
        """Every rank's stream of the same names in the same order, each name's parts joined by its placement."""
        for parts in itertools.zip_longest(*streams):
            if any(part is None for part in parts):
                short = [rank for rank, part in enumerate(parts) if part is None]
                raise MsparityError(f"{self.role} side: rank(s) {short} streamed fewer tensors than the others")
            name = parts[0].name
            prefix, _, own = name.rpartition(":")  # "grad:NAME", "state:NAME", "moment1:NAME", "loss"
            placement, dim, _ = self._placement(own if prefix else name)
            yield joined(parts, placement, dim)

    def get_weights(self, names: Sequence[str] = ()) -> Iterator[NamedArray]:
        """Whole tensors, one at a time: every rank streams its parts in the same order, joined by placement."""
        yield from self._joined(self._each(lambda c: c.get_weights(names), ordered=False))

    def set_weights(self, tensors: Iterable[NamedArray], strict: bool = False) -> SetWeightsResult:
        """Each whole tensor cut into the ranks' slices by placement, streamed into every rank as it comes."""
        queues = [queue.Queue(maxsize=2) for _ in self.clients]

        def fed(q: queue.Queue) -> Iterator[NamedArray]:
            while (item := q.get()) is not _END:
                yield item

        futures = [self._pool.submit(client.set_weights, fed(q), strict) for client, q in zip(self.clients, queues)]

        def put(q: queue.Queue, item, future) -> None:
            while not future.done():  # a rank that failed reads no more: do not wait on it
                try:
                    return q.put(item, timeout=0.5)
                except queue.Full:
                    continue

        try:
            for tensor in tensors:
                placement, dim, sizes = self._placement(tensor.name)
                for q, part, future in zip(queues, sliced(tensor, placement, dim, sizes or [0] * len(queues)),
                                           futures):
                    put(q, part, future)
                if any(f.done() for f in futures):
                    break
        finally:
            for q, future in zip(queues, futures):
                put(q, _END, future)
        failed = [(rank, f.exception()) for rank, f in enumerate(futures) if f.exception() is not None]
        if failed:
            raise self._failure(failed)
        results = [f.result() for f in futures]
        return SetWeightsResult(results[0].loaded, tuple(sorted({m for r in results for m in r.missing})))

    def forward(self, inputs: Sequence[NamedArray], train_mode: bool = False) -> ForwardResult:
        return self._each(lambda c: c.forward(inputs, train_mode))[0]

    def train_step(self, inputs, target, options) -> Iterator[NamedArray]:
        """One step on every rank; the loss from rank 0, gradients and state joined by their tensor's placement."""
        yield from self._joined(self._each(lambda c: list(c.train_step(inputs, target, options))))

    def get_example_inputs(self) -> Iterator[NamedArray]:
        return self.clients[0].get_example_inputs()

    def end_session(self):
        return self._each(lambda c: c.end_session(), ordered=False)[0]

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self._pool.shutdown(wait=False)

    def record(self, inputs, options):
        """The hooked run on every rank (its modules may run collectives); rank 0's recording is the side's. The
        factory's "activations" make declared slices and partial sums whole on every rank; between two sides
        split alike, rank 0's slices pair with rank 0's (check_locate_layout)."""
        return self._each(lambda c: c.record(inputs, options))[0]

    def get_activations(self, run, keys, inputs, outputs):
        return self.clients[0].get_activations(run, keys, inputs, outputs)

    def rank_activations(self, run, keys, inputs, outputs) -> list[list[NamedArray]]:
        """The recorded tensors of the calls asked for, from every rank (by rank)."""
        return self._each(lambda c: list(c.get_activations(run, keys, inputs, outputs)), ordered=False)

    def run_module(self, path, call, float64, inputs, backward=False):
        """One recorded call replayed on every rank (its module may run collectives) with the same whole inputs:
        each rank takes its part by the factory's "activations" and makes its outputs whole; rank 0's outputs.
        The ranks must have recorded the same inputs of that call (replicated, or declared and so made whole)."""
        if backward:
            raise IsolationRefused("--isolate of a backward locate is not available across ranks")
        key = f"{path}#{call}"
        if disagreeing_rank(self.rank_activations("f32", [key], True, False)) is not None:
            raise IsolationRefused(f"--isolate replays {path!r} on every {self.role} rank with the same inputs, but its "
                                   f"ranks recorded different inputs (slices): declare them in the {self.role} "
                                   f"factory, \"activations\": {{\"{path}\": {{\"inputs\": \"shard(-1)\"}}}}")
        return self._each(lambda c: c.run_module(path, call, float64, inputs))[0]

    def list_dir(self, path):
        return self.clients[0].list_dir(path)

    def get_tensors(self, path, names):
        return self.clients[0].get_tensors(path, names)


def check_locate_layout(pt: WorkerDescription, ms: WorkerDescription, mappings=(), pt_listing=None,
                        ms_listing=None) -> bool:
    """Whether the two sides are split alike: one process each, or the same number of ranks with each tensor
    copied as it is split along the same dim on both, and no activations declared (which are made whole). Then
    locate may pair rank 0's slices with rank 0's; otherwise it compares whole activations only, and checks that
    every rank of a side holds the same tensors of the calls it fetches."""
    if pt.world_size != ms.world_size:
        return False
    if pt.world_size > 1 and (pt.activation_paths or ms.activation_paths):
        return False  # a side whose declared activations are whole pairs with whole ones only
    if pt.world_size <= 1 or pt_listing is None or ms_listing is None:
        return True

    def placed(listing) -> dict:
        return {p.name: (p.placement or "replicate", p.shard_dim if p.placement == "shard" else 0)
                for p in listing.parameters}

    pt_placed, ms_placed = placed(pt_listing), placed(ms_listing)
    return not any(m.transform == "identity" and m.pt_name in pt_placed and m.ms_name in ms_placed
                   and pt_placed[m.pt_name] != ms_placed[m.ms_name] for m in mappings)


def disagreeing_rank(per_rank: list[list[NamedArray]]) -> int | None:
    """The first rank whose tensors of a call differ from rank 0's (NaN where NaN counts as equal), or None."""
    first = per_rank[0]
    for rank, tensors in enumerate(per_rank[1:], 1):
        if len(tensors) != len(first) or not all(
                t.shape == f.shape and np.array_equal(t.array, f.array, equal_nan=f.array.dtype.kind in "fc")
                for t, f in zip(tensors, first)):
            return rank
    return None


def disagreement_message(role: str, key: str, inputs: bool, rank: int) -> str:
    """Why locate cannot judge a call whose ranks hold different tensors, and what makes them whole."""
    path = key.rpartition("#")[0] or "the root"
    side = "inputs" if inputs else "outputs"
    return (f"locate across different layouts compares whole activations, but the {role} side's {path!r} {side} "
            f"differ between rank 0 and rank {rank}, so they are not whole on each rank: either a slice or a partial "
            f"sum the {role} factory does not declare (\"activations\": {{\"{path}\": {{\"{side}\": "
            f"\"shard(-1)\"}}}}, or \"partial\"), or a reduction (an all-reduce, a gather) missing in the port's "
            f"{path!r}; run both sides with the same placements to compare rank by rank")

