"""Genome operators: categorical, depth-aware, canonical children; Pareto helpers."""

from __future__ import annotations

import numpy as np

import pytest

from search import GenomeOps, HypervolumeTracker, feasible, front_ranks, hypervolume, non_dominated


def test_mutation_and_crossover_give_valid_canonical_genomes(tiny_space):
    ops = GenomeOps(tiny_space)
    rng = np.random.default_rng(0)
    depths = set()
    for _ in range(300):
        a, b = ops.sample(rng), ops.sample(rng)
        for child in (ops.mutate(a, rng, 0.5), ops.crossover(a, b, rng)):
            arch = tiny_space.decode(child)
            assert tiny_space.contains(arch)
            np.testing.assert_array_equal(child, tiny_space.encode(arch))  # canonical
            depths.add(arch.depth)
    assert depths == set(tiny_space.depths)


def test_mutation_always_changes_a_gene_with_prob_one(tiny_space):
    ops = GenomeOps(tiny_space)
    rng = np.random.default_rng(1)
    genome = tiny_space.encode(tiny_space.largest())
    assert all(not np.array_equal(ops.mutate(genome, rng, 1.0), genome) for _ in range(20))


def test_crossover_takes_whole_layer_blocks_from_parents(tiny_space):
    ops = GenomeOps(tiny_space)
    rng = np.random.default_rng(2)
    a = tiny_space.encode(tiny_space.largest())
    b = tiny_space.encode(tiny_space.smallest())
    assert [len(block) for block in ops.blocks] == [1, 1] + [4] * tiny_space.max_depth  # embed, depth, layers
    for _ in range(50):
        child = ops.crossover(a, b, rng)
        for block in ops.blocks:
            if not ops.active(child)[block].all():
                continue
            from_a = np.array_equal(child[block], a[block])
            from_b = ops.active(b)[block].all() and np.array_equal(child[block], b[block])
            assert from_a or from_b


def test_pareto_helpers():
    F = np.array([[0.1, 0.9], [0.5, 0.5], [0.6, 0.6], [0.9, 0.1], [0.5, 0.5]])
    assert non_dominated(F).tolist() == [True, True, False, True, True]
    assert front_ranks(F).tolist() == [0, 0, 1, 0, 0]
    tracker = HypervolumeTracker(2)
    values = [tracker.add(f) for f in F]
    assert values == sorted(values)
    assert np.isclose(values[-1], hypervolume(F))
    assert hypervolume(np.array([[1.2, 0.0]])) == 0.0  # beyond the reference point


def _dominated_by_any(F: np.ndarray) -> np.ndarray:
    """The definition, O(n^2): row i is dominated when some row is <= in all and < in one."""
    return np.array([np.any(np.all(F <= f, axis=1) & np.any(F < f, axis=1)) for f in F])


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_non_dominated_and_ranks_match_the_definition(m):
    rng = np.random.default_rng(m)
    F = rng.integers(0, 6, size=(300, m)).astype(float)  # many ties and copies
    mask = non_dominated(F)
    np.testing.assert_array_equal(mask, ~_dominated_by_any(F))
    ranks = front_ranks(F)
    left, rank = np.arange(len(F)), 0
    while left.size:  # peel fronts by the definition
        first = ~_dominated_by_any(F[left])
        assert (ranks[left[first]] == rank).all() and (ranks[left[~first]] > rank).all()
        left, rank = left[~first], rank + 1
    assert non_dominated(np.zeros((0, m))).shape == (0,) and front_ranks(np.zeros((0, m))).shape == (0,)


def test_hypervolume_of_boxes():
    assert hypervolume(np.array([[0.1, 0.6], [0.6, 0.1]]), ref=1.0) == pytest.approx(0.9 * 0.4 * 2 - 0.4 * 0.4)
    assert hypervolume(np.array([[0.5]]), ref=1.0) == pytest.approx(0.5)
    assert hypervolume(np.zeros((0, 2))) == 0.0


def test_feasible_is_every_constraint_at_most_zero():
    G = np.array([[0.0, -1.0], [0.1, -1.0], [-2.0, 1e-9]])
    assert feasible(G).tolist() == [True, False, False]
    assert feasible(np.zeros((3, 0))).tolist() == [True, True, True]  # no constraints
    with pytest.raises(ValueError, match=r"G must be a 2-D array \(n, n_constraints\), got shape \(3,\)"):
        feasible(np.zeros(3))
