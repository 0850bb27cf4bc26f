"""Attention types: a registry of functions over already-projected heads.

Every function maps q, k, v of shape (B, H, N, d) to (B, H, N, d). The projections
around them are shared by all types, so one layer's Q/K/V/O weights serve each type.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

AttentionFn = Callable[..., torch.Tensor]
_REGISTRY: dict[str, AttentionFn] = {}


def register_attention(name: str) -> Callable[[AttentionFn], AttentionFn]:
    """Register `fn(q, k, v, *, window)` under `name`."""

    def wrap(fn: AttentionFn) -> AttentionFn:
        if name in _REGISTRY:
            raise ValueError(f"attention type {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return wrap


def get_attention(name: str) -> AttentionFn:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown attention type {name!r}; known: {sorted(_REGISTRY)}") from None


def attention_types() -> list[str]:
    return sorted(_REGISTRY)


@register_attention("softmax")
def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, window: int) -> torch.Tensor:
    """Scaled dot-product attention over all N x N token pairs."""
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5  # (B, H, N, N)
    return scores.softmax(dim=-1) @ v


@register_attention("linear")
def linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, window: int) -> torch.Tensor:
    """Kernelised attention phi(Q) (phi(K)^T V) with phi = elu + 1; cost linear in N."""
    q, k = F.elu(q) + 1.0, F.elu(k) + 1.0
    kv = k.transpose(-2, -1) @ v  # (B, H, d, d)
    k_sum = k.sum(dim=-2, keepdim=True)  # (B, H, 1, d)
    norm = (q * k_sum).sum(dim=-1, keepdim=True)  # (B, H, N, 1)
    return (q @ kv) / norm


def _blocks_with_neighbours(x: torch.Tensor, n_blocks: int, w: int) -> torch.Tensor:
    """(B, H, n_blocks*w, d) padded by one block each side -> (B, H, n_blocks, 3w, d)."""
    b, h, _, d = x.shape
    x = F.pad(x, (0, 0, w, w)).reshape(b, h, n_blocks + 2, w, d)
    return torch.cat([x[:, :, :-2], x[:, :, 1:-1], x[:, :, 2:]], dim=3)


@register_attention("local")
def local_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, window: int) -> torch.Tensor:
    """Softmax attention of each token to the tokens at most `window` positions away.

    Computed blockwise: queries in blocks of `window` tokens attend to their own block and
    the two neighbouring ones (3 * window keys), then a mask keeps |i - j| <= window.
    Largest intermediate: (B, H, N / window, window, 3 * window), linear in N.
    """
    b, h, n, d = q.shape
    w = window
    # (n + w - 1) // w, not -(-n // w): traced into ONNX, integer division of a negative
    # number truncates there instead of flooring, and the graph lost a block.
    n_blocks = (n + w - 1) // w
    pad = n_blocks * w - n
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    qb = q.reshape(b, h, n_blocks, w, d)
    kb = _blocks_with_neighbours(k, n_blocks, w)
    vb = _blocks_with_neighbours(v, n_blocks, w)
    scores = (qb @ kb.transpose(-2, -1)) * d**-0.5  # (B, H, n_blocks, w, 3w)

    # Absolute positions of each query and key slot; keys outside [0, n) are padding.
    pos_q = torch.arange(n_blocks * w, device=q.device).reshape(n_blocks, w, 1)
    pos_k = (torch.arange(n_blocks, device=q.device).reshape(n_blocks, 1, 1) - 1) * w + torch.arange(
        3 * w, device=q.device
    ).reshape(1, 1, 3 * w)
    allowed = ((pos_q - pos_k).abs() <= w) & (pos_k >= 0) & (pos_k < n)  # (n_blocks, w, 3w)
    scores = scores.masked_fill(~allowed, float("-inf"))
    out = scores.softmax(dim=-1) @ vb  # (B, H, n_blocks, w, d)
    return out.reshape(b, h, n_blocks * w, d)[:, :, :n]
