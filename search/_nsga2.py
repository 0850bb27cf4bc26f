"""`nsga2`: pymoo's NSGA-II with categorical operators on the space's genome, driven by ask/tell."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._base import Algorithm, check_int, check_prob, register_algorithm
from ._operators import GenomeOps
from ._problem import SearchProblem
from ._space import ArchLike

MATING_TRIES = 10


def _pymoo_parts(problem: SearchProblem, ops: GenomeOps, seen: set[ArchLike], mutation_prob: float | None):
    """pymoo problem, sampling, crossover, mutation and duplicate elimination for a space."""
    from pymoo.core.crossover import Crossover
    from pymoo.core.duplicate import DuplicateElimination
    from pymoo.core.mutation import Mutation
    from pymoo.core.problem import Problem
    from pymoo.core.sampling import Sampling

    card = ops.card
    pm_problem = Problem(n_var=len(card), n_obj=problem.n_objectives, n_ieq_constr=problem.n_constraints,
                         xl=np.zeros(len(card)), xu=card - 1, vtype=int)

    class GenomeSampling(Sampling):
        def _do(self, _problem, n_samples, *args, random_state=None, **kwargs):
            return np.array([ops.sample(random_state) for _ in range(n_samples)])

    class LayerCrossover(Crossover):
        def __init__(self) -> None:
            super().__init__(n_parents=2, n_offsprings=2)

        def _do(self, _problem, X, *args, random_state=None, **kwargs):
            X = np.asarray(X).astype(np.int64)  # (n_parents, n_matings, n_var)
            out = np.empty((2, X.shape[1], X.shape[2]), dtype=np.int64)
            for k in range(X.shape[1]):
                out[0, k] = ops.crossover(X[0, k], X[1, k], random_state)
                out[1, k] = ops.crossover(X[1, k], X[0, k], random_state)
            return out

    class GenomeMutation(Mutation):
        def _do(self, _problem, X, *args, random_state=None, **kwargs):
            X = np.asarray(X).astype(np.int64)
            out = np.empty_like(X)
            for k, genome in enumerate(X):
                prob = mutation_prob if mutation_prob is not None else 1.0 / max(1, ops.n_variable(genome))
                out[k] = ops.mutate(genome, random_state, prob)
            return out

    class ArchDuplicates(DuplicateElimination):
        """Same architecture (inactive genes ignored), or one the search already evaluated."""

        def _do(self, pop, other, is_duplicate):
            keys = [ops.decode(np.asarray(x).astype(np.int64)) for x in pop.get("X")]
            if other is None:
                taken = set(seen)
                for i, key in enumerate(keys):
                    is_duplicate[i] = key in taken
                    taken.add(key)
            else:
                others = {ops.decode(np.asarray(x).astype(np.int64)) for x in other.get("X")}
                is_duplicate |= np.array([k in others for k in keys], dtype=bool)
            return is_duplicate

    return pm_problem, GenomeSampling(), LayerCrossover(), GenomeMutation(prob=1.0), ArchDuplicates()


@register_algorithm
class NSGA2Search(Algorithm):
    """pymoo NSGA-II (constraint domination, crowding) on the genome.

    A generation is one batch of `population_size` offspring. Offspring that repeat an
    architecture already evaluated are rejected by the duplicate elimination, so each
    generation brings new evaluations. `mutation_prob` is per active gene (default
    1 / number of active genes with more than one choice, so about one change per child).
    """

    name = "nsga2"

    def __init__(self, *, population_size: int = 20, mutation_prob: float | None = None) -> None:
        super().__init__(population_size=check_int("population_size", population_size, 2),
                         mutation_prob=None if mutation_prob is None else check_prob("mutation_prob", mutation_prob))

    def setup(self, problem: SearchProblem, *, seed: int, workdir: Path | None) -> None:
        from pymoo.algorithms.moo.nsga2 import NSGA2

        self.problem = problem
        self.ops = GenomeOps(problem.space)
        self.seen: set[ArchLike] = set()
        pm_problem, sampling, crossover, mutation, dedup = _pymoo_parts(
            problem, self.ops, self.seen, self._settings["mutation_prob"])
        self.algorithm = NSGA2(pop_size=self._settings["population_size"], sampling=sampling,
                               crossover=crossover, mutation=mutation, eliminate_duplicates=dedup)
        # pymoo retries mating up to 100 times to fill a generation with new offspring; in a
        # nearly exhausted space that is slow, and a smaller generation is fine here
        self.algorithm.mating.n_max_iterations = MATING_TRIES
        self.algorithm.setup(pm_problem, seed=int(seed), verbose=False)
        self._pending = None

    def ask(self) -> list[ArchLike]:
        pop = self.algorithm.ask()
        if pop is None or len(pop) == 0:
            return []
        self._pending = pop
        return [self.ops.decode(np.asarray(x).astype(np.int64)) for x in pop.get("X")]

    def tell(self, archs: list[ArchLike], F: np.ndarray, G: np.ndarray) -> None:
        self.seen.update(archs)
        pop, self._pending = self._pending, None
        if pop is None:
            return
        keys = [self.ops.decode(np.asarray(x).astype(np.int64)) for x in pop.get("X")]
        index = {a: i for i, a in enumerate(archs)}
        told = [i for i, k in enumerate(keys) if k in index]
        if len(told) < len(keys):
            pop = pop[told]  # the budget ended inside this batch
            keys = [keys[i] for i in told]
        rows = [index[k] for k in keys]
        pop.set("F", np.asarray(F)[rows])
        if self.problem.n_constraints:
            pop.set("G", np.asarray(G)[rows])
        self.algorithm.tell(infills=pop)
