"""Accuracy of subnets with the supernet's inherited weights, batched, without autograd."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn

from .model import Supernet
from .space import Arch


def _check_data(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> None:
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"need x (N, seq_len, in_features) and y (N,), got x {tuple(x.shape)} and y {tuple(y.shape)}")
    if len(y) == 0:
        raise ValueError("cannot measure accuracy on an empty split")


def _accuracy(logits_of: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
              batch_size: int) -> float:
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = logits_of(x[start:start + batch_size])  # (B, C)
        correct += int((logits.argmax(dim=1) == y[start:start + batch_size]).sum())
    return correct / len(x)


def as_tensor(a: np.ndarray | torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A tensor copy of `a` (task arrays are read-only; torch wants writable memory)."""
    if isinstance(a, torch.Tensor):
        return a.to(device=device, dtype=dtype)
    return torch.from_numpy(np.array(a, copy=True)).to(device=device, dtype=dtype)


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode without autograd for the block; the module's own mode is restored after."""
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        module.train(was_training)


def _device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def evaluate_archs(supernet: Supernet, archs: Sequence[Arch], x: np.ndarray | torch.Tensor,
                   y: np.ndarray | torch.Tensor, *, batch_size: int = 512) -> np.ndarray:
    """Top-1 accuracy in [0, 1] of each architecture on (x, y), one entry per arch.

    Runs in eval mode under `torch.inference_mode`; the module's training flag is restored.
    Each arch sees the same data batches, so a list gives the same figures as single calls.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    _check_data(x, y)
    spec = supernet.spec
    if tuple(x.shape[1:]) != (spec.seq_len, spec.in_features):
        raise ValueError(f"x must be (N, {spec.seq_len}, {spec.in_features}) for this supernet, got {tuple(x.shape)}")
    archs = [supernet.space.validate(a) for a in archs]
    device = _device_of(supernet)
    xt = as_tensor(x, torch.float32, device)
    yt = as_tensor(y, torch.int64, device)
    with _eval_mode(supernet):
        acc = [_accuracy(lambda xb, a=arch: supernet(xb, a), xt, yt, batch_size) for arch in archs]
    return np.asarray(acc, dtype=np.float64)


def evaluate_module(module: nn.Module, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, *,
                    batch_size: int = 512) -> float:
    """Top-1 accuracy of a static module (an extracted or standalone `Subnet`) on (x, y)."""
    _check_data(x, y)
    device = _device_of(module)
    xt = as_tensor(x, torch.float32, device)
    yt = as_tensor(y, torch.int64, device)
    with _eval_mode(module):
        return _accuracy(module, xt, yt, batch_size)
