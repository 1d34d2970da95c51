"""A warm helper process: ``python -m bench.host`` runs ``bench.MODULE:FUNCTION`` calls read as JSON lines on stdin.

Each reply (one JSON line) gives the call's wall seconds, what it returned, and this process's peak RSS during
the call. What the measured code prints goes to /dev/null (TroubleShooter and msparity both print tables;
rendering them is counted, the terminal is not), so stdout carries only the replies.

After each call, and before its reply, the threads it left running are joined, uncounted (msparity frees a replaced
file's blocks in one), so no contender's leftovers land in the next one's time (bench.measure.interleave syncs the
disk between contenders for the same reason).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback


def main() -> None:
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    from bench.procs import peak_mib, reset_peak

    for line in sys.stdin:
        request = json.loads(line)
        module, _, name = request["call"].partition(":")
        reset_peak(os.getpid())
        start = time.perf_counter()
        try:
            result = getattr(importlib.import_module(f"bench.{module}"), name)(**request["kwargs"])
            reply = {"s": time.perf_counter() - start, "result": result, "peak_mib": peak_mib(os.getpid())}
        except BaseException as exc:  # the suite reports it and stops; this host stays up to be closed
            reply = {"error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-3000:]}"}
        _settle()
        sys.stdout.flush()
        replies.write(json.dumps(reply) + "\n")


def _settle() -> None:
    for thread in threading.enumerate():
        if thread.name == "msparity-release":  # it ends by itself (pool threads, which wait for work, do not)
            thread.join(30)


if __name__ == "__main__":
    main()
