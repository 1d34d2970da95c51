"""convert_weight: a torch .pth becomes a MindSpore .ckpt, with neither framework imported.

Reads the .pth with the restricted reader, renames and transforms each tensor by the weight map,
and streams it into the .ckpt (written atomically): one tensor in memory at a time.
TroubleShooter-compatible names, parameters, checks and conversion table.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from proto.codec import NamedArray, TensorSpec
from proto.errors import MsparityError
from proto.formats import ckpt
from proto.formats.pth import UntrustedPickleError
from proto.formats.safetensors_io import write_safetensors
from proto.weights.conversion import ConversionRow, check_keys, convert_tensors, converted_specs
from proto.weights.map_file import WeightMap, load_weight_map, weight_map_from_pair
from proto.weights.sharded_files import open_weight_set, rank_paths, set_kind

log = logging.getLogger("msparity")


def resolve_weight_map(weight_map_path=None, weight_map=None) -> WeightMap:
    """The in-memory map if given (it wins, as in TroubleShooter), else the map file."""
    if weight_map:
        return weight_map if isinstance(weight_map, WeightMap) else weight_map_from_pair(weight_map)
    if weight_map_path is None:
        raise MsparityError("The parameters 'weight_map_path' or 'weight_map' must be set to one")
    return load_weight_map(weight_map_path)


def _dict_tensors(pt_param_dict: dict) -> tuple[list[TensorSpec], Iterator[NamedArray]]:
    """Tensors of an in-memory dict of numpy arrays (or objects with .numpy(), e.g. torch tensors)."""
    arrays = {}
    for name, value in pt_param_dict.items():
        if not isinstance(value, NamedArray):
            if hasattr(value, "detach"):
                value = value.detach().cpu()
            try:
                value = NamedArray(name, np.asarray(value.numpy() if hasattr(value, "numpy") else value))
            except Exception as exc:
                raise MsparityError(f"pt_param_dict[{name!r}]: cannot read it as an array ({exc})") from None
        arrays[name] = value
    return [TensorSpec(n, a.dtype, a.shape) for n, a in arrays.items()], iter(arrays.values())


def _write(out: Path, kind: str, weight_map: WeightMap, specs: list[TensorSpec], tensors, source: str,
           rows: list[ConversionRow]) -> None:
    check_keys(weight_map, specs, source)
    converted = convert_tensors(weight_map, tensors, rows)
    if kind == "ckpt":
        ckpt.write_ckpt(out, converted)
        return
    write_safetensors(out, converted_specs(weight_map, specs), converted, {"format": "ms"})


def _convert_on_pt_worker(path: Path, out: Path, kind: str, weight_map: WeightMap, rows: list[ConversionRow]) -> None:
    """A file the caller trusts: a spawned pt worker unpickles it with torch and streams its state back."""
    from coordinator.session import WorkerTarget, open_worker

    target = WorkerTarget(model_spec=f"pickle:{path.resolve()}", extra_args=("--trust-pickle",))
    with open_worker("pt", target) as worker:
        specs = list(worker.list_parameters().parameters)
        _write(out, kind, weight_map, specs, worker.get_weights([s.name for s in specs]), str(path), rows)


def _same_file(out: Path, source: Path) -> bool:
    """Whether writing out would replace source (the same path, a link to it, or a hard link)."""
    try:
        return out.resolve() == source.resolve() or (out.exists() and out.samefile(source))
    except OSError:
        return False


def convert_weight(weight_map_path=None, pt_file_path=None, ms_file_save_path=None, **kwargs) -> list[ConversionRow]:
    """Convert a torch state dict (.pth, or ``pt_param_dict``) into a MindSpore .ckpt by the weight map.

    kwargs as TroubleShooter: ``weight_map`` (the ``(name_map, value_map)`` of get_weight_map),
    ``pt_param_dict``, ``print_conv_info=True``, ``print_save_path=True``; ours: ``pth_key`` picks the
    state dict inside a checkpoint dict; ``trust_pickle=True`` lets a spawned pt worker unpickle a
    whole model (torch.load with weights_only=False) — only for files you trust; ``layout`` (a JSON file of
    name -> "shard(DIM)") joins a state dict saved one file per rank, given as ``"r0.pth,r1.pth"``. The input may also be .safetensors; an output ending in
    .safetensors is written in that format (MindSpore loads it with format="safetensors").
    Returns the table rows.
    """
    weight_map = resolve_weight_map(weight_map_path, kwargs.get("weight_map"))
    if ms_file_save_path is None:
        raise MsparityError("The parameter 'ms_file_save_path' cannot be None.")
    out = Path(ms_file_save_path)
    if not out.parent.exists():
        raise MsparityError(f"{out}: the folder {out.parent} does not exist; create it first")
    if pt_file_path is not None and any(_same_file(out, Path(p)) for p in rank_paths(pt_file_path)):
        raise MsparityError(f"{out}: that is the torch file being converted; write the MindSpore file elsewhere")
    out_kind = "safetensors" if out.suffix.lower() == ".safetensors" else "ckpt"
    rows: list[ConversionRow] = []
    if kwargs.get("pt_param_dict"):
        specs, tensors = _dict_tensors(kwargs["pt_param_dict"])
        _write(out, out_kind, weight_map, specs, tensors, "pt_param_dict", rows)
    elif pt_file_path is not None and kwargs.get("trust_pickle") and len(rank_paths(pt_file_path)) > 1:
        raise MsparityError(f"{pt_file_path}: --trust-pickle unpickles one whole model; a per-rank set is read "
                            "as state dicts (drop --trust-pickle)")
    elif pt_file_path is not None and kwargs.get("trust_pickle"):
        _convert_on_pt_worker(Path(pt_file_path), out, out_kind, weight_map, rows)
    elif pt_file_path is not None:
        set_kind(pt_file_path)
        try:
            reader = open_weight_set(pt_file_path, kwargs.get("pth_key"), kwargs.get("layout"))
        except UntrustedPickleError as exc:
            raise UntrustedPickleError(f"{exc}; to load it anyway pass trust_pickle=True (CLI: --trust-pickle)") from None
        with reader:
            _write(out, out_kind, weight_map, reader.specs(), reader, str(pt_file_path), rows)
    else:
        raise MsparityError("The parameters 'pt_file_path' or 'pt_param_dict' must be set to one")
    if kwargs.get("print_conv_info", True):
        from coordinator.render import weight_report

        weight_report.print_conversion(rows)
    if kwargs.get("print_save_path", True):
        log.warning("[*User Attention*] The PTH has been converted to the checkpoint of MindSpore. Please check "
                    "whether the conversion result is correct. The saved path is: %s", ms_file_save_path)
    return rows
