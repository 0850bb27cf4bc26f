"""Analytic cost of a subnet: parameters, FLOPs and exported file size.

Torch-free, so search objectives and predictor features can use it. The counts follow
the layer structure of `supernet.model` (pre-norm transformer, mean pooling, linear head).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .space import Arch, SearchSpace

FP32_BYTES = 4
INT8_BYTES = 1


READOUTS = ("mean", "last", "cls")


@dataclass(frozen=True)
class InputSpec:
    """Shape of one example and how the classifier reads the sequence.

    `seq_len` tokens of `in_features` values, `num_classes` labels. `readout` is what the
    classifier sees: `mean` pools every token, `last` takes the last token (e.g. the query
    of a recall task), `cls` prepends a learned class token and takes it (one more token).
    """

    seq_len: int
    in_features: int
    num_classes: int
    readout: str = "mean"

    def __post_init__(self) -> None:
        for name in ("seq_len", "in_features", "num_classes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {self.readout!r}")

    @property
    def tokens(self) -> int:
        """Tokens the transformer layers see: the sequence, plus the class token for `cls`."""
        return self.seq_len + (self.readout == "cls")

    def with_seq_len(self, seq_len: int) -> "InputSpec":
        return InputSpec(seq_len, self.in_features, self.num_classes, self.readout)

    def to_dict(self) -> dict[str, Any]:
        return {"seq_len": self.seq_len, "in_features": self.in_features, "num_classes": self.num_classes,
                "readout": self.readout}


@dataclass(frozen=True)
class Cost:
    params: int
    flops: int  # multiply-adds count 2; batch 1, `seq_len` tokens
    size_bytes: int  # weights as stored in the exported file (int8 layers: 1 byte per weight)


def _linear(n_in: int, n_out: int) -> tuple[int, int]:
    """(weight count, bias count) of a linear layer."""
    return n_in * n_out, n_out


def arch_cost(arch: Arch, space: SearchSpace, spec: InputSpec) -> Cost:
    """Parameters, FLOPs and stored bytes of `arch` for inputs of shape `spec`."""
    n, e = spec.tokens, arch.embed_dim
    fp32_params = 0
    int8_weights = 0
    int8_channels = 0  # each quantized output channel stores a float scale and an int8 zero point
    flops = 0

    w, b = _linear(spec.in_features, e)
    fp32_params += w + b + n * e  # token embedding + positional embedding
    fp32_params += e if spec.readout == "cls" else 0  # the class token
    flops += 2 * spec.seq_len * w
    for layer in arch.layers:
        qkv = layer.heads * space.head_dim
        hidden = layer.ffn_ratio * e
        linears = [(e, qkv)] * 3 + [(qkv, e), (e, hidden), (hidden, e)]
        fp32_params += 4 * e  # two LayerNorms
        for n_in, n_out in linears:
            w, b = _linear(n_in, n_out)
            flops += 2 * n * w
            fp32_params += b
            if layer.quant == "int8":
                int8_weights += w
                int8_channels += n_out
            else:
                fp32_params += w
        d = space.head_dim
        if layer.attention == "softmax":
            flops += 2 * 2 * n * n * qkv  # scores and weighted sum
        elif layer.attention == "linear":
            flops += 2 * 2 * n * d * qkv  # phi(K)^T V, then phi(Q) @ (K^T V)
        elif layer.attention == "local":
            keys = min(3 * space.local_window, 3 * n)  # one block and its two neighbours
            flops += 2 * 2 * n * keys * qkv
        else:  # a registered custom type: count it as full softmax attention
            flops += 2 * 2 * n * n * qkv
    fp32_params += 2 * e  # final LayerNorm
    w, b = _linear(e, spec.num_classes)
    fp32_params += w + b
    flops += 2 * w
    params = fp32_params + int8_weights
    size = fp32_params * FP32_BYTES + int8_weights * INT8_BYTES + int8_channels * (FP32_BYTES + INT8_BYTES)
    return Cost(params=params, flops=flops, size_bytes=size)
