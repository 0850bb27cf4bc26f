"""Fake quantization that reproduces onnxruntime's dynamic int8 quantization of MatMul.

`onnxruntime.quantization.quantize_dynamic(per_channel=True, weight_type=QInt8,
reduce_range=False)` turns ``MatMul(x, W)`` into ``MatMulInteger`` with
- weights: per output channel, symmetric, int8 in [-127, 127], scale = max|w| / 127;
- activations: `DynamicQuantizeLinear`, per tensor (per example at batch 1), asymmetric uint8 in [0, 255] over the
  range [min(0, min x), max(0, max x)], scale = range / 255, zero point = round(-min / scale).
Both round half to even, as torch.round does. The fake-quant output below equals the
dequantized integer product, so the accuracy of an int8 layer measured in the supernet is
the accuracy of the exported model. Gradients pass straight through the rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

INT8_WEIGHT_QMAX = 127.0
UINT8_ACT_QMAX = 255.0


def _straight_through(x: torch.Tensor, x_q: torch.Tensor) -> torch.Tensor:
    return x + (x_q - x).detach()


def fake_quant_weight(weight: torch.Tensor) -> torch.Tensor:
    """Per-output-channel symmetric int8 of a (out, in) weight, dequantized."""
    absmax = weight.detach().abs().amax(dim=1, keepdim=True)
    scale = absmax / INT8_WEIGHT_QMAX
    scale = torch.where(scale < torch.finfo(weight.dtype).tiny, torch.ones_like(scale), scale)
    q = torch.clamp(torch.round(weight / scale), -INT8_WEIGHT_QMAX, INT8_WEIGHT_QMAX)
    return _straight_through(weight, q * scale)


def fake_quant_activation(x: torch.Tensor) -> torch.Tensor:
    """Dynamic asymmetric uint8 of an activation, dequantized, with one range per example.

    onnxruntime takes the range over the whole input tensor; a deployed model sees one
    example per call (batch 1), so the range here is taken per example (over every axis
    but the first). Batched evaluation then gives each example the arithmetic it gets
    when deployed.
    """
    x_d = x.detach()
    dims = tuple(range(1, x.dim()))
    lo = torch.clamp(x_d.amin(dim=dims, keepdim=True), max=0.0)
    hi = torch.clamp(x_d.amax(dim=dims, keepdim=True), min=0.0)
    scale = (hi - lo) / UINT8_ACT_QMAX
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # all-zero rows quantize exactly
    zero_point = torch.clamp(torch.round(-lo / scale), 0.0, UINT8_ACT_QMAX)
    q = torch.clamp(torch.round(x / scale) + zero_point, 0.0, UINT8_ACT_QMAX)
    return _straight_through(x, (q - zero_point) * scale)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, int8: bool) -> torch.Tensor:
    """``F.linear``, or its int8 fake-quant twin when `int8`."""
    if not int8:
        return F.linear(x, weight, bias)
    return F.linear(fake_quant_activation(x), fake_quant_weight(weight), bias)
