"""Profiling kit round trip on this machine: write, run the standalone runner, import."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

from hwprofiles import MeasureConfig, Profile, import_kit_results, sample_profile_archs, write_kit

QUICK = MeasureConfig(warmup=1, min_runs=3, max_runs=5, max_seconds=0.005, rounds=2, repeats=1)


def test_kit_round_trip(tmp_path, tiny_space, tiny_spec):
    kit = write_kit("cpu", tiny_space, tiny_spec, tmp_path / "kit.zip", n_samples=5, seed=2, config=QUICK,
                    progress=False, repeat_fraction=1.0)
    with zipfile.ZipFile(kit) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "target")
    assert {"run_kit.py", "manifest.json", "README.txt"} <= names
    assert sum(n.endswith(".onnx") for n in names) == 5
    runner = (tmp_path / "target" / "run_kit.py").read_text()
    assert "import torch" not in runner and "hwprofiles" not in runner and "supernet" not in runner
    # The runner needs only python, numpy and onnxruntime.
    subprocess.run([sys.executable, "run_kit.py", "--out", str(tmp_path / "results.json")],
                   cwd=tmp_path / "target", check=True, capture_output=True, timeout=300)
    prof = import_kit_results(tmp_path / "results.json", tmp_path / "imported")
    assert isinstance(prof, Profile) and prof.remote and prof.environment_differences() == []
    assert len(prof.table) == 5 and set(prof.table["arch"]) == {a.to_json() for a in
                                                                sample_profile_archs(tiny_space, 5, 2)}
    assert (prof.table["median_ms"] > 0).all() and prof.repeatability is not None
    assert prof.fingerprint["onnxruntime"] and prof.space == tiny_space and prof.spec == tiny_spec
    assert Profile.load(tmp_path / "imported").table.equals(prof.table)

    with pytest.raises(ValueError, match="not empty"):
        import_kit_results(tmp_path / "results.json", tmp_path / "imported")
    with pytest.raises(ValueError, match="already exists"):
        write_kit("cpu", tiny_space, tiny_spec, kit, n_samples=2, progress=False)
    (tmp_path / "bad.json").write_text(json.dumps({"kind": "other"}))
    with pytest.raises(ValueError, match="not an hwnas kit results file"):
        import_kit_results(tmp_path / "bad.json", tmp_path / "again")
    assert not (tmp_path / "again").exists()


def test_kit_refuses_torch_devices(tmp_path, tiny_space, tiny_spec):
    with pytest.raises(ValueError, match="onnxruntime"):
        write_kit("torch-cpu", tiny_space, tiny_spec, tmp_path / "k.zip", n_samples=2, progress=False)


def test_a_two_thread_kit_measures_every_file_in_passes(tmp_path, tiny_space, tiny_spec):
    config = MeasureConfig(warmup=1, min_runs=3, max_runs=5, max_seconds=0.005, rounds=2, repeats=0, pass_gap=0)
    kit = write_kit("cpu-2t", tiny_space, tiny_spec, tmp_path / "kit.zip", n_samples=3, seed=2, config=config,
                    progress=False, repeat_fraction=0.0)
    with zipfile.ZipFile(kit) as zf:
        zf.extractall(tmp_path / "target")
    done = subprocess.run([sys.executable, "run_kit.py", "--out", str(tmp_path / "results.json"), "--chunk", "2"],
                          cwd=tmp_path / "target", check=True, capture_output=True, text=True, timeout=300)
    # every chunk once per pass, the passes one after another
    assert [line.split(":")[0] for line in done.stdout.splitlines()[:6]] == [f"pass {p}/3" for p in (1, 1, 2, 2, 3, 3)]
    prof = import_kit_results(tmp_path / "results.json", tmp_path / "imported")
    assert prof.device.threads == 2
    assert all(3 * config.rounds * config.min_runs <= len(raw) <= 3 * config.rounds * config.max_runs
               for raw in prof.table["raw_ms"])
