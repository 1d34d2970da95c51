"""``python -m pt_worker --listen HOST:PORT --model SPEC``: serve a PyTorch model over gRPC."""

from __future__ import annotations

import click

from proto.worker import serve


def make_adapter(args):
    from pt_worker.model import make_adapter  # torch is imported only once the options parse

    return make_adapter(args)


TRUST_PICKLE = click.option("--trust-pickle", is_flag=True,
                            help="allow --model pickle:PATH, which unpickles a whole model (runs code from the file)")
def join_ranks(args):
    from pt_worker.ranks import join_ranks  # torch.distributed, only under torchrun

    return join_ranks(args)


COMMAND = serve.worker_command("pt", "Serve a PyTorch model to an msparity coordinator.", make_adapter, [TRUST_PICKLE],
                               join_ranks)


def main(argv: list[str] | None = None):
    """``msparity-pt-worker``: exits with the worker's code (0 when stopped, 2 usage, 3 cannot serve)."""
    return COMMAND.main(args=argv, prog_name="msparity-pt-worker")


if __name__ == "__main__":
    main()
