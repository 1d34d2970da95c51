"""The command line both workers share: ``python -m pt_worker|ms_worker --listen HOST:PORT --model SPEC``.

The worker loads its model, binds (loopback unless told otherwise), prints the bound address as
its first stdout line, and serves until SIGINT/SIGTERM (or, with --exit-with-parent, until its
stdin closes, so a worker spawned by a coordinator never outlives it).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import click
import grpc

from proto import transport
from proto.errors import MsparityError, one_line
from proto.formats.atomic import atomic_binary
from proto.formats.npy_files import ServedRoots
from proto.worker import servicer
from proto.worker.interface import DirectoryServer, ModelWorker
from proto.worker.model_spec import ModelSpecError
from proto.worker.rank_job import gather_addresses, rank_listen
from proto.worker.served_dirs import ServedDirectories

TOKEN_ENV = "MSPARITY_TOKEN"


_COMMON_OPTIONS = [
    click.option("--listen", default="127.0.0.1:0", show_default=True,
                 help="HOST:PORT to bind (loopback, any free port, unless told otherwise)"),
    click.option("--model", default=None, metavar="SPEC",
                 help="pkg.module:factory or path/to/file.py:factory (optional with --serve-dir)"),
    click.option("--serve-dir", multiple=True, type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
                 help="let the coordinator list and read the .npy files under DIR (repeatable); nothing outside "
                      "these directories is served"),
    click.option("--device", default=None, help="device to run on (default: the framework's CPU)"),
    click.option("--token", default=None, metavar="TOKEN",
                 help=f"the shared token, as the coordinator's --token (or set {TOKEN_ENV}; from a file: --token-file)"),
    click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="file holding the shared token"),
    click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="server certificate (PEM) for TLS"),
    click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="server private key (PEM) for TLS"),
    click.option("--no-token", is_flag=True, help="serve a non-loopback --listen address without a token: anyone "
                                                  "who can reach it may set weights and train (refused otherwise)"),
    click.option("--address-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="also write the address to dial (rank 0's, under torchrun / msrun) into this file, atomically"),
    click.option("--distributed", type=click.Choice(["auto", "off"]), default="auto", show_default=True,
                 help="auto: under torchrun / msrun, serve as one rank of the job (each rank on its own port: "
                      "HOST:0 any free one, HOST:P P+rank; rank 0 prints the address); off: one process"),
    click.option("--exit-with-parent", is_flag=True,
                 help="exit when stdin closes (used when a coordinator spawns the worker)"),
    click.option("-v", "--verbose", is_flag=True, help="log requests to stderr"),
]


def worker_command(role: str, description: str, make_adapter: Callable, extra_options: Sequence = (),
                   join_ranks: Callable | None = None) -> click.Command:
    """A worker's command line (click, as the coordinator's: no abbreviated options, the same names for the same
    things): the options every worker takes, then the framework's own. join_ranks(args) joins the launcher's
    job (a RankJoin) or returns None for one process."""

    def run(**options):
        sys.exit(serve(role, argparse.Namespace(**options), make_adapter, join_ranks))

    command = run
    for option in reversed([*_COMMON_OPTIONS, *extra_options]):
        command = option(command)
    return click.command(help=description, context_settings={"help_option_names": ["-h", "--help"]})(command)


def security_from_args(args: argparse.Namespace) -> transport.Security:
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if args.token_file is not None:
        token = args.token_file.read_text().strip()
        if not token:
            raise MsparityError(f"--token-file {args.token_file}: the file is empty; write the shared token in it")
    return transport.Security(token=token, tls_cert=args.tls_cert, tls_key=args.tls_key)


def _watch_stdin(stop: threading.Event) -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    stop.set()


def create_server(adapter: ModelWorker | None, worker_name: str, listen: str = "127.0.0.1:0",
                  security: transport.Security = transport.Security(),
                  served: DirectoryServer | None = None) -> tuple[grpc.Server, str]:
    """A worker's gRPC server for adapter (None: directories only), bound but not started: (server, "HOST:PORT").

    Tests start one in-process on port 0; ``serve`` starts one for the command line.
    """
    server, _, address = _bind(adapter, worker_name, listen, security, served)
    return server, address


def _bind(adapter, worker_name: str, listen: str, security: transport.Security, served):
    server = transport.make_server(security)
    registered = servicer.add_to_server(server, adapter, worker_name, served)
    return server, registered, transport.bind(server, listen, security)


def serve(worker_name: str, args: argparse.Namespace, make_adapter: Callable[[argparse.Namespace], object],
          join_ranks: Callable | None = None) -> int:
    """Load the model, bind, print the address as the first stdout line, serve until stopped.

    Under torchrun / msrun (join_ranks), each rank binds its own port, the ranks swap addresses, and only rank 0
    prints its address (and writes --address-file): a coordinator dials it and finds the rest."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format=f"[{worker_name} worker] %(levelname)s %(message)s")
    # Frameworks may print while importing or building the net; keep stdout for the address line.
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        if args.model is None and not args.serve_dir:
            print(f"{worker_name} worker: give --model SPEC, --serve-dir DIR, or both", file=sys.stderr)
            return 2
        security = security_from_args(args)
        if not security.token and not transport.is_loopback(args.listen) and not args.no_token:
            print(f"{worker_name} worker: --listen {args.listen} is reachable from other hosts and no token is set: "
                  f"anyone who reaches it could set weights and train; set {TOKEN_ENV} or --token-file (add "
                  "--tls-cert/--tls-key for TLS), or pass --no-token to serve it open", file=sys.stderr)
            return 2
        served = ServedDirectories(ServedRoots(args.serve_dir))
        join = join_ranks(args) if join_ranks is not None and getattr(args, "distributed", "off") == "auto" else None
        if join is not None and join.scheduler:
            return 0  # msrun's scheduler runs the worker's script too: it joined, and serves nothing
        adapter = make_adapter(args) if args.model is not None else None
    except (ModelSpecError, MsparityError, OSError) as exc:
        print(f"{worker_name} worker: {one_line(str(exc))}", file=sys.stderr)
        return 3
    except SystemExit as exc:  # a factory (or a script it imports) calling sys.exit
        print(f"{worker_name} worker: building model {args.model!r} failed: it called sys.exit({exc.code!r})",
              file=sys.stderr)
        return 3
    except Exception as exc:  # the user's factory may raise anything; say which model failed
        if args.verbose:
            logging.exception("building the model failed")
        print(f"{worker_name} worker: building model {args.model!r} failed: "
              f"{one_line(f'{type(exc).__name__}: {exc}')} (rerun with -v for the traceback)", file=sys.stderr)
        return 3
    listen = rank_listen(args.listen, join.rank) if join is not None else args.listen
    try:
        server, servicer_, address = _bind(adapter, worker_name, listen, security, served)
    except (OSError, RuntimeError, ValueError) as exc:  # grpc says "Failed to bind" as a RuntimeError
        print(f"{worker_name} worker: cannot listen on {listen}: {one_line(str(exc))} (is the port in use, "
              "or the address not on this host?)", file=sys.stderr)
        return 3
    if join is not None:
        try:
            info = gather_addresses(join, address)
        except Exception as exc:  # a collective failing: another rank died while the job started
            print(f"{worker_name} worker rank {join.rank}: {one_line(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)
            return 3
        servicer_.join_ranks(info)
        if hasattr(adapter, "join_ranks"):  # recordings gather declared activations over the job
            adapter.join_ranks(join)
        address = info.addresses[0]
        logging.getLogger("msparity.worker").warning("rank %d of %d serving at %s", join.rank, join.world_size,
                                                     info.addresses[join.rank])
    sys.stdout.flush()
    if join is None or join.rank == 0:
        with os.fdopen(real_stdout, "w") as out:  # the one line on the real stdout; later prints go to stderr
            out.write(address + "\n")
            out.flush()
        if getattr(args, "address_file", None) is not None:
            with atomic_binary(args.address_file) as handle:
                handle.write((address + "\n").encode())
    server.start()

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    if args.exit_with_parent:
        threading.Thread(target=_watch_stdin, args=(stop,), daemon=True).start()
    stop.wait()
    server.stop(grace=2).wait()
    # A handler may still be inside a long framework call; interpreter shutdown would wait for it.
    sys.stderr.flush()
    os._exit(0)
