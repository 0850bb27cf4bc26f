"""`random`: uniform sampling of new architectures, the baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._base import Algorithm, check_int, random_new, register_algorithm
from ._operators import GenomeOps
from ._problem import SearchProblem
from ._space import ArchLike


@register_algorithm
class RandomSearch(Algorithm):
    """Batches of distinct, never-seen architectures drawn with the space's own `sample`.

    Architectures a cheap constraint rules out are skipped while drawing, so the budget
    goes to feasible ones.
    """

    name = "random"

    def __init__(self, *, batch_size: int = 10) -> None:
        super().__init__(batch_size=check_int("batch_size", batch_size))

    def setup(self, problem: SearchProblem, *, seed: int, workdir: Path | None) -> None:
        self.problem = problem
        self.ops = GenomeOps(problem.space)
        self.rng = np.random.default_rng(seed)
        self.seen: set[ArchLike] = set()

    def ask(self) -> list[ArchLike]:
        batch = random_new(self.problem, self.ops, self._settings["batch_size"], self.rng, self.seen)
        self.seen.update(batch)
        return batch

    def tell(self, archs: list[ArchLike], F: np.ndarray, G: np.ndarray) -> None:
        self.seen.update(archs)
