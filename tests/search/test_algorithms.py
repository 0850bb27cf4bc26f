"""The contract every registered algorithm meets: budget respected, no architecture
evaluated twice, a non-dominated feasible front, same seed same result, inputs untouched,
constraints honoured (and an impossible one refused)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from search import (
    Algorithm,
    RandomSearch,
    algorithm_names,
    get_algorithm,
    max_size_constraint,
    non_dominated,
    optimize,
    register_algorithm,
    run_search,
)
from supernet import Arch, arch_cost

# Small settings keep the contract fast on 2 cores; the defaults are exercised elsewhere.
FAST = {
    "nsga2": {"population_size": 8},
    "evolution": {"population_size": 8, "parent_size": 3, "mutation_size": 4, "crossover_size": 4},
    "optuna-nsga2": {"population_size": 8},
    "optuna-tpe": {"batch_size": 4, "n_startup_trials": 8},
    "random": {"batch_size": 8},
    "linas": {"initial_size": 8, "batch_size": 6, "inner_budget": 120, "inner_settings": {"population_size": 12}},
}
BUDGET = 26  # not a multiple of any batch size: the last batch is cut by the budget


def test_registry_names_and_errors():
    assert algorithm_names() == ["nsga2", "evolution", "optuna-nsga2", "optuna-tpe", "random", "linas"]
    with pytest.raises(ValueError, match="unknown search algorithm 'cmaes'; known: nsga2, evolution"):
        get_algorithm("cmaes")
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['pop'\] for algorithm 'nsga2'"):
        get_algorithm("nsga2", pop=3)
    with pytest.raises(ValueError, match="population_size must be an integer >= 2, got 1"):
        get_algorithm("nsga2", population_size=1)
    with pytest.raises(ValueError, match="predictor must be one of"):
        get_algorithm("linas", predictor="svm")


def test_registry_refuses_a_duplicate_name_and_keeps_the_first():
    class AnotherRandom(RandomSearch):
        name = "random"

    with pytest.raises(ValueError, match="algorithm names must be unique: 'random' is already registered"):
        register_algorithm(AnotherRandom)
    with pytest.raises(ValueError, match="already registered"):
        register_algorithm(RandomSearch)  # the same class twice too
    assert type(get_algorithm("random")) is RandomSearch
    assert algorithm_names().count("random") == 1

    class Nameless(RandomSearch):
        name = ""

    with pytest.raises(ValueError, match="needs a non-empty string class attribute `name`"):
        register_algorithm(Nameless)


def test_optimize_is_the_ask_tell_core_without_files(tiny_problem, counting, problem_factory, tiny_space, tiny_spec):
    acc = counting(tiny_problem.objectives[0].fn)
    problem = problem_factory(tiny_space, tiny_spec, three=True, fn=acc)
    batches = []
    result = optimize(problem, get_algorithm("nsga2", population_size=6), 15, 4,
                      callback=lambda so_far: batches.append(len(so_far.archs)))
    assert batches == [6, 12, 15] and len(result.archs) == 15 == len(set(acc.archs)) == len(acc.archs)
    np.testing.assert_allclose(result.F, problem.normalise(result.values))
    assert result.values[:, 0].tolist() == list(acc.fn(result.archs))
    assert result.feasible.all() and non_dominated(result.F[result.front]).all()
    assert set(result.front) == set(np.flatnonzero(non_dominated(result.F)))
    # run_search is optimize plus files: the same seed evaluates the same architectures
    assert run_search(problem, get_algorithm("nsga2", population_size=6), budget=15, seed=4).archs == result.archs

    seen = []

    def evaluate_batch(problem, archs):  # the hook replaces calling the expensive fns
        seen.extend(archs)
        return {"accuracy": np.full(len(archs), 0.5)}

    hooked = optimize(problem, get_algorithm("random", batch_size=4), 6, 0, evaluate_batch=evaluate_batch)
    assert seen == hooked.archs and (hooked.values[:, 0] == 0.5).all()
    with pytest.raises(ValueError, match=r"evaluate_batch for 'accuracy' must return one value per architecture"):
        optimize(problem, get_algorithm("random", batch_size=4), 6, 0,
                 evaluate_batch=lambda problem, archs: {"accuracy": np.zeros(1)})
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        optimize(problem, get_algorithm("random"), 6, -1)


@pytest.fixture(scope="module")
def runs(tiny_problem, counting, problem_factory, tiny_space, tiny_spec):
    """One search per algorithm with a counting accuracy, plus a rerun with the same seed."""
    out = {}
    for name in algorithm_names():
        acc = counting(tiny_problem.objectives[0].fn)
        problem = problem_factory(tiny_space, tiny_spec, three=True, fn=acc)
        algorithm = get_algorithm(name, **FAST[name])
        before = (copy.deepcopy(algorithm.settings), problem.bounds.copy())
        first = run_search(problem, algorithm, budget=BUDGET, seed=3)
        again = run_search(problem, algorithm, budget=BUDGET, seed=3)
        out[name] = dict(problem=problem, algorithm=algorithm, before=before, acc=acc, first=first, again=again)
    return out


@pytest.mark.parametrize("name", algorithm_names())
def test_budget_respected_and_nothing_evaluated_twice(runs, name):
    run = runs[name]
    result = run["first"]
    assert len(result.candidates) == BUDGET and result.stop_reason == "budget spent"
    assert result.candidates["arch"].is_unique
    # the real (expensive) function saw each architecture once per search: 2 searches
    evaluated = run["acc"].archs
    assert len(evaluated) == 2 * BUDGET
    assert len(set(evaluated)) == BUDGET
    assert result.candidates["evaluation"].tolist() == list(range(BUDGET))
    assert len(result.hypervolume) == BUDGET
    assert np.all(np.diff(result.hypervolume) >= 0) and result.hypervolume[-1] > 0


@pytest.mark.parametrize("name", algorithm_names())
def test_front_is_non_dominated_feasible_and_complete(runs, name):
    run = runs[name]
    result, problem = run["first"], run["problem"]
    names = [o.name for o in problem.objectives]
    F = problem.normalise(result.candidates[names].to_numpy())
    expected = set(result.candidates["arch"][non_dominated(F)])
    assert set(result.front["arch"]) == expected
    assert result.front["feasible"].all()
    assert (result.candidates["accuracy_source"] == "measured").all()
    assert (result.candidates["size_source"] == "analytic").all()
    for text in result.front["arch"]:
        assert problem.space.contains(Arch.from_json(text))


@pytest.mark.parametrize("name", algorithm_names())
def test_same_seed_same_result_and_inputs_untouched(runs, name):
    run = runs[name]
    cols = ["arch", "genome", "accuracy", "size", "flops"]
    assert run["first"].candidates[cols].equals(run["again"].candidates[cols])
    assert run["first"].hypervolume == run["again"].hypervolume
    settings, bounds = run["before"]
    assert run["algorithm"].settings == settings
    np.testing.assert_array_equal(run["problem"].bounds, bounds)


@pytest.mark.parametrize("name", ["random", "nsga2", "linas"])
def test_another_seed_searches_differently(tiny_problem, name):
    a = run_search(tiny_problem, get_algorithm(name, **FAST[name]), budget=10, seed=0)
    b = run_search(tiny_problem, get_algorithm(name, **FAST[name]), budget=10, seed=1)
    assert list(a.candidates["arch"]) != list(b.candidates["arch"])


@pytest.mark.parametrize("name", algorithm_names())
def test_constraint_is_honoured_without_spending_budget_on_infeasible(name, tiny_space, tiny_spec,
                                                                      problem_factory, counting):
    sizes = [arch_cost(a, tiny_space, tiny_spec).size_bytes for a in tiny_space.sample_many(200, 0)]
    limit_mb = float(np.quantile(sizes, 0.3)) / 1e6  # about 30% of the space is feasible
    acc = counting(problem_factory(tiny_space, tiny_spec).objectives[0].fn)
    problem = problem_factory(tiny_space, tiny_spec, fn=acc,
                              constraints=(max_size_constraint(tiny_space, tiny_spec, limit_mb),))
    result = run_search(problem, get_algorithm(name, **FAST[name]), budget=16, seed=0)
    assert len(result.candidates) == 16
    assert result.candidates["feasible"].all()
    assert (result.candidates["max_size"] <= 0).all()
    assert all(arch_cost(a, tiny_space, tiny_spec).size_bytes / 1e6 <= limit_mb for a in acc.archs)
    assert len(acc.archs) == 16


@pytest.mark.parametrize("name", algorithm_names())
def test_impossible_constraint_ends_with_a_clear_message(name, tiny_space, tiny_spec, problem_factory, counting):
    acc = counting(problem_factory(tiny_space, tiny_spec).objectives[0].fn)
    problem = problem_factory(tiny_space, tiny_spec, fn=acc,
                              constraints=(max_size_constraint(tiny_space, tiny_spec, 1e-6),))
    with pytest.raises(ValueError, match="no architecture can meet the constraints"):
        run_search(problem, get_algorithm(name, **FAST[name]), budget=10, seed=0)
    assert acc.archs == []  # refused before spending any budget


def test_run_search_validates_its_arguments(tiny_problem):
    with pytest.raises(ValueError, match="budget must be a positive integer, got 0"):
        run_search(tiny_problem, get_algorithm("random"), budget=0, seed=0)
    with pytest.raises(ValueError, match="algorithm must be an Algorithm"):
        run_search(tiny_problem, "random", budget=3, seed=0)
    assert issubclass(type(get_algorithm("random")), Algorithm)


@pytest.mark.parametrize("name", algorithm_names())
def test_a_constraint_almost_nobody_meets_ends_in_bounded_time(name, tiny_spec, problem_factory, counting):
    """Only a handful of the 7.6e10 default-space members meet this size budget: the check
    before the search passes, no algorithm finds one, and the search ends with a message."""
    from supernet import DEFAULT_SPACE

    smallest = arch_cost(DEFAULT_SPACE.smallest(), DEFAULT_SPACE, tiny_spec).size_bytes / 1e6
    acc = counting(problem_factory(DEFAULT_SPACE, tiny_spec).objectives[0].fn)
    problem = problem_factory(DEFAULT_SPACE, tiny_spec, fn=acc,
                              constraints=(max_size_constraint(DEFAULT_SPACE, tiny_spec, smallest),))
    try:
        result = run_search(problem, get_algorithm(name, **FAST[name]), budget=10, seed=0)
    except ValueError as exc:
        assert "evaluated no architecture" in str(exc)
        assert acc.archs == []
    else:  # found some of the few: all feasible, and the search still stopped by itself
        assert (result.candidates["max_size"] <= 0).all()
        assert len(acc.archs) == len(result.candidates) <= 10


@pytest.mark.parametrize("inner", ["evolution", "optuna-tpe", "random"])
def test_linas_runs_with_any_inner_search_and_ridge(tiny_problem, inner):
    settings = dict(FAST["linas"], inner=inner, inner_settings={}, inner_budget=40, predictor="ridge")
    result = run_search(tiny_problem, get_algorithm("linas", **settings), budget=20, seed=0)
    assert len(result.candidates) == 20 and result.candidates["arch"].is_unique
    with pytest.raises(ValueError, match="inner must be another algorithm"):
        get_algorithm("linas", inner="linas")
