"""Objectives, constraints and problems: validation, bounds, normalisation, infeasibility."""

from __future__ import annotations

import numpy as np
import pytest

from search import (
    Constraint,
    Objective,
    SearchProblem,
    check_feasible,
    flops_objective,
    latency_objective,
    max_latency_constraint,
    max_size_constraint,
    params_objective,
    size_objective,
)
from supernet import arch_cost


def test_objective_validation_states_rule_and_value():
    with pytest.raises(ValueError, match="direction must be one of .* got 'up'"):
        Objective("a", "up", "cheap", lambda archs: np.zeros(len(archs)))
    with pytest.raises(ValueError, match="cost must be one of"):
        Objective("a", "min", "free", lambda archs: np.zeros(len(archs)))
    with pytest.raises(ValueError, match="lo < hi"):
        Objective("a", "min", "cheap", lambda archs: np.zeros(len(archs)), bounds=(1.0, 1.0))
    assert Objective("a", "min", "cheap", len).source == "analytic"
    assert Objective("a", "max", "expensive", len, bounds=(0, 1)).source == "measured"


def test_problem_rejects_duplicate_names_and_unbounded_expensive(tiny_space, tiny_spec):
    size = size_objective(tiny_space, tiny_spec)
    with pytest.raises(ValueError, match="distinct"):
        SearchProblem(tiny_space, (size, size))
    with pytest.raises(ValueError, match="needs bounds"):
        SearchProblem(tiny_space, (Objective("acc", "max", "expensive", len),))
    with pytest.raises(ValueError, match="at least one objective"):
        SearchProblem(tiny_space, ())


def test_builtin_cost_objectives_match_arch_cost(tiny_space, tiny_spec):
    archs = tiny_space.sample_many(5, 0)
    costs = [arch_cost(a, tiny_space, tiny_spec) for a in archs]
    assert size_objective(tiny_space, tiny_spec).fn(archs).tolist() == [c.size_bytes for c in costs]
    assert flops_objective(tiny_space, tiny_spec).fn(archs).tolist() == [c.flops for c in costs]
    assert params_objective(tiny_space, tiny_spec).fn(archs).tolist() == [c.params for c in costs]
    lat = latency_objective(lambda a: np.full(len(a), 2.5))
    assert lat.source == "predicted" and lat.direction == "min" and lat.cost == "cheap"
    g = max_size_constraint(tiny_space, tiny_spec, 0.01).fn(archs)
    np.testing.assert_allclose(g, [c.size_bytes / 1e6 - 0.01 for c in costs])
    assert max_latency_constraint(lambda a: np.full(len(a), 2.5), 3.0).fn(archs).tolist() == [-0.5] * 5
    with pytest.raises(ValueError, match="positive number"):
        max_latency_constraint(lambda a: a, -1)


def test_bounds_cover_the_extremes_and_normalise_to_minimisation(tiny_space, tiny_spec, problem_factory):
    problem = problem_factory(tiny_space, tiny_spec)
    size = problem.objectives[1].fn
    lo, hi = problem.bounds[1]
    assert lo <= size([tiny_space.smallest()])[0] and hi >= size([tiny_space.largest()])[0]
    raw = np.array([[1.0, lo], [0.0, hi]])
    np.testing.assert_allclose(problem.normalise(raw), [[0.0, 0.0], [1.0, 1.0]])


def test_objective_returning_wrong_shape_or_nan_is_named(tiny_space, tiny_spec):
    bad = Objective("bad", "min", "cheap", lambda archs: np.full(len(archs) + 1, 1.0))
    with pytest.raises(ValueError, match="objective 'bad' must return one value per architecture"):
        SearchProblem(tiny_space, (bad,))
    nan = Objective("nan", "min", "cheap", lambda archs: np.full(len(archs), np.nan))
    with pytest.raises(ValueError, match="non-finite"):
        SearchProblem(tiny_space, (nan,))


def test_infeasible_budget_is_detected_with_a_clear_message(tiny_space, tiny_spec, problem_factory):
    smallest_mb = arch_cost(tiny_space.smallest(), tiny_space, tiny_spec).size_bytes / 1e6
    impossible = max_size_constraint(tiny_space, tiny_spec, smallest_mb / 10)
    problem = problem_factory(tiny_space, tiny_spec, constraints=(impossible,))
    with pytest.raises(ValueError, match=r"no architecture can meet the constraints \(size <= .* MB\)"):
        check_feasible(problem)
    # a budget the smallest members meet passes
    check_feasible(problem_factory(tiny_space, tiny_spec,
                                constraints=(max_size_constraint(tiny_space, tiny_spec, smallest_mb * 1.5),)))


def test_constraint_values_shape(tiny_space, tiny_spec):
    c = Constraint("c", lambda archs: np.arange(len(archs), dtype=float))
    problem = SearchProblem(tiny_space, (size_objective(tiny_space, tiny_spec),), (c,))
    assert problem.constraint_values(tiny_space.sample_many(3, 1)).shape == (3, 1)
