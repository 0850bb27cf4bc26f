"""`optimize`: the ask/tell loop that drives an algorithm on a problem within a budget.

The budget counts expensive evaluations (architectures whose expensive objectives are
computed; with no expensive objective, every evaluated architecture). The loop caches
every architecture it has seen, so none is evaluated twice; it computes cheap objectives
and constraints first and never spends budget on an architecture a constraint rules out.
`run_search` adds files, resume and the hypervolume history on top; linas runs its
inner searches with it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ._base import Algorithm
from ._pareto import non_dominated
from ._problem import PENALTY, SearchProblem, call_batch, check_feasible, check_values, feasible
from ._space import ArchLike, space_size, validate_arch

MAX_IDLE_BATCHES = 20  # batches in a row with no new evaluation before the search stops

EvaluateBatch = Callable[[SearchProblem, list[ArchLike]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class OptimizeResult:
    """Every architecture a search evaluated, in order, with its values.

    `values` (n, n_objectives) are raw objective values, `F` the same in normalised
    minimisation form (`SearchProblem.normalise`), `G` (n, n_constraints) the constraint
    values (feasible when all <= 0). `n_screened` counts proposals a constraint ruled out
    before any expensive evaluation.
    """

    archs: list[ArchLike]
    values: np.ndarray
    F: np.ndarray
    G: np.ndarray
    stop_reason: str
    n_screened: int

    @property
    def feasible(self) -> np.ndarray:
        return feasible(self.G)

    @property
    def front(self) -> np.ndarray:
        """Indices of the feasible evaluations no other feasible one dominates."""
        ok = np.flatnonzero(self.feasible)
        return ok[non_dominated(self.F[ok])] if ok.size else ok


def evaluate_serial(problem: SearchProblem, archs: list[ArchLike]) -> dict[str, np.ndarray]:
    """The default evaluation: each expensive objective's fn on the batch, in this process."""
    return {o.name: call_batch(f"objective {o.name!r}", o.fn, archs) for o in problem.expensive}


def expensive_columns(problem: SearchProblem, values: dict[str, Any], archs: list[ArchLike]) -> np.ndarray:
    """What an `evaluate_batch` returned as (n, n_expensive) finite values, in the problem's
    order, or a ValueError naming the missing or bad objective."""
    cols = []
    for o in problem.expensive:
        if o.name not in values:
            raise ValueError(f"evaluate_batch returned no values for objective {o.name!r}")
        cols.append(check_values(f"evaluate_batch for {o.name!r}", values[o.name], archs))
    return np.stack(cols, axis=1) if cols else np.zeros((len(archs), 0))


def check_search_args(algorithm: Any, budget: Any, seed: Any) -> tuple[int, int]:
    """(budget, seed) as ints, or a ValueError stating the rule and the value."""
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"budget must be a positive integer, got {budget!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(algorithm, Algorithm):
        raise ValueError(f"algorithm must be an Algorithm (see search.get_algorithm), got {type(algorithm).__name__}")
    return int(budget), int(seed)


def optimize(problem: SearchProblem, algorithm: Algorithm, budget: int, seed: int, *,
             evaluate_batch: EvaluateBatch | None = None,
             callback: Callable[[OptimizeResult], None] | None = None,
             workdir: Path | None = None) -> OptimizeResult:
    """Search `problem` with `algorithm` for at most `budget` expensive evaluations.

    Raises ValueError before spending any budget when no architecture can meet the
    constraints, and when the search ends without evaluating anything. `evaluate_batch(
    problem, archs) -> {objective name: values}` replaces `evaluate_serial` (e.g. to
    evaluate a batch in parallel, or to answer stored values); `callback(result_so_far)`
    runs after each batch that brought new evaluations; `workdir` is handed to the
    algorithm for its own files.
    Neither `problem` nor `algorithm` is modified.
    """
    budget, seed = check_search_args(algorithm, budget, seed)
    check_feasible(problem)
    return _Loop(problem, algorithm.fresh(), budget, evaluate_batch, callback).run(seed, workdir)


class _Loop:
    def __init__(self, problem: SearchProblem, algorithm: Algorithm, budget: int,
                 evaluate_batch: EvaluateBatch | None, callback: Callable[[OptimizeResult], None] | None) -> None:
        self.problem, self.algorithm, self.budget = problem, algorithm, budget
        self.evaluate_batch, self.callback = evaluate_batch or evaluate_serial, callback
        self.expensive_cols = [i for i, o in enumerate(problem.objectives) if o.expensive]
        self.cheap_cols = [i for i, o in enumerate(problem.objectives) if not o.expensive]
        self.cheap: dict[ArchLike, np.ndarray] = {}  # arch -> cheap objective values
        self.g: dict[ArchLike, np.ndarray] = {}  # arch -> constraint values
        self.index: dict[ArchLike, int] = {}  # arch -> evaluation index
        self.archs: list[ArchLike] = []
        self.values: list[np.ndarray] = []
        self.F: list[np.ndarray] = []
        self.n_screened = 0

    def _screen(self, archs: list[ArchLike]) -> None:
        """Cheap objectives and constraints of the architectures not seen before."""
        new = [a for a in archs if a not in self.cheap]
        if not new:
            return
        cols = [call_batch(f"objective {o.name!r}", o.fn, new) for o in self.problem.cheap]
        cheap = np.stack(cols, axis=1) if cols else np.zeros((len(new), 0))
        g = self.problem.constraint_values(new)
        for a, c, row, ok in zip(new, cheap, g, feasible(g)):
            self.cheap[a], self.g[a] = c, row
            self.n_screened += int(not ok)

    def _expensive(self, archs: list[ArchLike]) -> np.ndarray:
        if not self.expensive_cols:
            return np.zeros((len(archs), 0))
        return expensive_columns(self.problem, self.evaluate_batch(self.problem, list(archs)), archs)

    def _record(self, archs: list[ArchLike], expensive: np.ndarray) -> None:
        raw = np.zeros((len(archs), self.problem.n_objectives))
        raw[:, self.expensive_cols] = expensive
        raw[:, self.cheap_cols] = np.array([self.cheap[a] for a in archs]).reshape(len(archs), -1)
        for a, v, f in zip(archs, raw, self.problem.normalise(raw)):
            self.index[a] = len(self.archs)
            self.archs.append(a)
            self.values.append(v)
            self.F.append(f)

    def _told(self, archs: list[ArchLike]) -> tuple[np.ndarray, np.ndarray]:
        F = np.empty((len(archs), self.problem.n_objectives))
        for k, a in enumerate(archs):
            if a in self.index:
                F[k] = self.F[self.index[a]]
            else:  # ruled out by a constraint: cheap values are real, expensive ones a penalty
                raw = np.zeros(self.problem.n_objectives)
                raw[self.cheap_cols] = self.cheap[a]
                F[k] = self.problem.normalise(raw[None, :])[0]
                F[k, self.expensive_cols] = PENALTY
        G = np.array([self.g[a] for a in archs]).reshape(len(archs), self.problem.n_constraints)
        return F, G

    def snapshot(self, stop_reason: str) -> OptimizeResult:
        n, m = len(self.archs), self.problem.n_objectives
        G = np.array([self.g[a] for a in self.archs]).reshape(n, self.problem.n_constraints)
        return OptimizeResult(archs=list(self.archs), values=np.array(self.values).reshape(n, m),
                              F=np.array(self.F).reshape(n, m), G=G, stop_reason=stop_reason,
                              n_screened=self.n_screened)

    def run(self, seed: int, workdir: Path | None) -> OptimizeResult:
        self.algorithm.setup(self.problem, seed=seed, workdir=workdir)
        space = self.problem.space
        size, idle, stop_reason = space_size(space), 0, "budget spent"
        while len(self.archs) < self.budget:
            asked = self.algorithm.ask()
            if not asked:
                stop_reason = "the algorithm had nothing new to propose (space exhausted or converged)"
                break
            archs = list(dict.fromkeys(validate_arch(space, a) for a in asked))
            self._screen(archs)
            new = [a for a in archs if a not in self.index and feasible(self.g[a][None, :])[0]]
            fresh = new[: self.budget - len(self.archs)]
            if fresh:
                idle = 0
                self._record(fresh, self._expensive(fresh))
                if self.callback is not None:
                    self.callback(self.snapshot(stop_reason))
            else:
                idle += 1
            cut = set(new[len(fresh):])  # feasible but beyond the budget: never evaluated, never told
            told = [a for a in archs if a not in cut]
            self.algorithm.tell(told, *self._told(told))
            if len(self.cheap) >= size:
                stop_reason = f"every architecture of the space ({size}) has been seen"
                break
            if idle >= MAX_IDLE_BATCHES:
                stop_reason = (f"stopped after {idle} batches in a row brought no new feasible architecture "
                               f"({self.n_screened} proposals ruled out by constraints so far)")
                break
        if not self.archs:
            raise ValueError(f"the search evaluated no architecture: {stop_reason}; "
                             f"{self.n_screened} proposals were ruled out by the constraints")
        return self.snapshot(stop_reason)
