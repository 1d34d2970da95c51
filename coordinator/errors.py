"""Coordinator errors: each carries a one-line message and the CLI exit code it maps to."""

from __future__ import annotations

from proto.errors import MsparityError, WeightMapError  # shared with the worker side and proto.weights

__all__ = ["MsparityError", "UsageError", "WorkerError", "WeightMapError"]

EXIT_OK = 0
EXIT_DIFFERENT = 1
EXIT_USAGE = 2
EXIT_CANNOT_COMPARE = 3


class UsageError(MsparityError):
    """The options contradict each other or are malformed. Exit code 2."""

    exit_code = EXIT_USAGE


class WorkerError(MsparityError):
    """A worker call failed; raised once per failed RPC by the client."""

    def __init__(self, worker: str, rpc: str, status: str, details: str):
        self.worker, self.rpc, self.status, self.details = worker, rpc, status, details
        super().__init__(f"{worker}: {rpc} failed [{status}]: {details}")
