"""Genome operators: categorical, depth-aware, canonical children; Pareto helpers."""

from __future__ import annotations

import numpy as np

from search import GenomeOps, HypervolumeTracker, front_ranks, hypervolume, non_dominated


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
    for _ in range(50):
        child = ops.crossover(a, b, rng)
        depth = ops.depth_of(child)
        for layer in range(depth):
            block = child[ops.blocks[layer]]
            from_a = np.array_equal(block, a[ops.blocks[layer]])
            from_b = layer < ops.depth_of(b) and np.array_equal(block, b[ops.blocks[layer]])
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
