"""msparity's errors on both ends of the wire, and the gRPC status codes between them.

Each carries a one-line message naming the file, tensor or field and the fix. A worker's adapter
raises WorkerFailure subclasses; the servicer turns them (and any other exception) into a status
with that line as its details; the coordinator's client (or, in same-process mode,
coordinator/local.py) turns a failed call back into one WorkerError. MsparityError and its
subclasses map to the CLI's exit codes.
"""

from __future__ import annotations

import grpc

EXIT_OK = 0
EXIT_DIFFERENT = 1
EXIT_USAGE = 2
EXIT_CANNOT_COMPARE = 3


class MsparityError(Exception):
    """Could not do what was asked (bad file, bad map, unreachable worker); one line; CLI exit code 3."""

    exit_code = EXIT_CANNOT_COMPARE


class UsageError(MsparityError):
    """The options contradict each other or are malformed. Exit code 2."""

    exit_code = EXIT_USAGE


class WorkerError(MsparityError):
    """A worker call failed; raised once per failed RPC by the client (or by a same-process worker)."""

    def __init__(self, worker: str, rpc: str, status: str, details: str):
        self.worker, self.rpc, self.status, self.details = worker, rpc, status, details
        super().__init__(f"{worker}: {rpc} failed [{status}]: {details}")


class WeightMapError(MsparityError):
    """PyTorch and MindSpore parameters could not be matched; the message lists every problem."""


class WorkerFailure(Exception):
    """Base of the errors a worker reports to its caller."""

    code = grpc.StatusCode.INTERNAL


class BadRequest(WorkerFailure):
    """The request is malformed or does not fit the model (unknown tensor, wrong shape or dtype)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(WorkerFailure):
    code = grpc.StatusCode.NOT_FOUND


class PermissionDenied(WorkerFailure):
    code = grpc.StatusCode.PERMISSION_DENIED


class FailedPrecondition(WorkerFailure):
    """The worker cannot do this now (e.g. the model has no example inputs)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


def one_line(text: str, limit: int = 600) -> str:
    """Collapse whitespace so a message fits one line; cut very long ones."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and one-line detail for an exception raised while serving."""
    from proto.codec import CodecError  # local: codec imports nothing from here, keep it that way

    if isinstance(exc, WorkerFailure):
        return exc.code, one_line(str(exc))
    if isinstance(exc, CodecError):
        return grpc.StatusCode.INVALID_ARGUMENT, one_line(str(exc))
    return grpc.StatusCode.INTERNAL, one_line(f"{type(exc).__name__}: {exc}")
