"""`hwnas adapt` end to end on a tiny space with a handful of real measurements, and its one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from hwprofiles import MeasureConfig, Profile, profile_device
from predictors import LatencyPredictor, fit_and_select
from runners.cli import main
from supernet import SearchSpace
from supernet.tasks import get_task

SPACE_TOML = """[space]
embed_dims = [16, 32]
depths = [1, 2]
heads = [1, 2]
ffn_ratios = [1, 2]
attentions = ["softmax", "linear"]
head_dim = 8
"""
QUICK = MeasureConfig(warmup=1, min_runs=3, max_runs=5, max_seconds=0.005, rounds=2, repeats=0)


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
        raise SystemExit(0)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """(space TOML, a cpu predictor fitted on 12 real measurements of the tiny space)."""
    root = tmp_path_factory.mktemp("adapt")
    toml = root / "space.toml"
    toml.write_text(SPACE_TOML)
    space = SearchSpace.from_toml(toml)
    prof = profile_device("cpu", space, get_task("digits").spec, n_samples=12, out_dir=root / "cpu", config=QUICK,
                          progress=False, repeat_fraction=0.0)
    best, _ = fit_and_select(prof, seed=0, target="min_ms")
    return toml, best.save(root / "cpu.safetensors")


def test_adapt_end_to_end(source, tmp_path, capsys):
    toml, pred = source
    out = tmp_path / "torch.safetensors"
    code, stdout, err = _run(["adapt", "--predictor", str(pred), "--device", "torch-cpu", "--task", "digits",
                              "--samples", "5", "--out", str(out), "--space", str(toml), "--preset", "fast"], capsys)
    assert code == 0, err
    assert "measured 5 subnets" in stdout and "leave-one-out over the 5 measurements (min_ms)" in stdout
    assert f"-> {out}" in stdout.splitlines()[-1]
    space = SearchSpace.from_toml(toml)
    adapted = LatencyPredictor.load(out, space=space, device="torch-cpu")
    assert adapted.name == "transfer" and adapted.target == "min_ms" and "blocks" in adapted.groups
    assert adapted.profile["adapted_from"]["device"]["name"] == "cpu" and adapted.metrics["adaptation"]["k"] == 5
    info = adapted.metrics["adaptation"]  # block measuring and block export timed apart
    assert info["block_seconds"] > 0 and info["block_export_seconds"] >= 0
    assert "s exporting them) of 'torch-cpu'" in stdout
    prof = Profile.load(tmp_path / "torch-profile")  # the default profile folder, beside --out
    assert prof.device.name == "torch-cpu" and len(prof.table) == 5 and prof.repeat is None
    assert len(prof.blocks) == len(adapted.schema.names(["blocks"]))
    archs = [space.sample(np.random.default_rng(1)) for _ in range(30)]
    pred_ms = adapted.predict_archs(archs)
    assert pred_ms.shape == (30,) and np.all(np.isfinite(pred_ms)) and np.all(pred_ms > 0)
    # the 5 measured subnets: predicted in the right range (no timing assertion, only sanity)
    measured = prof.latency("min_ms")
    assert np.all(adapted.predict_archs(prof.archs()) < 10 * measured.max())

    out2 = tmp_path / "no-blocks.safetensors"
    code, stdout, err = _run(["adapt", "--predictor", str(pred), "--device", "cpu-2t", "--samples", "3", "--out",
                              str(out2), "--space", str(toml), "--task", "digits", "--preset", "fast", "--no-blocks",
                              "--profile-out", str(tmp_path / "p2"), "--pass-gap", "0"], capsys)
    assert code == 0, err
    loaded = LatencyPredictor.load(out2, device="cpu-2t")
    two_threads = Profile.load(tmp_path / "p2")
    assert "blocks" not in loaded.groups and two_threads.blocks is None
    assert two_threads.meta["measure_config"]["passes"] is None  # the device decides: three passes for two threads
    fast = MeasureConfig.fast()  # each pass: 2 rounds of at least min_runs runs per subnet
    assert all(len(raw) >= 3 * fast.rounds * fast.min_runs for raw in two_threads.table["raw_ms"])


def test_bad_input_exits_2_with_one_line_and_writes_nothing(source, tmp_path, capsys):
    toml, pred = source
    out = tmp_path / "a.safetensors"
    base = ["adapt", "--predictor", str(pred), "--out", str(out), "--space", str(toml), "--task", "digits",
            "--preset", "fast"]
    cases = [
        (["--device", "quantum", "--samples", "3"], "unknown device 'quantum'"),
        (["--device", "cpu-2t", "--samples", "0"], "--samples must be a positive integer, got 0"),
        (["--device", "cpu-2t", "--samples", "3", "--task", "nope"], "unknown task"),
        (["--device", "cpu-2t", "--samples", "100000"], "exceeds the"),
        (["--device", "cpu-2t", "--passes", "-1"], "--passes must be 0 (the device decides) or a positive integer"),
        (["--device", "cpu-2t", "--pass-gap", "-5"], "--pass-gap must be a non-negative number of seconds, got -5"),
    ]
    for extra, message in cases:
        code, _, err = _run(base + extra, capsys)
        assert code == 2 and err.count("\n") == 1 and message in err, (extra, err)
    missing = ["adapt", "--predictor", str(tmp_path / "missing.safetensors"), "--device", "cpu-2t", "--out", str(out),
               "--space", str(toml)]
    code, _, err = _run(missing, capsys)
    assert code == 2 and err.count("\n") == 1 and "no latency predictor" in err
    other = tmp_path / "other.toml"
    other.write_text(SPACE_TOML.replace("embed_dims = [16, 32]", "embed_dims = [16, 64]"))
    code, _, err = _run(["adapt", "--predictor", str(pred), "--device", "cpu-2t", "--out", str(out),
                         "--space", str(other)], capsys)
    assert code == 2 and err.count("\n") == 1 and "another search space" in err
    code, _, err = _run(["adapt", "--predictor", str(pred), "--device", "cpu-2t", "--out", str(out)], capsys)
    assert code == 2 and "another search space" in err  # the built-in space is not the predictor's
    code, _, err = _run(["adapt", "--predictor", str(pred), "--device", "cpu-2t", "--out", str(out),
                         "--space", str(toml), "--task", "mnist1d"], capsys)
    assert code == 2 and err.count("\n") == 1 and "input spec" in err
    code, _, err = _run(base + ["--device", "cpu-2t", "--space", str(tmp_path / "no.toml")], capsys)
    assert code == 2 and err.count("\n") == 1 and "no.toml does not exist" in err
    assert not out.exists() and not (tmp_path / "a-profile").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.toml"]
