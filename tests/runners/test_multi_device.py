"""Train once, search every device: `hwnas run --devices` on the tiny setting, the shared
accuracy cache, named searches, the cross-device matrix and bad device lists."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest

from ._tiny import TINY, cli

pytestmark = pytest.mark.slow



# Two devices this machine runs: onnxruntime measures ONNX files, torch-cpu extracted modules.
DEVICES = ("cpu", "torch-cpu")


def cache_rows(run) -> list[tuple[str, float]]:
    with sqlite3.connect(run / "accuracy_cache.sqlite") as db:
        return db.execute("SELECT arch, accuracy FROM accuracy").fetchall()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    (root / "tiny.toml").write_text(TINY)
    run = root / "run"
    assert cli("run", "--config", str(root / "tiny.toml"), "--devices", ",".join(DEVICES), "--run", str(run)) == 0
    return run


def test_one_supernet_and_each_device_its_own_files(run_dir):
    state = json.loads((run_dir / "run.json").read_text())
    assert state["config"]["profile"]["devices"] == list(DEVICES)
    assert {s for s, v in state["stages"].items() if v["status"] == "done"} == {
        "train", "profile", "fit-predictor", "search", "export", "matrix", "report"}
    assert len(list((run_dir / "supernet").glob("supernet-*.safetensors"))) == 1  # trained once
    for name in DEVICES:
        unit = run_dir / "devices" / name
        for path in ["profile/profile.json", "predictor", "search/search.json", "search/candidates.parquet",
                     "search/front.csv", "export/manifest.json", "report/report.md"]:
            assert (unit / path).exists(), (name, path)
        assert json.loads((unit / "export/manifest.json").read_text())["device"]["name"] == name
        assert json.loads((unit / "search/search.json").read_text())["device"] == name
        assert len(pd.read_parquet(unit / "search/candidates.parquet")) == 6
    assert not (run_dir / "search").exists() and not (run_dir / "profile").exists()
    md = (run_dir / "report/report.md").read_text()
    assert "Cross-device matrix" in md and all(f"devices/{d}/report/report.md" in md for d in DEVICES)
    for name in DEVICES:
        own = (run_dir / "devices" / name / "report/report.md").read_text()
        assert f"This device's front against the other devices' fronts, measured on '{name}'" in own


def test_commands_pick_a_device_of_the_run(run_dir, capsys):
    assert cli("report", "--run", str(run_dir), "--device", "torch-cpu") == 0
    capsys.readouterr()
    for argv, message in [(["export"], "searched several devices ['cpu', 'torch-cpu']: pick one with --device"),
                          (["export", "--device", "cpu-2t"], "has no device 'cpu-2t'"),
                          (["search", "--predictor", str(run_dir / "devices/cpu/predictor"), "--name", "../up"],
                           "search name must be letters")]:
        assert cli(argv[0], "--run", str(run_dir), *argv[1:]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not (run_dir / "up").exists() and not (run_dir / "export").exists()


def test_no_accuracy_is_evaluated_twice(run_dir, capsys):
    records = [json.loads((run_dir / "devices" / d / "search/search.json").read_text())["accuracy_cache"]
               for d in DEVICES]
    archs = set()
    for d in DEVICES:
        archs |= set(pd.read_parquet(run_dir / "devices" / d / "search/candidates.parquet")["arch"])
    rows = cache_rows(run_dir)
    assert len(rows) == len(archs) == sum(r["new_evaluations"] for r in records)
    assert all(r["hits"] + r["new_evaluations"] == 6 for r in records)
    # same seed, same algorithm, same space: the second device's search meets the first's archs
    assert records[1]["hits"] > 0
    stored = dict(rows)
    for d in DEVICES:
        cands = pd.read_parquet(run_dir / "devices" / d / "search/candidates.parquet")
        assert all(stored[a] == acc for a, acc in zip(cands["arch"], cands["accuracy"]))

    # a named search on the same supernet evaluates nothing again
    pred = run_dir / "devices/cpu/predictor"
    assert cli("search", "--run", str(run_dir), "--predictor", str(pred), "--algorithm", "random",
               "--budget", "6", "--name", "again") == 0
    assert "accuracy cache: 6 hits, 0 new evaluations" in capsys.readouterr().out
    record = json.loads((run_dir / "searches/again/search/search.json").read_text())
    assert record["name"] == "again" and record["accuracy_cache"]["new_evaluations"] == 0
    assert len(cache_rows(run_dir)) == len(rows)


def test_named_searches_are_exported_and_reported(run_dir, capsys):
    pred = run_dir / "devices/torch-cpu/predictor"
    assert cli("search", "--run", str(run_dir), "--predictor", str(pred), "--algorithm", "random",
               "--budget", "8", "--seed", "3", "--name", "wider") == 0
    unit = run_dir / "searches/wider"
    assert len(pd.read_parquet(unit / "search/candidates.parquet")) == 8
    assert cli("export", "--run", str(run_dir), "--search", "wider", "--no-baselines", "--preset", "fast") == 0
    manifest = json.loads((unit / "export/manifest.json").read_text())
    assert manifest["device"]["name"] == "torch-cpu"
    assert [m["kind"] for m in manifest["models"]] == ["front"] * len(pd.read_csv(unit / "search/front.csv"))
    assert cli("report", "--run", str(run_dir), "--search", "wider") == 0
    assert (unit / "report/report.md").exists()
    capsys.readouterr()
    assert cli("export", "--run", str(run_dir), "--search", "nosuch") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no search named 'nosuch'" in err[0]


def test_matrix_measures_every_front_on_every_device(run_dir):
    matrix = json.loads((run_dir / "matrix.json").read_text())
    assert matrix["devices"] == list(DEVICES)
    fronts = {d: len(pd.read_csv(run_dir / "devices" / d / "search/front.csv")) for d in DEVICES}
    rows = pd.DataFrame(matrix["rows"])
    assert len(rows) == sum(fronts.values()) * len(DEVICES)
    assert len(pd.read_csv(run_dir / "matrix.csv")) == len(rows)
    for target in DEVICES:
        here = rows[rows.measured_on == target]
        assert here.groupby("front_of").size().to_dict() == fronts
        assert (here.median_ms > 0).all() and (here.min_ms <= here.median_ms).all()
        own = here[here.front_of == target]
        assert own.dominated_by_own_front.isna().all()
        others = here[here.front_of != target]
        assert others.dominated_by_own_front.notna().all()
    assert set(rows.measured_on) == {"cpu", "torch-cpu"}  # ONNX files on cpu, modules on torch-cpu


def test_rerun_resumes_every_device(run_dir, capsys):
    assert cli("run", "--run", str(run_dir)) == 0
    out = capsys.readouterr().out
    assert "[search] already done" in out and "[matrix] already done" in out


def test_finetune_trains_each_model_once_and_measures_it_on_every_device(run_dir, capsys):
    assert cli("finetune", "--run", str(run_dir), "--epochs", "1") == 0  # every device of the run
    out = capsys.readouterr().out
    manifests = {d: json.loads((run_dir / "devices" / d / "finetune/manifest.json").read_text()) for d in DEVICES}
    trained = {}
    for name, manifest in manifests.items():
        export = json.loads((run_dir / "devices" / name / "export/manifest.json").read_text())
        assert manifest["device"]["name"] == name
        assert [m["name"] for m in manifest["models"]] == [m["name"] for m in export["models"]]
        for m in manifest["models"]:
            assert m["measured_latency_ms"] > 0 and (run_dir / "devices" / name / m["onnx_path"]).exists()
            trained.setdefault((m["init"], json.dumps(m["arch"], sort_keys=True)), []).append((name, m))
    # A model both devices export (same architecture and start) is trained once, copied to the other.
    shared = [runs for runs in trained.values() if len(runs) == 2]
    assert shared  # the uniform baselines are the same on both devices
    for (first, a), (second, b) in shared:
        assert "copied_from" not in a and b["copied_from"].startswith(f"devices/{first}/finetune/records/")
        assert a["trained_test_accuracy"] == b["trained_test_accuracy"]
    assert out.count(", copied") == len(shared) and "device 'torch-cpu':" in out
    # One device again: everything is kept; its report shows the trained models.
    assert cli("finetune", "--run", str(run_dir), "--device", "torch-cpu", "--epochs", "1") == 0
    out = capsys.readouterr().out
    assert "fine-tuned in" not in out and "trained from scratch in" not in out and "already trained" in out
    assert cli("report", "--run", str(run_dir), "--device", "torch-cpu") == 0
    assert "- Finetune stage: front models fine-tuned" in (run_dir / "devices/torch-cpu/report/report.md").read_text()


@pytest.mark.parametrize("devices, message", [
    ("cpu,cpu", "names a device more than once"),
    ("cpu,tpu-9", "unknown device 'tpu-9'"),
])
def test_bad_device_lists_are_one_line_and_exit_2(tmp_path, capsys, devices, message):
    assert cli("run", "--devices", devices, "--run", str(tmp_path / "fresh")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "fresh").exists()


@pytest.mark.parametrize("device", ["cuda", "torch-cuda"])
def test_a_device_this_machine_cannot_run_is_refused(tmp_path, capsys, device):
    from hwprofiles import backend_unavailable_reason, get_device

    if backend_unavailable_reason(get_device(device).backend) is None:
        pytest.skip(f"{device} runs on this machine")
    assert cli("run", "--devices", f"cpu,{device}", "--run", str(tmp_path / "fresh")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot run on this machine" in err[0], err
    assert not (tmp_path / "fresh").exists()


def test_adapt_from_must_be_a_run_device(tmp_path, capsys):
    assert cli("run", "--devices", "cpu,cpu-2t", "--adapt-from", "torch-cpu", "--run", str(tmp_path / "fresh")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "profile.adapt_from must be one of the run's devices" in err[0], err
    assert not (tmp_path / "fresh").exists()


def test_a_single_device_run_folder_from_before_devices_still_resumes_exports_and_reports(run_dir, tmp_path,
                                                                                         capsys):
    """The layout (and files) of a single-device run written before devices, named searches and
    the accuracy cache existed: RUN/profile, RUN/predictor, RUN/search, no cache, older keys."""
    import shutil

    old = tmp_path / "old"
    unit = run_dir / "devices/cpu"
    shutil.copytree(run_dir / "supernet", old / "supernet")
    for part in ("profile", "search"):
        shutil.copytree(unit / part, old / part)
    shutil.copy(unit / "predictor", old / "predictor")
    record = json.loads((old / "search/search.json").read_text())
    for key in ("accuracy_cache", "name", "device"):
        record.pop(key)
    record["predictor"] = "predictor"
    (old / "search/search.json").write_text(json.dumps(record))
    state = json.loads((run_dir / "run.json").read_text())
    for key in ("devices", "adapt_from", "adapt_samples"):
        state["config"]["profile"].pop(key)
    state["stages"] = {s: state["stages"][s] for s in ("train", "profile", "fit-predictor", "search")}
    (old / "run.json").write_text(json.dumps(state))

    assert cli("run", "--run", str(old)) == 0  # resumes at export
    out = capsys.readouterr().out
    assert "[search] already done" in out and "[export] done" in out and "[matrix] off" in out
    assert (old / "export/manifest.json").exists() and (old / "report/report.md").exists()
    assert not (old / "devices").exists() and not (old / "matrix.json").exists()
    assert cli("export", "--run", str(old), "--no-baselines", "--preset", "fast") == 0
    assert cli("report", "--run", str(old)) == 0
    # a named search on the old run starts its accuracy cache
    assert cli("search", "--run", str(old), "--predictor", str(old / "predictor"), "--algorithm", "random",
               "--budget", "6", "--name", "second") == 0
    assert "accuracy cache: 0 hits, 6 new evaluations" in capsys.readouterr().out
    assert len(cache_rows(old)) == 6


def test_adapt_from_profiles_one_device_and_adapts_the_others(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY.replace("[profile]", "[profile]\nadapt_samples = 4"))
    run = tmp_path / "run"
    assert cli("run", "--config", str(tmp_path / "tiny.toml"), "--devices", "cpu,cpu-2t", "--adapt-from", "cpu",
               "--run", str(run)) == 0
    from predictors import LatencyPredictor

    source = LatencyPredictor.load(run / "devices/cpu/predictor")
    adapted = LatencyPredictor.load(run / "devices/cpu-2t/predictor")
    assert source.device.name == "cpu" and adapted.device.name == "cpu-2t"
    assert adapted.metrics["adaptation"]["k"] == 4
    assert adapted.profile["adapted_from"]["device"]["name"] == "cpu"
    assert (run / "devices/cpu-2t/export/manifest.json").exists() and (run / "matrix.json").exists()
