"""Which subnets a profile measures: the extremes, every choice of every dimension, then random."""

from __future__ import annotations

import numpy as np

from supernet import LAYER_FIELDS, Arch, LayerConfig, SearchSpace


def _pick(rng: np.random.Generator, choices: tuple) -> object:
    value = choices[int(rng.integers(len(choices)))]
    return int(value) if isinstance(value, (int, np.integer)) else value


def coverage_archs(space: SearchSpace, seed: int) -> list[Arch]:
    """Smallest, largest, and for each choice of each dimension one subnet that uses it.

    A layer choice is covered by a subnet whose layers all take that choice (other layer
    fields drawn at random), so its cost shows up once per layer.
    """
    rng = np.random.default_rng(seed)
    out = [space.smallest(), space.largest()]
    for e in space.embed_dims:
        out.append(Arch(e, space.sample(rng).layers))
    for d in space.depths:
        out.append(Arch(space.sample(rng).embed_dim, (space.sample(rng).layers[0],) * d))
    for f in LAYER_FIELDS:
        for value in space.layer_choices(f):
            depth = int(rng.choice(space.depths))
            layers = []
            for _ in range(depth):
                fields = {g: _pick(rng, space.layer_choices(g)) for g in LAYER_FIELDS}
                fields[f] = value
                layers.append(LayerConfig(**fields))
            out.append(Arch(int(rng.choice(space.embed_dims)), tuple(layers)))
    unique: list[Arch] = []
    for arch in out:
        if arch not in unique:
            unique.append(arch)
    return unique


def sample_profile_archs(space: SearchSpace, n: int, seed: int = 0) -> list[Arch]:
    """`n` distinct subnets: coverage first, then uniform draws; prefix-stable in `n`.

    The same seed with a larger `n` extends the list, which is what lets a profile grow.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"number of samples must be a positive integer, got {n!r}")
    if n > space.size:
        raise ValueError(f"cannot draw {n} distinct subnets from a space of {space.size}")
    out = coverage_archs(space, seed)[:n]
    seen = set(out)
    rng = np.random.default_rng([seed, 1])
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 1000 * n:
            raise RuntimeError(f"drew only {len(out)} distinct subnets of {n} after {attempts} tries")
        arch = space.sample(rng)
        if arch not in seen:
            seen.add(arch)
            out.append(arch)
    return out
