"""The elastic transformer supernet and the static subnets extracted from it.

Shapes: B batch, N tokens, F features per token, E embed width, H heads, d head width.
A subnet uses the leading slices of every supernet weight (weight entanglement):
embed rows [:E], Q/K/V rows [:H*d], FFN rows [:r*E], LayerNorm [:E], classifier columns [:E].

    x (B, N, F) -> linear embed [+ class token in front] + positional (B, T, E)
      -> depth x [x + attn(LN(x)); x + FFN(LN(x))]   (pre-norm, GELU FFN)
      -> LN -> readout (B, E) -> classifier (B, C)

T is N, or N + 1 with a class token. The readout is the task's (`InputSpec.readout`): the
mean over tokens, the last token, or the class token.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import quant
from .attention import get_attention
from .cost import InputSpec
from .space import Arch, LayerConfig, SearchSpace
from .train_config import ATTENTION_WEIGHTS


def _split_heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, _ = t.shape
    return t.reshape(b, n, heads, -1).transpose(1, 2)  # (B, H, N, d)


def _merge_heads(t: torch.Tensor) -> torch.Tensor:
    b, h, n, d = t.shape
    return t.transpose(1, 2).reshape(b, n, h * d)  # (B, N, H*d)


def readout(h: torch.Tensor, kind: str) -> torch.Tensor:
    """(B, T, E) normalised tokens -> (B, E) what the classifier reads."""
    if kind == "mean":
        return h.mean(dim=1)
    if kind == "last":
        return h[:, -1]
    if kind == "cls":
        return h[:, 0]
    raise ValueError(f"readout must be one of ('mean', 'last', 'cls'), got {kind!r}")


def _with_class_token(h: torch.Tensor, cls: torch.Tensor | None) -> torch.Tensor:
    """Prepend the class token (E,) to every sequence of h (B, N, E) when there is one."""
    if cls is None:
        return h
    return torch.cat([cls.expand(h.shape[0], 1, -1), h], dim=1)  # (B, N + 1, E)


def _init_(module: nn.Module, generator: torch.Generator) -> None:
    """Seeded initialisation: weight matrices truncated normal with std 1/sqrt(fan_in)
    (cut at 2 std), positional embeddings std 0.02, LayerNorms at identity, zero biases.

    Fan-in scaling keeps every projection's output at unit scale from the first step; with
    the smaller std 0.02 common in large transformers, the 4-value tokens here start as
    near-zero embeddings and training needs many more updates to get going.
    """
    for name, p in module.named_parameters():
        if "norm" in name:
            nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)
        elif name.endswith("bias"):
            nn.init.zeros_(p)
        elif p.dim() == 2 and name != "pos":
            std = p.shape[1] ** -0.5
            nn.init.trunc_normal_(p, std=std, a=-2 * std, b=2 * std, generator=generator)
        else:
            nn.init.trunc_normal_(p, std=0.02, a=-0.04, b=0.04, generator=generator)


class Projections(nn.Module):
    """The query, key, value and output projections of one layer's attention."""

    def __init__(self, embed: int, qkv: int) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Linear(embed, qkv), nn.Linear(embed, qkv), nn.Linear(embed, qkv)
        self.o = nn.Linear(qkv, embed)


class SuperBlock(nn.Module):
    """One transformer layer holding the largest weights of every choice.

    With `attention_weights="shared"` every attention type uses the same Q/K/V/O weights
    (held as `q`, `k`, `v`, `o`); with `"per_type"` each type has its own set (held in
    `attn[type]`), so a type's projections are not shaped by another type's scores.
    """

    def __init__(self, embed: int, qkv: int, ffn: int, *, attentions: tuple[str, ...] = (),
                 attention_weights: str = "shared") -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed)
        if attention_weights == "shared":
            self.q, self.k, self.v = nn.Linear(embed, qkv), nn.Linear(embed, qkv), nn.Linear(embed, qkv)
            self.o = nn.Linear(qkv, embed)
            self.attn = None
        else:
            self.attn = nn.ModuleDict({name: Projections(embed, qkv) for name in attentions})
        self.norm2 = nn.LayerNorm(embed)
        self.fc1 = nn.Linear(embed, ffn)
        self.fc2 = nn.Linear(ffn, embed)

    def projections(self, attention: str) -> nn.Module:
        """The module holding `q`, `k`, `v`, `o` for layers of this attention type."""
        return self if self.attn is None else self.attn[attention]

    def forward(self, x: torch.Tensor, layer: LayerConfig, *, head_dim: int, window: int) -> torch.Tensor:
        e = x.shape[-1]
        qkv = layer.heads * head_dim
        hidden = layer.ffn_ratio * e
        int8 = layer.quant == "int8"
        p = self.projections(layer.attention)

        def lin(m: nn.Linear, n_out: int, n_in: int, h: torch.Tensor, input_quantized: bool = False) -> torch.Tensor:
            return quant.linear(h, m.weight[:n_out, :n_in], m.bias[:n_out], int8=int8, input_quantized=input_quantized)

        h = F.layer_norm(x, (e,), self.norm1.weight[:e], self.norm1.bias[:e])
        h = quant.fake_quant_activation(h) if int8 else h  # one quantized input for Q, K and V, as in onnxruntime
        q, k, v = (_split_heads(lin(m, qkv, e, h, input_quantized=True), layer.heads) for m in (p.q, p.k, p.v))
        a = get_attention(layer.attention)(q, k, v, window=window)
        x = x + lin(p.o, e, qkv, _merge_heads(a))
        h = F.layer_norm(x, (e,), self.norm2.weight[:e], self.norm2.bias[:e])
        return x + lin(self.fc2, e, hidden, F.gelu(lin(self.fc1, hidden, e, h)))


class Supernet(nn.Module):
    """Weight-sharing transformer over every architecture of `space`.

    The architecture is an argument of `forward`; the module holds no active-subnet state.
    """

    def __init__(self, space: SearchSpace, spec: InputSpec, *, seed: int = 0,
                 attention_weights: str = "shared") -> None:
        super().__init__()
        for name in space.attentions:
            get_attention(name)  # unknown attention types fail here, listing the known ones
        if attention_weights not in ATTENTION_WEIGHTS:
            raise ValueError(f"attention_weights must be one of {ATTENTION_WEIGHTS}, got {attention_weights!r}")
        self.space, self.spec, self.attention_weights = space, spec, attention_weights
        e = space.max_embed_dim
        self.embed = nn.Linear(spec.in_features, e)
        self.cls = nn.Parameter(torch.zeros(e)) if spec.readout == "cls" else None
        self.pos = nn.Parameter(torch.zeros(spec.tokens, e))
        self.blocks = nn.ModuleList(
            SuperBlock(e, space.max_qkv_dim, space.max_ffn_dim, attentions=space.attentions,
                       attention_weights=attention_weights)
            for _ in range(space.max_depth)
        )
        self.norm = nn.LayerNorm(e)
        self.head = nn.Linear(e, spec.num_classes)
        _init_(self, torch.Generator().manual_seed(seed))

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        """Logits (B, C) of subnet `arch` for inputs x (B, N, F)."""
        e = arch.embed_dim
        h = F.linear(x, self.embed.weight[:e], self.embed.bias[:e])
        h = _with_class_token(h, None if self.cls is None else self.cls[:e])
        h = h + self.pos[: h.shape[1], :e]
        for block, layer in zip(self.blocks, arch.layers):
            h = block(h, layer, head_dim=self.space.head_dim, window=self.space.local_window)
        h = F.layer_norm(h, (e,), self.norm.weight[:e], self.norm.bias[:e])
        return F.linear(readout(h, self.spec.readout), self.head.weight[:, :e], self.head.bias)

    def extract(self, arch: Arch) -> "Subnet":
        """A static module with copies of `arch`'s weight slices and the same outputs."""
        self.space.validate(arch)
        return Subnet.from_supernet(self, arch)

    # Parts of subnets on their own, for measuring and exporting blocks one at a time. Their
    # weights are the slices `extract` copies, so a part computes what it computes in a subnet.
    def extract_embedding(self, embed_dim: int) -> "TokenEmbedding":
        """The token embedding of width `embed_dim`: x (B, N, F) -> tokens (B, T, E)."""
        sub = self._extract_width(embed_dim)
        return TokenEmbedding(sub.embed, sub.cls, sub.pos, seq_len=self.spec.seq_len).eval()

    def extract_layer(self, embed_dim: int, layer: LayerConfig) -> "LayerStack":
        """One transformer layer on its own: tokens (B, T, E) -> tokens (B, T, E)."""
        self.space.validate(Arch(embed_dim, (layer,) * min(self.space.depths)))  # names a bad choice
        sub = Subnet.from_supernet(self, Arch(embed_dim, (layer,)))
        return LayerStack(list(sub.blocks), tokens=self.spec.tokens).eval()

    def extract_head(self, embed_dim: int) -> "ClassifierHead":
        """The classifier of width `embed_dim`: tokens (B, T, E) -> LN -> readout -> logits (B, C)."""
        sub = self._extract_width(embed_dim)
        return ClassifierHead(sub.norm, sub.head, readout=self.spec.readout, tokens=self.spec.tokens).eval()

    def _extract_width(self, embed_dim: int) -> "Subnet":
        """A subnet of width `embed_dim` (the shallowest layers), whose embedding and head parts are taken."""
        return self.extract(Arch(embed_dim, self.space.smallest().layers))


# --------------------------------------------------------------------- static subnets
class QLinear(nn.Linear):
    """A linear layer that runs int8 fake quantization when its layer's policy says so."""

    def __init__(self, n_in: int, n_out: int, *, int8: bool) -> None:
        super().__init__(n_in, n_out)
        self.int8 = int8
        self.fake_quant = int8

    def forward(self, x: torch.Tensor, *, input_quantized: bool = False) -> torch.Tensor:
        return quant.linear(x, self.weight, self.bias, int8=self.fake_quant, input_quantized=input_quantized)


class Block(nn.Module):
    """A fixed transformer layer: one attention type, one width, one quant policy."""

    def __init__(self, embed: int, layer: LayerConfig, *, head_dim: int, window: int) -> None:
        super().__init__()
        qkv, int8 = layer.heads * head_dim, layer.quant == "int8"
        self.heads, self.attention, self.window = layer.heads, layer.attention, window
        self.norm1 = nn.LayerNorm(embed)
        self.q, self.k, self.v = (QLinear(embed, qkv, int8=int8) for _ in range(3))
        self.o = QLinear(qkv, embed, int8=int8)
        self.norm2 = nn.LayerNorm(embed)
        self.fc1 = QLinear(embed, layer.ffn_ratio * embed, int8=int8)
        self.fc2 = QLinear(layer.ffn_ratio * embed, embed, int8=int8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        shared = self.q.fake_quant  # one quantized input for Q, K and V, as in onnxruntime
        h = quant.fake_quant_activation(h) if shared else h
        q, k, v = (_split_heads(m(h, input_quantized=shared), self.heads) for m in (self.q, self.k, self.v))
        x = x + self.o(_merge_heads(get_attention(self.attention)(q, k, v, window=self.window)))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Subnet(nn.Module):
    """A standalone transformer for one architecture: no elastic code, no unused weights."""

    def __init__(self, space: SearchSpace, spec: InputSpec, arch: Arch) -> None:
        super().__init__()
        self.arch, self.spec = arch, spec
        e = arch.embed_dim
        self.embed = nn.Linear(spec.in_features, e)
        self.cls = nn.Parameter(torch.zeros(e)) if spec.readout == "cls" else None
        self.pos = nn.Parameter(torch.zeros(spec.tokens, e))
        self.blocks = nn.ModuleList(
            Block(e, layer, head_dim=space.head_dim, window=space.local_window) for layer in arch.layers
        )
        self.norm = nn.LayerNorm(e)
        self.head = nn.Linear(e, spec.num_classes)

    @classmethod
    def initialised(cls, space: SearchSpace, spec: InputSpec, arch: Arch, *, seed: int = 0) -> "Subnet":
        """A freshly initialised standalone model of `arch` (seeded, fan-in scaled to its own widths)."""
        space.validate(arch)
        net = cls(space, spec, arch)
        _init_(net, torch.Generator().manual_seed(seed))
        return net

    @classmethod
    def from_supernet(cls, supernet: Supernet, arch: Arch) -> "Subnet":
        net = cls(supernet.space, supernet.spec, arch)
        e, d = arch.embed_dim, supernet.space.head_dim
        with torch.no_grad():
            net.embed.weight.copy_(supernet.embed.weight[:e])
            net.embed.bias.copy_(supernet.embed.bias[:e])
            net.pos.copy_(supernet.pos[:, :e])
            if net.cls is not None:
                net.cls.copy_(supernet.cls[:e])
            for block, sblock, layer in zip(net.blocks, supernet.blocks, arch.layers):
                qkv, hidden = layer.heads * d, layer.ffn_ratio * e
                shapes = {"q": (qkv, e), "k": (qkv, e), "v": (qkv, e), "o": (e, qkv),
                          "fc1": (hidden, e), "fc2": (e, hidden), "norm1": (e,), "norm2": (e,)}
                projections = sblock.projections(layer.attention)
                for name, shape in shapes.items():
                    dst = getattr(block, name)
                    src = getattr(projections if name in ("q", "k", "v", "o") else sblock, name)
                    dst.weight.copy_(src.weight[tuple(slice(0, s) for s in shape)])
                    dst.bias.copy_(src.bias[: shape[0]])
            net.norm.weight.copy_(supernet.norm.weight[:e])
            net.norm.bias.copy_(supernet.norm.bias[:e])
            net.head.weight.copy_(supernet.head.weight[:, :e])
            net.head.bias.copy_(supernet.head.bias)
        return net.eval()

    def embed_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, N, F) -> token embeddings with class token and positions (B, T, E)."""
        h = _with_class_token(self.embed(x), self.cls)
        return h + self.pos[: h.shape[1]]

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        """Last layer's tokens (B, T, E) -> logits (B, C)."""
        return self.head(readout(self.norm(h), self.spec.readout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed_tokens(x)
        for block in self.blocks:
            h = block(h)
        return self.classify(h)

    def without_fake_quant(self) -> "Subnet":
        """A copy that runs every layer in plain fp32 (what is exported before quantizing)."""
        twin = copy.deepcopy(self)
        for m in twin.modules():
            if isinstance(m, QLinear):
                m.fake_quant = False
        return twin

    def int8_layer_indices(self) -> list[int]:
        return [i for i, layer in enumerate(self.arch.layers) if layer.quant == "int8"]

    # What `supernet.export_onnx` needs from a module (see `supernet.export.Exportable`).
    output_name = "logits"

    def input_shape(self) -> tuple[int, int]:
        """(tokens N, features F) of one input example."""
        return (self.spec.seq_len, self.spec.in_features)

    def int8_linears(self) -> list[str]:
        """Module paths of the linear layers quantized to int8 at export (``blocks.1.q``, ...)."""
        return _int8_linears(self)


# --------------------------------------------------------------------- parts of a subnet
def _int8_linears(module: nn.Module) -> list[str]:
    return [name for name, m in module.named_modules() if isinstance(m, QLinear) and m.int8]


class SubnetPart(nn.Module):
    """A piece of a subnet standing on its own (embedding, layers or classifier), exportable
    like a subnet; its ONNX output is named ``y``."""

    output_name = "y"

    def __init__(self, input_shape: tuple[int, int]) -> None:
        super().__init__()
        self._input_shape = input_shape

    def input_shape(self) -> tuple[int, int]:
        """(tokens, features) of one input example."""
        return self._input_shape

    def int8_linears(self) -> list[str]:
        """Module paths of the linear layers quantized to int8 at export."""
        return _int8_linears(self)

    def without_fake_quant(self) -> "SubnetPart":
        """A copy that runs every layer in plain fp32 (what is exported before quantizing)."""
        twin = copy.deepcopy(self)
        for m in twin.modules():
            if isinstance(m, QLinear):
                m.fake_quant = False
        return twin


class TokenEmbedding(SubnetPart):
    """x (B, N, F) -> linear embed [+ class token in front] + positional (B, T, E)."""

    def __init__(self, embed: nn.Linear, cls: nn.Parameter | None, pos: nn.Parameter, *, seq_len: int) -> None:
        super().__init__((seq_len, embed.in_features))
        self.embed, self.cls, self.pos = embed, cls, pos

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _with_class_token(self.embed(x), self.cls)
        return h + self.pos[: h.shape[1]]


class LayerStack(SubnetPart):
    """tokens (B, T, E) -> fixed transformer layers -> tokens (B, T, E).

    The layers sit in ``blocks`` as in a `Subnet`, so exported node names (and the int8
    MatMuls picked by them) read the same: ``/blocks.0/q/MatMul``.
    """

    def __init__(self, blocks: list[Block], *, tokens: int) -> None:
        if not blocks:
            raise ValueError("a layer stack needs at least one layer, got none")
        super().__init__((tokens, blocks[0].norm1.normalized_shape[0]))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class ClassifierHead(SubnetPart):
    """tokens (B, T, E) -> LN -> readout (B, E) -> classifier (B, C)."""

    def __init__(self, norm: nn.LayerNorm, head: nn.Linear, *, readout: str, tokens: int) -> None:
        super().__init__((tokens, head.in_features))
        self.norm, self.head, self.readout = norm, head, readout

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(readout(self.norm(h), self.readout))
