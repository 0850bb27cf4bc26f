"""Models to measure: subnets of a supernet and the distinct blocks they are built from.

Latency does not depend on weight values, so profiling extracts subnets from a freshly
initialised supernet. onnxruntime backends measure exported ONNX files (int8 layers
quantized exactly as `supernet.export_onnx` does); torch backends measure the modules.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import tempfile
import warnings
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
@dataclass(frozen=True)
class BlockKey:
    """One distinct block: a transformer layer (`kind="layer"`), the embedding, or the head."""

    kind: str
    embed_dim: int
    heads: int = 0
    ffn_ratio: int = 0
    attention: str = ""
    quant: str = ""

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


def _block_module(net: Any, key: BlockKey) -> Any:
    """A standalone torch module for one block, with its input shape suffix (tokens, features)."""
    import torch
    import torch.nn as nn

    from supernet.model import Block

    space, spec = net.space, net.spec
    if key.kind == "layer":
        arch = Arch(key.embed_dim, (LayerConfig(key.heads, key.ffn_ratio, key.attention, key.quant),))
        subnet = net.extract(arch)

        class OneLayer(nn.Module):  # `blocks.0` keeps export's node names (/blocks.0/q/MatMul)
            def __init__(self, block: Block) -> None:
                super().__init__()
                self.blocks = nn.ModuleList([block])
                self.int8 = key.quant == "int8"

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.blocks[0](x)
        return OneLayer(subnet.blocks[0]).eval(), key.embed_dim
    subnet = net.extract(Arch(key.embed_dim, space.smallest().layers))
    if key.kind == "embed":
        class Embed(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.subnet = subnet

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.subnet.embed_tokens(x)
        return Embed().eval(), spec.in_features

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.subnet = subnet

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.subnet.classify(x)
    return Head().eval(), key.embed_dim


def block_model_for(net: Any, key: BlockKey, device: DeviceSpec, folder: Path, seq_len: int) -> tuple[Any, int]:
    """(model, features per token) of one block for the device's backend."""
    module, features = _block_module(net, key)
    if device.is_torch:
        return module, features
    path = folder / f"block-{key.name}-n{seq_len}.onnx"
    if not path.exists():
        _export_block(module, path, seq_len, features, int8=key.kind == "layer" and key.quant == "int8")
    return path, features


def _export_block(module: Any, path: Path, seq_len: int, features: int, *, int8: bool) -> None:
    import torch

    from supernet.export import OPSET, int8_node_names
    from supernet.model import QLinear

    twin = copy.deepcopy(module)
    for m in twin.modules():
        if isinstance(m, QLinear):
            m.fake_quant = False
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".block-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(twin, (torch.zeros(1, seq_len, features),), str(fp32), input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "batch"}}, opset_version=OPSET,
                              dynamo=False)
        final = fp32
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            final = Path(tmp) / "int8.onnx"
            root = logging.getLogger()
            root.disabled, was = True, root.disabled
            try:
                quantize_dynamic(fp32, final, per_channel=True, reduce_range=False, weight_type=QuantType.QInt8,
                                 op_types_to_quantize=["MatMul"], nodes_to_quantize=int8_node_names(fp32, [0]))
            finally:
                root.disabled = was
        os.replace(final, path)


def deploy_spec(spec: InputSpec, device: DeviceSpec) -> InputSpec:
    """The input spec with the device's sequence length, when it sets one."""
    if device.seq_len is None or device.seq_len == spec.seq_len:
        return spec
    return spec.with_seq_len(device.seq_len)
