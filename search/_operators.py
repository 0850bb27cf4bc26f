"""Categorical, depth-aware variation on the space's genome.

Genes are choice indices. A layer's genes form a block that crossover moves as a whole;
genes of layers past the depth are inactive, so children are canonicalised (inactive
genes at 0) and two genomes that decode to the same architecture never count twice.
"""

from __future__ import annotations

import numpy as np

from supernet.space import Arch, SearchSpace


class GenomeOps:
    """Sampling, mutation and crossover for one space; every call takes a Generator."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.card = space.cardinalities
        genes = space.genes
        self.global_pos = np.array([i for i, g in enumerate(genes) if g.layer is None])
        self.depth_pos = next(i for i, g in enumerate(genes) if g.name == "depth")
        self.blocks = [np.array([i for i, g in enumerate(genes) if g.layer == layer])
                       for layer in range(space.max_depth)]
        # active-gene mask per depth gene value
        self.masks = [np.array([g.layer is None or g.layer < d for g in genes]) for d in space.depths]
        self._archs: dict[bytes, Arch] = {}  # decode cache: operators decode the same genomes often

    def active(self, genome: np.ndarray) -> np.ndarray:
        return self.masks[int(genome[self.depth_pos])]

    def canonical(self, genome: np.ndarray) -> np.ndarray:
        out = np.array(genome, dtype=np.int64)
        out[~self.active(out)] = 0
        return out

    def depth_of(self, genome: np.ndarray) -> int:
        return int(self.space.depths[int(genome[self.depth_pos])])

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return self.space.encode(self.space.sample(rng))

    def _random_block(self, genome: np.ndarray, layer: int, rng: np.random.Generator) -> None:
        pos = self.blocks[layer]
        genome[pos] = rng.integers(self.card[pos])

    def mutate(self, genome: np.ndarray, rng: np.random.Generator, prob: float) -> np.ndarray:
        """Each active gene moves to another choice with probability `prob`; layers that a
        deeper depth switches on get random choices. Returns a canonical genome."""
        child = np.array(genome, dtype=np.int64)
        old_depth = self.depth_of(child)
        active = np.flatnonzero(self.active(child))
        for pos in active:
            if self.card[pos] > 1 and rng.random() < prob:
                # shift by 1..card-1 so the gene always changes
                child[pos] = (child[pos] + rng.integers(1, self.card[pos])) % self.card[pos]
        for layer in range(old_depth, self.depth_of(child)):
            self._random_block(child, layer, rng)
        return self.canonical(child)

    def crossover(self, a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Global genes and whole layer blocks taken from either parent with probability 1/2.
        A block the chosen parent lacks (too shallow) comes from the other parent, or is
        random when neither has it. Returns a canonical genome."""
        parents = (np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
        depths = [self.depth_of(p) for p in parents]
        child = np.zeros_like(parents[0])
        for pos in self.global_pos:
            child[pos] = parents[int(rng.integers(2))][pos]
        for layer in range(self.depth_of(child)):
            pick = int(rng.integers(2))
            order = (pick, 1 - pick)
            source = next((parents[k] for k in order if depths[k] > layer), None)
            if source is None:
                self._random_block(child, layer, rng)
            else:
                child[self.blocks[layer]] = source[self.blocks[layer]]
        return self.canonical(child)

    def decode(self, genome: np.ndarray) -> Arch:
        key = self.canonical(genome).tobytes()
        arch = self._archs.get(key)
        if arch is None:
            arch = self._archs[key] = self.space.decode(genome)
        return arch
