"""`run_search`: `optimize` plus files, resume and the hypervolume history.

Resume: `state.json` in the output folder lists every finished expensive evaluation and
is replaced atomically after each one. A resumed search re-runs the (deterministic)
algorithm from the start and answers the stored architectures from that list instead of
evaluating them again, so it ends exactly where an uninterrupted run with the same seed
would, having lost no evaluation.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from supernet import atomic_write

from ._base import Algorithm
from ._optimize import EvaluateBatch, OptimizeResult, check_search_args, evaluate_serial, expensive_columns, optimize
from ._pareto import HypervolumeTracker
from ._problem import SearchProblem
from ._space import ArchLike, arch_json

SCHEMA_VERSION = 1
STATE_FILE = "state.json"
CANDIDATES_FILE = "candidates.parquet"
FRONT_FILE = "front.csv"
HYPERVOLUME_FILE = "hypervolume.csv"

Progress = Callable[[int, int, float], None]


@dataclass
class SearchResult:
    """Every evaluated candidate, the feasible Pareto front and the hypervolume history.

    `candidates` columns: evaluation (0-based), arch (JSON), genome (JSON list), one
    column per objective and `<name>_source` ("measured", "predicted" or "analytic"),
    one column per constraint (feasible when <= 0), feasible, eval_seconds (time of the
    expensive evaluation; a batch evaluated together shares its time equally) and
    elapsed_s (search time when the evaluation finished). `hypervolume[i]` is the
    hypervolume (normalised objectives, reference point 1.1 each) after evaluation i.
    """

    candidates: pd.DataFrame
    front: pd.DataFrame
    hypervolume: list[float]
    stop_reason: str
    n_screened: int  # proposals a constraint ruled out before any expensive evaluation
    eval_seconds: float  # sum of the candidates' eval_seconds
    algorithm_seconds: float  # this session's time outside expensive evaluation
    archs: list[ArchLike] = field(repr=False)
    F: np.ndarray = field(repr=False)  # normalised minimisation values, one row per candidate


def run_search(problem: SearchProblem, algorithm: Algorithm, *, budget: int, seed: int,
               out_dir: Path | str | None = None, progress: Progress | None = None,
               evaluate_batch: EvaluateBatch | None = None) -> SearchResult:
    """Search `problem` with `algorithm` for at most `budget` expensive evaluations.

    Raises ValueError before spending any budget when no architecture can meet the
    constraints. With `out_dir`, writes candidates.parquet, front.csv, hypervolume.csv
    and state.json (and the algorithm's own files) after every batch, and resumes from
    them when they are already there. `progress(n_evaluated, budget, hypervolume)` is
    called after each evaluation. `evaluate_batch(problem, archs) -> {objective name:
    values}` replaces the default in-process evaluation, e.g. to evaluate a batch in
    parallel. Neither `problem` nor `algorithm` is modified.
    """
    budget, seed = check_search_args(algorithm, budget, seed)
    return _Session(problem, algorithm, budget, seed, out_dir=out_dir, progress=progress,
                    evaluate_batch=evaluate_batch).run()


class _Session:
    """One call of run_search: stored evaluations, candidate rows and output files."""

    def __init__(self, problem: SearchProblem, algorithm: Algorithm, budget: int, seed: int, *,
                 out_dir: Path | str | None, progress: Progress | None,
                 evaluate_batch: EvaluateBatch | None) -> None:
        self.problem, self.algorithm, self.budget, self.seed = problem, algorithm, budget, seed
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.progress, self.evaluate_batch = progress, evaluate_batch
        self.expensive_names = [o.name for o in problem.expensive]
        self.stored: dict[str, dict[str, Any]] = {}  # arch JSON -> its record in state.json
        self.records: list[dict[str, Any]] = []  # what state.json lists
        self.rows: list[dict[str, Any]] = []
        self.hypervolume: list[float] = []
        self.tracker = HypervolumeTracker(problem.n_objectives)
        self.fresh_eval_seconds = 0.0
        self.offset = 0.0  # elapsed search time before this session (resume)
        self.start = time.perf_counter()

    # ----------------------------------------------------------------- state
    def _identity(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm.name,
                "settings": json.loads(json.dumps(self.algorithm.settings, sort_keys=True, default=repr)),
                "seed": self.seed, "problem": self.problem.signature()}

    def _load_state(self) -> None:
        if self.out_dir is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / STATE_FILE
        if not path.exists():
            return
        try:
            state = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read the search state {path}: {exc}") from exc
        if state.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{path} has schema version {state.get('schema_version')!r}, expected {SCHEMA_VERSION}")
        for key, value in self._identity().items():
            if state.get(key) != value:
                raise ValueError(f"{self.out_dir} holds a search with a different {key} "
                                 f"({state.get(key)!r}, now {value!r}); use another out_dir to start a new one")
        self.records = list(state["evaluations"])
        self.stored = {rec["arch"]: rec for rec in self.records}
        self.offset = max((rec.get("elapsed_s", 0.0) for rec in self.records), default=0.0)

    def _save_state(self) -> None:
        if self.out_dir is None:
            return
        state = {"schema_version": SCHEMA_VERSION, **self._identity(), "budget": self.budget,
                 "evaluations": self.records}
        atomic_write(self.out_dir / STATE_FILE, lambda p: p.write_text(json.dumps(state, indent=1)))

    def _write_outputs(self, result: SearchResult) -> None:
        if self.out_dir is None:
            return
        atomic_write(self.out_dir / CANDIDATES_FILE, lambda p: result.candidates.to_parquet(p, index=False))
        atomic_write(self.out_dir / FRONT_FILE, lambda p: result.front.to_csv(p, index=False))
        hv = pd.DataFrame({"evaluation": np.arange(len(result.hypervolume)), "hypervolume": result.hypervolume})
        atomic_write(self.out_dir / HYPERVOLUME_FILE, lambda p: hv.to_csv(p, index=False))

    # ----------------------------------------------------------------- evaluation
    def _evaluate(self, problem: SearchProblem, archs: list[ArchLike]) -> dict[str, np.ndarray]:
        """Expensive values (stored ones replayed), saving the state after each evaluation."""
        keys = [arch_json(a) for a in archs]
        new = [(a, k) for a, k in zip(archs, keys) if k not in self.stored]
        if self.evaluate_batch is None:
            groups = [[pair] for pair in new]  # one at a time: a kill loses at most the one in flight
        else:
            groups = [new] if new else []
        for group in groups:
            batch = [a for a, _ in group]
            start = time.perf_counter()
            values = expensive_columns(problem, (self.evaluate_batch or evaluate_serial)(problem, batch), batch)
            seconds = time.perf_counter() - start
            self.fresh_eval_seconds += seconds
            for (_, key), row in zip(group, values):
                rec = {"arch": key, "values": [float(v) for v in row], "eval_seconds": seconds / len(group)}
                self.stored[key] = rec
                self.records.append(rec)
            self._save_state()
        stored = np.array([self.stored[k]["values"] for k in keys], dtype=np.float64).reshape(len(archs), -1)
        return {name: stored[:, j] for j, name in enumerate(self.expensive_names)}

    def _on_batch(self, so_far: OptimizeResult) -> None:
        """Rows, hypervolume and progress of the new evaluations; then the files."""
        elapsed = time.perf_counter() - self.start + self.offset
        for i in range(len(self.rows), len(so_far.archs)):
            self._add_row(so_far, i, elapsed)
        self._save_state()
        if self.out_dir is not None:
            self._write_outputs(self._result(so_far))

    def _add_row(self, so_far: OptimizeResult, i: int, elapsed: float) -> None:
        arch, raw, g, f = so_far.archs[i], so_far.values[i], so_far.G[i], so_far.F[i]
        key = arch_json(arch)
        rec = self.stored.get(key, {"eval_seconds": 0.0})  # no expensive objective: nothing stored
        row: dict[str, Any] = {"evaluation": i, "arch": key,
                               "genome": json.dumps(self.problem.space.encode(arch).tolist())}
        for o, v in zip(self.problem.objectives, raw):
            row[o.name], row[f"{o.name}_source"] = float(v), o.source
        for c, v in zip(self.problem.constraints, g):
            row[c.name] = float(v)
        ok = bool(so_far.feasible[i])
        row.update(feasible=ok, eval_seconds=float(rec["eval_seconds"]),
                   elapsed_s=float(rec.get("elapsed_s", elapsed)))
        if key in self.stored:
            rec.setdefault("elapsed_s", row["elapsed_s"])
        self.rows.append(row)
        self.hypervolume.append(self.tracker.add(f) if ok else self.tracker.value)
        if self.progress is not None:
            self.progress(len(self.rows), self.budget, self.tracker.value)

    # ----------------------------------------------------------------- loop
    def run(self) -> SearchResult:
        self._load_state()
        self.start = time.perf_counter()
        found = optimize(self.problem, self.algorithm, self.budget, self.seed,
                         evaluate_batch=self._evaluate if self.expensive_names else None,
                         callback=self._on_batch, workdir=self.out_dir)
        result = self._result(found)
        self._save_state()
        self._write_outputs(result)
        return result

    def _result(self, found: OptimizeResult) -> SearchResult:
        names = ["evaluation", "arch", "genome"]
        for o in self.problem.objectives:
            names += [o.name, f"{o.name}_source"]
        names += [c.name for c in self.problem.constraints] + ["feasible", "eval_seconds", "elapsed_s"]
        candidates = pd.DataFrame(self.rows, columns=names)
        on_front = np.zeros(len(found.archs), dtype=bool)
        on_front[found.front] = True
        front = candidates[on_front].sort_values(self.problem.objectives[0].name).reset_index(drop=True)
        wall = time.perf_counter() - self.start
        return SearchResult(candidates=candidates, front=front, hypervolume=list(self.hypervolume),
                            stop_reason=found.stop_reason, n_screened=found.n_screened,
                            eval_seconds=float(candidates["eval_seconds"].sum()),
                            algorithm_seconds=wall - self.fresh_eval_seconds,
                            archs=list(found.archs), F=found.F)
