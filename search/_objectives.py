"""Built-in objectives and constraints: accuracy and latency over any space's
architectures (from a callable), size, FLOPs and parameters of transformer architectures.
Units: latency in ms, size in bytes, budgets in ms and MB (10**6 bytes)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from supernet.cost import InputSpec, arch_cost
from supernet.space import Arch, SearchSpace

from ._problem import BatchFn, Constraint, Objective
from ._space import ArchLike


def _cost_fn(space: SearchSpace, spec: InputSpec, attr: str) -> BatchFn:
    def fn(archs: list[Arch]) -> np.ndarray:
        return np.array([getattr(arch_cost(a, space, spec), attr) for a in archs], dtype=np.float64)

    return fn


def size_objective(space: SearchSpace, spec: InputSpec, *, name: str = "size") -> Objective:
    """Stored model size in bytes under each layer's quantization policy (analytic, minimise)."""
    return Objective(name, "min", "cheap", _cost_fn(space, spec, "size_bytes"), source="analytic")


def flops_objective(space: SearchSpace, spec: InputSpec, *, name: str = "flops") -> Objective:
    """FLOPs of one example (analytic, minimise)."""
    return Objective(name, "min", "cheap", _cost_fn(space, spec, "flops"), source="analytic")


def params_objective(space: SearchSpace, spec: InputSpec, *, name: str = "params") -> Objective:
    """Parameter count (analytic, minimise)."""
    return Objective(name, "min", "cheap", _cost_fn(space, spec, "params"), source="analytic")


def latency_objective(predict_fn: Callable[[list[ArchLike]], np.ndarray], *, name: str = "latency",
                      bounds: tuple[float, float] | None = None) -> Objective:
    """Latency in ms from a device's predictor, e.g. `predictor.predict_archs` (minimise)."""
    return Objective(name, "min", "cheap", predict_fn, source="predicted", bounds=bounds)


def accuracy_objective(eval_fn: Callable[[list[ArchLike]], np.ndarray], *, name: str = "accuracy",
                       bounds: tuple[float, float] = (0.0, 1.0)) -> Objective:
    """Accuracy in [0, 1] on the validation split, really evaluated (expensive, maximise).

    `eval_fn(archs) -> values` is any callable over a list of architectures of the
    problem's space: the supernet's evaluation, a lookup table, a synthetic function.
    """
    return Objective(name, "max", "expensive", eval_fn, source="measured", bounds=bounds)


def max_latency_constraint(predict_fn: Callable[[list[ArchLike]], np.ndarray], ms: float, *,
                           name: str = "max_latency") -> Constraint:
    """Predicted latency at most `ms`: the value is latency - ms (feasible when <= 0)."""
    ms = _positive("ms", ms)

    def fn(archs: list[ArchLike]) -> np.ndarray:
        return np.asarray(predict_fn(archs), dtype=np.float64) - ms

    return Constraint(name, fn, description=f"latency <= {ms:g} ms")


def max_size_constraint(space: SearchSpace, spec: InputSpec, mb: float, *, name: str = "max_size") -> Constraint:
    """Stored size at most `mb` MB (10**6 bytes): the value is size_MB - mb."""
    mb = _positive("mb", mb)
    size = _cost_fn(space, spec, "size_bytes")

    def fn(archs: list[Arch]) -> np.ndarray:
        return size(archs) / 1e6 - mb

    return Constraint(name, fn, description=f"size <= {mb:g} MB")


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)
