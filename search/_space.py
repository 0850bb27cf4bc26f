"""The search-space protocol: what problems and algorithms need from a space of choices.

A space maps each architecture to a fixed-length integer genome of choice indices (gene i
in [0, cardinalities[i])). Architectures are hashable (the search caches by them) and
JSON-serialisable (a `to_json()` method, or a mapping of JSON values). The transformer
`supernet.SearchSpace` and `search.CategoricalSpace` both follow it.

Beyond the five required members, a space may offer what the helpers below use when it is
there: `active_mask(genome)` (genes that matter; all of them otherwise), `genes` (objects
with `name`, `choices` and `layer`: parameter names and values for optuna, and the gene
blocks crossover moves together), `validate(arch)`, `size`, `fingerprint()`, and
`smallest()` / `largest()`.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Hashable, Mapping
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

ArchLike = Hashable  # an architecture of some space: hashable and JSON-serialisable

REQUIRED = ("encode", "decode", "sample", "cardinalities", "canonical")
MAX_PAIR_VARIANTS = 600  # two-gene variations of an extreme member, skipped above this many
OPTUNA_TYPES = (bool, int, float, str, type(None))  # choice values optuna can store


@runtime_checkable
class Space(Protocol):
    """A space of discrete choices with a fixed-length integer genome."""

    @property
    def cardinalities(self) -> np.ndarray:
        """Number of choices per gene, shape (n_genes,)."""

    def encode(self, arch: Any) -> np.ndarray:
        """The canonical genome of an architecture of the space."""

    def decode(self, genome: Sequence[int] | np.ndarray) -> ArchLike:
        """The architecture of any valid genome."""

    def sample(self, rng: np.random.Generator) -> ArchLike:
        """One architecture drawn with `rng`."""

    def canonical(self, genome: Sequence[int] | np.ndarray) -> np.ndarray:
        """The one genome that stands for the same architecture as `genome`."""


def check_space(space: Any) -> Space:
    """`space` if it follows the protocol, else a ValueError naming what it lacks."""
    missing = [name for name in REQUIRED if not hasattr(space, name)]
    if missing:
        raise ValueError(f"space must follow the search-space protocol ({', '.join(REQUIRED)}); "
                         f"{type(space).__name__} lacks {missing}")
    card = np.asarray(space.cardinalities)
    if card.ndim != 1 or card.size == 0 or not np.issubdtype(card.dtype, np.integer) or np.any(card < 1):
        raise ValueError(f"space cardinalities must be a non-empty 1-D array of integers >= 1, got {card!r}")
    return space


def active_mask(space: Space, genome: np.ndarray) -> np.ndarray:
    """Boolean mask of the genes that matter for this genome (every gene, unless the space says)."""
    if hasattr(space, "active_mask"):
        return np.asarray(space.active_mask(genome), dtype=bool)
    return np.ones(len(space.cardinalities), dtype=bool)


def validate_arch(space: Space, arch: Any) -> ArchLike:
    """The space's own form of `arch`, or a ValueError when it is not a member."""
    if hasattr(space, "validate"):
        return space.validate(arch)
    try:
        return space.decode(space.encode(arch))
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"{arch!r} is not an architecture of this space: {exc}") from exc


def space_size(space: Space) -> int:
    """Number of distinct architectures (the genome count when the space does not say)."""
    if hasattr(space, "size"):
        return int(space.size)
    return math.prod(int(c) for c in space.cardinalities)


def fingerprint(space: Space) -> str:
    """Stable identity of the space (what a resumed search must match)."""
    if hasattr(space, "fingerprint"):
        return space.fingerprint()
    return json.dumps({"type": type(space).__name__,
                       "cardinalities": [int(c) for c in space.cardinalities]}, sort_keys=True)


def arch_json(arch: ArchLike) -> str:
    """Compact JSON text of an architecture (its identity in the files of a search)."""
    if hasattr(arch, "to_json"):
        return arch.to_json()
    if isinstance(arch, Mapping):
        return json.dumps(dict(arch), sort_keys=True, separators=(",", ":"))
    raise ValueError(f"architectures must be JSON-serialisable (a to_json() method or a mapping), "
                     f"got {type(arch).__name__}")


def describe(arch: ArchLike) -> str:
    """A short human-readable form of an architecture."""
    return arch.describe() if hasattr(arch, "describe") else arch_json(arch)


def gene_names(space: Space) -> list[str]:
    genes = getattr(space, "genes", None)
    if genes is None:
        return [f"x{i}" for i in range(len(space.cardinalities))]
    return [str(g.name) for g in genes]


def gene_choices(space: Space) -> list[tuple[Any, ...]]:
    """Each gene's choice values when the space names them and optuna can store them,
    else the choice indices."""
    genes = getattr(space, "genes", None)
    out = []
    for i, c in enumerate(space.cardinalities):
        choices = tuple(genes[i].choices) if genes is not None else ()
        ok = len(choices) == int(c) and all(isinstance(v, OPTUNA_TYPES) for v in choices)
        out.append(choices if ok else tuple(range(int(c))))
    return out


def gene_blocks(space: Space) -> list[np.ndarray]:
    """Groups of gene positions that crossover moves as a whole: the genes of one layer
    when the space's genes name their `layer`, each gene alone otherwise."""
    genes = getattr(space, "genes", None)
    n = len(space.cardinalities)
    if genes is None:
        return [np.array([i]) for i in range(n)]
    blocks: dict[Any, list[int]] = {}
    for i, g in enumerate(genes):
        layer = getattr(g, "layer", None)
        blocks.setdefault(("gene", i) if layer is None else ("layer", layer), []).append(i)
    return [np.array(b) for b in blocks.values()]


def reference_archs(space: Space, n_samples: int = 256) -> list[ArchLike]:
    """Extreme members of the space and their near neighbours, plus a fixed sample: used
    for objective bounds and the feasibility check.

    The extremes are the all-first-choice and all-last-choice genomes (and the space's
    `smallest()` / `largest()` when it names them). Each extreme is varied one active gene
    at a time, and two at a time where that stays small, so that a cost which is lowest at
    an extreme with one or two choices changed (e.g. the smallest member in int8 with linear
    attention) is among them.
    """
    card = np.asarray(space.cardinalities, dtype=np.int64)
    bases = [space.canonical(np.zeros_like(card)), space.canonical(card - 1)]
    bases += [space.encode(getattr(space, name)()) for name in ("smallest", "largest") if hasattr(space, name)]
    genomes: list[np.ndarray] = []
    for base in bases:
        base = np.asarray(base, dtype=np.int64)
        genomes.append(base)
        varied = [int(p) for p in np.flatnonzero(active_mask(space, base)) if card[p] > 1]
        for p in varied:
            for v in range(card[p]):
                genomes.append(_with(base, {p: v}))
        pairs = list(itertools.combinations(varied, 2))
        if sum((card[p] - 1) * (card[q] - 1) for p, q in pairs) <= MAX_PAIR_VARIANTS:
            for p, q in pairs:
                for v, w in itertools.product(range(card[p]), range(card[q])):
                    genomes.append(_with(base, {p: v, q: w}))
    archs = [space.decode(space.canonical(g)) for g in genomes]
    rng = np.random.default_rng(0)
    archs += [space.sample(rng) for _ in range(n_samples)]
    return list(dict.fromkeys(archs))


def _with(genome: np.ndarray, changes: dict[int, int]) -> np.ndarray:
    out = genome.copy()
    for pos, value in changes.items():
        out[pos] = value
    return out
