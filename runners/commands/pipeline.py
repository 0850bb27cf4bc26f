"""`hwnas run`, `hwnas search`, `hwnas export`, `hwnas report`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .._errors import UserInputError, user_errors
from ..config import DEFAULT_SEED, ExecutorSettings, ExportSettings, FinetuneSettings, SearchSettings, TaskSettings

RUN_HELP = "Run folder (created if missing; an existing one is resumed)."
_SEARCH, _EXECUTOR, _EXPORT = SearchSettings(), ExecutorSettings(), ExportSettings()


def _echo(message: str) -> None:
    typer.echo(message)


def _split(text: Optional[str]) -> Optional[list[str]]:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _require_run(run: Path) -> None:
    """A run folder must exist, and its run.json (when it has one) must be valid."""
    from ..pipeline import read_run

    if not run.is_dir():
        raise UserInputError(f"run folder {run} does not exist")
    read_run(run)


TUNE_HELP = ("Score each candidate after this many fine-tuning updates from its inherited weights (0: inherited "
             "weights as they are; 360 ranks the default task's subnets about as standalone training does, at "
             "about 20 s per candidate on one CPU core).")


def register(app: typer.Typer) -> None:
    @app.command()
    def run(
        run_dir: Path = typer.Option(Path("results/main"), "--run", help=RUN_HELP),
        config: Optional[Path] = typer.Option(None, "--config", help="TOML config; flags override it."),
        task: Optional[str] = typer.Option(None, help=f"Task (default: {TaskSettings().name}): mnist1d, recall, "
                                           "digits, mnist or npz:PATH."),
        task_option: Optional[list[str]] = typer.Option(None, "--task-option",
                                                        help="Task option KEY=VALUE (repeatable), e.g. samples=10000."),
        epochs: Optional[int] = typer.Option(None, help="Supernet training epochs."),
        device: Optional[str] = typer.Option(None, help="Device to profile and search for."),
        devices: Optional[str] = typer.Option(None, help="Several devices, comma-separated (e.g. cpu,torch-cpu): "
                                              "one supernet, one search and export per device, and the "
                                              "cross-device matrix."),
        adapt_from: Optional[str] = typer.Option(None, "--adapt-from",
                                                 help="With --devices: profile this device in full and adapt its "
                                                      "latency predictor to the others with a few measurements."),
        samples: Optional[int] = typer.Option(None, help="Subnets to profile."),
        algorithm: Optional[str] = typer.Option(None, help="Search algorithm."),
        budget: Optional[int] = typer.Option(None, help="Expensive evaluations in the search."),
        objectives: Optional[str] = typer.Option(None, help="Comma-separated, e.g. accuracy,latency,size."),
        max_latency_ms: Optional[float] = typer.Option(None, help="Latency budget (predicted, ms)."),
        max_size_mb: Optional[float] = typer.Option(None, help="Model size budget (MB)."),
        tune_steps: Optional[int] = typer.Option(None, help=TUNE_HELP),
        executor: Optional[str] = typer.Option(None, help="local or ray."),
        ray_address: Optional[str] = typer.Option(None, help="Join this Ray cluster instead of starting one."),
        finetune: Optional[bool] = typer.Option(None, "--finetune/--no-finetune",
                                                help="Run the finetune stage (config: finetune.enabled; default: "
                                                     f"{'on' if FinetuneSettings().enabled else 'off'})."),
        seed: Optional[int] = typer.Option(None, help="Seed of every stage."),
    ) -> None:
        """The main job: train, profile, fit the latency predictor, search, export, report."""
        from ..config import load_config, parse_task_options
        from ..pipeline import open_run, read_run, run_pipeline

        flags = {"task.name": task, "task.options": parse_task_options(task_option), "train.epochs": epochs,
                 "profile.device": device, "profile.devices": _split(devices), "profile.adapt_from": adapt_from,
                 "profile.samples": samples, "search.algorithm": algorithm, "search.budget": budget,
                 "search.objectives": _split(objectives),
                 "search.max_latency_ms": max_latency_ms, "search.max_size_mb": max_size_mb,
                 "search.tune_steps": tune_steps,
                 "executor.kind": executor, "executor.ray_address": ray_address, "finetune.enabled": finetune,
                 "seed": seed}
        stored = read_run(run_dir)
        if stored is not None and config is None and all(v is None for v in flags.values()):
            cfg = None  # resume with the stored settings
        else:
            # flags override the --config file, else the stored run's settings, else the defaults
            base = stored.config if stored is not None and config is None else load_config(config)
            cfg = base.with_overrides(**flags)
            _validate_names(cfg)
        state = open_run(run_dir, cfg)
        run_pipeline(state.run_dir, state.config, echo=_echo)

    @app.command()
    def search(
        run_dir: Path = typer.Option(..., "--run", help="Run folder holding supernet/ (from `hwnas train`)."),
        predictor: Path = typer.Option(..., help="Latency predictor (from `hwnas fit-predictor`)."),
        objectives: str = typer.Option(",".join(_SEARCH.objectives), help="Comma-separated objectives."),
        algorithm: str = typer.Option(_SEARCH.algorithm, help="Search algorithm."),
        budget: int = typer.Option(_SEARCH.budget, help="Expensive evaluations (never exceeded)."),
        max_latency_ms: Optional[float] = typer.Option(None, help="Latency budget (predicted, ms)."),
        max_size_mb: Optional[float] = typer.Option(None, help="Model size budget (MB)."),
        tune_steps: int = typer.Option(_SEARCH.tune_steps, help=TUNE_HELP),
        tune_lr: float = typer.Option(_SEARCH.tune_lr, help="Peak learning rate of that fine-tune."),
        executor: str = typer.Option(_EXECUTOR.kind, help="local or ray."),
        ray_address: Optional[str] = typer.Option(None, help="Join this Ray cluster instead of starting one."),
        name: Optional[str] = typer.Option(None, help="Name a new search: written to RUN/searches/NAME/ (the run's "
                                           "accuracy cache is shared); without it, RUN/search/."),
        seed: int = typer.Option(DEFAULT_SEED, help="Seed."),
    ) -> None:
        """Search the run's supernet for the predictor's device; writes RUN/search/ or RUN/searches/NAME/."""
        from ..config import RunConfig
        from ..pipeline import search_run

        _require_run(run_dir)
        cfg = RunConfig(seed=seed).with_overrides(**{
            "search.objectives": _split(objectives), "search.algorithm": algorithm, "search.budget": budget,
            "search.max_latency_ms": max_latency_ms, "search.max_size_mb": max_size_mb,
            "search.tune_steps": tune_steps, "search.tune_lr": tune_lr,
            "executor.kind": executor, "executor.ray_address": ray_address})
        _validate_names(cfg, task=False)  # the search uses the task the checkpoint was trained on
        typer.echo(search_run(run_dir, cfg, predictor, _echo, name=name))

    @app.command()
    def export(
        run_dir: Path = typer.Option(..., "--run", help="Run folder with a finished search."),
        baselines: bool = typer.Option(_EXPORT.baselines, help="Also export uniform hand-designed baselines."),
        max_front: int = typer.Option(_EXPORT.max_front, help="Front models to export, spread over the front's "
                                      "latency (0: all)."),
        preset: Optional[str] = typer.Option(None, help="Measurement preset (default: the profile's protocol)."),
        passes: int = typer.Option(_EXPORT.passes, help="Passes over the exported models, pooled (at least: a "
                                   "device measured in more passes keeps its count)."),
        seed: int = typer.Option(DEFAULT_SEED, help="Seed of the measurement order."),
        search: Optional[str] = typer.Option(None, "--search", help="Export the named search (RUN/searches/NAME/)."),
        device: Optional[str] = typer.Option(None, "--device", help="Export this device's search in a run with "
                                             "several devices (RUN/devices/NAME/)."),
    ) -> None:
        """Export the Pareto front to ONNX, re-measure latency, re-evaluate accuracy; write the manifest."""
        from ..layout import resolve_unit
        from ..pipeline import export_run

        _require_run(run_dir)
        unit = resolve_unit(run_dir, search=search, device=device)
        export_run(run_dir, _echo, baselines=baselines, preset=preset, seed=seed, unit=unit, max_front=max_front,
                   passes=passes)
        typer.echo(f"manifest: {unit / 'export' / 'manifest.json'}")

    @app.command()
    def report(
        run_dir: Path = typer.Option(..., "--run", help="Run folder with an export manifest."),
        search: Optional[str] = typer.Option(None, "--search", help="Report the named search (RUN/searches/NAME/)."),
        device: Optional[str] = typer.Option(None, "--device", help="Report one device of a run with several."),
    ) -> None:
        """Write the Pareto plot, hypervolume plot, tables, markdown and HTML report."""
        from ..layout import resolve_unit
        from ..report import write_report

        _require_run(run_dir)
        if search is None and device is None and (run_dir / "matrix.json").exists():
            from ..matrix import write_cross_device_report

            paths = write_cross_device_report(run_dir)  # the run's devices: the matrix and their reports linked
        else:
            paths = write_report(resolve_unit(run_dir, search=search, device=device))
        for kind, path in paths.items():
            typer.echo(f"{kind}: {path}")


def _validate_names(cfg, *, task: bool = True) -> None:
    """Fail on unknown task (with `task`), device or algorithm names before any stage starts."""
    import search
    from hwprofiles import get_device

    from supernet.tasks import task_names

    from ..pipeline import load_task

    name = cfg.task.name
    if task and not name.startswith("npz:") and name not in task_names():
        raise UserInputError(f"unknown task {name!r}; known: {task_names()} or npz:PATH")
    if task:
        load_task(cfg)  # bad task options fail here, before the run folder is made
    from ..layout import check_devices

    with user_errors():
        get_device(cfg.profile.device)
    check_devices(cfg.profile.device_names())  # known, not repeated, runnable here
    if cfg.search.algorithm not in search.algorithm_names():
        raise UserInputError(f"unknown search algorithm {cfg.search.algorithm!r}; known: {search.algorithm_names()}")
