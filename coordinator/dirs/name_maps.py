"""Pairing the files of two tensor directories: by name, by number, by shape edit distance.

TroubleShooter's three strategies with their names and results. Files sort by creation time, then
by the (first, last) numbers in their names, so ``0_x``, ``1_x``, ``10_x`` keep the order they were
saved in. Each strategy returns ``[(orig_name | None, target_name | None), ...]``; a None marks a
file with no partner, which the comparison lists rather than drops.
"""

from __future__ import annotations

import logging
import re
from itertools import zip_longest

from coordinator.dirs.tensor_dirs import TensorDir, open_dir
from proto.formats.npy_files import NpyEntry, NpyFileError

log = logging.getLogger("msparity")
_NUMBER = re.compile(r"\d+")
NameMap = list[tuple[str | None, str | None]]


def _numbers(name: str) -> list[int]:
    return [int(n) for n in _NUMBER.findall(name)]


def front_end_key(entry: NpyEntry):
    """(first, last) number in the name; names without digits sort after those with, by creation time."""
    numbers = _numbers(entry.name)
    return (0, numbers[0], numbers[-1]) if numbers else (1, 0, 0)


def end_key(entry: NpyEntry):
    """The last number in the name (what TroubleShooter's compare_list_dir sorts by)."""
    numbers = _numbers(entry.name)
    return (0, numbers[-1]) if numbers else (1, 0)


def sorted_entries(directory: TensorDir, key=front_end_key) -> list[NpyEntry]:
    """The directory's .npy files in save order; an empty directory is an error."""
    entries = directory.entries()
    if not entries:
        raise NpyFileError(f"{directory.label}: no .npy files in this directory; is it the right one?")
    by_time = sorted(entries, key=lambda e: (e.ctime, e.name))
    return sorted(by_time, key=key)


def _dirs(orig_dir, target_dir) -> tuple[TensorDir, TensorDir]:
    return open_dir(orig_dir, role="orig"), open_dir(target_dir, role="target")


def map_by_name(orig: list[NpyEntry], target: list[NpyEntry]) -> NameMap:
    """Same file name on both sides; leftovers of target follow, in order."""
    left = {e.name for e in target}
    pairs: NameMap = []
    for entry in orig:
        if entry.name in left:
            left.discard(entry.name)
            pairs.append((entry.name, entry.name))
        else:
            pairs.append((entry.name, None))
    pairs.extend((None, e.name) for e in target if e.name in left)
    return pairs


def map_by_number(orig: list[NpyEntry], target: list[NpyEntry]) -> NameMap:
    """The i-th file of one side with the i-th of the other (both in save order)."""
    return [(o.name if o else None, t.name if t else None) for o, t in zip_longest(orig, target)]


def align_shapes(orig: list[tuple[int, ...]], target: list[tuple[int, ...]], del_cost: int = 1, ins_cost: int = 1,
                 rep_cost: int = 5) -> tuple[int, list[tuple[int | None, int | None]]]:
    """Edit-distance alignment of two shape sequences: (cost, [(orig index | None, target index | None)]).

    Equal shapes pair up; with the default costs a replacement (pairing unequal shapes) never wins.
    Ties prefer leaving an orig file unpaired, then a target file, then replacing, so the earliest
    of several equal shapes is the one paired (TroubleShooter's choice).
    """
    m, n = len(orig), len(target)
    cost = [[0] * (n + 1) for _ in range(m + 1)]
    step = [[""] * (n + 1) for _ in range(m + 1)]
    for i in range(m + 1):
        cost[i][0] = i
    for j in range(n + 1):
        cost[0][j] = j
    for i in range(1, m + 1):
        row, above = cost[i], cost[i - 1]
        for j in range(1, n + 1):
            if orig[i - 1] == target[j - 1]:
                row[j] = above[j - 1]
                step[i][j] = "del" if above[j] + del_cost == row[j] else "match"
                continue
            deleting, inserting, replacing = above[j] + del_cost, row[j - 1] + ins_cost, above[j - 1] + rep_cost
            if deleting <= inserting and deleting <= replacing:
                row[j], step[i][j] = deleting, "del"
            elif inserting <= replacing:
                row[j], step[i][j] = inserting, "ins"
            else:
                row[j], step[i][j] = replacing, "match"
    pairs: list[tuple[int | None, int | None]] = []
    i, j = m, n
    while i > 0 and j > 0:
        if step[i][j] == "match":
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif step[i][j] == "del":
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    pairs.extend((k - 1, None) for k in range(i, 0, -1))
    pairs.extend((None, k - 1) for k in range(j, 0, -1))
    pairs.reverse()
    return cost[m][n], pairs


def map_by_shape_edit_distance(orig: list[NpyEntry], target: list[NpyEntry], del_cost: int = 1, ins_cost: int = 1,
                               rep_cost: int = 5) -> NameMap:
    """Pair files in save order so that equal shapes line up (for dumps whose names differ, e.g. grads)."""
    total, pairs = align_shapes([e.shape for e in orig], [e.shape for e in target], del_cost, ins_cost, rep_cost)
    if total:
        log.warning("the number of files or their shapes differ between the directories; "
                    "some files may be paired wrongly or left unpaired")
    return [(orig[i].name if i is not None else None, target[j].name if j is not None else None) for i, j in pairs]


def _warn_unpaired(pairs: NameMap) -> NameMap:
    if any(o is None or t is None for o, t in pairs):
        log.warning("some files have no partner in the other directory; they are listed as unpaired")
    return pairs


def get_name_map_list_by_name(orig_dir, target_dir) -> NameMap:
    """TroubleShooter's name map: files with the same name pair up."""
    orig, target = _dirs(orig_dir, target_dir)
    return _warn_unpaired(map_by_name(sorted_entries(orig), sorted_entries(target)))


def get_name_map_list_by_number(orig_dir, target_dir, sort_key=None) -> NameMap:
    """TroubleShooter's number map: files pair up by position in save order."""
    orig, target = _dirs(orig_dir, target_dir)
    key = sort_key or front_end_key
    return _warn_unpaired(map_by_number(sorted_entries(orig, key), sorted_entries(target, key)))


def get_name_map_list_by_shape_edit_distance(orig_dir, target_dir, *, del_cost=1, ins_cost=1, rep_cost=5) -> NameMap:
    """TroubleShooter's shape map: an edit-distance alignment of the two shape sequences."""
    orig, target = _dirs(orig_dir, target_dir)
    return map_by_shape_edit_distance(sorted_entries(orig), sorted_entries(target), del_cost, ins_cost, rep_cost)


STRATEGIES = {"name": map_by_name, "number": map_by_number, "shape": map_by_shape_edit_distance}
