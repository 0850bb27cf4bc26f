"""`evolution`: HAT-style constrained evolutionary search on one objective.

Each generation keeps the best `parent_size` members of the population as parents and
adds `mutation_size` mutants and `crossover_size` crossover children, all feasible under
the (cheap) constraints and never seen before (Wang et al., HAT, 2020).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._base import Algorithm, check_int, check_prob, random_new, register_algorithm
from ._operators import GenomeOps
from ._problem import SearchProblem, feasible
from ._space import ArchLike


@register_algorithm
class EvolutionSearch(Algorithm):
    """Single-objective evolution under constraints.

    `objective` names the objective to optimise (default: the first expensive one, else
    the first). Children are drawn in at most `max_tries` attempts each; when variation
    cannot find new feasible children, random feasible architectures fill the batch.
    """

    name = "evolution"

    def __init__(self, *, objective: str | None = None, population_size: int = 20, parent_size: int = 5,
                 mutation_size: int = 8, crossover_size: int = 7, mutation_prob: float = 0.3,
                 max_tries: int = 50) -> None:
        population_size = check_int("population_size", population_size, 2)
        parent_size = check_int("parent_size", parent_size, 2)
        if parent_size > population_size:
            raise ValueError(f"parent_size must be <= population_size ({population_size}), got {parent_size}")
        mutation_size = check_int("mutation_size", mutation_size, 0)
        crossover_size = check_int("crossover_size", crossover_size, 0)
        if mutation_size + crossover_size == 0:
            raise ValueError("mutation_size + crossover_size must be at least 1, got 0")
        super().__init__(objective=objective, population_size=population_size, parent_size=parent_size,
                         mutation_size=mutation_size, crossover_size=crossover_size,
                         mutation_prob=check_prob("mutation_prob", mutation_prob),
                         max_tries=check_int("max_tries", max_tries))

    def setup(self, problem: SearchProblem, *, seed: int, workdir: Path | None) -> None:
        names = [o.name for o in problem.objectives]
        wanted = self._settings["objective"]
        if wanted is None:
            wanted = problem.expensive[0].name if problem.expensive else names[0]
        if wanted not in names:
            raise ValueError(f"evolution objective must be one of {names}, got {wanted!r}")
        self.problem = problem
        self.column = names.index(wanted)
        self.ops = GenomeOps(problem.space)
        self.rng = np.random.default_rng(seed)
        self.seen: set[ArchLike] = set()
        self.population: list[tuple[float, ArchLike]] = []  # (score to minimise, arch)

    def _feasible(self, arch: ArchLike) -> bool:
        return not self.problem.constraints or bool(feasible(self.problem.constraint_values([arch]))[0])

    def _child(self, make, taken: set[ArchLike]) -> ArchLike | None:
        for _ in range(self._settings["max_tries"]):
            arch = self.ops.decode(make())
            if arch not in taken and self._feasible(arch):
                return arch
        return None

    def _mutant(self, parents: list[np.ndarray]) -> np.ndarray:
        parent = parents[int(self.rng.integers(len(parents)))]
        return self.ops.mutate(parent, self.rng, self._settings["mutation_prob"])

    def _crossover(self, parents: list[np.ndarray]) -> np.ndarray:
        if len(parents) < 2:
            return self._mutant(parents)
        i, j = self.rng.choice(len(parents), 2, replace=False)
        return self.ops.crossover(parents[i], parents[j], self.rng)

    def ask(self) -> list[ArchLike]:
        s, rng, ops = self._settings, self.rng, self.ops
        taken = set(self.seen)
        if not self.population:
            batch = random_new(self.problem, ops, s["population_size"], rng, taken)
        else:
            parents = [ops.space.encode(a) for _, a in sorted(self.population, key=lambda p: p[0])[: s["parent_size"]]]
            batch = []
            makers = [self._mutant] * s["mutation_size"] + [self._crossover] * s["crossover_size"]
            for make in makers:
                child = self._child(lambda: make(parents), taken)
                if child is not None:
                    batch.append(child)
                    taken.add(child)
            missing = s["mutation_size"] + s["crossover_size"] - len(batch)
            if missing:
                batch += random_new(self.problem, ops, missing, rng, taken)
        self.seen.update(batch)
        return batch

    def tell(self, archs: list[ArchLike], F: np.ndarray, G: np.ndarray) -> None:
        self.seen.update(archs)
        told = [(float(f[self.column]) if ok else np.inf, a) for a, f, ok in zip(archs, F, feasible(G))]
        best = sorted(self.population, key=lambda p: p[0])[: self._settings["parent_size"]]
        known = {a for _, a in best}
        self.population = best + [p for p in told if p[1] not in known and np.isfinite(p[0])]
