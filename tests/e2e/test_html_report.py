"""One self-contained HTML page per run (--html), re-rendered later from the run's JSON (msparity report)."""

from __future__ import annotations

import json
import re

from tests.conftest import npy_dirs, run_cli

BUGS = "tests.fixtures.backward_bugs_ms"


def _self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing is fetched
    assert "<script src" not in page and "addEventListener('click'" in page  # sortable, inline


def test_a_failing_locate_page_names_the_module_and_re_renders_from_its_json(tmp_path):
    html, data = tmp_path / "locate.html", tmp_path / "locate.json"
    result = run_cli("locate", "--pt-model", "examples.mlp_pt:build", "--ms-model", f"{BUGS}:forward_bug",
                     "--html", str(html), "--json", str(data))
    assert result.code == 1, result.stderr
    page = html.read_text()
    _self_contained(page)
    assert "First divergent module: pt act2 (Tanh) ~ ms act2" in page and 'class="bad"' in page
    again = run_cli("report", str(data), "--html", str(tmp_path / "again.html"))
    assert again.code == 0, again.stderr
    assert (tmp_path / "again.html").read_text() == page  # the same page from the saved JSON


def test_a_train_step_page_draws_both_loss_curves(tmp_path):
    html = tmp_path / "train.html"
    result = run_cli("train-step", "--pt-model", "examples.mlp_pt:build", "--ms-model", "examples.mlp_ms:build",
                     "--steps", "3", "--html", str(html))
    assert result.code == 0, result.stderr
    page = html.read_text()
    _self_contained(page)
    assert "PASS: 3 training step(s) agree" in page and "PyTorch" in page and "MindSpore" in page


def test_a_dir_compare_page_ranks_the_files_that_differ(tmp_path):
    a, b = npy_dirs(tmp_path, 6, 4, {3: 0.5})
    result = run_cli("compare-dirs", str(a), str(b), "--html", str(tmp_path / "dirs.html"))
    assert result.code == 1
    page = (tmp_path / "dirs.html").read_text()
    _self_contained(page)
    assert "FAIL: 1 of 6 pairs differ" in page and "the files that differ most" in page


def test_report_refuses_what_is_not_a_report(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"hello": 1}))
    result = run_cli("report", str(tmp_path / "x.json"), "--html", str(tmp_path / "x.html"))
    assert result.code == 3 and "not an msparity report" in result.stderr and not (tmp_path / "x.html").exists()


def test_compare_locate_and_train_step_write_their_tables_as_csv(tmp_path):
    import csv

    pair = ("--pt-model", "examples.mlp_pt:build", "--ms-model", "examples.mlp_ms:build")
    for command, extra in (("compare", ()), ("locate", ()), ("train-step", ("--steps", "2"))):
        out = tmp_path / f"{command}.csv"
        result = run_cli(command, *pair, *extra, "--csv", str(out), "--json", str(tmp_path / f"{command}.json"))
        assert result.code == 0, result.stderr
        rows = list(csv.DictReader(out.open()))
        data = json.loads((tmp_path / f"{command}.json").read_text())
        expected = {"compare": len(data.get("outputs", [])), "locate": len(data.get("curve", [])),
                    "train-step": sum(len(s["tensors"]) for s in data.get("steps", []))}[command]
        assert rows and len(rows) == expected, command
    assert {r["pt"] for r in csv.DictReader((tmp_path / "locate.csv").open())} >= {"fc1", "act1", "fc2"}


def test_the_weight_commands_write_pages_and_tables(tmp_path):
    import csv

    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))
    torch.save(net.state_dict(), tmp_path / "a.pth")
    with torch.no_grad():
        net[2].weight[0, :3] += torch.tensor([1e-3, 0.5, 2.0])
    torch.save(net.state_dict(), tmp_path / "b.pth")
    wm = run_cli("weight-map", "--pt-model", "examples.cnn_pt:build", "--out", str(tmp_path / "cnn.json"),
                 "--html", str(tmp_path / "wm.html"), "--csv", str(tmp_path / "wm.csv"))
    assert wm.code == 0, wm.stderr
    _tables_only(tmp_path / "wm.html")
    assert "bn1.running_mean" in (tmp_path / "wm.html").read_text()
    assert {r["pt"]: r["ms"] for r in csv.DictReader((tmp_path / "wm.csv").open())}["bn1.weight"] == "bn1.gamma"

    names = {k: k for k in net.state_dict()}
    (tmp_path / "map.json").write_text(json.dumps([{**names, "1.weight": "1.gamma", "1.bias": "1.beta"}, {}]))
    for side in "ab":
        out = run_cli("convert", "--weight-map", str(tmp_path / "map.json"), "--pth", str(tmp_path / f"{side}.pth"),
                      "--out", str(tmp_path / f"{side}.ckpt"), "--html", str(tmp_path / f"{side}.html"),
                      "--csv", str(tmp_path / f"{side}.csv"))
        assert out.code == 0, out.stderr
    assert "Converted 9 tensors into" in (tmp_path / "a.html").read_text()
    rows = list(csv.DictReader((tmp_path / "a.csv").open()))
    assert len(rows) == 9 and {r["ms_name"] for r in rows} >= {"1.gamma", "1.beta"}

    cmp = run_cli("compare-ckpt", str(tmp_path / "a.ckpt"), str(tmp_path / "b.ckpt"), "--html", str(tmp_path / "c.html"),
                  "--csv", str(tmp_path / "c.csv"), "--json", str(tmp_path / "c.json"))
    assert cmp.code == 1, cmp.stderr
    page = (tmp_path / "c.html").read_text()
    _self_contained(page)
    assert "FAIL: 1 of 9 parameters differ" in page and "largest difference per parameter" in page
    assert "element-wise |difference| of the worst parameters" in page
    table = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert [r["ref_name"] for r in table if r["passed"] == "False"] == ["2.weight"]
    counts = next(v for v in json.loads((tmp_path / "c.json").read_text())["values"]
                  if v["ref_name"] == "2.weight")["diff_histogram"]
    assert sum(counts) == 16 and counts[0] == 13 and sum(counts[-5:]) == 2  # 0.5 and 2.0 land in the top decades
    again = run_cli("report", str(tmp_path / "c.json"), "--csv", str(tmp_path / "again.csv"))
    assert again.code == 0 and (tmp_path / "again.csv").read_text() == (tmp_path / "c.csv").read_text()


def _tables_only(path) -> None:
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and 'class="sortable"' in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
