"""Search problems, objectives, constraints, algorithms, Pareto fronts and hypervolume.

Torch-free: a problem is a space of discrete choices (anything following `Space`: the
transformer `supernet.SearchSpace` or a `CategoricalSpace`) plus batch objective
functions, so searches run on the supernet and on tabular benchmarks alike. `optimize`
is the ask/tell loop; `run_search` adds files, resume and the hypervolume history.
"""

from ._base import Algorithm, algorithm_names, get_algorithm, register_algorithm

# Imported in the order algorithm_names() lists them (each module registers its algorithms).
from ._nsga2 import NSGA2Search  # isort: skip
from ._evolution import EvolutionSearch  # isort: skip
from ._optuna import OptunaNSGA2Search, OptunaTPESearch  # isort: skip
from ._random import RandomSearch  # isort: skip
from ._linas import LinasSearch  # isort: skip
from ._categorical import CategoricalArch, CategoricalSpace
from ._objectives import (
    accuracy_objective,
    flops_objective,
    latency_objective,
    max_latency_constraint,
    max_size_constraint,
    params_objective,
    size_objective,
)
from ._operators import GenomeOps
from ._optimize import OptimizeResult, evaluate_serial, optimize
from ._pareto import HypervolumeTracker, front_ranks, hypervolume, non_dominated
from ._problem import REFERENCE_POINT, Constraint, Objective, SearchProblem, check_feasible, feasible
from ._run import SearchResult, run_search
from ._space import Space

__all__ = [
    "Algorithm", "CategoricalArch", "CategoricalSpace", "Constraint", "EvolutionSearch", "GenomeOps",
    "HypervolumeTracker", "LinasSearch", "NSGA2Search", "Objective", "OptimizeResult", "OptunaNSGA2Search",
    "OptunaTPESearch", "REFERENCE_POINT", "RandomSearch", "SearchProblem", "SearchResult", "Space",
    "accuracy_objective", "algorithm_names", "check_feasible", "evaluate_serial", "feasible", "flops_objective",
    "front_ranks", "get_algorithm", "hypervolume", "latency_objective", "max_latency_constraint",
    "max_size_constraint", "non_dominated", "optimize", "params_objective", "register_algorithm", "run_search",
    "size_objective",
]
