"""msparity compare end to end: real pt and ms workers over real gRPC, real torch and mindspore."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, hand_started_worker, repo_env, run_cli

EXAMPLES = ["mlp", "cnn", "vit"]


@pytest.mark.parametrize("example", EXAMPLES)
def test_each_example_pair_matches_when_spawned(example, tmp_path):
    report_path = tmp_path / "report.json"
    result = run_cli("compare", "--pt-model", f"examples.{example}_pt:build", "--ms-model",
                     f"examples.{example}_ms:build", "--json", str(report_path))
    assert result.code == 0, result.stdout + result.stderr
    report = json.loads(report_path.read_text())
    assert report["schema"] == "msparity.report/1" and report["passed"] is True
    assert report["weights"]["loaded"] == report["workers"]["ms"]["parameter_count"] > 0
    (output,) = report["outputs"]
    assert output["max_abs_diff"] <= 1e-5
    assert output["cosine_similarity"] > 0.999999 and output["allclose_ratio"] == 1.0
    assert "PASS" in result.stdout


@pytest.mark.parametrize(
    "bug, min_abs", [("gelu_bug", 1e-5), ("layernorm_eps_bug", 1e-4), ("residual_bug", 1e-2)]
)
def test_porting_bug_exits_1_and_names_the_output(bug, min_abs, tmp_path):
    report_path = tmp_path / "report.json"
    result = run_cli("compare", "--pt-model", "examples.vit_pt:build", "--ms-model", f"examples.vit_ms:build_{bug}",
                     "--json", str(report_path))
    assert result.code == 1, result.stdout + result.stderr
    report = json.loads(report_path.read_text())
    assert report["passed"] is False
    (output,) = report["outputs"]
    assert output["ref_name"] == "output" and output["max_abs_diff"] > min_abs
    assert "FAIL" in result.stdout and "differ: output" in result.stdout


def test_unreachable_worker_exits_3_with_one_line_naming_the_address():
    result = run_cli("compare", "--pt", "127.0.0.1:9", "--ms", "127.0.0.1:9", "--input-shape", "2,3", timeout=120)
    assert result.code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "127.0.0.1:9" in lines[0] and "cannot reach" in lines[0]
    assert "Traceback" not in result.stderr


def test_hand_started_workers_dialled_by_address_with_a_token(tmp_path):
    env = repo_env(MSPARITY_TOKEN="s3cret-token")
    with hand_started_worker("pt", "examples.cnn_pt:build", env=env) as pt, \
            hand_started_worker("ms", "examples.cnn_ms:build", env=env) as ms:
        ok = run_cli("compare", "--pt", pt, "--ms", ms, "--token", "s3cret-token", "--json", str(tmp_path / "r.json"))
        assert ok.code == 0, ok.stdout + ok.stderr
        assert json.loads((tmp_path / "r.json").read_text())["outputs"][0]["max_abs_diff"] <= 1e-5
        ping = run_cli("ping", "--pt", pt, "--ms", ms, "--token", "s3cret-token")
        assert ping.code == 0 and "pytorch 2.13.0" in ping.stdout and "mindspore 2.10.0" in ping.stdout
        wrong = run_cli("ping", "--pt", pt, "--ms", ms, "--token", "wrong")
        assert wrong.code == 3 and "UNAUTHENTICATED" in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1


def test_users_own_pair_as_file_specs_with_two_outputs_and_conv1d(tmp_path):
    fixtures = REPO / "tests" / "fixtures"
    report_path = tmp_path / "r.json"
    result = run_cli("compare", "--pt-model", f"{fixtures / 'user_pair.py'}:make",
                     "--ms-model", f"{fixtures / 'user_pair_ms.py'}:make",
                     "--input-shape", "4,6", "--json", str(report_path), cwd=tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    report = json.loads(report_path.read_text())
    assert [o["ref_name"] for o in report["outputs"]] == ["output.0", "output.1"]
    assert all(o["max_abs_diff"] <= 1e-5 for o in report["outputs"])
    assert report["weights"]["transformed"] == ["conv.weight"]


def test_explicit_inputs_from_npy_files(tmp_path):
    import numpy as np

    np.save(tmp_path / "x.npy", np.random.default_rng(5).standard_normal((3, 16)).astype(np.float32))
    result = run_cli("compare", "--pt-model", "examples.mlp_pt:build", "--ms-model", "examples.mlp_ms:build",
                     "--inputs", str(tmp_path / "x.npy"), "--json", str(tmp_path / "r.json"))
    assert result.code == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["inputs"] == [{"name": "input0", "dtype": "float32", "shape": [3, 16]}]


def test_model_that_fails_to_build_exits_3_naming_the_model():
    result = run_cli("compare", "--pt-model", "examples.vit_pt:no_such_factory", "--ms-model", "examples.vit_ms:build")
    assert result.code == 3
    line = result.stderr.strip()
    assert "no_such_factory" in line and len(line.splitlines()) == 1


def test_two_mindspore_parameters_with_one_name_are_refused_naming_both():
    result = run_cli("compare", "--pt-model", "tests/fixtures/styles_pt.py:build", "--ms-model",
                     "tests/fixtures/styles_ms.py:build_duplicate_names")
    assert result.code == 3
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "two parameters named 'bn.moving_mean'" in line and "'blocks.1.bn.moving_mean'" in line


def test_renamed_layers_pair_by_structure_or_by_a_map_and_subclassed_layernorm_follows_the_rules(tmp_path):
    fixtures = REPO / "tests" / "fixtures"
    pair = ("--pt-model", f"{fixtures / 'renamed_pt.py'}:build", "--ms-model", f"{fixtures / 'renamed_ms.py'}:build")
    auto = run_cli("compare", *pair, "--json", str(tmp_path / "auto.json"))  # head -> classifier, found by structure
    assert auto.code == 0, auto.stdout + auto.stderr
    assert "2 by structure" in auto.stdout and "head -> classifier (2)" in auto.stdout
    assert json.loads((tmp_path / "auto.json").read_text())["weights"]["how"].startswith("weights paired automatically")

    rules_only = run_cli("compare", *pair, "--map", "rules")
    assert rules_only.code == 3
    assert "torch entries mapped to names the ms net lacks (2): 'head.weight' -> 'head.weight'" in rules_only.stderr
    assert "classifier.weight" in rules_only.stderr and "ln.gamma" not in rules_only.stderr

    made = run_cli("weight-map", "--pt-model", f"{fixtures / 'renamed_pt.py'}:build", "--out", str(tmp_path / "m.json"))
    assert made.code == 0, made.stderr
    name_map, value_map = json.loads((tmp_path / "m.json").read_text())
    assert name_map["ln.weight"] == "ln.gamma"  # the subclass still gets LayerNorm's rule
    name_map.update({"head.weight": "classifier.weight", "head.bias": "classifier.bias"})
    (tmp_path / "m.json").write_text(json.dumps([name_map, value_map]))
    mapped = run_cli("compare", *pair, "--weight-map", str(tmp_path / "m.json"), "--json", str(tmp_path / "r.json"))
    assert mapped.code == 0, mapped.stdout + mapped.stderr
    assert json.loads((tmp_path / "r.json").read_text())["outputs"][0]["max_abs_diff"] <= 1e-5

    both = run_cli("weight-map", *pair, "--out", str(tmp_path / "auto_map.json"), "--json", str(tmp_path / "wm.json"))
    assert both.code == 0, both.stderr
    assert json.loads((tmp_path / "auto_map.json").read_text())[0] == name_map  # the map a person had to write
    rows = {r["pt"]: r for r in json.loads((tmp_path / "wm.json").read_text())["tensors"]}
    assert (rows["head.weight"]["found_by"], rows["ln.weight"]["found_by"], rows["body.weight"]["found_by"]) == \
        ("structure", "rules", "name")


def test_usage_errors_exit_2_before_any_worker_starts():
    import time

    start = time.monotonic()
    result = run_cli("compare", "--pt-model", "examples.mlp_pt:build", "--ms-model", "examples.mlp_ms:build",
                     "--rtol", "1e-3")
    assert result.code == 2 and "both --rtol and --atol" in result.stderr
    assert time.monotonic() - start < 5  # no framework was imported, no worker spawned
    both = run_cli("compare", "--pt", "127.0.0.1:1", "--pt-model", "examples.mlp_pt:build", "--ms", "127.0.0.1:2")
    assert both.code == 2 and "exactly one of --pt ADDRESS or --pt-model SPEC" in both.stderr


def test_generated_token_ids_out_of_an_embedding_are_explained_and_a_range_fixes_them(cli):
    models = ["--pt-model", "tests/fixtures/token_pair.py:build_pt", "--ms-model", "tests/fixtures/token_pair.py:build_ms"]
    failed = cli("compare", *models, "--input-shape", "2,16:int64")
    assert failed.code == 3, failed.stderr
    (line,) = failed.stderr.strip().splitlines()
    assert "IndexError" in line and "input0 in [0, 100)" in line and "--input-shape 2,16:int64:0..VOCAB" in line
    fixed = cli("compare", *models, "--input-shape", "2,16:int64:0..50")
    assert fixed.code == 0, fixed.stdout + fixed.stderr
    assert "[2, 16, 3]" in fixed.stdout and "PASS: 1 output(s) within tolerance" in fixed.stdout


def test_a_factory_may_ask_for_its_example_inputs_to_be_used_as_they_are(cli, tmp_path):
    report = tmp_path / "report.json"
    result = cli("compare", "--pt-model", "tests/fixtures/token_pair.py:build_pt_with_ids",
                 "--ms-model", "tests/fixtures/token_pair.py:build_ms", "--json", str(report))
    assert result.code == 0, result.stdout + result.stderr  # ids up to 49: the default [0, 100) would fail
    data = json.loads(report.read_text())
    assert data["inputs"] == [{"name": "input0", "dtype": "int64", "shape": [2, 4]}]
    assert data["workers"]["pt"]["example_input_values"] is True and data["outputs"][0]["ref_shape"] == [2, 4, 3]


def test_weights_go_worker_to_worker_and_through_the_coordinator_where_the_ms_worker_cannot_reach(tmp_path):
    import numpy as np

    from coordinator.client import WorkerClient
    from coordinator.session import ROUTE_DIRECT, ROUTE_RELAYED, Session
    from proto import transport
    from proto.codec import NamedArray

    token = "s3cret"
    env = repo_env(MSPARITY_TOKEN=token)
    with hand_started_worker("pt", "examples.cnn_pt:build", env=env) as pt_addr, \
            hand_started_worker("ms", "examples.cnn_ms:build", env=env) as ms_addr:
        security = transport.Security(token=token)
        for reachable, route in ((True, ROUTE_DIRECT), (False, ROUTE_RELAYED)):
            pt, ms = WorkerClient(pt_addr, "pt", security), WorkerClient(ms_addr, "ms", security)
            if not reachable:
                pt.address = "127.0.0.1:9"  # the name the ms worker is told leads nowhere; our channel still works
            session = Session(pt, ms)
            try:
                session.describe()
                summary = session.sync_weights()
                assert summary.route == route and summary.loaded == 14
                x = [NamedArray("input0", np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))]
                pt_out, ms_out = session.forward(x)
                assert np.allclose(pt_out.outputs[0].array, ms_out.outputs[0].array, atol=1e-5)
            finally:
                session.close()
                pt.close()
                ms.close()
