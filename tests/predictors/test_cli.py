"""`hwnas profile` and `hwnas fit-predictor` end to end, and their one-line errors."""

from __future__ import annotations

import pytest

from predictors import LatencyPredictor
from runners.cli import main

SPACE_TOML = """[space]
embed_dims = [16, 32]
depths = [1, 2]
heads = [1, 2]
ffn_ratios = [1, 2]
head_dim = 8
"""


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
        raise SystemExit(0)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def test_profile_then_fit_predictor(tmp_path, capsys):
    space = tmp_path / "space.toml"
    space.write_text(SPACE_TOML)
    prof = tmp_path / "prof"
    code, out, _ = _run(["profile", "--device", "cpu", "--task", "digits", "--samples", "12", "--out", str(prof),
                         "--space", str(space), "--preset", "fast"], capsys)
    assert code == 0 and "12 subnets of 'cpu'" in out and "repeatability" in out
    pred = tmp_path / "pred.safetensors"
    code, out, _ = _run(["fit-predictor", "--profile", str(prof), "--out", str(pred)], capsys)
    assert code == 0 and "kept '" in out and "repeatability (ceiling)" in out
    for name in ("lut", "ridge", "gbt", "mlp", "hybrid"):
        assert name in out
    assert LatencyPredictor.load(pred, device="cpu").device.name == "cpu"


def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    out_dir = tmp_path / "prof"
    code, _, err = _run(["profile", "--device", "quantum", "--samples", "3", "--out", str(out_dir)], capsys)
    assert code == 2 and err.count("\n") == 1 and "unknown device 'quantum'" in err and not out_dir.exists()
    code, _, err = _run(["profile", "--task", "nope", "--samples", "3", "--out", str(out_dir)], capsys)
    assert code == 2 and "unknown task" in err and not out_dir.exists()
    pred = tmp_path / "pred.safetensors"
    pred.write_text("keep me")
    code, _, err = _run(["fit-predictor", "--profile", str(tmp_path / "missing"), "--out", str(pred)], capsys)
    assert code == 2 and "no device profile" in err and pred.read_text() == "keep me"
    code, _, err = _run(["profile", "--kit-in", str(tmp_path / "missing.json"), "--out", str(out_dir)], capsys)
    assert code == 2 and "cannot read kit results" in err and not out_dir.exists()
