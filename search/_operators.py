"""Categorical variation on any space's genome.

Genes are choice indices. Only the genes the space marks active matter (all of them,
unless the space has an `active_mask`); children are canonicalised by the space, so two
genomes that decode to the same architecture never count twice. Crossover moves blocks
of genes as a whole: one layer's genes when the space's genes name their layer.
"""

from __future__ import annotations

import numpy as np

from ._space import ArchLike, Space, active_mask, check_space, gene_blocks


class GenomeOps:
    """Sampling, mutation and crossover for one space; every call takes a Generator."""

    def __init__(self, space: Space) -> None:
        self.space = check_space(space)
        self.card = np.asarray(space.cardinalities, dtype=np.int64)
        self.blocks = gene_blocks(space)
        self._archs: dict[bytes, ArchLike] = {}  # decode cache: operators decode the same genomes often

    def active(self, genome: np.ndarray) -> np.ndarray:
        """Boolean mask of the genes that matter for this genome."""
        return active_mask(self.space, genome)

    def n_variable(self, genome: np.ndarray) -> int:
        """Number of active genes with more than one choice (the ones mutation can move)."""
        return int(np.sum(self.active(genome) & (self.card > 1)))

    def canonical(self, genome: np.ndarray) -> np.ndarray:
        return np.asarray(self.space.canonical(np.asarray(genome, dtype=np.int64)), dtype=np.int64)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(self.space.encode(self.space.sample(rng)), dtype=np.int64)

    def _fill_switched_on(self, child: np.ndarray, before: np.ndarray, rng: np.random.Generator) -> None:
        """Random choices for genes a change made active (e.g. the layers a deeper depth adds)."""
        seen = before.copy()
        for _ in range(len(child)):  # a gene can switch on others: at most one round per gene
            new = self.active(child) & ~seen
            if not new.any():
                return
            child[new] = rng.integers(self.card[new])
            seen |= new

    def mutate(self, genome: np.ndarray, rng: np.random.Generator, prob: float) -> np.ndarray:
        """Each active gene moves to another choice with probability `prob`; genes that the
        change switches on get random choices. Returns a canonical genome."""
        child = np.array(genome, dtype=np.int64)
        before = self.active(child)
        for pos in np.flatnonzero(before):
            if self.card[pos] > 1 and rng.random() < prob:
                # shift by 1..card-1 so the gene always changes
                child[pos] = (child[pos] + rng.integers(1, self.card[pos])) % self.card[pos]
        self._fill_switched_on(child, before, rng)
        return self.canonical(child)

    def crossover(self, a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Each block taken from either parent with probability 1/2. A block the child needs
        but its chosen parent lacks (inactive there) comes from the other parent, or is
        random when neither has it. Returns a canonical genome."""
        parents = (np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
        has = (self.active(parents[0]), self.active(parents[1]))
        picks = rng.integers(2, size=len(self.blocks))
        child = np.zeros_like(parents[0])
        for block, pick in zip(self.blocks, picks):
            child[block] = parents[pick][block]
        fixed = np.zeros(len(self.blocks), dtype=bool)
        for _ in range(len(self.blocks)):  # a fixed block can switch on others: bounded rounds
            need = self.active(child)
            changed = False
            for k, (block, pick) in enumerate(zip(self.blocks, picks)):
                wanted = block[need[block]]
                if fixed[k] or not wanted.size:
                    continue
                fixed[k] = True
                if has[pick][wanted].all():
                    continue
                other = 1 - pick
                if has[other][wanted].all():
                    child[block] = parents[other][block]
                else:
                    child[block] = rng.integers(self.card[block])
                changed = True
            if not changed:
                break
        return self.canonical(child)

    def decode(self, genome: np.ndarray) -> ArchLike:
        genome = np.asarray(genome, dtype=np.int64)
        key = genome.tobytes()
        arch = self._archs.get(key)
        if arch is None:
            arch = self._archs[key] = self.space.decode(genome)
        return arch
