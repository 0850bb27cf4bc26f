"""`run_search`: drive an algorithm through ask/tell on a problem within a budget.

The budget counts expensive evaluations (architectures whose expensive objectives are
computed; with no expensive objective, every evaluated architecture). The runner caches
every architecture it has seen, so none is evaluated twice; it computes cheap objectives
and constraints first and never spends budget on an architecture a constraint rules out.

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
from supernet.space import Arch

from ._base import Algorithm
from ._pareto import HypervolumeTracker, non_dominated
from ._problem import PENALTY, SearchProblem, call_batch, check_feasible, check_values

SCHEMA_VERSION = 1
STATE_FILE = "state.json"
CANDIDATES_FILE = "candidates.parquet"
FRONT_FILE = "front.csv"
HYPERVOLUME_FILE = "hypervolume.csv"
MAX_IDLE_BATCHES = 20  # batches in a row with no new evaluation before the search stops

Progress = Callable[[int, int, float], None]
EvaluateBatch = Callable[[SearchProblem, list[Arch]], dict[str, np.ndarray]]


def evaluate_serial(problem: SearchProblem, archs: list[Arch]) -> dict[str, np.ndarray]:
    """The default evaluation: each expensive objective's fn on the batch, in this process."""
    return {o.name: call_batch(f"objective {o.name!r}", o.fn, archs) for o in problem.expensive}


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
    archs: list[Arch] = field(repr=False)
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
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"budget must be a positive integer, got {budget!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(algorithm, Algorithm):
        raise ValueError(f"algorithm must be an Algorithm (see search.get_algorithm), got {type(algorithm).__name__}")
    check_feasible(problem)
    return _Search(problem, algorithm, int(budget), int(seed), out_dir=out_dir, progress=progress,
                   evaluate_batch=evaluate_batch).run()


class _Search:
    def __init__(self, problem: SearchProblem, algorithm: Algorithm, budget: int, seed: int, *,
                 out_dir: Path | str | None, progress: Progress | None, evaluate_batch: EvaluateBatch | None,
                 inner: bool = False) -> None:
        self.problem, self.budget, self.seed = problem, budget, seed
        self.algorithm = algorithm.fresh()
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.progress, self.evaluate_batch = progress, evaluate_batch
        self.inner = inner  # a search inside another (linas): no rows, hypervolume or files
        self.names = [o.name for o in problem.objectives]
        self.expensive_names = [o.name for o in problem.expensive]
        self.cheap_values: dict[Arch, np.ndarray] = {}  # arch -> cheap objective values
        self.constraint_rows: dict[Arch, np.ndarray] = {}
        self.evaluated: dict[Arch, int] = {}  # arch -> evaluation index
        self.rows: list[dict[str, Any]] = []
        self.F: list[np.ndarray] = []
        self.hypervolume: list[float] = []
        self.tracker = HypervolumeTracker(problem.n_objectives)
        self.stored: dict[Arch, dict[str, Any]] = {}
        self.records: list[dict[str, Any]] = []  # what state.json lists
        self.n_screened = 0
        self.fresh_eval_seconds = 0.0
        self.offset = 0.0  # elapsed search time before this session (resume)

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
        mine = self._identity()
        for key, value in mine.items():
            if state.get(key) != value:
                raise ValueError(f"{self.out_dir} holds a search with a different {key} "
                                 f"({state.get(key)!r}, now {value!r}); use another out_dir to start a new one")
        self.records = list(state["evaluations"])
        for rec in self.records:
            self.stored[Arch.from_json(rec["arch"])] = rec
        self.offset = max((rec.get("elapsed_s", 0.0) for rec in state["evaluations"]), default=0.0)

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
    def _screen(self, archs: list[Arch]) -> None:
        """Cheap objectives and constraints of the architectures not seen before."""
        new = [a for a in archs if a not in self.cheap_values]
        if not new:
            return
        cols = [call_batch(f"objective {o.name!r}", o.fn, new) for o in self.problem.cheap]
        cheap = np.stack(cols, axis=1) if cols else np.zeros((len(new), 0))
        g = self.problem.constraint_values(new)
        for a, c, row in zip(new, cheap, g):
            self.cheap_values[a], self.constraint_rows[a] = c, row
            self.n_screened += int(np.any(row > 0))

    def _feasible(self, arch: Arch) -> bool:
        return bool(np.all(self.constraint_rows[arch] <= 0))

    def _expensive(self, archs: list[Arch]) -> dict[Arch, dict[str, Any]]:
        """Expensive values (stored ones replayed), saving the state after each evaluation."""
        out = {a: self.stored[a] for a in archs if a in self.stored}
        new = [a for a in archs if a not in out]
        if not self.expensive_names:
            for a in new:
                out[a] = {"values": [], "eval_seconds": 0.0}
            new = []
        if self.evaluate_batch is None:
            groups = [[a] for a in new]  # one at a time: a kill loses at most the one in flight
        else:
            groups = [new] if new else []
        for group in groups:
            start = time.perf_counter()
            values = (evaluate_serial if self.evaluate_batch is None else self.evaluate_batch)(self.problem, group)
            seconds = time.perf_counter() - start
            self.fresh_eval_seconds += seconds
            cols = []
            for name in self.expensive_names:
                if name not in values:
                    raise ValueError(f"evaluate_batch returned no values for objective {name!r}")
                cols.append(check_values(f"evaluate_batch for {name!r}", values[name], group))
            for i, a in enumerate(group):
                rec = {"arch": a.to_json(), "values": [float(c[i]) for c in cols],
                       "eval_seconds": seconds / len(group)}
                out[a] = rec
                self.stored[a] = rec
            self.records += [out[a] for a in group]
            self._save_state()
        return out

    def _record(self, arch: Arch, rec: dict[str, Any], elapsed: float) -> None:
        values = dict(zip(self.expensive_names, rec["values"]))
        cheap = dict(zip([o.name for o in self.problem.cheap], self.cheap_values[arch]))
        raw = np.array([values[n] if n in values else cheap[n] for n in self.names])
        f = self.problem.normalise(raw[None, :])[0]
        index = len(self.F)
        if self.inner:  # needs only archs and values
            self.F.append(f)
            self.evaluated[arch] = index
            return
        row: dict[str, Any] = {"evaluation": index, "arch": arch.to_json(),
                               "genome": json.dumps(self.problem.space.encode(arch).tolist())}
        for o, v in zip(self.problem.objectives, raw):
            row[o.name], row[f"{o.name}_source"] = float(v), o.source
        for c, v in zip(self.problem.constraints, self.constraint_rows[arch]):
            row[c.name] = float(v)
        row.update(feasible=self._feasible(arch), eval_seconds=float(rec["eval_seconds"]),
                   elapsed_s=float(rec.get("elapsed_s", elapsed)))
        rec.setdefault("elapsed_s", row["elapsed_s"])
        self.rows.append(row)
        self.F.append(f)
        self.evaluated[arch] = index
        self.hypervolume.append(self.tracker.add(f) if row["feasible"] else self.tracker.value)
        if self.progress is not None:
            self.progress(len(self.rows), self.budget, self.tracker.value)

    def _told_values(self, archs: list[Arch]) -> tuple[np.ndarray, np.ndarray]:
        F = np.empty((len(archs), self.problem.n_objectives))
        exp_cols = [i for i, o in enumerate(self.problem.objectives) if o.expensive]
        cheap_cols = [i for i, o in enumerate(self.problem.objectives) if not o.expensive]
        for k, a in enumerate(archs):
            if a in self.evaluated:
                F[k] = self.F[self.evaluated[a]]
            else:  # ruled out by a constraint: cheap values are real, expensive ones a penalty
                raw = np.zeros(self.problem.n_objectives)
                raw[cheap_cols] = self.cheap_values[a]
                F[k] = self.problem.normalise(raw[None, :])[0]
                F[k, exp_cols] = PENALTY
        G = np.array([self.constraint_rows[a] for a in archs]).reshape(len(archs), self.problem.n_constraints)
        return F, G

    # ----------------------------------------------------------------- loop
    def run(self) -> SearchResult:
        self._load_state()
        start = time.perf_counter()
        self.algorithm.setup(self.problem, seed=self.seed, workdir=self.out_dir)
        space, idle, stop_reason = self.problem.space, 0, "budget spent"
        while len(self.F) < self.budget:
            asked = self.algorithm.ask()
            if not asked:
                stop_reason = "the algorithm had nothing new to propose (space exhausted or converged)"
                break
            archs = list(dict.fromkeys(space.validate(a) for a in asked))
            self._screen(archs)
            fresh = [a for a in archs if a not in self.evaluated and self._feasible(a)]
            fresh = fresh[: self.budget - len(self.F)]
            truncated = set(a for a in archs if a not in self.evaluated and self._feasible(a)) - set(fresh)
            if fresh:
                idle = 0
                values = self._expensive(fresh)
                for a in fresh:
                    self._record(a, values[a], time.perf_counter() - start + self.offset)
            else:
                idle += 1
            told = [a for a in archs if a not in truncated]
            self.algorithm.tell(told, *self._told_values(told))
            if self.out_dir is not None:
                self._save_state()
                self._write_outputs(self._result(stop_reason, start))
            if len(self.cheap_values) >= space.size:
                stop_reason = f"every architecture of the space ({space.size}) has been seen"
                break
            if idle >= MAX_IDLE_BATCHES:
                stop_reason = (f"stopped after {idle} batches in a row brought no new feasible architecture "
                               f"({self.n_screened} proposals ruled out by constraints so far)")
                break
        if not self.F:
            raise ValueError(f"the search evaluated no architecture: {stop_reason}; "
                             f"{self.n_screened} proposals were ruled out by the constraints")
        result = self._result(stop_reason, start)
        self._write_outputs(result)
        return result

    def _result(self, stop_reason: str, start: float) -> SearchResult:
        names = ["evaluation", "arch", "genome"]
        for o in self.problem.objectives:
            names += [o.name, f"{o.name}_source"]
        names += [c.name for c in self.problem.constraints] + ["feasible", "eval_seconds", "elapsed_s"]
        candidates = pd.DataFrame(self.rows, columns=names)
        F = np.array(self.F).reshape(len(self.F), self.problem.n_objectives)
        if self.inner:  # evaluated architectures are all feasible
            return SearchResult(candidates=candidates, front=candidates, hypervolume=[], stop_reason=stop_reason,
                                n_screened=self.n_screened, eval_seconds=0.0, algorithm_seconds=0.0,
                                archs=list(self.evaluated), F=F)
        feasible = candidates["feasible"].to_numpy(dtype=bool)
        on_front = np.zeros(len(F), dtype=bool)
        if feasible.any():
            on_front[np.flatnonzero(feasible)[non_dominated(F[feasible])]] = True
        front = candidates[on_front].sort_values(self.names[0]).reset_index(drop=True)
        wall = time.perf_counter() - start
        return SearchResult(candidates=candidates, front=front, hypervolume=list(self.hypervolume),
                            stop_reason=stop_reason, n_screened=self.n_screened,
                            eval_seconds=float(candidates["eval_seconds"].sum()),
                            algorithm_seconds=wall - self.fresh_eval_seconds,
                            archs=list(self.evaluated), F=F)
