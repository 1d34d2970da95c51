"""``python -m ms_worker --listen HOST:PORT --model SPEC``: serve a MindSpore model over gRPC."""

from __future__ import annotations

import click

from proto.worker import serve


def make_adapter(args):
    from ms_worker.model import make_adapter  # mindspore is imported only once the options parse

    return make_adapter(args)


MODE = click.option("--mode", type=click.Choice(["pynative", "graph"]), default="pynative", show_default=True,
                    help="MindSpore execution mode")
def join_ranks(args):
    from ms_worker.ranks import join_ranks  # mindspore.communication, only under msrun

    return join_ranks(args)


COMMAND = serve.worker_command("ms", "Serve a MindSpore model to an msparity coordinator.", make_adapter, [MODE],
                               join_ranks)


def main(argv: list[str] | None = None):
    """``msparity-ms-worker``: exits with the worker's code (0 when stopped, 2 usage, 3 cannot serve)."""
    return COMMAND.main(args=argv, prog_name="msparity-ms-worker")


if __name__ == "__main__":
    main()
