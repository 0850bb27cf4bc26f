"""Architecture features for latency predictors, described by a schema.

Feature groups (columns in this order within a group):
- ``global``: embed_dim, depth;
- ``layers``: per layer slot i < max depth: active, heads, ffn_ratio, one-hot attention,
  int8; all 0 for inactive slots (masked);
- ``analytic``: FLOPs, parameters and stored bytes from `supernet.arch_cost` and their logs;
- ``components``: how many times the arch uses each cost component: ``stem.E{e}``
  (embedding + head), ``proj.E{e}.h{h}.{quant}`` (Q/K/V/O projections),
  ``attn.{type}.h{h}`` (attention core), ``ffn.E{e}.r{r}.{quant}`` (FFN). Latency is close
  to additive over them, which is what the lookup-table predictors fit;
- ``quant``: ``any_int8``, 1 when any layer is int8. The per-layer int8 components carry
  every cost an int8 layer adds (a count of int8 layers is their sum, so adds nothing);
  this carries a cost paid once per model that has int8 layers at all. On the stored cpu
  profile (benchmarks/results/profile-cpu, 500 subnets, fastest runs, lut on components,
  8 held-out splits) it fits to 0.007 ms and takes the one-layer models' mean error from
  +3.1% (fp32) / -2.4% (int8) to 0.0% / +0.5%; without it the smallest int8 models are
  predicted too fast and can rank ahead of their slower fp32 twins;
- ``changes``: ``layer_changes``, the changes between adjacent layers, counting each of
  attention type, quantization and shape (heads or FFN ratio) that differs: a model pays for
  each. Over six default runs' profiles (80 random subnets each; benchmarks/results/
  layer_changes.md) the lookup table without it predicted the uniform baselines 3.0% too slow
  on average (the E96 four-softmax-layer ones +7% fp32, +11% int8), since the random subnets
  it is fitted on mostly change between layers and a uniform model never does;
- ``quant_changes``: how many adjacent layers differ in precision (fp32 / int8). Blocks are
  measured one at a time, so a sum of block costs misses what a model pays between its
  layers; with ``quant`` this is what the ``transfer`` residual adds to it (see
  `predictors._transfer`);
- ``blocks``: how many times the arch uses each distinct measured block (see
  `hwprofiles.block_keys`), for a lookup table built from block measurements.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

from hwprofiles import arch_blocks, block_keys
from supernet import Arch, InputSpec, SearchSpace, arch_cost

GROUPS = ("global", "layers", "analytic", "components", "quant", "changes", "quant_changes", "blocks")


class FeatureSchema:
    """Named feature columns of a space and input spec; `transform` maps archs to a matrix."""

    def __init__(self, space: SearchSpace, spec: InputSpec) -> None:
        self.space, self.spec = space, spec
        self._names = {
            "global": ["embed_dim", "depth"],
            "layers": [f"layer{i}.{f}" for i in range(space.max_depth)
                       for f in ("active", "heads", "ffn_ratio", *(f"attn_{a}" for a in space.attentions), "int8")],
            "analytic": ["flops", "params", "size_bytes", "log_flops", "log_params", "log_size_bytes"],
            "components": self._component_names(),
            "quant": ["any_int8"],
            "changes": ["layer_changes"],
            "quant_changes": ["quant_changes"],
            "blocks": [k.name for k in block_keys(space)],
        }
        self._index = {g: {n: i for i, n in enumerate(names)} for g, names in self._names.items()}

    def _component_names(self) -> list[str]:
        s = self.space
        names = [f"stem.E{e}" for e in s.embed_dims]
        names += [f"proj.E{e}.h{h}.{q}" for e in s.embed_dims for h in s.heads for q in s.quants]
        names += [f"attn.{a}.h{h}" for a in s.attentions for h in s.heads]
        names += [f"ffn.E{e}.r{r}.{q}" for e in s.embed_dims for r in s.ffn_ratios for q in s.quants]
        return names

    @staticmethod
    def check_groups(groups: Sequence[str]) -> tuple[str, ...]:
        groups = tuple(groups)
        for g in groups:
            if g not in GROUPS:
                raise ValueError(f"feature group must be one of {GROUPS}, got {g!r}")
        if not groups:
            raise ValueError("at least one feature group is needed")
        return groups

    def names(self, groups: Sequence[str]) -> list[str]:
        return [n for g in self.check_groups(groups) for n in self._names[g]]

    def transform(self, archs: Sequence[Arch], groups: Sequence[str]) -> np.ndarray:
        """Feature matrix (n_archs, n_features) of `archs` for the given groups."""
        groups = self.check_groups(groups)
        out = np.zeros((len(archs), len(self.names(groups))), dtype=np.float64)
        for row, arch in enumerate(archs):
            self.space.validate(arch)
            out[row] = np.concatenate([self._group(arch, g) for g in groups])
        return out

    def _group(self, arch: Arch, group: str) -> np.ndarray:
        idx, v = self._index[group], np.zeros(len(self._names[group]))
        if group == "global":
            v[:] = (arch.embed_dim, arch.depth)
        elif group == "layers":
            for i, layer in enumerate(arch.layers):
                v[idx[f"layer{i}.active"]] = 1
                v[idx[f"layer{i}.heads"]] = layer.heads
                v[idx[f"layer{i}.ffn_ratio"]] = layer.ffn_ratio
                v[idx[f"layer{i}.attn_{layer.attention}"]] = 1
                v[idx[f"layer{i}.int8"]] = layer.quant == "int8"
        elif group == "analytic":
            c = arch_cost(arch, self.space, self.spec)
            raw = np.array([c.flops, c.params, c.size_bytes], dtype=np.float64)
            v[:] = np.concatenate([raw, np.log(raw)])
        elif group == "components":
            e = arch.embed_dim
            v[idx[f"stem.E{e}"]] += 1
            for layer in arch.layers:
                v[idx[f"proj.E{e}.h{layer.heads}.{layer.quant}"]] += 1
                v[idx[f"attn.{layer.attention}.h{layer.heads}"]] += 1
                v[idx[f"ffn.E{e}.r{layer.ffn_ratio}.{layer.quant}"]] += 1
        elif group == "quant":
            v[0] = any(layer.quant == "int8" for layer in arch.layers)
        elif group == "changes":
            v[0] = sum((a.attention != b.attention) + (a.quant != b.quant)
                       + ((a.heads, a.ffn_ratio) != (b.heads, b.ffn_ratio))
                       for a, b in zip(arch.layers, arch.layers[1:]))
        elif group == "quant_changes":
            v[0] = sum(a.quant != b.quant for a, b in zip(arch.layers, arch.layers[1:]))
        else:
            for key in arch_blocks(arch):
                v[idx[key.name]] += 1
        return v

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space.to_dict(), "spec": self.spec.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureSchema":
        return cls(SearchSpace.from_dict(data["space"]), InputSpec(**data["spec"]))

    def fingerprint(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
