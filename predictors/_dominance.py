"""Dominance on measured figures: which exported models another one beats once re-measured.

A model's accuracy is a measurement with a standard error, so "better" must be beyond
noise. Model j dominates model i when j is no slower and no larger (measured latency,
size) and i's accuracy is not higher than j's by more than `z` standard errors of the
difference (sqrt(se_i^2 + se_j^2)), and j is strictly better somewhere: faster, smaller,
or more accurate by more than that margin. Latency is a measurement too: within a relative
`latency_rtol` of each other two latencies count as equal (no faster, no slower), so a model
and its own twin measured twice do not dominate each other. Two models that differ only
within noise do not dominate each other.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _column(name: str, values: Sequence[float] | np.ndarray, n: int | None, *, positive: bool) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1 or (n is not None and a.size != n):
        raise ValueError(f"{name} must be a 1-d sequence of {n if n is not None else 'equal'} values, got shape "
                         f"{a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a <= 0 if positive else a < 0):
        raise ValueError(f"{name} must hold finite {'positive' if positive else 'non-negative'} values, got {a.tolist()}")
    return a


def dominated_on_measurements(latency_ms: Sequence[float], size_bytes: Sequence[float],
                              accuracy: Sequence[float], accuracy_se: Sequence[float], *,
                              z: float = 1.0, latency_rtol: float = 0.02) -> list[tuple[int, ...]]:
    """For each model, the indices of the models that dominate it (empty: not dominated).

    All four sequences hold one value per model: measured latency (ms), size (bytes),
    accuracy (any scale, higher is better) and its standard error (same scale). `z` is how
    many standard errors of the difference count as "better beyond noise"; `latency_rtol`
    the relative difference below which two measured latencies are taken as equal (0.02:
    the fastest timed run repeats within 2% here, benchmarks/results/latency_predictors.md).
    """
    lat = _column("latency_ms", latency_ms, None, positive=True)
    n = lat.size
    size = _column("size_bytes", size_bytes, n, positive=True)
    acc = np.asarray(accuracy, dtype=np.float64)
    if acc.shape != (n,) or not np.all(np.isfinite(acc)):
        raise ValueError(f"accuracy must hold {n} finite values, got {np.asarray(accuracy).tolist()}")
    se = _column("accuracy_se", accuracy_se, n, positive=False)
    if isinstance(z, bool) or not isinstance(z, (int, float)) or z < 0:
        raise ValueError(f"z must be a non-negative number, got {z!r}")
    if isinstance(latency_rtol, bool) or not isinstance(latency_rtol, (int, float)) or not 0 <= latency_rtol < 1:
        raise ValueError(f"latency_rtol must be a number in [0, 1), got {latency_rtol!r}")
    margin = z * np.sqrt(se[:, None] ** 2 + se[None, :] ** 2)  # (i, j)
    gain = acc[None, :] - acc[:, None]  # accuracy of j minus that of i
    no_slower = lat[None, :] <= lat[:, None] * (1 + latency_rtol)
    faster = lat[None, :] < lat[:, None] * (1 - latency_rtol)
    no_worse = no_slower & (size[None, :] <= size[:, None]) & (gain >= -margin)
    strictly = faster | (size[None, :] < size[:, None]) | (gain > margin)
    dominates = no_worse & strictly  # [i, j]: j dominates i
    np.fill_diagonal(dominates, False)
    return [tuple(int(j) for j in np.flatnonzero(row)) for row in dominates]
