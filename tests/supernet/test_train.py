"""Supernet training: learning on real data, checkpoint round trip, resume equivalence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from supernet.checkpoint import MANIFEST, load_checkpoint, read_checkpoint_meta, save_checkpoint
from supernet.evaluate import evaluate_archs
from supernet import SearchSpace
from supernet.model import Supernet
from supernet.tasks import Task, get_task
from supernet.train import TrainConfig, lr_at, train_standalone, train_supernet


def _small_digits(n_train: int = 320) -> Task:
    """Digits with a smaller training split, so a few epochs take seconds."""
    full = get_task("digits")
    return Task(name="digits", spec=full.spec, seed=0, options={"n_train": n_train},
                x_train=full.x_train[:n_train].copy(), y_train=full.y_train[:n_train].copy(),
                x_val=full.x_val.copy(), y_val=full.y_val.copy(), x_test=full.x_test.copy(), y_test=full.y_test.copy())


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class _Stop(Exception):
    pass


def test_config_validates_with_rule_and_value():
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="distill needs the sandwich rule"):
        TrainConfig(sandwich=False)
    with pytest.raises(ValueError, match="k_random must be at least 1 without the sandwich rule"):
        TrainConfig(sandwich=False, distill=False, k_random=0)
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda"):
        TrainConfig(device="tpu")
    with pytest.raises(ValueError, match="unknown training setting"):
        TrainConfig.from_dict({"epochs": 2, "epoch": 3})
    assert TrainConfig.from_dict(TrainConfig(epochs=3).to_dict()) == TrainConfig(epochs=3)


def test_schedule_warms_up_then_decays_to_zero():
    lrs = [lr_at(s, 100, 10, 1.0) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[-1] < 1e-3


def test_short_training_beats_chance_for_largest_and_smallest(tmp_path):
    # head_dim 16 and widths 48/64: the narrower tiny_space learns too slowly for a short test
    space = SearchSpace(embed_dims=(48, 64), depths=(1, 2), heads=(1, 2), ffn_ratios=(1, 2), head_dim=16)
    task = _small_digits(640)
    config = TrainConfig(epochs=3, batch_size=16, lr=3e-3, warmup_epochs=0.5, k_random=1, seed=0)
    result = train_supernet(task, space, config, tmp_path / "run", progress=False)
    assert len(result.history) == 3 and result.resumed_from_epoch == 0
    assert result.steps == 3 * 40
    acc_largest, acc_smallest = evaluate_archs(result.supernet, [space.largest(), space.smallest()],
                                               task.x_test, task.y_test)
    assert acc_largest > 0.25 and acc_smallest > 0.25  # chance is 0.1 (measured: 0.41 and 0.39)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.history[-1]["val_acc_largest"] > 0.25
    # a finished run in the same folder returns at once with the same weights
    again = train_supernet(task, space, config, tmp_path / "run", progress=False)
    assert again.resumed_from_epoch == 3 and _same_weights(again.supernet, result.supernet)


def test_ablation_settings_train(tiny_space, tmp_path):
    task = _small_digits(192)
    config = TrainConfig(epochs=1, batch_size=64, sandwich=False, distill=False, k_random=1)
    result = train_supernet(task, tiny_space, config, tmp_path, progress=False)
    assert np.isfinite(result.history[0]["loss"])
    nodistill = TrainConfig(epochs=1, batch_size=64, distill=False, k_random=0)
    assert np.isfinite(train_supernet(task, tiny_space, nodistill, tmp_path / "b", progress=False).history[0]["loss"])


def test_checkpoint_round_trip(tiny_space, tiny_spec, tmp_path):
    net = Supernet(tiny_space, tiny_spec, seed=3)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    meta = {"seed": 3, "task": {"name": "digits", "options": {}, "seed": 0}, "history": [{"epoch": 1, "loss": 0.5}]}
    save_checkpoint(tmp_path, net, meta)
    loaded, got = load_checkpoint(tmp_path)
    assert _same_weights(net, loaded) and not loaded.training
    assert got["history"] == meta["history"] and got["task"] == meta["task"]
    assert got["space"] == tiny_space.to_dict() and got["input_spec"] == tiny_spec.to_dict()
    assert got["schema_version"] == 1 and "torch" in got["library_versions"]
    arch = tiny_space.sample(0)
    x = torch.randn(5, tiny_spec.seq_len, tiny_spec.in_features)
    with torch.no_grad():
        assert torch.equal(net.eval()(x, arch), loaded(x, arch))
    # a second save replaces the first and leaves one weight file behind
    save_checkpoint(tmp_path, net, {**meta, "epochs_done": 2})
    assert len(list(tmp_path.glob("supernet-*.safetensors"))) == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_checkpoints_raise_one_line(tiny_space, tiny_spec, tmp_path):
    with pytest.raises(ValueError, match="checkpoint.json is missing"):
        load_checkpoint(tmp_path / "empty")
    net = Supernet(tiny_space, tiny_spec)
    save_checkpoint(tmp_path, net, {"seed": 0})
    weights = next(tmp_path.glob("supernet-*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="is corrupt: its SHA-256 does not match"):
        load_checkpoint(tmp_path)
    weights.unlink()
    with pytest.raises(ValueError, match="supernet-.* is missing"):
        load_checkpoint(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(ValueError, match="manifest .* is corrupt") as info:
        load_checkpoint(tmp_path)
    assert "\n" not in str(info.value)
    (tmp_path / MANIFEST).write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(ValueError, match="schema version 99"):
        read_checkpoint_meta(tmp_path)


def test_resume_after_interrupt_matches_uninterrupted_run(tiny_space, tmp_path):
    task = _small_digits(256)
    config = TrainConfig(epochs=3, batch_size=64, seed=5)
    full = train_supernet(task, tiny_space, config, tmp_path / "full", progress=False)

    def stop_after_first(metrics):
        if metrics["epoch"] == 1:
            raise _Stop

    with pytest.raises(_Stop):
        train_supernet(task, tiny_space, config, tmp_path / "cut", progress=False, on_epoch_end=stop_after_first)
    assert read_checkpoint_meta(tmp_path / "cut")["epochs_done"] == 1
    resumed = train_supernet(task, tiny_space, config, tmp_path / "cut", progress=False)
    assert resumed.resumed_from_epoch == 1
    assert _same_weights(full.supernet, resumed.supernet)
    assert [m["loss"] for m in full.history] == [m["loss"] for m in resumed.history]


def test_resume_refuses_another_runs_checkpoint(tiny_space, tmp_path):
    task = _small_digits(128)
    train_supernet(task, tiny_space, TrainConfig(epochs=1, batch_size=64), tmp_path, progress=False)
    with pytest.raises(ValueError, match="holds a checkpoint of another run \\(train_config differs"):
        train_supernet(task, tiny_space, TrainConfig(epochs=2, batch_size=64), tmp_path, progress=False)


def test_standalone_training_learns(tiny_spec):
    space = SearchSpace(embed_dims=(48, 64), depths=(1, 2), heads=(1, 2), ffn_ratios=(1, 2), head_dim=16)
    task = _small_digits(640)
    subnet = Supernet(space, tiny_spec, seed=1).extract(space.smallest())
    history = train_standalone(subnet, task, TrainConfig(epochs=3, batch_size=16, lr=3e-3, warmup_epochs=0.5))
    from supernet.evaluate import evaluate_module

    assert history[-1]["loss"] < history[0]["loss"]
    assert evaluate_module(subnet, task.x_val, task.y_val) > 0.25


_KILL_SCRIPT = """
import sys
from supernet import SearchSpace
from supernet.train import TrainConfig, train_supernet
sys.path.insert(0, {tests!r})
from test_train import _small_digits
space = SearchSpace(embed_dims=(16, 32), depths=(1, 2, 3), heads=(1, 2), ffn_ratios=(1, 2), head_dim=8, local_window=4)
train_supernet(_small_digits(256), space, TrainConfig(epochs=12, batch_size=32, seed=2), {out!r}, progress=False)
"""


@pytest.mark.slow
def test_resume_after_sigkill_matches_uninterrupted_run(tiny_space, tmp_path):
    """A real kill mid-run (SIGKILL during epoch 2 or later), then resume."""
    out = tmp_path / "killed"
    script = _KILL_SCRIPT.format(tests=str(Path(__file__).parent), out=str(out))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (out / MANIFEST).exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:  # epoch 1 is on disk: the kill lands in a later epoch, well before epoch 12 ends
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = read_checkpoint_meta(out)["epochs_done"]
    assert 1 <= done < 12
    config = TrainConfig(epochs=12, batch_size=32, seed=2)
    resumed = train_supernet(_small_digits(256), tiny_space, config, out, progress=False)
    full = train_supernet(_small_digits(256), tiny_space, config, tmp_path / "full", progress=False)
    assert resumed.resumed_from_epoch == done
    assert _same_weights(full.supernet, resumed.supernet)


# --------------------------------------------------------------------- hwnas train
def _cli(args, capsys):
    from runners.cli import main

    with pytest.raises(SystemExit) as info:
        main(args)
    return info.value.code, capsys.readouterr()


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    code, out = _cli(["train", "--task", "cifar", "--out", str(tmp_path)], capsys)
    assert code == 2 and out.err.strip().count("\n") == 0 and "unknown task 'cifar'" in out.err
    code, out = _cli(["train", "--task", "mnist", "--task-option", "patch=5", "--out", str(tmp_path)], capsys)
    assert code == 2 and "patch must be one of (7, 4, 2), got 5" in out.err
    code, out = _cli(["train", "--task", "recall", "--task-option", "pairs=99", "--out", str(tmp_path)], capsys)
    assert code == 2 and "option pairs must be an integer in [1, 31], got 99" in out.err
    code, out = _cli(["train", "--task", "digits", "--task-option", "patch", "--out", str(tmp_path)], capsys)
    assert code == 2 and "--task-option must be KEY=VALUE" in out.err
    code, out = _cli(["train", "--task", "digits", "--attention-weights", "split", "--out", str(tmp_path)], capsys)
    assert code == 2 and "attention_weights must be one of" in out.err
    assert not any(tmp_path.iterdir())  # nothing written
    code, out = _cli(["train", "--task", "digits", "--no-sandwich", "--out", str(tmp_path)], capsys)
    assert code == 2 and "distill needs the sandwich rule" in out.err
    code, out = _cli(["train", "--task", f"npz:{tmp_path / 'missing.npz'}", "--out", str(tmp_path)], capsys)
    assert code == 2 and "does not exist" in out.err and out.err.strip().count("\n") == 0


def test_cli_trains_writes_checkpoint_and_resumes(tmp_path, capsys):
    toml = tmp_path / "space.toml"
    toml.write_text("[space]\nembed_dims = [16]\ndepths = [1, 2]\nheads = [1]\nffn_ratios = [1]\nhead_dim = 8\n")
    args = ["train", "--task", "digits", "--epochs", "1", "--seed", "3", "--out", str(tmp_path / "run"), "--space", str(toml),
            "--batch-size", "256", "--k-random", "1"]
    from runners.cli import main

    main(args)
    out = capsys.readouterr().out
    assert "trained 1 epochs" in out and "checkpoint:" in out
    net, meta = load_checkpoint(tmp_path / "run" / "supernet")  # the run folder layout
    assert meta["train_config"]["seed"] == 3
    assert meta["task"] == {"name": "digits", "options": {}, "seed": 3, "n_train": 1259, "n_val": 269, "n_test": 269}
    assert meta["space"]["embed_dims"] == [16] and len(meta["history"]) == 1
    main(args)  # already finished: resumes at the end, no further training
    assert "resumed after epoch 1" in capsys.readouterr().out
    code, err = _cli([*args[:4], "2", *args[5:]], capsys)
    assert code == 2 and "holds a checkpoint of another run" in err.err


@pytest.mark.parametrize("attention_weights", ["shared", "per_type"])
@pytest.mark.parametrize("sandwich_choices", ["first", "random"])
def test_supernet_variants_train_and_round_trip(tiny_space, tmp_path, attention_weights, sandwich_choices):
    task = _small_digits(64)
    config = TrainConfig(epochs=1, batch_size=32, seed=0, attention_weights=attention_weights,
                         sandwich_choices=sandwich_choices)
    result = train_supernet(task, tiny_space, config, tmp_path, progress=False)
    net, meta = load_checkpoint(tmp_path)
    assert net.attention_weights == attention_weights and meta["supernet"] == {"attention_weights": attention_weights}
    assert _same_weights(net, result.supernet)
    per_type = [n for n in net.state_dict() if ".attn." in n]
    assert bool(per_type) == (attention_weights == "per_type")


def test_random_sandwich_choices_draw_every_attention_and_policy(tiny_space):
    from supernet.train import _subnets_for_step

    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(30):
        largest, smallest, *_ = _subnets_for_step(tiny_space, TrainConfig(sandwich_choices="random"), rng)
        assert largest.embed_dim == max(tiny_space.embed_dims) and largest.depth == max(tiny_space.depths)
        seen |= {(layer.attention, layer.quant) for layer in largest.layers + smallest.layers}
    assert seen == {(a, q) for a in tiny_space.attentions for q in tiny_space.quants}
    first = _subnets_for_step(tiny_space, TrainConfig(sandwich_choices="first"), rng)
    assert first[0] == tiny_space.largest() and first[1] == tiny_space.smallest()


def test_tune_briefly_moves_an_inherited_subnet(tiny_space):
    from supernet.train import tune_briefly

    task = _small_digits(64)
    net = Supernet(tiny_space, task.spec, seed=0)
    arch = tiny_space.largest()
    before = net.extract(arch)
    assert _same_weights(tune_briefly(net.extract(arch), task, steps=0), before)
    tuned = tune_briefly(net.extract(arch), task, steps=3, seed=1)
    assert not tuned.training and not _same_weights(tuned, before)
    with pytest.raises(ValueError, match="steps must be a non-negative integer, got -1"):
        tune_briefly(net.extract(arch), task, steps=-1)


def test_both_sandwich_keeps_the_first_choice_teacher(tiny_space):
    from supernet.train import _subnets_for_step

    archs = _subnets_for_step(tiny_space, TrainConfig(sandwich_choices="both", k_random=1), np.random.default_rng(0))
    assert len(archs) == 4 and archs[0] == tiny_space.largest()
    assert archs[1].embed_dim == archs[0].embed_dim and archs[1].depth == archs[0].depth
    assert archs[2].embed_dim == tiny_space.smallest().embed_dim
