"""`CategoricalSpace`: named variables, each with its own list of choices.

The plain space of tabular benchmarks: every combination is a member and every gene is
always active. Its architectures are `CategoricalArch`, a small frozen mapping from
variable name to chosen value (hashable, JSON-serialisable); plain dicts are accepted
wherever an architecture goes in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any, Sequence

import numpy as np

from supernet.space import Gene

Scalar = bool | int | float | str | None


class CategoricalArch(Mapping):
    """A frozen mapping {variable: value}; equal to a dict with the same items."""

    __slots__ = ("_items", "_dict", "_hash")

    def __init__(self, items: Mapping[str, Scalar] | Sequence[tuple[str, Scalar]]) -> None:
        pairs = tuple(items.items() if isinstance(items, Mapping) else items)
        self._items = pairs
        self._dict = dict(pairs)
        self._hash = hash(frozenset(pairs))

    def __getitem__(self, key: str) -> Scalar:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and self._dict == dict(other)

    def __repr__(self) -> str:
        return f"CategoricalArch({self._dict!r})"

    def to_dict(self) -> dict[str, Scalar]:
        return dict(self._dict)

    def to_json(self) -> str:
        return json.dumps(self._dict, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "CategoricalArch":
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"a categorical architecture is a JSON object, got {text!r}")
        return cls(data)

    def describe(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self._items)


def _check_value(name: str, value: Any) -> Scalar:
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, (bool, int, float, str)) and value is not None:
        raise ValueError(f"choices of {name!r} must be JSON scalars (bool, int, float, str or None), "
                         f"got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"choices of {name!r} must be finite, got {value!r}")
    return value


class CategoricalSpace:
    """Variables with declared choices: `CategoricalSpace({"a": [1, 2, 3], "op": ["x", "y"]})`.

    Gene i is the index of variable i's choice, in declaration order.
    """

    def __init__(self, choices: Mapping[str, Sequence[Scalar]]) -> None:
        if not isinstance(choices, Mapping) or not choices:
            raise ValueError(f"choices must be a non-empty mapping {{name: [choice, ...]}}, got {choices!r}")
        genes = []
        for name, values in choices.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"variable names must be non-empty strings, got {name!r}")
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                raise ValueError(f"choices of {name!r} must be a list of values, got {values!r}")
            values = tuple(_check_value(name, v) for v in values)
            if not values:
                raise ValueError(f"variable {name!r} must list at least one choice, got none")
            if len(set(values)) != len(values):
                raise ValueError(f"variable {name!r} must not repeat a choice, got {list(values)}")
            genes.append(Gene(name, values))
        self._genes = tuple(genes)
        self._index = [{v: i for i, v in enumerate(g.choices)} for g in genes]
        self._card = np.array([g.cardinality for g in genes], dtype=np.int64)

    # ----------------------------------------------------------------- declared choices
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self._genes)

    @property
    def genes(self) -> tuple[Gene, ...]:
        return self._genes

    @property
    def cardinalities(self) -> np.ndarray:
        return self._card.copy()

    @property
    def size(self) -> int:
        return math.prod(int(c) for c in self._card)

    def to_dict(self) -> dict[str, list[Scalar]]:
        return {g.name: list(g.choices) for g in self._genes}

    def fingerprint(self) -> str:
        return json.dumps({"categorical": self.to_dict()}, separators=(",", ":"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CategoricalSpace) and self._genes == other._genes

    def __hash__(self) -> int:
        return hash(self._genes)

    def __repr__(self) -> str:
        return f"CategoricalSpace({self.to_dict()!r})"

    # ----------------------------------------------------------------- architectures
    def validate(self, arch: Mapping[str, Scalar]) -> CategoricalArch:
        """`arch` as a CategoricalArch, or a ValueError naming the offending variable."""
        if not isinstance(arch, Mapping):
            raise ValueError(f"a categorical architecture is a mapping {{name: value}}, got {type(arch).__name__}")
        if set(arch) != set(self.names):
            raise ValueError(f"architecture must set exactly the variables {list(self.names)}, got {list(arch)}")
        return self.decode(self.encode(arch))

    def contains(self, arch: Any) -> bool:
        try:
            self.validate(arch)
        except ValueError:
            return False
        return True

    def encode(self, arch: Mapping[str, Scalar]) -> np.ndarray:
        """Choice indices of `arch`, one per variable."""
        if not isinstance(arch, Mapping) or set(arch) != set(self.names):
            raise ValueError(f"architecture must set exactly the variables {list(self.names)}, got {arch!r}")
        genome = np.zeros(len(self._genes), dtype=np.int64)
        for i, g in enumerate(self._genes):
            value = arch[g.name]
            try:
                genome[i] = self._index[i][value]
            except (KeyError, TypeError):
                raise ValueError(f"{g.name} must be one of {g.choices}, got {value!r}") from None
        return genome

    def decode(self, genome: Sequence[int] | np.ndarray) -> CategoricalArch:
        genome = self.canonical(genome)
        return CategoricalArch([(g.name, g.choices[int(i)]) for g, i in zip(self._genes, genome)])

    def canonical(self, genome: Sequence[int] | np.ndarray) -> np.ndarray:
        """A checked copy of the genome (every genome is already the only one of its member)."""
        genome = np.asarray(genome)
        if genome.shape != self._card.shape or not np.issubdtype(genome.dtype, np.integer):
            raise ValueError(f"genome must be {len(self._card)} integers, got {genome!r}")
        bad = np.flatnonzero((genome < 0) | (genome >= self._card))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"gene {self._genes[i].name} must lie in [0, {self._card[i] - 1}], got {int(genome[i])}")
        return genome.astype(np.int64)

    def sample(self, rng: np.random.Generator | int | None) -> CategoricalArch:
        """One architecture, each variable uniform over its choices."""
        rng = np.random.default_rng(rng)
        return self.decode(rng.integers(self._card))

    def iter_all(self) -> Iterator[CategoricalArch]:
        """Every architecture (only sensible for small spaces), in genome order."""
        for genome in np.ndindex(*(int(c) for c in self._card)):
            yield self.decode(np.array(genome, dtype=np.int64))
