"""Same-process mode: wrap live nets in in-process workers behind the same interface.

The ONE coordinator module allowed to import pt_worker / ms_worker (and so a framework), lazily,
only when a caller hands it live objects.
"""

from __future__ import annotations


def adapter_for(role: str, net):
    """A worker adapter around a live torch module (role "pt") or mindspore cell (role "ms")."""
    if role == "pt":
        from pt_worker.adapter import TorchAdapter

        return TorchAdapter(net, model_spec=f"<live {type(net).__name__}>")
    from ms_worker.adapter import MindSporeAdapter

    return MindSporeAdapter(net, model_spec=f"<live {type(net).__name__}>")
