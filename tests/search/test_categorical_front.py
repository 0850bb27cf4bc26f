"""Every registered algorithm on a plain categorical space (6 variables x 5 choices) whose
exact Pareto front is known by enumerating all 5**6 = 15625 members: each returns a valid
front within its budget, of truly evaluated points, and the best get close to the exact
front."""

from __future__ import annotations

import moocore
import numpy as np
import pytest

from search import (
    CategoricalSpace,
    Objective,
    SearchProblem,
    accuracy_objective,
    algorithm_names,
    get_algorithm,
    hypervolume,
    non_dominated,
    optimize,
)

SPACE = CategoricalSpace({f"x{i}": [0, 1, 2, 3, 4] for i in range(6)})
COST = np.array([1.0, 1.3, 1.7, 2.2, 2.9, 3.7])  # per choice step of each variable
GAIN = np.array([3.1, 2.3, 2.9, 1.9, 3.7, 2.6])
BUDGET = 200  # 1.3% of the space
# Small settings keep six searches within seconds on 2 cores; linas with ridge, which an
# additive quality suits, stands for the predictor-guided searches.
SETTINGS = {
    "nsga2": {"population_size": 20},
    "evolution": {},
    "optuna-nsga2": {"population_size": 20},
    "optuna-tpe": {},
    "random": {},
    "linas": {"inner_budget": 200, "predictor": "ridge"},
}
BEST = ("linas", "optuna-tpe")


def cost(archs) -> np.ndarray:
    """Cheap objective (minimise): a weighted sum of the choice indices."""
    return np.array([SPACE.encode(a) for a in archs], dtype=float).reshape(-1, 6) @ COST


def quality(archs) -> np.ndarray:
    """Expensive objective in [0, 1] (maximise): diminishing returns per variable and an
    interaction between x0 and x1, so the front is neither trivial nor a straight line."""
    X = np.array([SPACE.encode(a) for a in archs], dtype=float).reshape(-1, 6)
    return (np.sqrt(X) @ GAIN - 0.2 * (X[:, 0] - X[:, 1]) ** 2) / 33.0


class Counting:
    def __init__(self) -> None:
        self.archs: list = []

    def __call__(self, archs):
        self.archs += list(archs)
        return quality(archs)


def make_problem(fn=quality) -> SearchProblem:
    return SearchProblem(SPACE, (accuracy_objective(fn, name="quality"), Objective("cost", "min", "cheap", cost)))


@pytest.fixture(scope="module")
def exact():
    """Every member's normalised values and the exact front (set of archs, points, hypervolume)."""
    problem = make_problem()
    archs = list(SPACE.iter_all())
    assert len(archs) == SPACE.size == 5**6 and len(set(archs)) == 5**6
    F = problem.normalise(np.stack([quality(archs), cost(archs)], axis=1))
    mask = non_dominated(F)
    return {a for a, m in zip(archs, mask) if m}, F[mask], hypervolume(F[mask])


@pytest.fixture(scope="module")
def runs():
    out = {}
    for name in algorithm_names():
        counting = Counting()
        result = optimize(make_problem(counting), get_algorithm(name, **SETTINGS.get(name, {})), BUDGET, 0)
        out[name] = (result, counting)
    return out


def test_every_registered_algorithm_has_settings_here():
    assert set(algorithm_names()) <= set(SETTINGS)


@pytest.mark.parametrize("name", algorithm_names())
def test_front_is_valid_evaluated_and_within_budget(runs, exact, name):
    result, counting = runs[name]
    problem = make_problem()
    assert len(result.archs) == BUDGET and result.stop_reason == "budget spent"
    assert len(counting.archs) == BUDGET and len(set(counting.archs)) == BUDGET  # none evaluated twice
    assert set(result.archs) == set(counting.archs)
    front = [result.archs[i] for i in result.front]
    assert front and all(SPACE.contains(a) for a in front)
    # every front point was truly evaluated, with the values the objectives give
    assert set(front) <= set(counting.archs)
    truth = problem.normalise(np.stack([quality(front), cost(front)], axis=1))
    np.testing.assert_allclose(result.F[result.front], truth)
    # mutually non-dominated, and nothing evaluated dominates a front point
    assert non_dominated(truth).all()
    assert set(np.flatnonzero(non_dominated(result.F))) == set(result.front)
    exact_F, exact_hv = exact[1], exact[2]
    assert hypervolume(truth) <= exact_hv + 1e-12
    # each front point is on the exact front or weakly dominated by a point of it
    for f in truth:
        assert np.any(np.all(exact_F <= f + 1e-12, axis=1))


def test_the_best_algorithms_get_close_to_the_exact_front(runs, exact):
    exact_archs, exact_F, exact_hv = exact
    assert 50 <= len(exact_archs) <= 200  # a front worth finding
    ratio = {name: hypervolume(r.F[r.front]) / exact_hv for name, (r, _) in runs.items()}
    igd = {name: moocore.igd_plus(r.F[r.front], ref=exact_F) for name, (r, _) in runs.items()}
    found = {name: len(set(r.archs) & exact_archs) for name, (r, _) in runs.items()}
    assert all(v >= 0.85 for v in ratio.values()), ratio  # every search makes real progress
    # the guided searches end nearer the exact front than random sampling (IGD+: mean
    # distance from the exact front to the found one; on seeds 0-2, about half of random's)
    for name in BEST:
        assert igd[name] < igd["random"], igd
    # linas gets within 3% of the exact hypervolume and finds a fifth of the exact front
    # (seeds 0-2: 0.978-0.982 and 26-33 of 100 points, from 200 of 15625 evaluations)
    assert ratio["linas"] >= 0.97 and found["linas"] >= 0.2 * len(exact_archs), (ratio, found)
