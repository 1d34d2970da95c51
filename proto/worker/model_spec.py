"""Load a model from a spec: ``pkg.module:factory`` or ``path/to/file.py:factory``.

The factory is called with no arguments and returns the net, ``(net, example_inputs)``, or a dict
``{"net": net, "inputs": example_inputs, "loss": loss_fn, "optimizer": optimizer, "use_input_values": True}``
(all but "net" optional): ``loss_fn`` and ``optimizer`` make training-step comparison use the model's
own loss and optimizer (``loss_fn(outputs, target)``; ``optimizer`` is an optimizer over the net's
parameters, or a callable that builds one from them); ``use_input_values`` asks for the example
inputs to be sent to both nets as they are (token ids, attention masks), not only as shapes for
random inputs.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path


class ModelSpecError(ValueError):
    """A spec that cannot be resolved to a callable factory."""


def split_spec(spec: str) -> tuple[str, str]:
    """("pkg.module" or "path/file.py", "factory") from a spec; raises ModelSpecError."""
    module_part, sep, factory_name = spec.rpartition(":")
    if not sep or not module_part or not factory_name.isidentifier():
        raise ModelSpecError(
            f"model spec {spec!r}: expected 'pkg.module:factory' or 'path/to/file.py:factory'"
        )
    return module_part, factory_name


def _load_file(path: Path, spec: str):
    if not path.is_file():
        raise ModelSpecError(f"model spec {spec!r}: file {path} does not exist")
    # Sibling modules of the file (e.g. a shared blocks.py) must be importable from it.
    sys.path.insert(0, str(path.parent))
    module_name = f"_msparity_model_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    module_spec.loader.exec_module(module)
    return module


def load_factory(spec: str):
    """Import the spec's module and return its factory callable."""
    module_part, factory_name = split_spec(spec)
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        module = _load_file(Path(module_part).expanduser().resolve(), spec)
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(module_part)
        except ModuleNotFoundError as exc:
            raise ModelSpecError(f"model spec {spec!r}: cannot import {module_part!r} ({exc})") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise ModelSpecError(f"model spec {spec!r}: {module_part} has no callable {factory_name!r}")
    return factory


@dataclass(frozen=True)
class ModelParts:
    """What a factory returned, normalised."""

    net: object
    example_inputs: object = None
    loss: object = None
    optimizer: object = None
    use_input_values: bool = False
    placements: dict | None = None  # one rank of a sharded net: tensor name -> "replicate" | "shard(DIM)"
    activations: dict | None = None  # module path -> its outputs' (or {"inputs": ..., "outputs": ...}) placement


FACTORY_KEYS = ("net", "inputs", "loss", "optimizer", "use_input_values", "placements", "activations")


def parts_from(built, spec: str = "<factory>") -> ModelParts:
    """Normalise a factory's return value (net, (net, inputs) or a dict) into ModelParts."""
    if isinstance(built, dict):
        unknown = sorted(set(built) - set(FACTORY_KEYS))
        if unknown or "net" not in built:
            raise ModelSpecError(f"model spec {spec!r}: the factory's dict needs 'net' and may hold "
                                 f"{', '.join(FACTORY_KEYS[1:])}; got {', '.join(map(str, built))}")
        return ModelParts(built["net"], built.get("inputs"), built.get("loss"), built.get("optimizer"),
                          bool(built.get("use_input_values", False)), built.get("placements"),
                          built.get("activations"))
    if isinstance(built, tuple) and len(built) == 2:
        return ModelParts(built[0], built[1])
    return ModelParts(built)


def build_parts(spec: str) -> ModelParts:
    """Call the spec's factory; return its net, example inputs, loss and optimizer (None when not given)."""
    return parts_from(load_factory(spec)(), spec)


def build_model(spec: str):
    """Call the spec's factory; return (net, example_inputs or None)."""
    parts = build_parts(spec)
    return parts.net, parts.example_inputs
