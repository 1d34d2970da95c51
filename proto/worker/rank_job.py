"""One worker per rank of a distributed job (torchrun, msrun), framework-free.

Each rank binds its own port and serves; the ranks swap their addresses through the framework's own
collective (the hook each framework's worker gives: ``RankJoin.gather``), and rank 0 publishes them (its
address line, ``--address-file``, Describe's ``rank_addresses``). A coordinator dials rank 0, finds the rest,
and sends every compute call to all ranks with one ``msparity-seq`` number; collectives need every rank to
run the same calls in the same order, so each rank's ``SequenceGate`` runs them in that order, whatever order
they arrive in (crossed calls would otherwise give wrong values, or abort the job, silently).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from proto.errors import FailedPrecondition, MsparityError

SEQ_METADATA = "msparity-seq"
ORDERED_RPCS = frozenset({"Forward", "TrainStep", "Record", "RunModule"})  # the calls that may run collectives
GATE_TIMEOUT_S = 25.0  # under MindSpore's 30 s collective timeout: a rank never waits in a collective for a lost call


@dataclass(frozen=True)
class RankJoin:
    """This process's place in the job, as its framework's launcher set it up."""

    rank: int
    world_size: int
    launcher: str
    gather: Callable[[bytes], list[bytes]]  # every rank's bytes, by rank (a collective: all ranks call it)
    scheduler: bool = False  # msrun's scheduler process: it serves nothing
    all_gather_int32: Callable | None = None  # 1-D int32 array, one length on all ranks -> [world, n] (a collective)


@dataclass(frozen=True)
class RankInfo:
    """What Describe says of the job: this rank, the world size, every rank's address."""

    rank: int
    world_size: int
    launcher: str
    addresses: tuple[str, ...]


def rank_listen(listen: str, rank: int) -> str:
    """The address rank `rank` binds: HOST:0 stays (any free port), HOST:P becomes HOST:P+rank."""
    host, _, port = listen.rpartition(":")
    return listen if not port.isdigit() or int(port) == 0 else f"{host}:{int(port) + rank}"


def published(address: str) -> str:
    """A bound address as other hosts dial it: a wildcard host becomes this host's name."""
    host, _, port = address.rpartition(":")
    if host.strip("[]") in ("0.0.0.0", "::", ""):
        return f"{socket.gethostname()}:{port}"
    return address


def gather_addresses(join: RankJoin, address: str) -> RankInfo:
    """Swap every rank's address through the framework's collective (all ranks call this together)."""
    encoded = published(address).encode("utf-8")
    addresses = tuple(item.decode("utf-8") for item in join.gather(encoded))
    if len(addresses) != join.world_size or not all(addresses):
        raise MsparityError(f"rank {join.rank} of {join.world_size}: the ranks' addresses did not all arrive "
                            f"({list(addresses)})")
    return RankInfo(join.rank, join.world_size, join.launcher, addresses)


class SequenceGate:
    """Runs the ordered calls of each session in their sequence order (0, 1, 2, ...), one after the other."""

    def __init__(self, rank: int, world_size: int, timeout: float = GATE_TIMEOUT_S):
        self._label = f"rank {rank} of {world_size}"
        self._timeout = timeout
        self._next: dict[str, int] = {}
        self._changed = threading.Condition()

    def wait_turn(self, session: str, seq: str | None, rpc: str) -> int:
        """Block until call `seq` of `session` is next; returns it (pass it to done)."""
        if seq is None or not seq.isdigit():
            raise FailedPrecondition(f"this worker is {self._label} of a distributed job: a compute call must reach "
                                     f"every rank with the same {SEQ_METADATA} call metadata (msparity's coordinator "
                                     "does that when it dials rank 0); a plain call would leave the other ranks "
                                     "waiting in a collective")
        number = int(seq)
        with self._changed:
            expected = self._next.setdefault(session, 0)
            if number < expected:
                raise FailedPrecondition(f"{self._label}: {rpc} call #{number} of this session ran already")
            if not self._changed.wait_for(lambda: self._next[session] == number, self._timeout):
                raise FailedPrecondition(f"{self._label}: {rpc} call #{number} waited {self._timeout:g} s for call "
                                         f"#{self._next[session]}, which never reached this rank; restart the job")
        return number

    def done(self, session: str, number: int) -> None:
        """Call `number` of `session` finished (or failed): let the next one run."""
        with self._changed:
            self._next[session] = number + 1
            self._changed.notify_all()

    def end(self, session: str) -> None:
        """The session ended: its numbering starts again at 0."""
        with self._changed:
            self._next.pop(session, None)
