"""A search problem: a space, objectives to minimise or maximise, and constraints.

Objectives and constraints are batch functions of architectures (`fn(archs) -> ndarray`),
so they work on any space: a supernet's accuracy, a predictor's latency, a lookup table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ._space import ArchLike, Space, arch_json, check_space, describe, fingerprint, reference_archs

BatchFn = Callable[[list[ArchLike]], np.ndarray]

DIRECTIONS = ("min", "max")
COSTS = ("cheap", "expensive")
SOURCES = ("measured", "predicted", "analytic")

# Normalised objective value given to an expensive objective of an architecture that was
# never evaluated because a (cheap) constraint rules it out: worse than the reference point.
PENALTY = 2.0
REFERENCE_POINT = 1.1  # per objective, in normalised minimisation space


@dataclass(frozen=True)
class Objective:
    """One objective: a batch function `fn(archs) -> values`, to minimise or maximise.

    `cost` says whether a value spends the search budget ("expensive", e.g. accuracy from
    the supernet) or not ("cheap", e.g. a latency predictor or an analytic size).
    `source` says how honest a value is: "measured" (really evaluated), "predicted"
    (a model's estimate) or "analytic" (computed exactly); by default "measured" for
    expensive objectives and "analytic" for cheap ones. `bounds` (lo, hi) normalise the
    objective for the hypervolume; cheap objectives without bounds get them from the
    space's extreme and sampled members, expensive ones must give them.
    """

    name: str
    direction: str
    cost: str
    fn: BatchFn = field(repr=False, compare=False)
    source: str | None = None
    bounds: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"objective name must be a non-empty string, got {self.name!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"objective direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.cost not in COSTS:
            raise ValueError(f"objective cost must be one of {COSTS}, got {self.cost!r}")
        if not callable(self.fn):
            raise ValueError(f"objective {self.name!r} needs a callable fn, got {type(self.fn).__name__}")
        source = self.source or ("measured" if self.cost == "expensive" else "analytic")
        if source not in SOURCES:
            raise ValueError(f"objective source must be one of {SOURCES}, got {self.source!r}")
        object.__setattr__(self, "source", source)
        if self.bounds is not None:
            lo, hi = (float(b) for b in self.bounds)
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ValueError(f"objective {self.name!r} bounds must be finite with lo < hi, got {self.bounds}")
            object.__setattr__(self, "bounds", (lo, hi))

    @property
    def expensive(self) -> bool:
        return self.cost == "expensive"


@dataclass(frozen=True)
class Constraint:
    """A cheap batch function `fn(archs) -> values`; an architecture is feasible when <= 0."""

    name: str
    fn: BatchFn = field(repr=False, compare=False)
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"constraint name must be a non-empty string, got {self.name!r}")
        if not callable(self.fn):
            raise ValueError(f"constraint {self.name!r} needs a callable fn, got {type(self.fn).__name__}")


def call_batch(what: str, fn: BatchFn, archs: list[ArchLike]) -> np.ndarray:
    """`fn(archs)` as a finite float vector of length len(archs), or a ValueError naming `what`."""
    return check_values(what, fn(list(archs)), archs)


def check_values(what: str, values: object, archs: list[ArchLike]) -> np.ndarray:
    """`values` as a finite float vector, one per architecture, or a ValueError naming `what`."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.shape != (len(archs),):
        raise ValueError(f"{what} must return one value per architecture ({len(archs)}), got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        bad = archs[int(np.flatnonzero(~np.isfinite(values))[0])]
        raise ValueError(f"{what} returned a non-finite value for {arch_json(bad)}")
    return values


def feasible(G: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of G (n, n_constraints) that meet every constraint (all
    values <= 0); with no constraints every row is feasible."""
    G = np.asarray(G, dtype=np.float64)
    if G.ndim != 2:
        raise ValueError(f"G must be a 2-D array (n, n_constraints), got shape {G.shape}")
    return np.all(G <= 0, axis=1)


@dataclass(frozen=True)
class SearchProblem:
    """A space, objectives (at least one) and constraints (feasible when <= 0).

    The space is anything that follows the search-space protocol (`search.Space`): the
    transformer `supernet.SearchSpace` or a `search.CategoricalSpace`.
    """

    space: Space
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()
    _bounds: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_space(self.space)
        objectives, constraints = tuple(self.objectives), tuple(self.constraints)
        object.__setattr__(self, "objectives", objectives)
        object.__setattr__(self, "constraints", constraints)
        if not objectives:
            raise ValueError("a search problem needs at least one objective, got none")
        for o in objectives:
            if not isinstance(o, Objective):
                raise ValueError(f"objectives must be Objective instances, got {type(o).__name__}")
            if o.expensive and o.bounds is None:
                raise ValueError(f"expensive objective {o.name!r} needs bounds (lo, hi) for the hypervolume")
        for c in constraints:
            if not isinstance(c, Constraint):
                raise ValueError(f"constraints must be Constraint instances, got {type(c).__name__}")
        names = [o.name for o in objectives] + [c.name for c in constraints]
        if len(set(names)) != len(names):
            raise ValueError(f"objective and constraint names must be distinct, got {names}")
        object.__setattr__(self, "_bounds", self._resolve_bounds())

    def _resolve_bounds(self) -> np.ndarray:
        missing = [o for o in self.objectives if o.bounds is None]
        refs = reference_archs(self.space) if missing else []
        bounds = np.zeros((len(self.objectives), 2))
        for i, o in enumerate(self.objectives):
            if o.bounds is not None:
                bounds[i] = o.bounds
                continue
            values = call_batch(f"objective {o.name!r}", o.fn, refs)
            lo, hi = float(values.min()), float(values.max())
            if hi <= lo:  # a constant objective: any positive width keeps it at 0
                hi = lo + 1.0
            bounds[i] = lo, hi
        return bounds

    # ----------------------------------------------------------------- views
    @property
    def n_objectives(self) -> int:
        return len(self.objectives)

    @property
    def n_constraints(self) -> int:
        return len(self.constraints)

    @property
    def expensive(self) -> tuple[Objective, ...]:
        return tuple(o for o in self.objectives if o.expensive)

    @property
    def cheap(self) -> tuple[Objective, ...]:
        return tuple(o for o in self.objectives if not o.expensive)

    @property
    def bounds(self) -> np.ndarray:
        """(n_objectives, 2) array of the (lo, hi) used to normalise each objective."""
        return self._bounds.copy()

    def normalise(self, values: np.ndarray) -> np.ndarray:
        """Raw objective values (n, n_objectives) -> minimisation form, about [0, 1] each."""
        values = np.asarray(values, dtype=np.float64)
        lo, hi = self._bounds[:, 0], self._bounds[:, 1]
        out = (values - lo) / (hi - lo)
        flip = np.array([o.direction == "max" for o in self.objectives])
        out[:, flip] = 1.0 - out[:, flip]
        return out

    def constraint_values(self, archs: Sequence[ArchLike]) -> np.ndarray:
        """(n, n_constraints) constraint values; a row is feasible when all are <= 0."""
        archs = list(archs)
        cols = [call_batch(f"constraint {c.name!r}", c.fn, archs) for c in self.constraints]
        return np.stack(cols, axis=1) if cols else np.zeros((len(archs), 0))

    def signature(self) -> str:
        """What must match for a stored search to be resumed with this problem."""
        return json.dumps({
            "space": json.loads(fingerprint(self.space)),
            "objectives": [[o.name, o.direction, o.cost, o.source] for o in self.objectives],
            "constraints": [c.name for c in self.constraints],
        }, sort_keys=True)


def check_feasible(problem: SearchProblem, n_samples: int = 1024) -> None:
    """Raise ValueError when no architecture can meet the constraints.

    The extreme members, their one- and two-choice variations and a fixed sample are
    checked (see `reference_archs`); costs such as latency and size are smallest at the
    extremes, so a budget none of them meets is one nobody meets. Done before any budget
    is spent.
    """
    if not problem.constraints:
        return
    archs = reference_archs(problem.space, n_samples)
    g = problem.constraint_values(archs)
    if np.any(feasible(g)):
        return
    worst = g.max(axis=1)
    best = int(np.argmin(worst))
    excess = ", ".join(f"{c.name}={g[best, j]:+.4g}" for j, c in enumerate(problem.constraints))
    raise ValueError(
        f"no architecture can meet the constraints "
        f"({', '.join(c.description or c.name for c in problem.constraints)}): none of {len(archs)} "
        f"checked, including the smallest members, is feasible; the closest, {describe(archs[best])}, "
        f"gives {excess} (feasible needs <= 0)"
    )
