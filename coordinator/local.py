"""Same-process mode: wrap live nets in in-process workers behind the same interface.

The ONE coordinator module allowed to import pt_worker / ms_worker (and so a framework), lazily,
only when a caller hands it live objects. A failure inside the in-process worker reaches the caller
as the same WorkerError (worker, RPC, status, one-line detail) the gRPC client raises, so code above
the session sees one kind of error in every mode.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable, Iterator

from proto import errors
from proto.codec import NamedArray
from proto.errors import WorkerError
from proto.worker.interface import RPC_NAMES, ModelWorker


class _CallerError(Exception):
    """Carries an exception raised by the caller's own iterator (a weight stream) through the worker unchanged."""

    def __init__(self, error: BaseException):
        self.error = error


def _caller_stream(value) -> bool:
    """Whether an argument is a stream the caller's code produces (a generator, an iterator, a custom iterable)."""
    return isinstance(value, Iterable) and not isinstance(value, (list, tuple, str, bytes, dict, NamedArray))


def _guarded(iterable: Iterable) -> Iterator:
    try:
        yield from iterable
    except Exception as exc:
        raise _CallerError(exc) from exc


class LocalWorker:
    """An adapter in this process, offering the ModelWorker methods with the gRPC client's errors."""

    def __init__(self, adapter: ModelWorker, role: str):
        self.adapter = adapter
        self.role = role
        self.label = f"{role} worker in this process"

    def _error(self, rpc: str, exc: Exception) -> WorkerError:
        code, detail = errors.status_for(exc)
        return WorkerError(self.label, rpc, code.name, detail)

    def _stream(self, rpc: str, items: Iterator) -> Iterator:
        try:
            yield from items
        except _CallerError as exc:
            raise exc.error from None
        except Exception as exc:
            raise self._error(rpc, exc) from exc

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("adapter", "role", "label"):
            raise AttributeError(name)  # not set yet (copy, pickle): never look them up on the adapter
        rpc = RPC_NAMES.get(name)
        method = getattr(self.adapter, name)
        if rpc is None:
            return method

        @functools.wraps(method)
        def call(*args, **kwargs):
            args = [_guarded(a) if _caller_stream(a) else a for a in args]
            kwargs = {k: _guarded(v) if _caller_stream(v) else v for k, v in kwargs.items()}
            try:
                result = method(*args, **kwargs)
            except _CallerError as exc:
                raise exc.error from None
            except Exception as exc:
                raise self._error(rpc, exc) from exc
            return self._stream(rpc, result) if inspect.isgenerator(result) else result

        return call


def adapter_for(role: str, net) -> LocalWorker:
    """An in-process worker around a live torch module (role "pt") or mindspore cell (role "ms")."""
    if role == "pt":
        from pt_worker.adapter import TorchAdapter

        adapter = TorchAdapter(net, model_spec=f"<live {type(net).__name__}>")
    else:
        from ms_worker.adapter import MindSporeAdapter

        adapter = MindSporeAdapter(net, model_spec=f"<live {type(net).__name__}>")
    return LocalWorker(adapter, role)
