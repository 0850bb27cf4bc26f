"""The finetune stage on a tiny setting: its files, ONNX models that load and score as recorded,
weights that moved away from the inherited ones, resume after a kill, bad input."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from ._tiny import TINY, cli, tiny_run

pytestmark = pytest.mark.slow

TINY_FINETUNE = TINY + """
[finetune]
enabled = true
epochs = 1
"""
TRAINED_LINE = re.compile(r"^\[(\d+)/\d+\] (\S+): (fine-tuned|trained from scratch) in ")



@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    return tiny_run(root, TINY_FINETUNE)


@pytest.fixture(scope="module")
def task():
    from supernet.tasks import get_task

    return get_task("digits", seed=0)


def manifest_of(run_dir) -> dict:
    return json.loads((run_dir / "finetune/manifest.json").read_text())


def snapshot(folder) -> dict:
    """Every file under `folder` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_stage_runs_in_the_pipeline_and_writes_its_files(run_dir):
    from supernet import binomial_se

    state = json.loads((run_dir / "run.json").read_text())
    assert state["stages"]["finetune"]["status"] == "done" and state["stages"]["report"]["status"] == "done"
    export = json.loads((run_dir / "export/manifest.json").read_text())
    manifest = manifest_of(run_dir)
    assert [m["name"] for m in manifest["models"]] == [m["name"] for m in export["models"]]
    assert manifest["recipe"]["epochs"] == 1 and manifest["task"] == export["task"]
    inherited = {m["name"]: m for m in export["models"]}
    for m in manifest["models"]:
        assert m["init"] == {"front": "inherited", "baseline": "scratch"}[m["kind"]]
        assert m["arch"] == inherited[m["name"]]["arch"]
        assert m["inherited_test_accuracy"] == inherited[m["name"]]["onnx_test_accuracy"]
        for key in ("inherited_test_accuracy", "trained_test_accuracy"):
            assert m[f"{key}_se"] == pytest.approx(binomial_se(m[key], 269))
        assert m["accuracy_change"] == pytest.approx(m["trained_test_accuracy"] - m["inherited_test_accuracy"])
        assert m["onnx_path"].startswith("finetune/models/") and m["onnx_path"] != m["inherited_onnx_path"]
        assert (run_dir / m["onnx_path"]).stat().st_size == m["size_bytes"]
        assert (run_dir / m["weights_path"]).exists()
        assert (run_dir / "finetune/records" / f"{m['name']}.json").exists()
        assert 0 < m["measured_latency_min_ms"] <= m["measured_latency_p10_ms"] <= m["measured_latency_ms"]
        assert m["measured_latency_ms"] <= m["measured_latency_p90_ms"]
        assert len(m["train_loss"]) == 1 and np.isfinite(m["train_loss"][0])
    # The trained models' dominance, on their trained accuracies and new measurements.
    from runners.exporting import dominance

    assert manifest["dominance"]["accuracy"] == "trained_test_accuracy"
    assert [m["dominated_by"] for m in manifest["models"]] == dominance(
        manifest["models"], statistic=manifest["latency_statistic"], accuracy="trained_test_accuracy",
        accuracy_se="trained_test_accuracy_se")
    md = (run_dir / "report/report.md").read_text()
    assert "trained test acc % ± SE" in md and "inherited ONNX test acc % ± SE" in md
    assert "- Fine-tuned front models dominated on measured figures" in md and "trained: dominated by" in md
    assert "fine-tuned front vs standalone" in md
    assert (run_dir / "report/report.html").read_text().count("data:image/png;base64,") == 2


def test_trained_onnx_files_load_and_score_as_recorded(run_dir, task):
    import onnxruntime as ort

    from runners.exporting import onnx_accuracy

    for m in manifest_of(run_dir)["models"]:
        path = run_dir / m["onnx_path"]
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert session.run(None, {"x": task.x_test[:1].astype(np.float32)})[0].shape == (1, 10)
        assert onnx_accuracy(path, task.x_test, task.y_test) == m["trained_test_accuracy"]
        # The ONNX file runs the trained torch model (int8 layers quantized by onnxruntime).
        assert abs(m["trained_test_accuracy"] - m["trained_torch_test_accuracy"]) <= 0.02


def test_fine_tuned_weights_moved_away_from_the_inherited_ones(run_dir, task):
    import torch
    from safetensors.torch import load_file

    from supernet import Arch, Subnet
    from supernet.evaluate import evaluate_module
    from runners.pipeline import load_supernet

    supernet, _ = load_supernet(run_dir)
    models = manifest_of(run_dir)["models"]
    for m in (next(m for m in models if m["kind"] == "front"), next(m for m in models if m["kind"] == "baseline")):
        arch = Arch.from_dict(m["arch"])
        trained = load_file(str(run_dir / m["weights_path"]))
        start = (supernet.extract(arch) if m["init"] == "inherited"
                 else Subnet.initialised(supernet.space, supernet.spec, arch, seed=0)).state_dict()
        assert set(trained) == set(start)
        assert all(trained[k].shape == start[k].shape for k in start)
        moved = [k for k in start if not torch.equal(trained[k], start[k])]
        assert len(moved) > len(start) // 2, moved
        # The saved weights are the trained model: loaded into a fresh Subnet they score as recorded.
        net = Subnet(supernet.space, supernet.spec, arch)
        net.load_state_dict(trained)
        assert evaluate_module(net, task.x_test, task.y_test) == m["trained_torch_test_accuracy"]


def test_speed_up_compares_the_fine_tuned_front_with_standalone_baselines(run_dir):
    from supernet import within_noise

    from runners.finetune import load_finetune_manifest
    from runners.report import load_manifest, models_frame, speedups_at_equal_accuracy

    df = models_frame(load_manifest(run_dir), load_finetune_manifest(run_dir))
    assert df.trained_acc.notna().all()
    by_name = df.set_index("name")
    table = speedups_at_equal_accuracy(df, 269, trained=True)
    for _, r in table.iterrows():
        assert r.front_acc == by_name.loc[r.front, "trained_acc"] >= r.baseline_acc
        assert r.baseline_acc == by_name.loc[r.baseline, "trained_acc"]
        assert r.baseline_ms == by_name.loc[r.baseline, "trained_ms"]
        assert r.speedup == pytest.approx(r.baseline_ms / r.front_ms)
        assert r.within_noise == within_noise(r.front_acc, r.baseline_acc, 269)
    # Without the finetune manifest the same models compare with their inherited accuracies.
    plain = models_frame(load_manifest(run_dir))
    assert plain.trained_acc.isna().all()
    for _, r in speedups_at_equal_accuracy(plain, 269).iterrows():
        assert r.baseline_acc == plain.set_index("name").loc[r.baseline, "test_acc"]


def test_killed_finetune_resumes_without_retraining_finished_models(run_dir, tmp_path, capsys):
    from runners.pipeline import run_pipeline

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    state = json.loads((copy / "run.json").read_text())
    for stage in ("finetune", "report"):
        state["stages"].pop(stage)
    (copy / "run.json").write_text(json.dumps(state))
    shutil.rmtree(copy / "finetune")

    finished = []

    def kill_after_two(line: str) -> None:
        hit = TRAINED_LINE.match(line)
        if hit:
            finished.append(hit.group(2))
            if len(finished) == 2:
                raise KeyboardInterrupt  # as if killed right after the second model was written

    with pytest.raises(KeyboardInterrupt):
        run_pipeline(copy, None, echo=kill_after_two)
    assert json.loads((copy / "run.json").read_text())["stages"]["finetune"]["status"] == "running"
    assert not (copy / "finetune/manifest.json").exists()
    records = sorted(p.stem for p in (copy / "finetune/records").glob("*.json"))
    assert records == sorted(finished)
    before = snapshot(copy / "finetune")

    assert cli("run", "--run", str(copy)) == 0
    out = capsys.readouterr().out
    kept = re.findall(r"\] (\S+): already trained", out)
    assert sorted(kept) == sorted(finished)
    retrained = [line for line in out.splitlines() if TRAINED_LINE.match(line)]
    assert len(retrained) == len(manifest_of(run_dir)["models"]) - 2
    after = snapshot(copy / "finetune")
    for path, stat in before.items():  # the finished models' files were not written again
        assert after[path] == stat, path
    assert "[finetune] done" in out
    # Training is deterministic, so the resumed stage ends with the uninterrupted stage's models.
    resumed = {m["name"]: m["trained_test_accuracy"] for m in manifest_of(copy)["models"]}
    assert resumed == {m["name"]: m["trained_test_accuracy"] for m in manifest_of(run_dir)["models"]}


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("epochs0", "epochs must be a positive integer, got 0"),
    ("negative-lr", "lr must be a finite positive number"),
    ("no-export", "export/manifest.json does not exist: run `hwnas export"),
    ("other-recipe", "holds models trained with other settings (epochs: 1 there, 2 given)"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_is_touched(run_dir, tmp_path, capsys, case, message):
    work = tmp_path / "run"
    shutil.copytree(run_dir, work)
    argv = ["finetune", "--run", str(work), "--epochs", "1"]
    if case == "missing":
        argv[2] = str(tmp_path / "missing")
    elif case == "epochs0":
        argv[-1] = "0"
    elif case == "negative-lr":
        argv += ["--lr", "-0.1"]
    elif case == "no-export":
        shutil.rmtree(work / "export")
        shutil.rmtree(work / "finetune")
    elif case == "other-recipe":
        argv[-1] = "2"
    before = snapshot(work)
    assert cli(*argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert snapshot(work) == before
    assert not (tmp_path / "missing").exists()


def test_bad_finetune_config_is_refused_before_the_run_folder_is_made(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text(TINY + "\n[finetune]\nenabled = true\nepochs = 0\n")
    assert cli("run", "--config", str(tmp_path / "bad.toml"), "--run", str(tmp_path / "fresh")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad finetune setting: epochs must be a positive integer, got 0" in err[0], err
    assert not (tmp_path / "fresh").exists()


def test_finetune_is_off_by_default_and_baselines_cover_every_attention_type():
    from supernet import DEFAULT_SPACE

    from runners.config import RunConfig
    from runners.exporting import uniform_baselines

    assert RunConfig().finetune.enabled is False
    items = uniform_baselines(DEFAULT_SPACE)
    assert len(items) == 18 and len({i.name for i in items}) == 18
    layers = [i.arch.layers for i in items]
    assert all(len(set(ls)) == 1 for ls in layers)  # one layer repeated
    assert {ls[0].attention for ls in layers} == {"softmax", "linear", "local"}
    assert {ls[0].quant for ls in layers} == {"fp32", "int8"}
    sizes = {(i.arch.embed_dim, i.arch.depth) for i in items}
    assert sizes == {(64, 1), (96, 4), (128, 6)}
    for item in items:
        DEFAULT_SPACE.validate(item.arch)


def test_a_training_device_this_machine_lacks_is_one_line_exit_2(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    (tmp_path / "gpu.toml").write_text(TINY_FINETUNE.replace("threads = 1", 'threads = 1\ndevice = "cuda"'))
    assert cli("run", "--config", str(tmp_path / "gpu.toml"), "--run", str(tmp_path / "fresh")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.device is 'cuda' but torch sees no CUDA device" in err[0], err


def test_finetune_refuses_a_training_device_this_machine_lacks(run_dir, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    work = tmp_path / "run"
    shutil.copytree(run_dir, work)
    before = snapshot(work)
    assert cli("finetune", "--run", str(work), "--epochs", "1", "--train-device", "cuda") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.device is 'cuda' but torch sees no CUDA device" in err[0], err
    assert snapshot(work) == before


@pytest.mark.gpu
def test_a_run_trains_on_the_gpu_and_measures_on_the_cpu(tmp_path):
    """train.device = "cuda": the supernet and the finetune stage train on the GPU; the files
    are exported, scored and measured on the CPU device as in any run."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here")
    run = tiny_run(tmp_path, TINY_FINETUNE.replace("threads = 1", 'threads = 1\ndevice = "cuda"'))
    state = json.loads((run / "run.json").read_text())
    assert state["config"]["train"]["device"] == "cuda"
    assert all(s["status"] == "done" for s in state["stages"].values())
    manifest = manifest_of(run)
    assert manifest["device"]["name"] == "cpu" and manifest["models"]
    assert all(m["measured_latency_ms"] > 0 and 0 <= m["trained_test_accuracy"] <= 1 for m in manifest["models"])
