"""Search space of transformer architectures and its integer genome.

An architecture is a global embedding width plus one `LayerConfig` per active layer.
The space declares the allowed choices, validates architectures against them, and maps
each one to a fixed-length integer genome (one gene per choice; the genes of layers past
the architecture's depth are inactive and held at 0 in the canonical genome).

This module imports no torch: search/ and predictors/ work on it directly.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

QUANT_POLICIES = ("fp32", "int8")
LAYER_FIELDS = ("heads", "ffn_ratio", "attention", "quant")


@dataclass(frozen=True)
class LayerConfig:
    """Choices of one transformer layer."""

    heads: int
    ffn_ratio: int
    attention: str
    quant: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Arch:
    """A sub-network: embedding width and the layers it keeps, in order."""

    embed_dim: int
    layers: tuple[LayerConfig, ...]

    def __post_init__(self) -> None:
        # Accept lists of LayerConfig or dicts, store a tuple so the config stays hashable.
        layers = tuple(
            layer if isinstance(layer, LayerConfig) else LayerConfig(**layer) for layer in self.layers
        )
        object.__setattr__(self, "layers", layers)

    @property
    def depth(self) -> int:
        return len(self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {"embed_dim": self.embed_dim, "layers": [layer.to_dict() for layer in self.layers]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Arch":
        if not isinstance(data, dict) or set(data) != {"embed_dim", "layers"}:
            raise ValueError(f"an arch needs exactly the keys 'embed_dim' and 'layers', got {data!r}")
        layers = []
        for i, layer in enumerate(data["layers"]):
            if not isinstance(layer, dict) or set(layer) != set(LAYER_FIELDS):
                raise ValueError(f"layer {i} needs exactly the keys {LAYER_FIELDS}, got {layer!r}")
            layers.append(LayerConfig(**layer))
        return cls(embed_dim=data["embed_dim"], layers=tuple(layers))

    @classmethod
    def from_json(cls, text: str) -> "Arch":
        return cls.from_dict(json.loads(text))

    def describe(self) -> str:
        """A short human-readable summary, e.g. 'E96 | 4s2-f fp32 | 2l1-i8 ...'."""
        parts = [f"E{self.embed_dim}"]
        for layer in self.layers:
            q = "i8" if layer.quant == "int8" else "f32"
            parts.append(f"{layer.attention[:3]}:h{layer.heads}r{layer.ffn_ratio}:{q}")
        return " ".join(parts)


@dataclass(frozen=True)
class Gene:
    """One position of the genome: a named choice and, for per-layer genes, its layer."""

    name: str
    choices: tuple[Any, ...]
    layer: int | None = None
    field: str | None = None

    @property
    def cardinality(self) -> int:
        return len(self.choices)


def _check_choices(name: str, values: Sequence[Any], kind: type) -> tuple[Any, ...]:
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must list at least one choice, got none")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat a choice, got {list(values)}")
    for v in values:
        if kind is int and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
            raise ValueError(f"{name} must hold positive integers, got {v!r}")
        if kind is str and (not isinstance(v, str) or not v):
            raise ValueError(f"{name} must hold non-empty strings, got {v!r}")
    return tuple(sorted(values)) if kind is int else values


@dataclass(frozen=True)
class SearchSpace:
    """Declared choices of the transformer supernet.

    Each layer's query/key/value width is ``heads * head_dim``; its FFN width is
    ``ffn_ratio * embed_dim``. ``local_window`` is the radius (in tokens) of `local`
    attention. The first declared attention type and quantization policy are the
    reference choices used by `largest()` and `smallest()`.
    """

    embed_dims: tuple[int, ...] = (64, 96, 128)
    depths: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    heads: tuple[int, ...] = (1, 2, 4)
    ffn_ratios: tuple[int, ...] = (1, 2, 4)
    attentions: tuple[str, ...] = ("softmax", "linear", "local")
    quants: tuple[str, ...] = ("fp32", "int8")
    head_dim: int = 32
    local_window: int = 4
    _genes: tuple[Gene, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("embed_dims", _check_choices("embed_dims", self.embed_dims, int))
        set_("depths", _check_choices("depths", self.depths, int))
        set_("heads", _check_choices("heads", self.heads, int))
        set_("ffn_ratios", _check_choices("ffn_ratios", self.ffn_ratios, int))
        set_("attentions", _check_choices("attentions", self.attentions, str))
        set_("quants", _check_choices("quants", self.quants, str))
        for q in self.quants:
            if q not in QUANT_POLICIES:
                raise ValueError(f"quants must be among {QUANT_POLICIES}, got {q!r}")
        for name in ("head_dim", "local_window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        genes = [Gene("embed_dim", self.embed_dims), Gene("depth", self.depths)]
        for i in range(self.max_depth):
            for f in LAYER_FIELDS:
                genes.append(Gene(f"layer{i}.{f}", self.layer_choices(f), layer=i, field=f))
        set_("_genes", tuple(genes))

    # ----------------------------------------------------------------- declared choices
    @property
    def max_depth(self) -> int:
        return max(self.depths)

    @property
    def max_embed_dim(self) -> int:
        return max(self.embed_dims)

    @property
    def max_qkv_dim(self) -> int:
        return max(self.heads) * self.head_dim

    @property
    def max_ffn_dim(self) -> int:
        return max(self.ffn_ratios) * self.max_embed_dim

    def layer_choices(self, name: str) -> tuple[Any, ...]:
        if name not in LAYER_FIELDS:
            raise ValueError(f"layer field must be one of {LAYER_FIELDS}, got {name!r}")
        return {"heads": self.heads, "ffn_ratio": self.ffn_ratios,
                "attention": self.attentions, "quant": self.quants}[name]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in fields(self) if f.init}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SearchSpace":
        known = {f.name for f in fields(cls) if f.init}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown search-space setting(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    @classmethod
    def from_toml(cls, path: str | Path) -> "SearchSpace":
        """Read a space from a TOML file, either top-level keys or a ``[space]`` table."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"cannot read search space from {path}: {exc}") from exc
        return cls.from_dict(data.get("space", data))

    def fingerprint(self) -> str:
        """Stable identity of the space, stored with predictors and checkpoints."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    # ----------------------------------------------------------------- architectures
    def validate(self, arch: Arch) -> Arch:
        """Return `arch` unchanged or raise ValueError naming the offending field."""
        if not isinstance(arch, Arch):
            raise ValueError(f"expected an Arch, got {type(arch).__name__}")
        if arch.embed_dim not in self.embed_dims:
            raise ValueError(f"embed_dim must be one of {self.embed_dims}, got {arch.embed_dim!r}")
        if arch.depth not in self.depths:
            raise ValueError(f"depth must be one of {self.depths}, got {arch.depth}")
        for i, layer in enumerate(arch.layers):
            for f in LAYER_FIELDS:
                value, choices = getattr(layer, f), self.layer_choices(f)
                if value not in choices:
                    raise ValueError(f"layers[{i}].{f} must be one of {choices}, got {value!r}")
        return arch

    def contains(self, arch: Arch) -> bool:
        try:
            self.validate(arch)
        except ValueError:
            return False
        return True

    def _uniform(self, embed_dim: int, depth: int, heads: int, ffn_ratio: int) -> Arch:
        layer = LayerConfig(heads, ffn_ratio, self.attentions[0], self.quants[0])
        return Arch(embed_dim, (layer,) * depth)

    def largest(self) -> Arch:
        return self._uniform(max(self.embed_dims), max(self.depths), max(self.heads), max(self.ffn_ratios))

    def smallest(self) -> Arch:
        return self._uniform(min(self.embed_dims), min(self.depths), min(self.heads), min(self.ffn_ratios))

    def sample(self, rng: np.random.Generator | int | None) -> Arch:
        """Draw one architecture: each choice uniform, depth first."""
        rng = np.random.default_rng(rng)
        depth = int(rng.choice(self.depths))
        layers = tuple(
            LayerConfig(**{f: self._pick(rng, self.layer_choices(f)) for f in LAYER_FIELDS})
            for _ in range(depth)
        )
        return Arch(int(rng.choice(self.embed_dims)), layers)

    def redraw(self, arch: Arch, fields: Sequence[str], rng: np.random.Generator | int | None) -> Arch:
        """`arch` with the named layer fields (e.g. attention, quant) drawn afresh per layer."""
        rng = np.random.default_rng(rng)
        for f in fields:
            if f not in LAYER_FIELDS:
                raise ValueError(f"layer field must be one of {LAYER_FIELDS}, got {f!r}")
        layers = tuple(LayerConfig(**{**layer.to_dict(), **{f: self._pick(rng, self.layer_choices(f)) for f in fields}})
                       for layer in arch.layers)
        return Arch(arch.embed_dim, layers)

    @staticmethod
    def _pick(rng: np.random.Generator, choices: tuple[Any, ...]) -> Any:
        value = choices[int(rng.integers(len(choices)))]
        return int(value) if isinstance(value, (int, np.integer)) else value

    def sample_many(self, n: int, rng: np.random.Generator | int | None, *, unique: bool = True) -> list[Arch]:
        """Draw `n` architectures (distinct when `unique`, bounded by the space size)."""
        rng = np.random.default_rng(rng)
        if unique and n > self.size:
            raise ValueError(f"cannot draw {n} distinct architectures from a space of {self.size}")
        out: list[Arch] = []
        seen: set[Arch] = set()
        attempts = 0
        while len(out) < n:
            attempts += 1
            if attempts > 1000 * max(n, 1):
                raise RuntimeError(f"drew only {len(out)} distinct architectures of {n} after {attempts} tries")
            arch = self.sample(rng)
            if unique and arch in seen:
                continue
            seen.add(arch)
            out.append(arch)
        return out

    @property
    def size(self) -> int:
        """Number of distinct architectures in the space."""
        per_layer = math.prod(len(self.layer_choices(f)) for f in LAYER_FIELDS)
        return len(self.embed_dims) * sum(per_layer**d for d in self.depths)

    # ----------------------------------------------------------------- genome
    @property
    def genes(self) -> tuple[Gene, ...]:
        return self._genes

    @property
    def genome_length(self) -> int:
        return len(self._genes)

    @property
    def cardinalities(self) -> np.ndarray:
        """Number of choices per gene (the genome's upper bounds are these minus one)."""
        return np.array([g.cardinality for g in self._genes], dtype=np.int64)

    def encode(self, arch: Arch) -> np.ndarray:
        """Canonical genome of `arch`: choice indices, inactive layer genes at 0."""
        self.validate(arch)
        genome = np.zeros(self.genome_length, dtype=np.int64)
        for pos, gene in enumerate(self._genes):
            if gene.layer is None:
                value = arch.embed_dim if gene.name == "embed_dim" else arch.depth
            elif gene.layer < arch.depth:
                value = getattr(arch.layers[gene.layer], gene.field)
            else:
                continue
            genome[pos] = gene.choices.index(value)
        return genome

    def decode(self, genome: Sequence[int] | np.ndarray) -> Arch:
        """Architecture of a genome; genes of inactive layers are ignored."""
        genome = np.asarray(genome)
        if genome.shape != (self.genome_length,):
            raise ValueError(f"genome must have length {self.genome_length}, got shape {genome.shape}")
        values: dict[str, Any] = {}
        for pos, gene in enumerate(self._genes):
            idx = int(genome[pos])
            if not 0 <= idx < gene.cardinality:
                raise ValueError(f"gene {gene.name} must lie in [0, {gene.cardinality - 1}], got {idx}")
            values[gene.name] = gene.choices[idx]
        depth = values["depth"]
        layers = tuple(
            LayerConfig(**{f: values[f"layer{i}.{f}"] for f in LAYER_FIELDS}) for i in range(depth)
        )
        return Arch(values["embed_dim"], layers)

    def canonical(self, genome: Sequence[int] | np.ndarray) -> np.ndarray:
        """The canonical form of any valid genome (inactive genes reset to 0)."""
        return self.encode(self.decode(genome))

    def active_mask(self, genome: Sequence[int] | np.ndarray) -> np.ndarray:
        """Boolean mask of the genes that matter for this genome's depth."""
        depth = self.depths[int(np.asarray(genome)[1])]
        return np.array([g.layer is None or g.layer < depth for g in self._genes])

    def iter_all(self) -> Iterator[Arch]:
        """Every architecture of the space (only sensible for tiny spaces)."""
        import itertools

        per_layer = [LayerConfig(*c) for c in itertools.product(*(self.layer_choices(f) for f in LAYER_FIELDS))]
        for embed in self.embed_dims:
            for depth in self.depths:
                for layers in itertools.product(per_layer, repeat=depth):
                    yield Arch(embed, layers)


DEFAULT_SPACE = SearchSpace()
