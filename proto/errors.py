"""Worker-side errors and their gRPC status codes.

Adapters raise these with a one-line message naming the tensor or field and the fix; the servicer
turns them (and any other exception) into a status with that line as its details.
"""

from __future__ import annotations

import grpc


class MsparityError(Exception):
    """Could not do what was asked (bad file, bad map, unreachable worker); one line; CLI exit code 3."""

    exit_code = 3


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
