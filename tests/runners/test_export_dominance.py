"""Dominance on measured figures after export: the export (and finetune) manifest flags front
models another exported model beats once re-measured, the console says so, the report shows it;
a report refuses a manifest whose models lack fields and a garbage hypervolume table."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hwprofiles import DEFAULT_TARGET, MeasureConfig, fingerprint, get_device
from predictors import dominated_on_measurements
from runners._errors import UserInputError
from runners.exporting import (ExportItem, comparison_lines, dominance, dominance_lines, export_models,
                               load_export_manifest)
from runners.report import load_hypervolume, models_frame, write_report
from supernet import SearchSpace, Supernet

QUICK = MeasureConfig(warmup=1, min_runs=3, max_runs=5, max_seconds=0.005, rounds=2, repeats=0)
SPACE = SearchSpace(embed_dims=(16, 32), depths=(1, 2), heads=(1, 2), ffn_ratios=(1, 2), head_dim=8, local_window=4)


@pytest.fixture(scope="module")
def task():
    from supernet.tasks import get_task

    return get_task("digits", seed=0)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, task):
    """A real export of the space's smallest and largest member on this CPU. The classifier's
    weights are zeroed (bias kept), so every model predicts one class and the two accuracies
    are equal: the larger model can only be dominated, the smaller one never."""
    supernet = Supernet(SPACE, task.spec, seed=0)
    with torch.no_grad():
        supernet.head.weight.zero_()
        supernet.head.bias.copy_(torch.arange(10, dtype=torch.float32))
    items = [ExportItem("front-00", "front", SPACE.smallest()), ExportItem("front-01", "front", SPACE.largest())]
    run = tmp_path_factory.mktemp("dominance") / "run"
    export_models(supernet=supernet, space=SPACE, task=task, items=items,
                  predict_ms=lambda archs: np.full(len(archs), 0.05), device=get_device("cpu"),
                  measure_config=QUICK, out_dir=run / "export", fingerprint=fingerprint(), seed=0)
    return run


def test_manifest_flags_the_dominated_model_on_its_measured_figures(run_dir):
    manifest = load_export_manifest(run_dir)
    small, large = manifest["models"]
    assert manifest["latency_statistic"] == DEFAULT_TARGET == "min_ms"  # the library default is the settings'
    assert manifest["dominance"]["latency"] == "min_ms" and manifest["dominance"]["z"] == 1.0
    assert small["onnx_test_accuracy"] == large["onnx_test_accuracy"]  # one class predicted by both
    assert small["size_bytes"] < large["size_bytes"]
    assert small["dominated_by"] == []  # smaller, and no model is more accurate
    # The larger model is dominated exactly when it measured no faster (not a timing assertion:
    # the flag must follow whatever the measurement gave).
    slower = large["measured_latency_min_ms"] >= small["measured_latency_min_ms"]
    assert large["dominated_by"] == (["front-00"] if slower else [])
    lines = comparison_lines(manifest)
    flagged = [line for line in lines if "is dominated on measured figures" in line]
    assert flagged == ([f"front model front-01 is dominated on measured figures by front-00 (no slower in min_ms, "
                        f"no larger, accuracy within 1 SE or better)"] if slower else [])


def test_dominance_uses_the_fitted_statistic_and_the_standard_errors():
    def model(name, kind, min_ms, median_ms, size, acc, se):
        return {"name": name, "kind": kind, "measured_latency_min_ms": min_ms, "measured_latency_ms": median_ms,
                "size_bytes": size, "onnx_test_accuracy": acc, "onnx_test_accuracy_se": se}

    models = [model("front-00", "front", 1.0, 3.0, 100, 0.80, 0.02),
              model("front-01", "front", 2.0, 2.0, 100, 0.82, 0.02),  # 2 points better: within noise
              model("uniform-a", "baseline", 0.5, 2.5, 90, 0.70, 0.02)]  # 10 points worse: beyond noise
    assert dominance(models, statistic="min_ms") == [[], ["front-00"], []]
    assert dominance(models, statistic="median_ms") == [["front-01"], [], []]
    # The same answer as predictors.dominated_on_measurements on the same columns.
    expected = dominated_on_measurements([1.0, 2.0, 0.5], [100, 100, 90], [0.8, 0.82, 0.7], [0.02] * 3)
    assert [[models[j]["name"] for j in row] for row in expected] == dominance(models, statistic="min_ms")
    lines = dominance_lines({"models": [{**m, "dominated_by": d} for m, d in
                                        zip(models, dominance(models, statistic="median_ms"))]})
    assert len(lines) == 1 and lines[0].startswith("front model front-00 is dominated on measured figures by front-01")


def test_report_shows_a_column_and_a_summary_bullet(run_dir):
    manifest = load_export_manifest(run_dir)
    write_report(run_dir)
    md = (run_dir / "report/report.md").read_text()
    assert "| dominated by" in md
    n = sum(bool(m["dominated_by"]) for m in manifest["models"])
    assert f"- Front models dominated on measured figures by another exported model (no slower in min_ms" in md
    assert f"): {n} of 2" in md
    assert "dominated on measured figures" in (run_dir / "report/report.html").read_text()


def test_report_derives_dominance_for_a_manifest_written_before_it_was_kept(run_dir, tmp_path):
    manifest = load_export_manifest(run_dir)
    old = json.loads(json.dumps(manifest))
    for m in old["models"]:
        del m["dominated_by"]
    del old["dominance"]
    assert list(models_frame(old).dominated_by) == [tuple(m["dominated_by"]) for m in manifest["models"]]


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["models"][1].pop("kind"), "model 1 ('front-01') lacks 'kind'"),
    (lambda d: d["models"][0].update(size_bytes="big"), "model 0 ('front-00') has 'size_bytes' = 'big'"),
    (lambda d: d["models"][0].update(latency_off_by_more_than_10pct=1), "of the wrong type"),
    (lambda d: d.update(models=[1]), "model 0 is not a table"),
    (lambda d: d.update(models=[]), "it lists no models"),
    (lambda d: d.pop("device"), "'device' has no name"),
    (lambda d: d.update(latency_statistic="max_ms"), "latency_statistic must be one of"),
])
def test_a_manifest_whose_models_lack_fields_is_bad_input(run_dir, tmp_path, edit, message):
    data = json.loads((run_dir / "export/manifest.json").read_text())
    edit(data)
    (tmp_path / "export").mkdir()
    (tmp_path / "export/manifest.json").write_text(json.dumps(data))
    with pytest.raises(UserInputError, match="is not a valid export manifest") as info:
        write_report(tmp_path)
    assert message in str(info.value)
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("text", ["\x00garbage,1\n", "evaluation,hypervolume\n0,0.1\n1,\n", "a,b\n0,1\n",
                                  "evaluation,hypervolume\n0,abc\n", ""])
def test_a_garbage_hypervolume_table_is_bad_input(tmp_path, text):
    (tmp_path / "search").mkdir()
    (tmp_path / "search/hypervolume.csv").write_text(text)
    with pytest.raises(UserInputError, match="hypervolume.csv is not a hypervolume table"):
        load_hypervolume(tmp_path)


def test_a_hypervolume_table_counts_every_evaluation(tmp_path):
    (tmp_path / "search").mkdir()
    (tmp_path / "search/hypervolume.csv").write_text("evaluation,hypervolume\n0,0.1\n1,0.2\n2,0.25\n")
    assert len(load_hypervolume(tmp_path)) == 3 and load_hypervolume(tmp_path / "none") is None
