"""Every command's --json against docs/report.schema.json (msparity.report/1), with real workers; and every example
in docs/reports.md against the same schema, so neither the producers nor the doc can drift from it."""

from __future__ import annotations

import copy
import json
import re

import pytest
from jsonschema import Draft202012Validator

from tests.conftest import REPO, npy_dirs, run_cli

SCHEMA_PATH = REPO / "docs" / "report.schema.json"
DOC_PATH = REPO / "docs" / "reports.md"
BUGS = "tests.fixtures.backward_bugs_ms"
MLP = ("--pt-model", "examples.mlp_pt:build")

# name -> (argv, the kind its JSON must have, the exit code expected); {tmp} is the run folder
RUNS = {
    "compare": (["compare", *MLP, "--ms-model", f"{BUGS}:forward_bug"], "compare", 1),
    "demo": (["demo", "--example", "mlp"], "compare", 0),
    "locate": (["locate", *MLP, "--ms-model", f"{BUGS}:forward_bug"], "locate", 1),
    "locate-backward": (["locate", *MLP, "--ms-model", f"{BUGS}:scaled_backward", "--backward", "mse", "--isolate"],
                        "locate", 1),
    "train-step": (["train-step", "--pt-model", "examples.cnn_pt:build", "--ms-model", "examples.cnn_ms:build",
                    "--steps", "2", "--optimizer", "adam"], "train-step", 0),
    "compare-dirs": (["compare-dirs", "{tmp}/a", "{tmp}/b"], "compare-dirs", 1),
    "compare-grads": (["compare-grads", "{tmp}/a", "{tmp}/b"], "compare-grads", 1),
    "convert": (["convert", "--weight-map", "{tmp}/map.json", "--pth", "{tmp}/b.pth", "--out", "{tmp}/b.ckpt"],
                "convert", 0),
    # after convert: the torch file against the converted, changed one
    "compare-ckpt": (["compare-ckpt", "{tmp}/a.pth", "{tmp}/b.ckpt", "--weight-map", "{tmp}/map.json",
                      "--print-level", "0"], "compare-ckpt", 1),
    "weight-map": (["weight-map", "--pt-model", "examples.cnn_pt:build", "--ms-model", "examples.cnn_ms:build",
                    "--out", "{tmp}/cnn_map.json"], "weight-map", 0),
}


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=None)


def _errors(validator: Draft202012Validator, report: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<top>'}: {e.message[:300]}"
            for e in sorted(validator.iter_errors(report), key=lambda e: list(map(str, e.absolute_path)))]


def _inputs(tmp) -> None:
    """Dump folders (one file differs, one only in a, one of another shape) and two torch state dicts."""
    import numpy as np
    import torch

    a, b = npy_dirs(tmp, 3, 6, {1: 0.5})
    np.save(a / "3_y.npy", np.zeros(4, np.float32))
    np.save(a / "4_z.npy", np.ones(5, np.float32))
    np.save(b / "4_z.npy", np.ones(7, np.float32))
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))
    torch.save(net.state_dict(), tmp / "a.pth")
    with torch.no_grad():
        net[2].weight[0, :3] += torch.tensor([1e-3, 0.5, 2.0])
    torch.save(net.state_dict(), tmp / "b.pth")
    names = {k: k for k in net.state_dict()}
    (tmp / "map.json").write_text(json.dumps([{**names, "1.weight": "1.gamma", "1.bias": "1.beta"}, {}]))


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, tuple[dict | None, int, str]]:
    """Every run once (in RUNS order: compare-ckpt reads what convert wrote): name -> (its JSON or None, exit code, output)."""
    tmp = tmp_path_factory.mktemp("reports")
    _inputs(tmp)
    done = {}
    for name, (argv, _, _) in RUNS.items():
        out = tmp / f"{name}.json"
        result = run_cli(*(arg.format(tmp=tmp) for arg in argv), "--json", str(out), timeout=240)
        data = json.loads(out.read_text(encoding="utf-8")) if out.exists() else None
        done[name] = (data, result.code, f"exit {result.code}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return done


@pytest.mark.parametrize("name", list(RUNS))
def test_every_command_writes_a_report_the_schema_accepts(name, reports, validator):
    data, code, output = reports[name]
    _, kind, expected_code = RUNS[name]
    assert data is not None, f"{name} wrote no JSON: {output}"
    assert code == expected_code, output
    assert data["schema"] == "msparity.report/1" and data["kind"] == kind
    assert data["passed"] is (code == 0)
    assert not _errors(validator, data), "\n".join(_errors(validator, data))


def test_the_runs_reach_the_parts_of_the_schema_that_are_often_null(reports):
    """The runs above are chosen to fill what a passing run leaves empty (else the schema would be tested on nulls)."""
    assert reports["locate"][0]["first_divergent"]["exact"] is not None
    assert reports["locate-backward"][0]["first_divergent_backward"]["isolated"] is not None
    assert any(o["diff_histogram"] for o in reports["compare"][0]["outputs"])
    kinds = {t["kind"] for s in reports["train-step"][0]["steps"] for t in s["tensors"]}
    assert kinds == {"grad", "weight", "buffer", "moment1", "moment2"}
    statuses = {p["status"] for p in reports["compare-dirs"][0]["pairs"]}
    assert statuses == {"equal", "different", "only in orig", "shape mismatch"}
    assert {p["status"] for p in reports["compare-grads"][0]["pairs"]} >= {"only in target"}
    assert any(v["diff_histogram"] for v in reports["compare-ckpt"][0]["values"])
    assert {t["found_by"] for t in reports["weight-map"][0]["tensors"]} == {"name", "rules", None}


def test_the_schema_names_every_kind_and_the_histogram_bins_of_the_metrics(schema, reports):
    from coordinator.metrics import DIFF_HISTOGRAM_EDGES

    kinds = set(schema["properties"]["kind"]["enum"])
    assert kinds == {RUNS[name][1] for name in RUNS}
    assert kinds == {c["if"]["properties"]["kind"]["const"] for c in schema["allOf"]}
    array = next(s for s in schema["$defs"]["diff_histogram"]["oneOf"] if s.get("type") == "array")
    assert array["minItems"] == array["maxItems"] == len(DIFF_HISTOGRAM_EDGES) + 1


def _doc_examples() -> list[dict]:
    blocks = re.findall(r"^```json\n(.*?)^```", DOC_PATH.read_text(encoding="utf-8"), flags=re.DOTALL | re.MULTILINE)
    return [json.loads(block) for block in blocks]


def test_every_example_in_the_doc_is_a_report_the_schema_accepts(validator, schema):
    examples = _doc_examples()
    assert examples, f"no ```json block in {DOC_PATH}"
    for example in examples:
        assert not _errors(validator, example), f"{example.get('kind')}:\n" + "\n".join(_errors(validator, example))
    # one example per kind, and locate's both ways
    assert {e["kind"] for e in examples} == set(schema["properties"]["kind"]["enum"])
    locates = [e for e in examples if e["kind"] == "locate"]
    assert {e["backward_loss"] for e in locates} == {None, "mse"}


def _set(path: str, value):
    def change(report: dict) -> None:
        *parents, last = path.split("/")
        node = report
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is _DROP:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return change


_DROP = object()
MUTATIONS = {
    "passed is a string": ("compare", _set("passed", "yes")),
    "a locate without its curve": ("locate", _set("curve", _DROP)),
    "a locate that passed yet blames a module": ("locate", _set("passed", True)),
    "another schema version": ("compare", _set("schema", "msparity.report/2")),
    "an unknown kind": ("compare", _set("kind", "comparison")),
    "a compare report called a locate": ("compare", _set("kind", "locate")),
    "an unknown top-level field": ("train-step", _set("extra", 1)),
    "an unknown field in a comparison": ("compare", _set("outputs/0/extra", 1)),
    "NaN spelled as a string": ("compare", _set("outputs/0/max_abs_diff", "nan")),
    "a histogram of the wrong length": ("compare", _set("outputs/0/diff_histogram", [1, 2, 3])),
    "a curve row without its ratio": ("locate", _set("curve/0/ratio", _DROP)),
    "an unknown signal": ("locate", _set("curve/0/signal", "big")),
    "a blamed module without its reason": ("locate", _set("first_divergent/reason", _DROP)),
    "a train tensor of an unknown kind": ("train-step", _set("steps/0/tensors/0/kind", "gradient")),
    "a dir compare with a seed": ("compare-dirs", _set("seed", 0)),
    "a dir compare with a bare number of seconds": ("compare-dirs", _set("seconds", 0.1)),
    "a negative count": ("compare-ckpt", _set("values/0/total", -1)),
    "a convert that failed": ("convert", _set("passed", False)),
    "a weight-map row found by magic": ("weight-map", _set("tensors/0/found_by", "magic")),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_the_schema_rejects_a_broken_report(mutation, reports, validator):
    name, change = MUTATIONS[mutation]
    data = reports[name][0]
    assert data is not None and not _errors(validator, data)
    broken = copy.deepcopy(data)
    change(broken)
    assert _errors(validator, broken), f"the schema accepts {mutation}"
