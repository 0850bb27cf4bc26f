"""Models to measure: subnets of a supernet and the distinct blocks they are built from.

Latency does not depend on weight values, so profiling extracts subnets and blocks from a
freshly initialised supernet (`Supernet.extract`, `extract_embedding`, `extract_layer`,
`extract_head`). onnxruntime backends measure the files `supernet.export_onnx` writes of
them; torch backends measure the modules.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from supernet import Arch, InputSpec, LayerConfig, SearchSpace

from ._device import DeviceSpec


def arch_key(arch: Arch) -> str:
    """A short stable file name for an architecture."""
    return hashlib.sha1(arch.to_json().encode()).hexdigest()[:16]


def model_for(net: Any, arch: Arch, device: DeviceSpec, folder: Path) -> Any:
    """What the device's backend measures for `arch`: a torch module or an ONNX path in `folder`."""
    subnet = net.extract(arch)
    if device.is_torch:
        return subnet
    from supernet import export_onnx

    path = folder / f"{arch_key(arch)}-n{net.spec.seq_len}.onnx"
    if not path.exists():
        export_onnx(subnet, path, check=False)
    return path


# ----------------------------------------------------------------------------- blocks
BLOCK_KINDS = ("embed", "layer", "head")


@dataclass(frozen=True)
class BlockKey:
    """One distinct block: a transformer layer (`kind="layer"`), the embedding, or the head."""

    kind: str
    embed_dim: int
    heads: int = 0
    ffn_ratio: int = 0
    attention: str = ""
    quant: str = ""

    def __post_init__(self) -> None:
        if self.kind not in BLOCK_KINDS:
            raise ValueError(f"block kind must be one of {BLOCK_KINDS}, got {self.kind!r}")

    @property
    def name(self) -> str:
        if self.kind != "layer":
            return f"{self.kind}.E{self.embed_dim}"
        return f"layer.E{self.embed_dim}.h{self.heads}.r{self.ffn_ratio}.{self.attention}.{self.quant}"


def block_keys(space: SearchSpace) -> list[BlockKey]:
    """Every distinct block of the space: embeddings and heads per width, then each layer combination."""
    keys = [BlockKey(kind, e) for e in space.embed_dims for kind in ("embed", "head")]
    for e in space.embed_dims:
        for h in space.heads:
            for r in space.ffn_ratios:
                for a in space.attentions:
                    for q in space.quants:
                        keys.append(BlockKey("layer", e, h, r, a, q))
    return keys


def arch_blocks(arch: Arch) -> Iterator[BlockKey]:
    """The blocks `arch` is made of (a layer block once per layer)."""
    e = arch.embed_dim
    yield BlockKey("embed", e)
    for layer in arch.layers:
        yield BlockKey("layer", e, layer.heads, layer.ffn_ratio, layer.attention, layer.quant)
    yield BlockKey("head", e)


def block_module(net: Any, key: BlockKey) -> Any:
    """A standalone torch module for one block, cut from `net` (`supernet.SubnetPart`)."""
    if key.kind == "layer":
        return net.extract_layer(key.embed_dim, LayerConfig(key.heads, key.ffn_ratio, key.attention, key.quant))
    if key.kind == "embed":
        return net.extract_embedding(key.embed_dim)
    return net.extract_head(key.embed_dim)


def block_model_for(net: Any, key: BlockKey, device: DeviceSpec, folder: Path) -> tuple[Any, tuple[int, int]]:
    """(model, (tokens, features) of one input example) of one block for the device's backend.

    The embedding reads the raw sequence; layers and head read the tokens (with the class
    token, when the readout uses one). ONNX files are cached in `folder` by block and tokens.
    """
    module = block_module(net, key)
    shape = module.input_shape()
    if device.is_torch:
        return module, shape
    from supernet import export_onnx

    path = folder / f"block-{key.name}-n{shape[0]}.onnx"
    if not path.exists():
        export_onnx(module, path, check=False)
    return path, shape


def deploy_spec(spec: InputSpec, device: DeviceSpec) -> InputSpec:
    """The input spec with the device's sequence length, when it sets one."""
    if device.seq_len is None or device.seq_len == spec.seq_len:
        return spec
    return spec.with_seq_len(device.seq_len)
