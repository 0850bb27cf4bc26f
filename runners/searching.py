"""Searching a run's supernet: the search problem, `search_run` (the body of `hwnas search`)
and the pipeline's search stage (every device, side by side on Ray when it has room).

Every search reads and appends the run's accuracy cache (`runners._cache`), and writes its
files to a unit folder (`runners.layout`): the run, a device's folder or a named search's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ._errors import UserInputError, user_errors
from ._io import atomic_write_json
from .config import RunConfig
from .layout import device_units

if TYPE_CHECKING:
    from .pipeline import RunState

Echo = Callable[[str], None]


def build_problem(config: RunConfig, predictor, supernet, task, executor=None, cache=None):
    """The search problem of a run: accuracy (expensive, val split) plus cheap objectives.

    With `cache` (an `AccuracyCache`), accuracies already stored are read, not evaluated. With
    `[search] tune_steps`, each candidate is scored after a short fine-tune from its inherited
    weights (`supernet.tuned_accuracies`; the executor's workers do the same).
    """
    import search

    space = supernet.space
    evaluate = executor.evaluate if executor is not None else None
    if evaluate is None:
        evaluate = val_evaluator(supernet, task, tuned_kwargs(config.search.accuracy_tune(), config.seed))
    if cache is not None:
        evaluate = cache.wrap(evaluate)

    makers = {
        "accuracy": lambda: search.accuracy_objective(evaluate),
        "latency": lambda: search.latency_objective(predictor.predict_archs),
        "size": lambda: search.size_objective(space, task.spec),
        "flops": lambda: search.flops_objective(space, task.spec),
        "params": lambda: search.params_objective(space, task.spec),
    }
    objectives = [makers[name]() for name in config.search.objectives]
    constraints = []
    if config.search.max_latency_ms is not None:
        constraints.append(search.max_latency_constraint(predictor.predict_archs, config.search.max_latency_ms))
    if config.search.max_size_mb is not None:
        constraints.append(search.max_size_constraint(space, task.spec, config.search.max_size_mb))
    return search.SearchProblem(space, objectives, constraints)


def val_evaluator(supernet, task, tune: dict[str, Any] | None) -> Callable[[list], Any]:
    """Val accuracies of a list of architectures as a search scores them: inherited weights as
    they are, or with `tune` (`tuned_kwargs`) after that many fine-tuning updates each."""
    if tune is None:
        from supernet.evaluate import evaluate_archs

        return lambda archs: evaluate_archs(supernet, archs, task.x_val, task.y_val)
    from supernet.train import tuned_accuracies

    return lambda archs: tuned_accuracies(supernet, archs, task.x_train, task.y_train, task.x_val, task.y_val,
                                          **tune)


def tuned_kwargs(accuracy_tune: dict[str, Any] | None, seed: int) -> dict[str, Any] | None:
    """`supernet.tuned_accuracies`' settings for a search's `accuracy_tune` (steps, lr, batch
    size) and seed; None when the search scores inherited weights as they are."""
    return None if accuracy_tune is None else {**accuracy_tune, "seed": seed}


def _stored_path(path: Path, run_dir: Path) -> str:
    """`path` relative to the run folder when inside it (the folder stays movable), else absolute."""
    path, run_dir = Path(path).resolve(), Path(run_dir).resolve()
    return str(path.relative_to(run_dir)) if path.is_relative_to(run_dir) else str(path)


_SEARCH_IDENTITY = ("algorithm", "budget", "seed", "objectives", "max_latency_ms", "max_size_mb", "device",
                    "accuracy_tune")


def _refuse_another_search(out: Path, record: dict, name: str | None) -> None:
    """A folder that holds a search with other settings is left alone (its search.json too)."""
    path = out / "search.json"
    if not path.exists():
        return
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{path} is not a readable search record ({exc}); use another --name") from None
    differ = [f"{k}: {stored.get(k)!r} stored, {record[k]!r} given" for k in _SEARCH_IDENTITY
              if k in stored and stored.get(k) != record[k]]
    if differ:
        hint = "another --name" if name is not None else "a name for this one: hwnas search --name NAME"
        raise UserInputError(f"{out} holds a search with other settings ({', '.join(differ[:3])}); use {hint}")


def search_run(run_dir: Path, config: RunConfig, predictor_path: Path, echo: Echo, *,
               name: str | None = None, unit: Path | None = None, num_workers: int | None = None,
               progress_bar: bool = True) -> str:
    """Search for a run folder (also the body of `hwnas search`); write UNIT/search/.

    The unit is `unit`, else RUN/searches/<name>/ for a named search, else the run folder.
    Accuracies come from the run's accuracy cache where stored; search.json records the
    cache's hits and new evaluations. `num_workers`: Ray evaluation workers (default: the
    executor's num_cpus); `progress_bar` off for searches that run side by side.
    """
    from contextlib import nullcontext

    import search

    from ._cache import CACHE_FILE, AccuracyCache, checkpoint_hash
    from .layout import search_unit
    from .pipeline import load_predictor, load_supernet, pin_torch_threads, task_from_meta
    from .progress import search_progress

    run_dir = Path(run_dir)
    if unit is None:
        unit = search_unit(run_dir, name) if name is not None else run_dir
    pin_torch_threads(config.train.threads)
    supernet, meta = load_supernet(run_dir)
    task = task_from_meta(meta)
    predictor = load_predictor(predictor_path, space=supernet.space)
    with user_errors():
        algorithm = search.get_algorithm(config.search.algorithm)
    executor = None
    out = unit / "search"
    try:
        if config.executor.kind == "ray":
            from .executors import RayExecutor

            tune = tuned_kwargs(config.search.accuracy_tune(), config.seed)
            executor = RayExecutor(run_dir / "supernet", task.x_val, task.y_val,
                                   address=config.executor.ray_address,
                                   num_workers=num_workers or config.executor.num_cpus,
                                   num_cpus=config.executor.num_cpus, tune=tune,
                                   train=None if tune is None else (task.x_train, task.y_train))
        cache = AccuracyCache(run_dir / CACHE_FILE, checkpoint_hash(meta), split=config.search.accuracy_split(),
                              examples=len(task.y_val))
        problem = build_problem(config, predictor, supernet, task, executor, cache)
        with user_errors():
            search.check_feasible(problem)  # an impossible budget fails before anything is written
        record = {
            "predictor": _stored_path(predictor_path, run_dir), "algorithm": config.search.algorithm,
            "budget": config.search.budget, "seed": config.seed, "objectives": list(config.search.objectives),
            "max_latency_ms": config.search.max_latency_ms, "max_size_mb": config.search.max_size_mb,
            "executor": config.executor.kind, "task": task.record(), "name": name,
            "device": predictor.device.name, "accuracy_split": "val", "accuracy_examples": len(task.y_val),
            "accuracy_tune": config.search.accuracy_tune(),
        }
        _refuse_another_search(out, record, name)
        atomic_write_json(out / "search.json", record)
        with (search_progress(config.search.budget) if progress_bar else nullcontext()) as progress:
            with user_errors():
                result = search.run_search(problem, algorithm, budget=config.search.budget, seed=config.seed,
                                           out_dir=out, progress=progress)
        record["accuracy_cache"] = cache.summary()
        atomic_write_json(out / "search.json", record)
        echo(cache.line())
    finally:
        if executor is not None:
            executor.close()
    hv = result.hypervolume[-1] if len(result.hypervolume) else float("nan")
    summary = f"{len(result.candidates)} evaluated, {len(result.front)} on the front, hypervolume {hv:.4f}"
    if "accuracy" in result.candidates and len(result.candidates):
        from supernet import binomial_se

        acc, n = result.candidates["accuracy"], len(task.y_val)
        tune = config.search.accuracy_tune()
        scored = "" if tune is None else f", each after {tune['steps']} fine-tuning updates at lr {tune['lr']:g}"
        summary += (f"; val accuracies {100 * acc.min():.1f}-{100 * acc.max():.1f}%{scored} "
                    f"(± {100 * binomial_se(0.5, n):.1f} points at most: binomial SE on {n} examples)")
    return summary + f"; {cache.hits} accuracy cache hits, {cache.new} new evaluations"


def stage_search(state: RunState, echo: Echo) -> str:
    """Search every device. With the Ray executor and several devices, the searches run side by
    side on one Ray, sharing its CPUs (at least one evaluation worker each)."""
    c = state.config
    units = device_units(state.run_dir, c)
    if c.executor.kind == "ray" and len(units) > 1:
        return _searches_side_by_side(state, units, echo)
    lines = []
    for name, unit in units.items():
        summary = search_run(state.run_dir, c, unit / "predictor", echo, unit=unit)
        lines.append(summary if len(units) == 1 else f"'{name}': {summary}")
    return "; ".join(lines)


def _searches_side_by_side(state: RunState, units: dict[str, Path], echo: Echo) -> str:
    from concurrent.futures import ThreadPoolExecutor

    from .executors import ray_session

    c = state.config
    # one Ray for every search: their executors neither start nor stop it
    with ray_session(c.executor.ray_address, c.executor.num_cpus) as ray:
        workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // len(units))
        echo(f"searching {len(units)} devices side by side on Ray, {workers} evaluation worker(s) each")
        with ThreadPoolExecutor(max_workers=len(units)) as pool:
            futures = {name: pool.submit(search_run, state.run_dir, c, unit / "predictor", echo, unit=unit,
                                         num_workers=workers, progress_bar=False)
                       for name, unit in units.items()}
            summaries = {name: f.result() for name, f in futures.items()}
    return "; ".join(f"'{name}': {summary}" for name, summary in summaries.items()) + " (side by side)"


__all__ = ["build_problem", "search_run", "stage_search"]
