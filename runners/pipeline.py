"""The main job: train -> profile -> fit-predictor -> search -> export -> [finetune] -> [matrix] -> report.

Each stage reads the previous stage's files in the run folder and writes its own:

    RUN_DIR/run.json        config, stage status and wall time (resume state)
    RUN_DIR/supernet/       checkpoint (safetensors + JSON)
    RUN_DIR/accuracy_cache.sqlite   every accuracy evaluated on that checkpoint (all searches)
    RUN_DIR/profile/        device profile (parquet + JSON)
    RUN_DIR/predictor/      latency predictor (JSON + npz)
    RUN_DIR/search/         candidates.parquet, front.csv, hypervolume.csv, state
    RUN_DIR/export/         ONNX files and manifest.json
    RUN_DIR/finetune/       trained ONNX files, weights, records and manifest.json (when enabled)
    RUN_DIR/report/         pareto.png, hypervolume.png, report.md, report.html
    RUN_DIR/searches/NAME/  named searches (`hwnas search --name`): search/, export/, report/

Re-running on the same folder skips finished stages and resumes the interrupted one
(training, profiling, search and finetune resume inside the stage). The finetune stage runs
only with `[finetune] enabled = true`; `hwnas finetune --run RUN` runs it on any exported run.

Several devices (`[profile] devices`): the supernet is trained once; each device is profiled
(or adapted from `adapt_from`'s predictor), fitted, searched and exported in its own folder
RUN/devices/<name>/, and the matrix stage measures every device's front on every device
(RUN/matrix.json, RUN/matrix.csv). A run with one device keeps the layout above; see
`runners.layout`. Every search reads and appends the run's accuracy cache
(RUN/accuracy_cache.sqlite, `runners._cache`): no architecture is evaluated twice.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ._errors import UserInputError, user_errors
from ._io import atomic_write_json
from .config import ExportSettings, ProfileSettings, RunConfig, accuracy_split, config_from_dict
from .layout import device_units
from .searching import build_problem, search_run, stage_search

STAGES = ("train", "profile", "fit-predictor", "search", "export", "finetune", "matrix", "report")
RUN_SCHEMA = 1
Echo = Callable[[str], None]


# --------------------------------------------------------------------- run state
@dataclass
class RunState:
    run_dir: Path
    config: RunConfig
    stages: dict[str, dict[str, Any]]
    task: dict[str, Any] | None = None  # the task's record (name, options, split sizes) once trained

    @property
    def path(self) -> Path:
        return self.run_dir / "run.json"

    def save(self) -> None:
        data = {"schema_version": RUN_SCHEMA, "config": self.config.to_dict(), "stages": self.stages}
        if self.task is not None:
            data["task"] = self.task
        atomic_write_json(self.path, data)

    def done(self, stage: str) -> bool:
        return self.stages.get(stage, {}).get("status") == "done"

    def finish(self, stage: str, seconds: float, summary: str) -> None:
        previous = self.stages.get(stage, {}).get("seconds", 0.0)
        self.stages[stage] = {"status": "done", "seconds": round(previous + seconds, 2), "summary": summary}
        self.save()

    def interrupted(self, stage: str, seconds: float) -> None:
        previous = self.stages.get(stage, {}).get("seconds", 0.0)
        self.stages[stage] = {"status": "running", "seconds": round(previous + seconds, 2)}
        self.save()


def read_run(run_dir: Path) -> RunState | None:
    """The run stored in RUN_DIR/run.json; None when there is none (runs made stage by stage
    with `hwnas train/search/export` have none). A corrupt run file is refused."""
    run_dir = Path(run_dir)
    path = run_dir / "run.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        stored = config_from_dict(data["config"])
        stages = dict(data["stages"])
        task = data.get("task")
        if not all(isinstance(v, dict) for v in stages.values()):
            raise TypeError("each stage must be a table")
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise UserInputError(f"{path} is not a valid run file ({exc}); use a new --run folder") from None
    return RunState(run_dir, stored, stages, task)


def open_run(run_dir: Path, config: RunConfig | None) -> RunState:
    """Open a run folder, creating it with `config`; a stored run keeps its own config.

    Passing a config that differs from the stored one is refused (naming the settings),
    so a resumed run never mixes two configurations.
    """
    run_dir = Path(run_dir)
    state = read_run(run_dir)
    if state is not None:
        stored = state.config
        if config is not None and config != stored:
            diff = _config_diff(stored.to_dict(), config.to_dict())
            raise UserInputError(
                f"run folder {run_dir} holds a run with other settings ({', '.join(diff[:4])}); "
                "use a new --run folder or the same settings"
            )
        return state
    if run_dir.exists() and any(run_dir.iterdir()):
        raise UserInputError(f"{run_dir} exists and is not an hwnas run folder (no run.json); choose another --run")
    state = RunState(run_dir, config or RunConfig(), {})
    run_dir.mkdir(parents=True, exist_ok=True)
    state.save()
    return state


def _config_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _config_diff(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: {va!r} stored, {vb!r} given")
    return out


# --------------------------------------------------------------------- shared loaders
def pin_torch_threads(threads: int) -> None:
    """Fix torch's thread count, and cap numpy's BLAS and OpenMP pools at one thread.

    The models here are small, and torch's default of one thread per core thrashes as soon
    as anything else runs; the run's `[train] threads` (default 2) is used only in stages
    that measure nothing. Idle BLAS/OpenMP workers left by scikit-learn or numpy busy-wait
    and slowed later single-threaded latency measurements in the same process by 30-60%.
    """
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=1)


_TASK_CACHE: dict[str, Any] = {}


def _task(name: str, seed: int, options: dict[str, Any], error_prefix: str = ""):
    """A task, built once per process (generated tasks take seconds: mnist1d about 4 s)."""
    from supernet.tasks import get_task

    key = json.dumps([name, options, seed], sort_keys=True)
    if key not in _TASK_CACHE:
        with user_errors(error_prefix):
            task = get_task(name, seed=seed, **options)
        if name.startswith("npz:"):
            return task  # a user's file may change between calls: read it each time
        # Also under the options the task records (defaults filled in), which later stages
        # rebuild it from (the checkpoint's task record).
        record = task.record()
        _TASK_CACHE.clear()
        _TASK_CACHE[key] = _TASK_CACHE[json.dumps([name, record["options"], seed], sort_keys=True)] = task
    return _TASK_CACHE[key]


def load_task(config: RunConfig):
    """The run's task."""
    return _task(config.task.name, config.seed, dict(config.task.options))


def load_supernet(run_dir: Path):
    from supernet.checkpoint import load_checkpoint

    folder = Path(run_dir) / "supernet"
    if not folder.exists():
        raise UserInputError(f"no supernet checkpoint in {folder}: run `hwnas train --out {run_dir}` first")
    with user_errors():
        return load_checkpoint(folder)


def load_predictor(path: Path, *, space=None):
    from predictors import LatencyPredictor

    if not Path(path).exists():
        raise UserInputError(f"predictor {path} does not exist: run `hwnas fit-predictor` first")
    with user_errors():
        return LatencyPredictor.load(path, space=space)


def task_from_meta(meta: dict[str, Any]):
    """The task a checkpoint was trained on, rebuilt from its metadata."""
    task = meta["task"]
    return _task(task["name"], task.get("seed", 0), dict(task.get("options", {})),
                 "cannot rebuild the checkpoint's task: ")


def check_train_device(name: str) -> None:
    """Refuse a training device this machine does not have, before any work (UserInputError)."""
    from supernet.train import resolve_device

    try:
        resolve_device(name)
    except ValueError:
        raise UserInputError(f"train.device is {name!r} but torch sees no CUDA device on this machine") from None


# --------------------------------------------------------------------- stages
def stage_train(state: RunState, echo: Echo) -> str:
    from supernet.train import train_supernet

    c = state.config
    check_train_device(c.train.device)
    task = load_task(c)
    result = train_supernet(task, c.space_obj(), c.train.train_config(c.seed), state.run_dir / "supernet",
                            progress=True)
    state.task = task.record()
    state.save()
    last = result.history[-1]
    keys = [k for k in last if "acc" in k]
    return f"{result.steps} updates; " + ", ".join(f"{k} {last[k]:.3f}" for k in keys)


def stage_profile(state: RunState, echo: Echo) -> str:
    """Profile every device (those adapted from another device's predictor are measured in
    the fit-predictor stage, once the source predictor exists). With the Ray executor, every
    device's job goes to the node advertising it, all at once."""
    from hwprofiles import get_device, profile_device

    c = state.config
    task = load_task(c)
    measure = c.profile.measure_config()
    jobs, lines = [], []
    for name, unit in device_units(state.run_dir, c).items():
        if c.profile.adapt_from is not None and name != c.profile.adapt_from:
            lines.append(f"'{name}' adapted from '{c.profile.adapt_from}' (measured in fit-predictor)")
            continue
        with user_errors():
            jobs.append((get_device(name), unit / "profile"))
    if c.executor.kind == "ray":
        from .remote import profile_devices_on_ray

        profiles = profile_devices_on_ray(jobs, c.space_obj(), task.spec, n_samples=c.profile.samples, seed=c.seed,
                                          config=measure, address=c.executor.ray_address,
                                          num_cpus=c.executor.num_cpus)
    else:
        profiles = [profile_device(device, c.space_obj(), task.spec, n_samples=c.profile.samples, out_dir=out,
                                   seed=c.seed, config=measure, progress=True, export_workers=2)
                    for device, out in jobs]
    for (device, _), profile in zip(jobs, profiles):
        rep = profile.repeatability_of(c.profile.target)
        ceiling = (f"; repeatability of {c.profile.target}: {rep.within_10pct:.0%} within ±10%"
                   if rep is not None else "")
        lines.append(f"{len(profile.table)} subnets measured on '{device.name}'{ceiling}")
    return "; ".join(lines)


def stage_fit(state: RunState, echo: Echo) -> str:
    """Fit each profiled device's predictor; then adapt the source's to the other devices."""
    from hwprofiles import Profile
    from predictors import fit_and_select

    c = state.config
    units = device_units(state.run_dir, c)
    lines = []
    for name, unit in units.items():
        if c.profile.adapt_from is not None and name != c.profile.adapt_from:
            continue
        if len(units) > 1 and (unit / "predictor").exists():
            lines.append(f"'{name}': kept the fitted predictor")
            continue
        profile = Profile.load(unit / "profile")
        best, table = fit_and_select(profile, seed=c.seed, target=c.profile.target)
        best.save(unit / "predictor")
        atomic_write_json(unit / "predictor_comparison.json", json.loads(table.to_json(orient="records")))
        echo(table.to_string(index=False))
        lines.append(f"kept '{best.name}'" + (f" for '{name}'" if len(units) > 1 else "")
                     + f" (fitted to {c.profile.target})")
        outliers = getattr(best.estimator, "outliers_", None)  # a lookup table's, alone or under a hybrid
        if outliers:
            lines.append(f"{len(outliers)} profiled subnet(s) set aside as outliers of the lookup table "
                         f"(rows {outliers} of {unit / 'profile'})")
    if c.profile.adapt_from is not None:
        from predictors import adapt_predictor

        source = load_predictor(units[c.profile.adapt_from] / "predictor", space=c.space_obj())
        for name, unit in units.items():
            if name == c.profile.adapt_from or (unit / "predictor").exists():
                continue
            with user_errors():
                adapted, _ = adapt_predictor(source, name, samples=c.profile.adapt_samples,
                                             profile_dir=unit / "profile", config=c.profile.measure_config(),
                                             seed=c.seed, progress=True)
            adapted.save(unit / "predictor")
            lines.append(f"'{name}' adapted from '{c.profile.adapt_from}' with {c.profile.adapt_samples} subnets")
    return "; ".join(lines)


def spread_over_front(archs: list, latency_ms, limit: int) -> list:
    """At most `limit` of `archs`, evenly spread over their latency (fastest and slowest kept)."""
    import numpy as np

    if limit <= 0 or len(archs) <= limit:
        return list(archs)
    order = np.argsort(np.asarray(latency_ms, dtype=float), kind="stable")
    picks = sorted({int(order[round(k)]) for k in np.linspace(0, len(archs) - 1, limit)})
    return [archs[i] for i in picks]


def export_front(supernet, task, archs, predictor, out_dir: str | Path, *, baselines: bool = True,
                 measure=None, seed: int = 0, echo: Echo = print, val_accuracy=None,
                 measure_remote=None, val_accuracy_tune: dict[str, Any] | None = None,
                 passes: int = ExportSettings().passes) -> dict[str, Any]:
    """Export `archs` (a Pareto front) and, with `baselines`, the space's uniform baselines to
    ONNX in `out_dir`; measure them again on the predictor's device with `measure` (a
    `hwprofiles.MeasureConfig`; default: the profile section's preset) in at least `passes`
    passes (`runners.exporting.export_protocol`), evaluate the ONNX files on the test split;
    write and return `out_dir/manifest.json`.

    The latency is checked against the statistic the predictor was fitted to.
    `val_accuracy(archs)` gives the supernet's val accuracies (e.g. the run's accuracy cache,
    which holds the front's already); default: evaluated here; `val_accuracy_tune` says how
    it scores (the search record's `accuracy_tune`, written to the manifest). `measure_remote`:
    see `runners.exporting.export_models` (the Ray node of the device measures).
    """
    from hwprofiles import fingerprint

    from .exporting import ExportItem, comparison_lines, export_models, export_protocol, uniform_baselines

    items = [ExportItem(f"front-{i:02d}", "front", a) for i, a in enumerate(archs)]
    if baselines:
        items += uniform_baselines(supernet.space)
    measure = export_protocol(measure or ProfileSettings().measure_config(), predictor.device.threads, passes)
    manifest = export_models(
        supernet=supernet, space=supernet.space, task=task, items=items, predict_ms=predictor.predict_archs,
        device=predictor.device, measure_config=measure,
        out_dir=Path(out_dir), fingerprint=fingerprint(), statistic=predictor.profile.get("target", "median_ms"),
        seed=seed, progress=echo, val_accuracy=val_accuracy, measure_remote=measure_remote,
        val_accuracy_tune=val_accuracy_tune,
    )
    for line in comparison_lines(manifest):
        echo(line)
    return manifest


def export_run(run_dir: Path, echo: Echo, *, baselines: bool = True, preset: str | None = None,
               seed: int = 0, threads: int = 1, unit: Path | None = None,
               max_front: int = ExportSettings().max_front, executor=None,
               passes: int = ExportSettings().passes) -> dict[str, Any]:
    """Export a search's Pareto front and baselines, re-measured (the body of `hwnas export`).

    `unit` is the folder holding search/ (a device's or a named search's, see
    `runners.layout`; default: the run folder); the export goes to UNIT/export/.
    `preset` names the measurement protocol; None: the one the predictor's profile was
    measured with (else the profile section's default). `executor`: the run's
    `ExecutorSettings`; with kind "ray" the models are measured on the Ray node advertising the
    device (`runners.remote.measure_on_ray`), as profiling and the matrix are.
    """
    import pandas as pd

    from hwprofiles import MeasureConfig, Profile
    from supernet import Arch

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserInputError(f"run folder {run_dir} does not exist")
    unit = run_dir if unit is None else Path(unit)
    pin_torch_threads(threads)
    front_path = unit / "search" / "front.csv"
    if not front_path.exists():
        raise UserInputError(f"{front_path} does not exist: run `hwnas search --run {run_dir}` first")
    supernet, meta = load_supernet(run_dir)
    task = task_from_meta(meta)
    record = unit / "search" / "search.json"
    if not record.exists():
        raise UserInputError(f"{record} does not exist: run `hwnas search --run {run_dir}` first")
    with user_errors(f"{record} is not a valid search record: ", catch=(ValueError, KeyError, TypeError, OSError)):
        searched = json.loads(record.read_text())
        predictor_path = run_dir / searched["predictor"]  # relative, or absolute
        tune = searched.get("accuracy_tune")  # how the search scored accuracy (None: inherited weights)
        split = accuracy_split(tune)
    predictor = load_predictor(predictor_path, space=supernet.space)
    with user_errors(f"{front_path} is not a valid front file: ", catch=(ValueError, KeyError)):
        archs = [Arch.from_json(a) for a in pd.read_csv(front_path)["arch"]]
    profile_dir = predictor_path.parent / "profile"  # the predictor's own profile, beside it
    if not (profile_dir / "profile.json").exists():
        profile_dir = unit / "profile"
    if preset is not None:
        measure = ProfileSettings(preset=preset).measure_config()
    elif (profile_dir / "profile.json").exists():
        with user_errors(catch=(ValueError, KeyError, TypeError)):
            measure = MeasureConfig(**Profile.load(profile_dir).meta["measure_config"])
    else:
        measure = ProfileSettings().measure_config()
    if max_front < 0:
        raise UserInputError(f"max_front must be >= 0 (0: the whole front), got {max_front}")
    from .exporting import export_protocol

    measure = export_protocol(measure, predictor.device.threads, passes)  # the remote measurer's too
    picked = spread_over_front(archs, predictor.predict_archs(archs), max_front)
    if len(picked) < len(archs):
        echo(f"exporting {len(picked)} of the {len(archs)} front models, spread over the front's latency "
             "([export] max_front, or hwnas export --max-front 0 for all)")
    from ._cache import CACHE_FILE, AccuracyCache, checkpoint_hash
    from .searching import tuned_kwargs, val_evaluator

    cache = AccuracyCache(run_dir / CACHE_FILE, checkpoint_hash(meta), split=split, examples=len(task.y_val))
    score = val_evaluator(supernet, task, tuned_kwargs(tune, searched.get("seed", 0)))

    def val_accuracy(models: list) -> Any:
        """Val accuracies as the search scored them: the searches' from the cache, the others
        (baselines) evaluated the same way, not stored."""
        import numpy as np

        keys = [a.to_json() for a in models]
        stored = cache.lookup(keys)
        missing = [i for i, k in enumerate(keys) if k not in stored]
        fresh = score([models[i] for i in missing])
        stored.update((keys[i], value) for i, value in zip(missing, fresh))
        return np.array([stored[k] for k in keys], dtype=float)
    measure_remote = None
    if executor is not None and executor.kind == "ray":
        from .remote import measure_on_ray

        def measure_remote(paths: list, models: list) -> tuple:
            return measure_on_ray([predictor.device], paths, models, run_dir / "supernet", task.spec, config=measure,
                                  seed=seed, address=executor.ray_address, num_cpus=executor.num_cpus)[0]
    return export_front(supernet, task, picked, predictor, unit / "export", baselines=baselines, measure=measure,
                        seed=seed, echo=echo, val_accuracy=val_accuracy, measure_remote=measure_remote,
                        val_accuracy_tune=tune, passes=passes)


def stage_export(state: RunState, echo: Echo) -> str:
    units = device_units(state.run_dir, state.config)
    lines = []
    for name, unit in units.items():
        if len(units) > 1 and (unit / "export" / "manifest.json").exists():
            lines.append(f"'{name}': already exported")
            continue
        manifest = export_run(state.run_dir, echo, baselines=state.config.export.baselines, seed=state.config.seed,
                              max_front=state.config.export.max_front, passes=state.config.export.passes,
                              threads=state.config.train.threads, unit=unit, executor=state.config.executor)
        front = [m for m in manifest["models"] if m["kind"] == "front"]
        off = sum(m["latency_off_by_more_than_10pct"] for m in front)
        summary = f"{len(front)} front models + {len(manifest['models']) - len(front)} baselines; {off} off by >10%"
        lines.append(summary if len(units) == 1 else f"'{name}': {summary}")
    return "; ".join(lines)


def stage_finetune(state: RunState, echo: Echo) -> str:
    from .finetune import comparison_lines, finetune_run, summary

    units = device_units(state.run_dir, state.config)
    lines = []
    for name, unit in units.items():
        if len(units) > 1:
            echo(f"device '{name}':")
        manifest = finetune_run(state.run_dir, state.config.finetune, echo, threads=state.config.train.threads,
                                unit=unit, train_device=state.config.train.device)
        for line in comparison_lines(manifest):
            echo(line)
        lines.append(summary(manifest) if len(units) == 1 else f"'{name}': {summary(manifest)}")
    return "; ".join(lines)


def stage_matrix(state: RunState, echo: Echo) -> str:
    from .matrix import measure_matrix

    matrix = measure_matrix(state.run_dir, state.config, device_units(state.run_dir, state.config), echo=echo)
    return f"{len(matrix['rows'])} measurements ({len(matrix['devices'])} fronts x {len(matrix['devices'])} devices)"


def stage_report(state: RunState, echo: Echo) -> str:
    from .report import write_report

    units = device_units(state.run_dir, state.config)
    if len(units) == 1:
        paths = write_report(state.run_dir)
        return f"{paths['markdown']} and {paths['html']}"
    from .matrix import write_cross_device_report

    for unit in units.values():
        write_report(unit)
    paths = write_cross_device_report(state.run_dir)
    return f"{paths['markdown']} and {paths['html']} (one report per device under devices/*/report/)"


_STAGE_FNS = {"train": stage_train, "profile": stage_profile, "fit-predictor": stage_fit,
              "search": stage_search, "export": stage_export, "finetune": stage_finetune, "matrix": stage_matrix,
              "report": stage_report}


def _stage_off(config: RunConfig, stage: str) -> str | None:
    """Why an optional stage does not run with `config` (None: it runs)."""
    if stage == "finetune" and not config.finetune.enabled:
        return ("off ([finetune] enabled = false in the config; `hwnas finetune --run RUN --epochs N` "
                "trains the exported models on)")
    if stage == "matrix" and len(config.profile.device_names()) == 1:
        return "off (one device: nothing to compare across devices)"
    return None


def run_pipeline(run_dir: Path, config: RunConfig | None, *, echo: Echo = print) -> RunState:
    """Run every unfinished stage in order; return the state with stage times.

    A new run's devices are checked first (known, not repeated, runnable on this machine):
    bad ones are refused before anything is written.
    """
    from .layout import check_devices

    if config is not None and read_run(run_dir) is None:
        check_devices(config.profile.device_names())
    state = open_run(run_dir, config)
    pin_torch_threads(state.config.train.threads)
    for stage in STAGES:
        off = _stage_off(state.config, stage)
        if off is not None:
            echo(f"[{stage}] {off}")  # nothing recorded: the stage never ran
            continue
        if state.done(stage):
            echo(f"[{stage}] already done ({state.stages[stage]['seconds']:.1f} s): {state.stages[stage]['summary']}")
            continue
        echo(f"[{stage}] ...")
        t0 = time.perf_counter()
        try:
            summary = _STAGE_FNS[stage](state, echo)
        except BaseException:
            state.interrupted(stage, time.perf_counter() - t0)
            raise
        state.finish(stage, time.perf_counter() - t0, summary)
        echo(f"[{stage}] done in {state.stages[stage]['seconds']:.1f} s: {summary}")
    total = sum(s["seconds"] for s in state.stages.values())
    echo(f"run finished: {state.run_dir} (stage times add up to {total:.1f} s)")
    return state


__all__ = ["RunState", "STAGES", "build_problem", "export_front", "export_run", "open_run", "read_run",
           "run_pipeline", "search_run"]
