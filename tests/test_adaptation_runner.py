"""The adaptation benchmark's runner on a tiny configuration (tiny encoder, real data)."""

import csv
import dataclasses
import json
import re
import shutil
import warnings

import pytest

from sklearn_dallmi.benchmark import adaptation
from sklearn_dallmi.benchmark.__main__ import main

@pytest.fixture
def tiny_runs(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(adaptation, "truncated_encoder", lambda layers, cache_dir: tiny_model_dir)
    monkeypatch.setattr(adaptation.Config, "quick", classmethod(lambda cls: cls(
        pairs=[("news", "direct")], keeps=[0.5], seeds=[0], n_source=60, n_target=40,
        n_test=40, layers=2, frozen_layers=0, max_length=16, source_epochs=0, target_epochs=1)))


def _rows(path):
    with open(path, newline="") as f:
        return {r["method"]: r for r in csv.DictReader(f)}


def test_int8_row_scores_the_fitted_dallmi_model_and_resumes(tiny_runs, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "run"
    args = ["--quick", "--no-progress", "--output", str(out)]
    assert main([*args, "--methods", "dallmi_onnx_int8", "dallmi"]) == 0
    rows = _rows(out / "results.csv")
    assert list(rows) == ["dallmi", "dallmi_onnx_int8"]  # the canonical order
    int8, float32 = (float(rows[m]["macro_ap"]) for m in ("dallmi_onnx_int8", "dallmi"))
    assert abs(int8 - float32) < 0.1
    assert "dallmi_onnx_int8" in capsys.readouterr().out
    # Resumed without the DALLMi row, the int8 row refits the same model.
    (out / "results.csv").write_text(
        "".join(line for line in (out / "results.csv").read_text().splitlines(True)
                if "dallmi_onnx_int8" not in line))
    assert main([*args, "--methods", "dallmi_onnx_int8"]) == 0
    again = _rows(out / "results.csv")["dallmi_onnx_int8"]
    assert again["macro_ap"] == rows["dallmi_onnx_int8"]["macro_ap"]


def test_the_ablation_runs_at_its_own_rate_unless_a_variant_sets_one(tiny_runs, tmp_path,
                                                                     monkeypatch):
    fits = []
    fit = adaptation.DALLMiClassifier.fit

    def recording_fit(self, X, y):
        fits.append((self.objective, self.lr))
        return fit(self, X, y)

    monkeypatch.setattr(adaptation.DALLMiClassifier, "fit", recording_fit)
    args = ["--quick", "--no-progress", "--methods", "dallmi", "published_objective"]
    assert main([*args, "--output", str(tmp_path / "recipe")]) == 0
    recipe = adaptation.DALLMiClassifier().lr
    # The source model, then the two rows.
    assert fits == [("dallmi", recipe), ("dallmi", recipe), ("published", 1e-5)]
    assert recipe != 1e-5
    fits.clear()
    assert main([*args, "--output", str(tmp_path / "variant"), "--param", "lr=3e-5"]) == 0
    assert fits == [("dallmi", 3e-5)] * 2 + [("published", 3e-5)]


def test_unknown_method_is_refused(tiny_runs, tmp_path, capsys):
    assert main(["--quick", "--output", str(tmp_path), "--methods", "dallmi_int4"]) == 2
    assert "dallmi_onnx_int8" in capsys.readouterr().err


def test_int8_row_without_onnxruntime(tiny_runs, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    args = ["--quick", "--no-progress", "--output", str(tmp_path)]
    assert main([*args, "--methods", "dallmi_onnx_int8"]) == 2
    assert "sklearn-dallmi[onnx]" in capsys.readouterr().err
    monkeypatch.setattr(adaptation, "QUICK_METHODS", ("tfidf_logreg", "dallmi_onnx_int8"))
    assert main(args) == 0
    assert "dallmi_onnx_int8 left out" in capsys.readouterr().err
    assert list(_rows(tmp_path / "results.csv")) == ["tfidf_logreg"]


def test_processes_side_by_side_give_the_rows_of_one_process(tiny_runs, tmp_path):
    # Two pairs run in two processes: the same cells and figures as in one
    # process, each row written once, and a second run finds nothing to do.
    pairs = ["--pairs", "news->direct", "direct->news", "--methods", "source_only", "dallmi",
             "tfidf_logreg"]
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    assert main(["--quick", "--no-progress", "--output", str(serial), *pairs]) == 0
    assert main(["--quick", "--no-progress", "--output", str(parallel), "--n-jobs", "2",
                 *pairs]) == 0

    def cells(path):
        with open(path / "results.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        return {(r["pair"], r["method"]): float(r["macro_ap"]) for r in rows}, len(rows)

    (expected, n), (got, m) = cells(serial), cells(parallel)
    assert n == m == 6 and got.keys() == expected.keys()
    assert got == pytest.approx(expected, abs=1e-6)
    before = (parallel / "results.csv").read_text()
    assert main(["--quick", "--no-progress", "--output", str(parallel), "--n-jobs", "2",
                 *pairs]) == 0
    assert (parallel / "results.csv").read_text() == before


def test_n_jobs_below_one_is_refused(tiny_runs, tmp_path, capsys):
    assert main(["--quick", "--output", str(tmp_path), "--n-jobs", "0"]) == 2
    assert "--n-jobs" in capsys.readouterr().err


def test_a_run_resumes_only_its_own_configuration(tiny_runs, tmp_path, capsys):
    args = ["--quick", "--no-progress", "--output", str(tmp_path), "--methods", "tfidf_logreg"]
    assert main(args) == 0
    assert main([*args, "--set", "precision=bf16"]) == 2
    assert "another configuration" in capsys.readouterr().err
    # A run written before a field existed held that field's default.
    config = tmp_path / "config.json"
    config.write_text(config.read_text().replace('"precision": "float32",', ""))
    assert "precision" not in config.read_text()
    assert main(args) == 0
    assert main([*args, "--set", "precision=bf16"]) == 2


def test_a_source_model_cached_with_other_parameters_is_refused(tiny_runs, tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    args = ["--quick", "--no-progress", "--methods", "source_only"]
    assert main([*args, "--output", str(first), "--param", "mixup_weight=0"]) == 0
    shutil.copytree(first / "cache", second / "cache")
    # The target stage would inherit mixup_weight=0 from the copied model.
    assert main([*args, "--output", str(second)]) == 2
    assert re.search(r"source-news-seed0\.joblib was fitted with other parameters "
                     r"\(mixup_weight=0 there, 0\.1 here\); delete it", capsys.readouterr().err)
    # With the parameters it was fitted with, the copy serves.
    shutil.copytree(first / "cache", tmp_path / "third" / "cache")
    assert main([*args, "--output", str(tmp_path / "third"), "--param", "mixup_weight=0"]) == 0


def test_the_benchmark_precision_is_checked_before_any_cell(tiny_runs, tmp_path, capsys):
    assert main(["--quick", "--no-progress", "--output", str(tmp_path), "--set",
                 "precision=auto"]) == 2
    assert "'float32' or 'bf16'" in capsys.readouterr().err
    assert not (tmp_path / "results.csv").exists()


@pytest.mark.parametrize("units, warns", [(False, True), (True, False), (None, False)])
def test_bf16_on_a_cpu_without_bfloat16_units_warns(tiny_runs, tmp_path, monkeypatch,
                                                     units, warns):
    monkeypatch.setattr(adaptation, "cpu_has_bf16_units", lambda: units)
    monkeypatch.setattr(adaptation.torch.cuda, "is_available", lambda: False)
    config = adaptation.Config.quick()
    config.precision = "bf16"
    with pytest.warns(UserWarning, match="precision=float32") if warns else \
            warnings.catch_warnings():
        if not warns:
            warnings.simplefilter("error")
        adaptation.Runner(config, str(tmp_path), progress=False, methods=("tfidf_logreg",))


@pytest.mark.parametrize("units, asked, runs", [
    (False, [], "float32"), (True, [], "bf16"), (None, [], "bf16"),
    (False, ["--set", "precision=bf16"], "bf16")])
def test_the_command_line_takes_float32_where_bf16_would_be_emulated(
        tiny_runs, tmp_path, monkeypatch, capsys, units, asked, runs):
    quick = adaptation.Config.quick
    monkeypatch.setattr(adaptation.Config, "quick", classmethod(
        lambda cls: dataclasses.replace(quick(), precision="bf16")))
    monkeypatch.setattr(adaptation, "cpu_has_bf16_units", lambda: units)
    monkeypatch.setattr(adaptation.torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["--quick", "--no-progress", "--output", str(tmp_path),
                     "--methods", "tfidf_logreg", *asked]) == 0
    assert json.loads((tmp_path / "config.json").read_text())["precision"] == runs
    told = "The neural rows run in float32" in capsys.readouterr().err
    assert told == (runs == "float32" and not asked)
    assert any("emulated" in str(w.message) for w in caught) == bool(asked)


def test_a_run_of_another_configuration_names_what_differs(tiny_runs, tmp_path, capsys):
    args = ["--quick", "--no-progress", "--output", str(tmp_path), "--methods", "tfidf_logreg"]
    assert main(args) == 0
    assert main([*args, "--set", "target_epochs=2"]) == 2
    assert "target_epochs=1 there, 2 here" in capsys.readouterr().err


def test_cpu_bf16_units_unknown_to_an_older_torch(monkeypatch):
    monkeypatch.delattr(adaptation.torch.cpu, "_is_amx_tile_supported", raising=False)
    assert adaptation.cpu_has_bf16_units() is None
