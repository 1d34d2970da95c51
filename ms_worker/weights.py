"""convert_weight_and_load: a torch .pth straight into a live MindSpore net (no torch needed)."""

from __future__ import annotations

from ms_worker.adapter import MindSporeAdapter
from proto.formats.pth import PthReader
from proto.weights.conversion import CONVERSION_COLUMNS, ConversionRow, check_keys, convert_tensors, text_table
from proto.weights.layer_rules import is_optional_entry
from proto.weights.map_file import load_weight_map


def convert_weight_and_load(weight_map_path, pt_file_path, net, print_conv_info: bool = True) -> list[ConversionRow]:
    """Convert the .pth by the map and load every tensor into net; prints the conversion table.

    Unlike TroubleShooter no temporary .ckpt is written: tensors stream from the file into the net.
    Entries the net has no place for (num_batches_tracked) are skipped; anything else unmatched
    raises one error listing every problem.
    """
    weight_map = load_weight_map(weight_map_path)
    adapter = MindSporeAdapter(net)
    targets = {p.name for p in adapter.list_parameters().parameters}
    rows: list[ConversionRow] = []
    with PthReader(pt_file_path) as reader:
        check_keys(weight_map, reader.specs(), str(pt_file_path))
        converted = convert_tensors(weight_map, reader, rows)
        adapter.set_weights((t for t in converted if t.name in targets or not is_optional_entry(t.name)), strict=True)
    if print_conv_info:
        print(text_table("The list of conversion result", CONVERSION_COLUMNS, [r.cells() for r in rows]))
    return rows

