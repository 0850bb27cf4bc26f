"""The main job end to end through the CLI on a tiny setting, its files, resume, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from ._tiny import TINY, cli, tiny_run

pytestmark = pytest.mark.slow




@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    return tiny_run(root, TINY)


def test_every_stage_wrote_its_files(run_dir):
    state = json.loads((run_dir / "run.json").read_text())
    assert {s for s, v in state["stages"].items() if v["status"] == "done"} == {
        "train", "profile", "fit-predictor", "search", "export", "report"}
    assert "finetune" not in state["stages"] and not (run_dir / "finetune").exists()  # off by default
    assert all(v["seconds"] > 0 for v in state["stages"].values())
    for path in ["supernet/checkpoint.json", "profile", "predictor", "search/candidates.parquet", "search/front.csv",
                 "search/hypervolume.csv", "export/manifest.json", "report/pareto.png", "report/hypervolume.png",
                 "report/report.md", "report/report.html"]:
        assert (run_dir / path).exists(), path
    assert len(pd.read_parquet(run_dir / "search/candidates.parquet")) == 6
    # one device keeps the single-device layout (no devices/, no matrix) and starts the accuracy cache
    assert not (run_dir / "devices").exists() and not (run_dir / "matrix.json").exists()
    cache = json.loads((run_dir / "search/search.json").read_text())["accuracy_cache"]
    assert (cache["hits"], cache["new_evaluations"], cache["stored"]) == (0, 6, 6)
    assert (run_dir / cache["file"]).exists()
    record = {"name": "digits", "options": {}, "seed": 0, "n_train": 1259, "n_val": 269, "n_test": 269}
    assert state["task"] == record
    assert json.loads((run_dir / "search/search.json").read_text())["task"] == record
    assert json.loads((run_dir / "export/manifest.json").read_text())["task"] == record
    html = (run_dir / "report/report.html").read_text()
    assert html.count("data:image/png;base64,") == 2  # self-contained page
    md = (run_dir / "report/report.md").read_text()
    assert "binomial standard error" in md and "± SE" in md
    assert "- Search: 6 expensive evaluations" in md  # one row of search/hypervolume.csv per evaluation
    assert "- Front models dominated on measured figures by another exported model" in md and "| dominated by" in md


def test_manifest_schema_and_numbers_hold_against_a_fresh_measurement(run_dir):
    from hwprofiles import MeasureConfig, get_device, measure_models
    from supernet import Arch
    from supernet.tasks import get_task

    from runners.exporting import onnx_accuracy

    manifest = json.loads((run_dir / "export/manifest.json").read_text())
    assert manifest["device"]["name"] == "cpu" and "cpu_model" in manifest["fingerprint"]
    front = pd.read_csv(run_dir / "search/front.csv")
    models = manifest["models"]
    assert [m["kind"] for m in models].count("front") == len(front)
    # every attention type x 2 distinct size points (the tiny space has 2 choices each) x fp32, int8
    assert [m["kind"] for m in models].count("baseline") == 3 * 2 * 2
    assert {Arch.from_dict(m["arch"]).layers[0].attention for m in models if m["kind"] == "baseline"} == {
        "softmax", "linear", "local"}
    stat = manifest["latency_statistic"]
    assert stat == "min_ms"  # the default: the fastest run repeats on shared machines
    required = {"arch", "onnx_path", "size_bytes", "predicted_latency_ms", "measured_latency_ms",
                "measured_latency_min_ms",
                "measured_latency_p10_ms", "measured_latency_p90_ms", "supernet_val_accuracy",
                "supernet_test_accuracy", "onnx_test_accuracy", "onnx_test_accuracy_se", "supernet_val_accuracy_se"}
    task = get_task("digits", seed=0)
    for m in models:
        assert required <= set(m)
        path = run_dir / m["onnx_path"]
        assert path.stat().st_size == m["size_bytes"]
        Arch.from_dict(m["arch"])
        assert m["measured_latency_min_ms"] <= m["measured_latency_p10_ms"] <= m["measured_latency_ms"]
        assert m["measured_latency_ms"] <= m["measured_latency_p90_ms"]
        p = m["onnx_test_accuracy"]
        assert m["onnx_test_accuracy_se"] == pytest.approx((p * (1 - p) / 269) ** 0.5)
        compared = m["measured_latency_min_ms"]
        assert m["latency_off_by_more_than_10pct"] == (abs(m["predicted_latency_ms"] - compared) > 0.1 * compared)
    # Dominance was checked on the measured figures: the flags are what the rule gives on the manifest's numbers.
    from runners.exporting import dominance

    assert manifest["dominance"]["latency"] == "min_ms"
    assert [m["dominated_by"] for m in models] == dominance(models, statistic="min_ms")
    # The ONNX accuracy is reproducible exactly; the supernet figure of the same model is close.
    sample = models[0]
    assert onnx_accuracy(run_dir / sample["onnx_path"], task.x_test, task.y_test) == sample["onnx_test_accuracy"]
    assert abs(sample["onnx_test_accuracy"] - sample["supernet_test_accuracy"]) <= 0.02
    # A fresh measurement of the exported files agrees with the manifest within noise bounds.
    fresh = measure_models([str(run_dir / m["onnx_path"]) for m in models[:3]], get_device("cpu"), task.spec,
                           MeasureConfig.fast(), seed=1)
    for m, f in zip(models[:3], fresh):
        assert 0.33 < f.median_ms / m["measured_latency_ms"] < 3.0


def test_rerun_resumes_and_different_settings_are_refused(run_dir, capsys):
    before = (run_dir / "export/manifest.json").read_bytes()
    assert cli("run", "--run", str(run_dir)) == 0
    assert "already done" in capsys.readouterr().out
    assert cli("run", "--run", str(run_dir), "--budget", "7") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a run with other settings" in err[0]
    assert (run_dir / "export/manifest.json").read_bytes() == before


def test_killed_run_picks_up_at_the_interrupted_stage(run_dir, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    state = json.loads((copy / "run.json").read_text())
    for stage in ("export", "report"):  # as if killed during export
        state["stages"].pop(stage)
    state["stages"]["export"] = {"status": "running", "seconds": 1.0}
    (copy / "run.json").write_text(json.dumps(state))
    shutil.rmtree(copy / "export")
    shutil.rmtree(copy / "report")
    assert cli("run", "--run", str(copy)) == 0
    out = capsys.readouterr().out
    assert "[search] already done" in out and "[export] done" in out
    assert (copy / "export/manifest.json").exists() and (copy / "report/report.html").exists()


@pytest.mark.parametrize("argv, message", [
    (["run", "--device", "tpu-9"], "unknown device 'tpu-9'"),
    (["run", "--task", "imagenet"], "unknown task 'imagenet'"),
    (["run", "--task", "recall", "--task-option", "pairs=40"], "option pairs must be an integer in [1, 31], got 40"),
    (["run", "--task", "mnist1d", "--task-option", "samples=50"], "option samples must be an integer in [100"),
    (["run", "--task-option", "samples"], "--task-option must be KEY=VALUE"),
    (["run", "--algorithm", "annealing"], "unknown search algorithm 'annealing'"),
    (["run", "--objectives", "accuracy,speed"], "unknown objective 'speed'"),
    (["run", "--budget", "0"], "search.budget must be > 0"),
    (["run", "--budget", "-3"], "search.budget must be > 0"),
    (["export", "--run", "{missing}"], "does not exist"),
    (["report", "--run", "{missing}"], "does not exist"),
    (["search", "--run", "{missing}", "--predictor", "p"], "does not exist"),
])
def test_bad_cli_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    missing = str(tmp_path / "missing")
    argv = [a.replace("{missing}", missing) for a in argv]
    if argv[0] == "run":
        argv += ["--run", str(tmp_path / "fresh")]
    assert cli(*argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "fresh").exists() and not (tmp_path / "missing").exists()


def test_corrupted_predictor_and_profile_fail_cleanly(run_dir, tmp_path, capsys):
    work = tmp_path / "run"
    shutil.copytree(run_dir, work)
    (work / "predictor").write_bytes(b"\x00garbage, not a safetensors file")
    before = (work / "search/candidates.parquet").read_bytes()
    assert cli("search", "--run", str(work), "--predictor", str(work / "predictor"), "--budget", "3") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a readable hwnas latency predictor" in err[0], err
    assert (work / "search/candidates.parquet").read_bytes() == before

    for p in sorted((work / "profile").glob("*.parquet")):
        p.write_bytes(b"garbage")
    out = tmp_path / "pred2"
    assert cli("fit-predictor", "--profile", str(work / "profile"), "--out", str(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err
    assert not out.exists()


def test_a_second_unnamed_search_with_other_settings_is_refused_and_touches_nothing(run_dir, tmp_path, capsys):
    work = tmp_path / "run"
    shutil.copytree(run_dir, work)
    before = {p: p.read_bytes() for p in (work / "search").iterdir() if p.is_file()}
    assert cli("search", "--run", str(work), "--predictor", str(work / "predictor"), "--budget", "7",
               "--algorithm", "random") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a search with other settings (budget: 6 stored, 7 given)" in err[0], err
    assert "hwnas search --name NAME" in err[0]
    assert {p: p.read_bytes() for p in (work / "search").iterdir() if p.is_file()} == before
    # named, it runs beside the first one
    assert cli("search", "--run", str(work), "--predictor", str(work / "predictor"), "--budget", "7",
               "--algorithm", "random", "--name", "seven") == 0
    assert (work / "searches" / "seven" / "search" / "front.csv").exists()


def test_spread_over_front_keeps_the_extremes_and_the_limit():
    from runners.pipeline import spread_over_front

    archs = list("abcdefghij")
    latency = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10]  # a..j
    picked = spread_over_front(archs, latency, 4)
    assert len(picked) == 4 and "b" in picked and "j" in picked  # fastest (1) and slowest (10)
    assert spread_over_front(archs, latency, 0) == archs and spread_over_front(archs, latency, 20) == archs


def test_export_caps_the_front_and_reads_val_accuracy_from_the_cache(run_dir, tmp_path, capsys):
    work = tmp_path / "run"
    shutil.copytree(run_dir, work)
    front = pd.read_csv(work / "search/front.csv")
    assert cli("export", "--run", str(work), "--max-front", "1", "--no-baselines") == 0
    manifest = json.loads((work / "export/manifest.json").read_text())
    assert len(manifest["models"]) == 1
    if len(front) > 1:
        assert f"exporting 1 of the {len(front)} front models" in capsys.readouterr().out
    cand = pd.read_parquet(work / "search/candidates.parquet").set_index("arch")
    from supernet import Arch

    m = manifest["models"][0]
    assert m["supernet_val_accuracy"] == pytest.approx(cand.loc[Arch.from_dict(m["arch"]).to_json(), "accuracy"])
    assert cli("export", "--run", str(work), "--max-front", "-1") == 2


def test_a_search_can_score_each_candidate_after_a_short_fine_tune(run_dir, tmp_path, capsys):
    import sqlite3

    import torch

    from supernet import Arch, load_checkpoint, tuned_accuracies
    from supernet.evaluate import evaluate_archs

    from runners.pipeline import task_from_meta

    work = tmp_path / "run"
    shutil.copytree(run_dir, work)
    assert cli("search", "--run", str(work), "--predictor", str(work / "predictor"), "--algorithm", "random",
               "--budget", "4", "--tune-steps", "3", "--name", "tuned") == 0
    assert "each after 3 fine-tuning updates at lr 0.002" in capsys.readouterr().out
    unit = work / "searches/tuned"
    record = json.loads((unit / "search/search.json").read_text())
    assert record["accuracy_tune"] == {"steps": 3, "lr": 2e-3, "batch_size": 32}
    cand = pd.read_parquet(unit / "search/candidates.parquet")
    archs = [Arch.from_json(a) for a in cand["arch"]]
    supernet, meta = load_checkpoint(work / "supernet")
    task = task_from_meta(meta)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the search's [train] threads
    try:
        expected = tuned_accuracies(supernet, archs, task.x_train, task.y_train, task.x_val, task.y_val,
                                    steps=3, lr=2e-3, seed=0)
    finally:
        torch.set_num_threads(threads)
    assert np.allclose(cand["accuracy"].to_numpy(), expected)
    # Stored apart from the inherited accuracies, under their own split name.
    with sqlite3.connect(work / "accuracy_cache.sqlite") as db:
        splits = dict(db.execute("SELECT split, COUNT(*) FROM accuracy GROUP BY split").fetchall())
    assert splits["val, tuned 3 steps at lr 0.002"] == 4 and splits["val"] >= 6
    inherited = evaluate_archs(supernet, archs, task.x_val, task.y_val)
    assert not np.allclose(inherited, expected)  # three updates move at least one accuracy
    # The export reads the tuned accuracies and says so; baselines are scored the same way.
    assert cli("export", "--run", str(work), "--search", "tuned", "--preset", "fast") == 0
    manifest = json.loads((unit / "export/manifest.json").read_text())
    assert manifest["val_accuracy_tune"] == record["accuracy_tune"]
    front = {Arch.from_dict(m["arch"]).to_json(): m for m in manifest["models"] if m["kind"] == "front"}
    by_arch = dict(zip(cand["arch"], cand["accuracy"]))
    assert all(m["supernet_val_accuracy"] == pytest.approx(by_arch[a]) for a, m in front.items())
    assert cli("report", "--run", str(work), "--search", "tuned") == 0
    assert "scored val accuracy after 3 fine-tuning updates" in (unit / "report/report.md").read_text()
    # Another fine-tune is another search: refused in the same folder.
    assert cli("search", "--run", str(work), "--predictor", str(work / "predictor"), "--algorithm", "random",
               "--budget", "4", "--tune-steps", "5", "--name", "tuned") == 2
    assert "accuracy_tune" in capsys.readouterr().err
