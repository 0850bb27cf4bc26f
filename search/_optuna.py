"""`optuna-tpe` and `optuna-nsga2`: optuna samplers through ask/tell.

The study lives in a file-based optuna storage (`optuna.journal`, a JournalStorage with a
JournalFileBackend) in the search's folder, so optuna-dashboard can open it. The genes
of the space are suggested in genome order, each only while the space marks it active
(a conditional space: the transformer's depth first, then only its active layers).
Values go to optuna raw, with each objective's direction; constraints go through
`Trial.set_constraint`. A resumed search replays its stored evaluations into a new study
file, so the sampler sees exactly the history of an uninterrupted run.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ._base import Algorithm, check_int, register_algorithm
from ._operators import GenomeOps
from ._problem import SearchProblem
from ._space import ArchLike, arch_json, gene_choices, gene_names

STORAGE_FILE = "optuna.journal"


class _OptunaSearch(Algorithm):
    def _sampler(self, seed: int) -> Any:
        raise NotImplementedError

    def setup(self, problem: SearchProblem, *, seed: int, workdir: Path | None) -> None:
        import optuna

        self.problem = problem
        self.ops = GenomeOps(problem.space)
        self.names = gene_names(problem.space)
        self.choices = gene_choices(problem.space)
        self.index = [{v: i for i, v in enumerate(c)} for c in self.choices]
        if workdir is None:
            storage = optuna.storages.InMemoryStorage()
        else:
            path = Path(workdir) / STORAGE_FILE
            path.unlink(missing_ok=True)  # a resumed search replays into a fresh study
            storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = self._sampler(int(seed))
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line
        try:
            self.study = optuna.create_study(
                storage=storage, sampler=sampler, study_name=f"hwnas-{self.name}-seed{seed}",
                directions=["minimize" if o.direction == "min" else "maximize" for o in problem.objectives])
        finally:
            optuna.logging.set_verbosity(verbosity)
        self._pending: list[tuple[Any, ArchLike]] = []
        lo = problem.bounds[:, 0]
        hi = problem.bounds[:, 1]
        flip = np.array([o.direction == "max" for o in problem.objectives])
        self._lo, self._hi, self._flip = lo, hi, flip

    def _suggest(self, trial: Any) -> ArchLike:
        """Each gene in genome order while it is active (activity depends only on the genes
        before it, e.g. the transformer's depth); inactive genes stay at choice 0."""
        genome = np.zeros(len(self.names), dtype=np.int64)
        for pos, (name, choices) in enumerate(zip(self.names, self.choices)):
            if self.ops.active(genome)[pos]:
                genome[pos] = self.index[pos][trial.suggest_categorical(name, list(choices))]
        return self.ops.decode(self.ops.canonical(genome))

    def ask(self) -> list[ArchLike]:
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._pending = []
            for _ in range(self._batch_size()):
                trial = self.study.ask()
                self._pending.append((trial, self._suggest(trial)))
        return [a for _, a in self._pending]

    def _batch_size(self) -> int:
        raise NotImplementedError

    def tell(self, archs: list[ArchLike], F: np.ndarray, G: np.ndarray) -> None:
        import optuna

        index = {a: i for i, a in enumerate(archs)}
        # back from normalised minimisation to raw values with each objective's direction
        F = np.asarray(F, dtype=np.float64).copy()
        F[:, self._flip] = 1.0 - F[:, self._flip]
        raw = self._lo + F * (self._hi - self._lo)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            for trial, arch in self._pending:
                if arch not in index:  # the budget ended inside this batch
                    self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    continue
                i = index[arch]
                trial.set_user_attr("arch", arch_json(arch))
                for c, value in zip(self.problem.constraints, G[i]):
                    trial.set_constraint(c.name, float(value))
                self.study.tell(trial, [float(v) for v in raw[i]])
        self._pending = []


@register_algorithm
class OptunaNSGA2Search(_OptunaSearch):
    """optuna's NSGA-II sampler; one generation (`population_size` trials) per batch."""

    name = "optuna-nsga2"

    def __init__(self, *, population_size: int = 20) -> None:
        super().__init__(population_size=check_int("population_size", population_size, 2))

    def _batch_size(self) -> int:
        return self._settings["population_size"]

    def _sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.NSGAIISampler(population_size=self._settings["population_size"], seed=seed)


@register_algorithm
class OptunaTPESearch(_OptunaSearch):
    """optuna's TPE sampler (multivariate, grouped for the conditional layer choices).

    `batch_size` trials are asked before any is told (constant liar keeps them apart);
    the first `n_startup_trials` are random.
    """

    name = "optuna-tpe"

    def __init__(self, *, batch_size: int = 5, n_startup_trials: int = 20) -> None:
        super().__init__(batch_size=check_int("batch_size", batch_size),
                         n_startup_trials=check_int("n_startup_trials", n_startup_trials, 0))

    def _batch_size(self) -> int:
        return self._settings["batch_size"]

    def _sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self._settings["n_startup_trials"],
                                          multivariate=True, group=True, constant_liar=True)
