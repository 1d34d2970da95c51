"""One coordinator session at a time per worker, named by the calls' metadata.

A coordinator sends ``msparity-session`` (an id) and ``msparity-client`` (who it is: user@host pid) with
every call. The first session to make a call that uses the net owns the worker; another session's
calls are refused with "busy: serving <who> since <when>" until the owner ends its session (EndSession)
or has made no call for the lease (MSPARITY_SESSION_LEASE_S, default 30 s: a coordinator that died).
Taking over a lapsed session first puts back the weights its training changed. Read-only calls
(Describe, ListParameters, GetWeights, the served directories) are never refused: ``msparity ping`` works on a
busy worker. Calls without a session id (a hand-written client) are not tracked.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from proto.errors import FailedPrecondition

SESSION_KEY = "msparity-session"
CLIENT_KEY = "msparity-client"
LEASE_ENV = "MSPARITY_SESSION_LEASE_S"
DEFAULT_LEASE_S = 30.0
READ_ONLY = frozenset({"Describe", "ListParameters", "GetWeights", "GetWeightDigests", "ListDir", "GetTensors", "GetExampleInputs",
                       "EndSession"})


@dataclass
class _Owner:
    session: str
    client: str
    since: float
    last: float
    active: int = 0


def lease_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(LEASE_ENV, DEFAULT_LEASE_S)))
    except ValueError:
        return DEFAULT_LEASE_S


class Sessions:
    """Who owns the worker now; ``on_takeover`` runs when a lapsed session is taken over (restores weights)."""

    def __init__(self, on_takeover: Callable[[], None], lease_s: float | None = None):
        self._on_takeover = on_takeover
        self._lease = lease_seconds() if lease_s is None else lease_s
        self._lock = threading.Lock()
        self._owner: _Owner | None = None

    def enter(self, rpc: str, metadata) -> str | None:
        """Admit one call (raise FailedPrecondition when another session owns the worker); its session id."""
        values = dict(metadata or ())
        session = values.get(SESSION_KEY)
        if rpc in READ_ONLY or not session:
            return None
        with self._lock:
            now = time.monotonic()
            owner = self._owner
            if owner is not None and owner.session != session:
                idle = now - owner.last
                if owner.active or idle < self._lease:
                    since = time.strftime("%H:%M:%S", time.localtime(time.time() - (now - owner.since)))
                    doing = "a call in progress" if owner.active else f"last call {idle:.0f} s ago"
                    raise FailedPrecondition(f"busy: serving {owner.client} since {since} ({doing}); one "
                                             f"coordinator at a time: wait for it, or start another worker")
                self._on_takeover()
                owner = None
            if owner is None:
                self._owner = owner = _Owner(session, values.get(CLIENT_KEY, "a coordinator"), now, now)
            owner.active += 1
        return session

    def leave(self, session: str | None) -> None:
        if session is None:
            return
        with self._lock:
            if self._owner is not None and self._owner.session == session:
                self._owner.active -= 1
                self._owner.last = time.monotonic()

    def end(self, metadata) -> bool:
        """Release the worker if the caller owns it (or nobody does); whether its weights should be put back."""
        session = dict(metadata or ()).get(SESSION_KEY)
        with self._lock:
            if self._owner is None or session is None:
                return True
            if self._owner.session != session:
                return False
            self._owner = None
            return True
