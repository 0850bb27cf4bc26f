"""The algorithm contract (ask/tell) and the registry of algorithms by name."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ._operators import GenomeOps
from ._problem import SearchProblem, feasible
from ._space import ArchLike


class Algorithm(ABC):
    """A search algorithm driven through ask/tell by `optimize` (and so `run_search`).

    `ask()` proposes a batch of architectures (evaluated together, possibly in parallel);
    `tell(archs, F, G)` returns what they scored: F (n, n_objectives) normalised
    minimisation values (see `SearchProblem.normalise`; an architecture that a constraint
    ruled out before its expensive evaluation has `PENALTY` in its expensive columns),
    G (n, n_constraints) constraint values, feasible when all <= 0. The loop answers
    repeated architectures from its cache and never spends budget on them twice.
    An empty `ask()` means the algorithm has nothing new to propose. Architectures are
    those of `problem.space`; algorithms reach the space only through its protocol
    (`search.Space`), mostly via `GenomeOps`.

    Constructor arguments are the algorithm's settings (keyword-only, JSON values);
    `setup` resets all search state, so one instance can run many searches.
    """

    name: ClassVar[str] = ""

    def __init__(self, **settings: Any) -> None:
        self._settings = settings

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self._settings)

    def fresh(self) -> "Algorithm":
        """A new instance with the same settings and no search state."""
        return type(self)(**self._settings)

    @abstractmethod
    def setup(self, problem: SearchProblem, *, seed: int, workdir: Path | None) -> None:
        """Start a new search. `workdir` (or None) may hold the algorithm's own files."""

    @abstractmethod
    def ask(self) -> list[ArchLike]:
        """The next batch of architectures to evaluate."""

    @abstractmethod
    def tell(self, archs: list[ArchLike], F: np.ndarray, G: np.ndarray) -> None:
        """Results of (a prefix-ordered subset of) the last batch."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._settings.items())
        return f"{type(self).__name__}({args})"


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_prob(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def random_new(problem: SearchProblem, ops: GenomeOps, n: int, rng: np.random.Generator,
               exclude: set[ArchLike], *, feasible_only: bool = True, max_tries: int = 50) -> list[ArchLike]:
    """Up to `n` distinct random architectures outside `exclude` (and feasible when asked),
    drawn in at most `max_tries * n` samples: never an endless loop."""
    out: list[ArchLike] = []
    taken = set(exclude)
    for _ in range(max_tries):
        if len(out) >= n:
            break
        draws = [ops.decode(ops.sample(rng)) for _ in range(n)]
        draws = [a for a in dict.fromkeys(draws) if a not in taken]
        if feasible_only and draws and problem.constraints:
            ok = feasible(problem.constraint_values(draws))
            draws = [a for a, keep in zip(draws, ok) if keep]
        for a in draws[: n - len(out)]:
            out.append(a)
            taken.add(a)
    return out


_REGISTRY: dict[str, type[Algorithm]] = {}


def register_algorithm(cls: type[Algorithm]) -> type[Algorithm]:
    """Class decorator adding an algorithm to the registry under `cls.name`; a name can
    be registered once (a second class under the same name is refused, not swapped in)."""
    if not isinstance(cls, type) or not issubclass(cls, Algorithm):
        raise ValueError(f"only Algorithm subclasses can be registered, got {cls!r}")
    if not isinstance(cls.name, str) or not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty string class attribute `name`, got {cls.name!r}")
    if cls.name in _REGISTRY:
        raise ValueError(f"algorithm names must be unique: {cls.name!r} is already registered "
                         f"({_REGISTRY[cls.name].__qualname__}); pick another name for {cls.__qualname__}")
    _REGISTRY[cls.name] = cls
    return cls


def algorithm_names() -> list[str]:
    """Names of the registered algorithms, in registration order."""
    return list(_REGISTRY)


def get_algorithm(name: str, **settings: Any) -> Algorithm:
    """A registered algorithm with its settings; unknown names and settings list the known ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown search algorithm {name!r}; known: {', '.join(_REGISTRY)}")
    cls = _REGISTRY[name]
    known = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown} for algorithm {name!r}; known: {known}")
    return cls(**settings)

