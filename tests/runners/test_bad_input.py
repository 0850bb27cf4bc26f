"""Bad input ends in one line on stderr, exit code 2, and nothing written or changed.

Each case names a bad config (TOML), data file (npz task), profile, predictor, checkpoint or
CLI value. Every file under the test's own folder and under the shared tiny run is compared
byte for byte before and after the command, so "nothing written" covers new folders too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from ._tiny import TINY, cli, tiny_run


pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One finished tiny run (digits, 1 epoch, 10 profiled subnets, 6 evaluations) for the module."""
    root = tmp_path_factory.mktemp("bad-input")
    return tiny_run(root, TINY)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file's bytes and every folder (None) under `folder`."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


# ------------------------------------------------------------------ setups: files a case needs
Setup = Callable[[Path, Path], None]  # (workspace, shared run) -> None


def _write(name: str, data: str | bytes) -> Setup:
    def setup(ws: Path, run: Path) -> None:
        path = ws / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return setup


def _npz(**arrays) -> Setup:
    def setup(ws: Path, run: Path) -> None:
        np.savez(ws / "data.npz", **arrays)
    return setup


def _copy_run(mutate: Callable[[Path], None] | None = None) -> Setup:
    def setup(ws: Path, run: Path) -> None:
        shutil.copytree(run, ws / "run")
        if mutate is not None:
            mutate(ws / "run")
    return setup


def _edit_json(rel: str, edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def mutate(copy: Path) -> None:
        data = json.loads((copy / rel).read_text())
        edit(data)
        (copy / rel).write_text(json.dumps(data))
    return mutate


def _garble(pattern: str) -> Callable[[Path], None]:
    def mutate(copy: Path) -> None:
        paths = sorted(copy.glob(pattern))
        assert paths, pattern
        for p in paths:
            p.write_bytes(b"\x00garbage" + p.read_bytes()[: len(p.read_bytes()) // 3])
    return mutate


def _remove(rel: str) -> Callable[[Path], None]:
    def mutate(copy: Path) -> None:
        path = copy / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return mutate


def _both(*setups: Setup) -> Setup:
    def setup(ws: Path, run: Path) -> None:
        for s in setups:
            s(ws, run)
    return setup


_x = np.random.default_rng(0).normal(size=(40, 6, 2))
_y = np.arange(40) % 4

# (id, setup, argv with {ws} for the workspace and {run} for the shared run, message part)
CASES = [
    # ---- configs (TOML): hwnas run --config
    ("config-unknown-attention", _write("c.toml", '[space]\nattentions = ["softmax", "flash"]\n'),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "unknown attention type 'flash'"),
    ("config-unknown-preset", _write("c.toml", '[profile]\npreset = "slow"\n'),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "unknown measurement preset 'slow'"),
    ("config-unknown-statistic", _write("c.toml", '[profile]\ntarget = "max_ms"\n'),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "profile.target must be one of"),
    ("config-too-few-samples", _write("c.toml", "[profile]\nsamples = 3\n"),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "profile.samples must be >= 8, got 3"),
    ("config-unknown-device", _write("c.toml", '[profile]\ndevice = "tpu-9"\n'),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "unknown device 'tpu-9'"),
    ("config-negative-lr", _write("c.toml", "[train]\nlr = -1.0\n"),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "bad [train] setting: lr"),
    ("config-finetune-epochs-0", _write("c.toml", "[finetune]\nepochs = 0\n"),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "bad finetune setting: epochs"),
    ("config-finetune-enabled-string", _write("c.toml", '[finetune]\nenabled = "yes"\n'),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "finetune.enabled must be true or false"),
    ("config-negative-latency-budget", _write("c.toml", "[search]\nmax_latency_ms = -1.0\n"),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "search.max_latency_ms must be > 0"),
    ("config-negative-tune-steps", _write("c.toml", "[search]\ntune_steps = -5\n"),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "search.tune_steps must be an integer in 0..100000"),
    ("config-fractional-tune-steps", _write("c.toml", "[search]\ntune_steps = 2.5\n"),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "search.tune_steps must be an integer in 0..100000"),
    ("config-zero-tune-lr", _write("c.toml", "[search]\ntune_lr = 0.0\n"),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "search.tune_lr must be in (0, 1]"),
    ("config-repeated-objective", _write("c.toml", '[search]\nobjectives = ["accuracy", "accuracy"]\n'),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "search.objectives repeats a name"),
    ("config-no-cpus", _write("c.toml", "[executor]\nnum_cpus = 0\n"),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "executor.num_cpus must be > 0"),
    ("config-negative-seed", _write("c.toml", "seed = -1\n"),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "seed must be >= 0"),
    ("config-seed-string", _write("c.toml", 'seed = "zero"\n'),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "seed must be an integer"),
    ("config-unknown-quant", _write("c.toml", '[space]\nquants = ["fp16"]\n'),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "quants must be among ('fp32', 'int8'), got 'fp16'"),
    ("config-bad-task-option", _write("c.toml", '[task]\nname = "mnist1d"\nsamples = 50\n'),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "option samples must be an integer in [100"),
    ("config-mnist1d-patch-not-dividing-length", _write("c.toml", '[task]\nname = "mnist1d"\nlength = 256\npatch = 3\n'),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "option patch must divide length 256"),
    ("config-not-utf8", _write("c.toml", b"\xff\xfe[train]\n"),
     ["run", "--config", "{ws}/c.toml", "--run", "{ws}/new"], "cannot read config"),
    ("space-file-unknown-attention", _write("s.toml", '[space]\nattentions = ["flash"]\n'),
     ["train", "--task", "digits", "--space", "{ws}/s.toml", "--out", "{ws}/new"], "unknown attention type 'flash'"),
    ("space-file-missing", None,
     ["profile", "--task", "digits", "--space", "{ws}/nope.toml", "--out", "{ws}/new"], "does not exist"),
    # ---- data files (npz tasks): hwnas train --task npz:PATH
    ("npz-missing", None, ["train", "--task", "npz:{ws}/nope.npz", "--out", "{ws}/new"], "does not exist"),
    ("npz-garbage", _write("data.npz", b"not a zip archive"),
     ["train", "--task", "npz:{ws}/data.npz", "--out", "{ws}/new"], "is unreadable as .npz"),
    ("npz-no-labels", _npz(x=_x),
     ["train", "--task", "npz:{ws}/data.npz", "--out", "{ws}/new"], "lacks key(s) ['y']"),
    ("npz-length-mismatch", _npz(x=_x, y=_y[:30]),
     ["train", "--task", "npz:{ws}/data.npz", "--out", "{ws}/new"], "y must be (40,)"),
    ("npz-4d-inputs", _npz(x=_x[..., None], y=_y),
     ["train", "--task", "npz:{ws}/data.npz", "--out", "{ws}/new"], "must be (N, L) or (N, L, F)"),
    ("npz-nan", _npz(x=np.where(np.arange(40)[:, None, None] == 3, np.nan, _x), y=_y),
     ["train", "--task", "npz:{ws}/data.npz", "--out", "{ws}/new"], "NaN or inf"),
    ("npz-fractional-labels", _npz(x=_x, y=_y + 0.5),
     ["train", "--task", "npz:{ws}/data.npz", "--out", "{ws}/new"], "must hold integer labels"),
    ("npz-negative-label", _npz(x=_x, y=_y - 1),
     ["train", "--task", "npz:{ws}/data.npz", "--out", "{ws}/new"], "labels must lie in"),
    ("npz-one-class", _npz(x=_x, y=np.zeros(40, dtype=int)),
     ["train", "--task", "npz:{ws}/data.npz", "--out", "{ws}/new"], "at least 2 classes"),
    ("npz-too-few-examples", _npz(x=_x[:5], y=_y[:5]),
     ["train", "--task", "npz:{ws}/data.npz", "--out", "{ws}/new"], "needs at least 10 examples"),
    ("npz-val-without-labels", _npz(x=_x, y=_y, x_val=_x[:8]),
     ["train", "--task", "npz:{ws}/data.npz", "--out", "{ws}/new"], "lacks key(s) ['y_val']"),
    ("npz-val-other-length", _npz(x=_x, y=_y, x_val=_x[:8, :4], y_val=_y[:8]),
     ["train", "--task", "npz:{ws}/data.npz", "--out", "{ws}/new"], "does not match x"),
    ("npz-unknown-option", _npz(x=_x, y=_y),
     ["train", "--task", "npz:{ws}/data.npz", "--task-option", "pairs=3", "--out", "{ws}/new"],
     "takes only the option 'readout'"),
    # ---- profiles
    ("profile-missing", None, ["fit-predictor", "--profile", "{ws}/nope", "--out", "{ws}/p.safetensors"],
     "no device profile at"),
    ("profile-is-an-export-folder", None,
     ["fit-predictor", "--profile", "{run}/export", "--out", "{ws}/p.safetensors"], "missing profile.json"),
    ("profile-json-corrupt", _copy_run(_garble("profile/profile.json")),
     ["fit-predictor", "--profile", "{ws}/run/profile", "--out", "{ws}/p.safetensors"], "cannot read profile.json"),
    ("profile-table-missing", _copy_run(_remove("profile/measurements.parquet")),
     ["fit-predictor", "--profile", "{ws}/run/profile", "--out", "{ws}/p.safetensors"], "at least 4 measured subnets"),
    ("profile-out-is-another-stage", None,
     ["profile", "--task", "digits", "--samples", "8", "--preset", "fast", "--out", "{run}/export"],
     "is not a device profile"),
    ("profile-kit-results-not-a-kit", None, ["profile", "--kit-in", "{run}/run.json", "--out", "{ws}/new"],
     "is not an hwnas kit results file"),
    ("profile-zero-samples", None, ["profile", "--task", "digits", "--samples", "0", "--out", "{ws}/new"],
     "--samples must be a positive integer"),
    ("profile-unknown-preset", None, ["profile", "--task", "digits", "--preset", "slow", "--out", "{ws}/new"],
     "unknown measurement preset 'slow'"),
    ("profile-unknown-device", None, ["profile", "--task", "digits", "--device", "tpu-9", "--out", "{ws}/new"],
     "unknown device 'tpu-9'"),
    # ---- predictors
    ("predictor-missing", None, ["search", "--run", "{run}", "--predictor", "{ws}/nope"], "does not exist"),
    ("predictor-is-json-text", None, ["score-predictor", "--predictor", "{run}/run.json", "--profile", "{run}/profile"],
     "is not a readable hwnas latency predictor"),
    ("predictor-truncated", _copy_run(_garble("predictor")),
     ["search", "--run", "{ws}/run", "--predictor", "{ws}/run/predictor", "--budget", "3"],
     "is not a readable hwnas latency predictor"),
    ("predictor-out-is-a-folder", None, ["fit-predictor", "--profile", "{run}/profile", "--out", "{run}"],
     "is a folder"),
    ("predictor-unknown-statistic", None,
     ["fit-predictor", "--profile", "{run}/profile", "--out", "{ws}/p.safetensors", "--target", "max_ms"],
     "latency statistic must be one of ('median_ms', 'min_ms'), got 'max_ms'"),
    ("export-record-names-a-missing-predictor",
     _copy_run(_edit_json("search/search.json", lambda d: d.update(predictor="/nonexistent/predictor"))),
     ["export", "--run", "{ws}/run"], "predictor /nonexistent/predictor does not exist"),
    # ---- checkpoints
    ("checkpoint-missing", _copy_run(_remove("supernet")),
     ["search", "--run", "{ws}/run", "--predictor", "{run}/predictor"], "no supernet checkpoint"),
    ("checkpoint-json-corrupt", _copy_run(_garble("supernet/checkpoint.json")),
     ["export", "--run", "{ws}/run"], "checkpoint.json is corrupt"),
    ("checkpoint-weights-corrupt", _copy_run(_garble("supernet/supernet-*.safetensors")),
     ["search", "--run", "{ws}/run", "--predictor", "{run}/predictor", "--budget", "3"], "its SHA-256 does not match"),
    ("checkpoint-of-another-space", _write("s.toml", "[space]\nembed_dims = [8]\n"),
     ["train", "--task", "digits", "--epochs", "1", "--space", "{ws}/s.toml", "--out", "{run}"],
     "holds a checkpoint of another run"),
    # ---- CLI values and folders
    ("train-out-is-a-profile-folder", None, ["train", "--task", "digits", "--out", "{run}/profile"],
     "is not an hwnas run folder"),
    ("train-out-is-an-export-folder", None, ["train", "--task", "digits", "--out", "{run}/export"],
     "is not an hwnas run folder"),
    ("train-out-is-a-file", None, ["train", "--task", "digits", "--out", "{run}/run.json"], "is a file"),
    ("train-zero-threads", None, ["train", "--task", "digits", "--threads", "0", "--out", "{ws}/new"],
     "--threads must be a positive integer"),
    ("train-unknown-device", None, ["train", "--task", "digits", "--device", "tpu", "--out", "{ws}/new"],
     "device must be 'cpu' or 'cuda[:N]'"),
    ("train-epochs-not-a-number", None, ["train", "--epochs", "many", "--out", "{ws}/new"], "Invalid value for '--epochs'"),
    ("train-zero-lr", None, ["train", "--task", "digits", "--lr", "0", "--out", "{ws}/new"], "lr must be a finite positive number, got 0.0"),
    ("report-corrupt-run-file", _copy_run(_garble("run.json")), ["report", "--run", "{ws}/run"],
     "is not a valid run file"),
    ("report-manifest-model-lacks-a-field",
     _copy_run(_edit_json("export/manifest.json", lambda d: d["models"][0].pop("kind"))),
     ["report", "--run", "{ws}/run"], "is not a valid export manifest: model 0 ('front-00') lacks 'kind'"),
    ("report-manifest-models-not-a-list", _copy_run(_edit_json("export/manifest.json", lambda d: d.update(models=3))),
     ["report", "--run", "{ws}/run"], "'models' is missing or not a list"),
    ("report-garbage-hypervolume", _copy_run(_garble("search/hypervolume.csv")), ["report", "--run", "{ws}/run"],
     "hypervolume.csv is not a hypervolume table"),
    ("export-corrupt-run-file", _copy_run(_edit_json("run.json", lambda d: d.pop("stages"))),
     ["export", "--run", "{ws}/run"], "is not a valid run file"),
    ("export-unknown-preset", None, ["export", "--run", "{run}", "--preset", "slow"],
     "unknown measurement preset 'slow'"),
    ("export-without-search-record", _copy_run(_remove("search/search.json")), ["export", "--run", "{ws}/run"],
     "search.json does not exist"),
    ("search-zero-budget", None, ["search", "--run", "{run}", "--predictor", "{run}/predictor", "--budget", "0"],
     "search.budget must be > 0"),
    ("search-impossible-latency-budget", None,
     ["search", "--run", "{run}", "--predictor", "{run}/predictor", "--max-latency-ms", "1e-9"],
     "no architecture can meet the constraints"),
    ("run-finetune-flag-on-a-finished-run", None, ["run", "--run", "{run}", "--finetune"],
     "finetune.enabled: False stored, True given"),
    ("run-folder-of-another-stage", None, ["run", "--run", "{run}/profile"], "is not an hwnas run folder"),
    ("finetune-zero-epochs", None, ["finetune", "--run", "{run}", "--epochs", "0"], "bad finetune setting: epochs"),
    ("score-unknown-statistic", None,
     ["score-predictor", "--predictor", "{run}/predictor", "--profile", "{run}/profile", "--target", "p99_ms"],
     "got 'p99_ms'"),
]


@pytest.mark.parametrize("setup, argv, message", [pytest.param(s, a, m, id=i) for i, s, a, m in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(run_dir, tmp_path, capsys, setup, argv, message):
    ws = tmp_path / "ws"
    ws.mkdir()
    if setup is not None:
        setup(ws, run_dir)
    argv = [a.replace("{ws}", str(ws)).replace("{run}", str(run_dir)) for a in argv]
    before_ws, before_run = snapshot(ws), snapshot(run_dir)
    capsys.readouterr()
    code = cli(*argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert snapshot(ws) == before_ws, "the command wrote into its workspace"
    assert snapshot(run_dir) == before_run, "the command changed the shared run"


def test_there_are_at_least_30_distinct_bad_inputs():
    assert len({case[0] for case in CASES}) == len(CASES) >= 30


def test_a_moved_run_folder_still_exports(run_dir, tmp_path, capsys):
    """search.json names the run's own predictor relative to the run, so a copied run is whole."""
    assert json.loads((run_dir / "search" / "search.json").read_text())["predictor"] == "predictor"
    moved = tmp_path / "moved"
    shutil.copytree(run_dir, moved)
    assert cli("export", "--run", str(moved), "--no-baselines") == 0
    manifest = json.loads((moved / "export" / "manifest.json").read_text())
    assert {m["kind"] for m in manifest["models"]} == {"front"}
