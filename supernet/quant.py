"""Fake quantization that reproduces onnxruntime's dynamic int8 quantization of MatMul.

`onnxruntime.quantization.quantize_dynamic(per_channel=True, weight_type=QInt8,
reduce_range=True)` turns ``MatMul(x, W)`` into ``MatMulInteger`` with
- weights: per output channel, symmetric, int8 in onnxruntime's reduced range [-64, 64],
  scale = max|w| / 64;
- activations: `DynamicQuantizeLinear`, per tensor (per example at batch 1), asymmetric uint8 in [0, 255] over the
  range [min(0, min x), max(0, max x)], scale = range / 255, zero point = round(-min / scale).
Both round half to even, as torch.round does. The fake-quant output below equals the
dequantized integer product, so the accuracy of an int8 layer measured in the supernet is
the accuracy of the exported model. Gradients pass straight through the rounding.

Why the reduced weight range: on an x86 CPU without VNNI (AVX2 only, as the 2-core AMD EPYC
VM this project is developed on), onnxruntime's uint8 x int8 kernel adds the products in pairs
into 16 bits, which overflows with full-range weights (255 x 127 x 2 > 32767): there a
MatMulInteger of a (5, 64) x (64, 32) product was off by up to 18,059 in the integer sums, the
exported models' outputs up to 19% of their largest logit. With weights in [-64, 64]
(255 x 64 x 2 = 32,640) it is exact on every CPU, VNNI or not, at the cost of one bit of
weight precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

INT8_WEIGHT_QMAX = 64.0  # onnxruntime's reduced range for int8 weights (module docstring)
UINT8_ACT_QMAX = 255.0


def _straight_through(x: torch.Tensor, x_q: torch.Tensor) -> torch.Tensor:
    """`x_q` forward, the identity backward; plain `x_q` where no gradient is wanted."""
    if not (torch.is_grad_enabled() and x.requires_grad):
        return x_q
    return x + (x_q - x).detach()


def fake_quant_weight(weight: torch.Tensor) -> torch.Tensor:
    """Per-output-channel symmetric int8 of a (out, in) weight, dequantized."""
    w = weight.detach()
    scale = w.abs().amax(dim=1, keepdim=True) / INT8_WEIGHT_QMAX
    scale = torch.where(scale < torch.finfo(w.dtype).tiny, torch.ones_like(scale), scale)
    q = torch.div(w, scale).round_().clamp_(-INT8_WEIGHT_QMAX, INT8_WEIGHT_QMAX).mul_(scale)
    return _straight_through(weight, q)


def fake_quant_activation(x: torch.Tensor) -> torch.Tensor:
    """Dynamic asymmetric uint8 of an activation, dequantized, with one range per example.

    onnxruntime takes the range over the whole input tensor; a deployed model sees one
    example per call (batch 1), so the range here is taken per example (over every axis
    but the first). Batched evaluation then gives each example the arithmetic it gets
    when deployed. The integer arithmetic runs in place on one buffer.
    """
    x_d = x.detach()
    per_example = x_d.reshape(len(x_d), -1) if x_d.dim() > 1 else x_d.reshape(1, -1)
    lo, hi = per_example.amin(dim=1).clamp(max=0.0), per_example.amax(dim=1).clamp(min=0.0)
    scale = (hi - lo) / UINT8_ACT_QMAX
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # all-zero rows quantize exactly
    zero_point = torch.clamp(torch.round(-lo / scale), 0.0, UINT8_ACT_QMAX)
    shape = (-1,) + (1,) * (x_d.dim() - 1)
    scale, zero_point = scale.view(shape), zero_point.view(shape)
    q = torch.div(x_d, scale).round_().add_(zero_point).clamp_(0.0, UINT8_ACT_QMAX).sub_(zero_point).mul_(scale)
    return _straight_through(x, q)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, int8: bool,
           input_quantized: bool = False) -> torch.Tensor:
    """``F.linear``, or its int8 fake-quant twin when `int8`. `input_quantized`: `x` is already
    `fake_quant_activation`'s output (onnxruntime quantizes a tensor feeding several MatMuls once)."""
    if not int8:
        return F.linear(x, weight, bias)
    return F.linear(x if input_quantized else fake_quant_activation(x), fake_quant_weight(weight), bias)

