"""The space protocol: CategoricalSpace, the transformer space, and a bare space with only
the five required members, each searched through the same algorithms and files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from search import (
    CategoricalArch,
    CategoricalSpace,
    GenomeOps,
    Objective,
    SearchProblem,
    Space,
    accuracy_objective,
    algorithm_names,
    get_algorithm,
    optimize,
    run_search,
)
from search._space import reference_archs

FAST = {
    "nsga2": {"population_size": 6},
    "evolution": {"population_size": 6, "parent_size": 3, "mutation_size": 3, "crossover_size": 3},
    "optuna-nsga2": {"population_size": 6},
    "optuna-tpe": {"batch_size": 3, "n_startup_trials": 6},
    "random": {"batch_size": 6},
    "linas": {"initial_size": 6, "batch_size": 4, "inner_budget": 60, "predictor": "ridge",
              "inner_settings": {"population_size": 10}},
}


def test_categorical_space_validates_its_choices():
    with pytest.raises(ValueError, match="non-empty mapping"):
        CategoricalSpace({})
    with pytest.raises(ValueError, match=r"variable 'a' must not repeat a choice, got \[1, 2, 1\]"):
        CategoricalSpace({"a": [1, 2, 1]})
    with pytest.raises(ValueError, match="variable 'a' must list at least one choice"):
        CategoricalSpace({"a": []})
    with pytest.raises(ValueError, match=r"choices of 'a' must be JSON scalars .* got \[1\]"):
        CategoricalSpace({"a": [[1], 2]})
    with pytest.raises(ValueError, match="choices of 'a' must be a list of values, got 'xyz'"):
        CategoricalSpace({"a": "xyz"})
    with pytest.raises(ValueError, match="must be finite"):
        CategoricalSpace({"a": [1.0, float("nan")]})


def test_categorical_architectures_are_frozen_hashable_json_mappings():
    space = CategoricalSpace({"a": [1, 2, 3], "op": ["conv", "pool"], "w": [0.5, np.float64(1.5)], "on": [True]})
    assert list(space.cardinalities) == [3, 2, 2, 1] and space.size == 12
    arch = space.sample(np.random.default_rng(0))
    assert isinstance(arch, CategoricalArch) and space.contains(arch)
    assert {arch: 1}[CategoricalArch(dict(arch))] == 1  # hashable, equal by content
    assert arch == dict(arch) and CategoricalArch.from_json(arch.to_json()) == arch
    assert json.loads(arch.to_json()) == dict(arch)
    plain = {"a": 3, "op": "pool", "w": 1.5, "on": True}
    assert space.validate(plain) == plain and isinstance(space.validate(plain), CategoricalArch)
    np.testing.assert_array_equal(space.encode(plain), [2, 1, 1, 0])
    assert space.decode([2, 1, 1, 0]) == plain
    with pytest.raises(ValueError, match=r"a must be one of \(1, 2, 3\), got 4"):
        space.encode({**plain, "a": 4})
    with pytest.raises(ValueError, match="exactly the variables"):
        space.validate({"a": 1})
    with pytest.raises(ValueError, match=r"gene op must lie in \[0, 1\], got 2"):
        space.decode([0, 2, 0, 0])
    assert len(set(space.iter_all())) == space.size
    assert space.sample(7) == space.sample(7)


def test_both_spaces_follow_the_protocol_and_problems_refuse_others(tiny_space):
    space = CategoricalSpace({"a": [1, 2]})
    assert isinstance(space, Space) and isinstance(tiny_space, Space)
    objective = Objective("a", "min", "cheap", lambda archs: np.array([x["a"] for x in archs], dtype=float))
    assert SearchProblem(space, (objective,)).bounds.tolist() == [[1.0, 2.0]]
    with pytest.raises(ValueError, match=r"space must follow the search-space protocol .* dict lacks \['encode'"):
        SearchProblem({"a": [1, 2]}, (objective,))


def test_genome_ops_need_no_depth_gene_and_count_only_real_choices():
    space = CategoricalSpace({"a": [1, 2, 3], "fixed": ["x"], "b": [0, 1], "c": [5, 6, 7, 8]})
    ops = GenomeOps(space)
    rng = np.random.default_rng(0)
    genome = ops.sample(rng)
    assert ops.active(genome).all() and ops.n_variable(genome) == 3  # "fixed" has one choice
    for _ in range(100):
        a, b = ops.sample(rng), ops.sample(rng)
        mutant = ops.mutate(a, rng, 1.0)
        assert space.contains(ops.decode(mutant))
        assert np.all((mutant != a) == (space.cardinalities > 1))  # every movable gene moved
        child = ops.crossover(a, b, rng)
        assert np.all((child == a) | (child == b))  # each gene from one parent


def test_transformer_genome_ops_count_active_genes_with_choices(tiny_space):
    ops = GenomeOps(tiny_space)
    genome = tiny_space.encode(tiny_space.smallest())  # one layer of four genes
    assert ops.n_variable(genome) == 6  # embed, depth, heads, ffn, attention, quant


def test_reference_members_include_extremes_and_their_two_choice_variants(tiny_space):
    refs = set(reference_archs(tiny_space, n_samples=0))
    assert tiny_space.smallest() in refs and tiny_space.largest() in refs
    # the smallest member with two layer choices changed at once is among them
    small = tiny_space.smallest()
    layer = small.layers[0]
    assert type(small)(small.embed_dim, (type(layer)(layer.heads, layer.ffn_ratio, "linear", "int8"),)) in refs


class Bits(tuple):
    """A bare architecture: a tuple of 0/1 that knows its JSON."""

    def to_json(self) -> str:
        return json.dumps(list(self))


class BitSpace:
    """Only the five members the protocol requires: no validate, size, genes or masks."""

    def __init__(self, n: int) -> None:
        self.n = n

    @property
    def cardinalities(self) -> np.ndarray:
        return np.full(self.n, 2, dtype=np.int64)

    def encode(self, arch: Bits) -> np.ndarray:
        return np.array(arch, dtype=np.int64)

    def decode(self, genome) -> Bits:
        return Bits(int(g) for g in genome)

    def sample(self, rng: np.random.Generator) -> Bits:
        return Bits(int(g) for g in rng.integers(2, size=self.n))

    def canonical(self, genome) -> np.ndarray:
        return np.asarray(genome, dtype=np.int64)


@pytest.mark.parametrize("name", algorithm_names())
def test_every_algorithm_searches_a_bare_protocol_space(name):
    space = BitSpace(8)
    ones = Objective("ones", "min", "cheap", lambda archs: np.array([sum(a) for a in archs], dtype=float))
    score = accuracy_objective(lambda archs: np.array([np.dot(a, np.arange(1, 9)) / 36 for a in archs]))
    result = optimize(SearchProblem(space, (score, ones)), get_algorithm(name, **FAST[name]), 14, 0)
    assert len(result.archs) == 14 == len(set(result.archs))
    assert all(isinstance(a, Bits) and len(a) == 8 for a in result.archs)


def test_run_search_writes_and_resumes_categorical_searches(tmp_path):
    space = CategoricalSpace({f"x{i}": [0, 1, 2] for i in range(4)})
    calls = []

    def score(archs):
        calls.extend(archs)
        return np.array([sum(a.values()) / 8 for a in archs])

    size = Objective("size", "min", "cheap", lambda archs: np.array([a["x0"] * 2 + a["x1"] for a in archs], float))
    problem = SearchProblem(space, (accuracy_objective(score), size))
    first = run_search(problem, get_algorithm("optuna-tpe", batch_size=3, n_startup_trials=4), budget=7, seed=1,
                       out_dir=tmp_path)
    candidates = pd.read_parquet(tmp_path / "candidates.parquet")
    assert candidates["arch"].tolist() == [a.to_json() for a in first.archs]
    assert [space.decode(json.loads(g)) for g in candidates["genome"]] == first.archs
    assert len(pd.read_csv(tmp_path / "front.csv")) == len(first.front)

    import optuna  # parameters carry the space's variable names and choice values

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "optuna.journal")))
    (summary,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
    assert [t.params for t in trials[:7]] == [dict(a) for a in first.archs]

    longer = run_search(problem, get_algorithm("optuna-tpe", batch_size=3, n_startup_trials=4), budget=10, seed=1,
                        out_dir=tmp_path)
    assert len(longer.candidates) == 10 and len(calls) == 10  # the stored 7 answered from state.json
    assert longer.candidates["arch"][:7].tolist() == first.candidates["arch"].tolist()
