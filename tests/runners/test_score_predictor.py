"""`hwnas score-predictor` end to end: its summary line, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from hwprofiles import MeasureConfig, Profile, profile_device
from predictors import FeatureSchema, build_latency_predictor, score_predictor
from runners.cli import main

QUICK = MeasureConfig(warmup=1, min_runs=3, max_runs=5, max_seconds=0.005, rounds=2, repeats=0)
SUMMARY = re.compile(r"^n=(\d+) within10=(\d\.\d\d) within5=(\d\.\d\d) mape=(\d+\.\d)% "
                     r"kendall=(-?\d\.\d\d) spearman=(-?\d\.\d\d)$")


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
        raise SystemExit(0)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_space, tiny_spec):
    root = tmp_path_factory.mktemp("score")
    source = profile_device("cpu", tiny_space, tiny_spec, n_samples=12, out_dir=root / "source", config=QUICK,
                            progress=False, seed=0)
    target = profile_device("cpu", tiny_space, tiny_spec, n_samples=10, out_dir=root / "target", config=QUICK,
                            progress=False, seed=1)
    pred = build_latency_predictor("ridge", FeatureSchema(tiny_space, tiny_spec), "cpu",
                           profile={**source.reference(), "target": "min_ms"})
    pred.fit_archs(source.archs(), source.latency("min_ms")).save(root / "pred.safetensors")
    return root, pred


def test_score_prints_metrics_and_a_summary_last(files, capsys):
    root, pred = files
    code, out, err = _run(["score-predictor", "--predictor", str(root / "pred.safetensors"),
                           "--profile", str(root / "target")], capsys)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    match = SUMMARY.match(lines[-1])
    assert match, lines[-1]
    expected = score_predictor(pred, Profile.load(root / "target"))
    assert int(match.group(1)) == expected.n == 10 and lines[-1] == expected.summary()
    assert "within ±10%" in out and "Spearman" in out and "fitted to min_ms" in out
    code, out, _ = _run(["score-predictor", "--predictor", str(root / "pred.safetensors"),
                         "--profile", str(root / "source")], capsys)
    assert code == 0 and "not held-out" in out and SUMMARY.match(out.strip().splitlines()[-1])


def _edited_profile(root, name, edit):
    folder = root / name
    shutil.copytree(root / "target", folder)
    meta = json.loads((folder / "profile.json").read_text())
    edit(meta)
    (folder / "profile.json").write_text(json.dumps(meta))
    return folder


def test_mismatch_and_bad_files_end_in_one_line_and_exit_2(files, capsys):
    root, _ = files
    pred = str(root / "pred.safetensors")
    gpu = _edited_profile(root, "gpu", lambda m: m["device"].update(name="gpu", backend="ort-cuda"))
    code, out, err = _run(["score-predictor", "--predictor", pred, "--profile", str(gpu)], capsys)
    assert code == 2 and err.count("\n") == 1 and out == ""
    assert "predictor device 'cpu' (backend ort-cpu)" in err and "profile device 'gpu' (backend ort-cuda)" in err
    wide = _edited_profile(root, "wide", lambda m: m["space"].update(embed_dims=[16, 32, 64]))
    code, _, err = _run(["score-predictor", "--predictor", pred, "--profile", str(wide)], capsys)
    assert code == 2 and err.count("\n") == 1 and "different search spaces" in err and "[16, 32, 64]" in err
    code, _, err = _run(["score-predictor", "--predictor", str(root / "missing.safetensors"),
                         "--profile", str(root / "target")], capsys)
    assert code == 2 and err.count("\n") == 1 and "no latency predictor" in err
    (root / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    code, _, err = _run(["score-predictor", "--predictor", str(root / "junk.safetensors"),
                         "--profile", str(root / "target")], capsys)
    assert code == 2 and err.count("\n") == 1 and "not a readable hwnas latency predictor" in err
    code, _, err = _run(["score-predictor", "--predictor", pred, "--profile", str(root / "nowhere")], capsys)
    assert code == 2 and err.count("\n") == 1 and "no device profile" in err
    broken = _edited_profile(root, "broken", lambda m: None)
    (broken / "profile.json").write_text("{truncated")
    code, _, err = _run(["score-predictor", "--predictor", pred, "--profile", str(broken)], capsys)
    assert code == 2 and err.count("\n") == 1 and "corrupt device profile" in err
    code, _, err = _run(["score-predictor", "--predictor", pred, "--profile", str(root / "target"),
                         "--target", "p90_ms"], capsys)
    assert code == 2 and err.count("\n") == 1 and "latency statistic must be one of" in err
