"""Pareto dominance and hypervolume on normalised minimisation values."""

from __future__ import annotations

import numpy as np

from ._problem import REFERENCE_POINT


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of F (n, m), all minimised, that no other row dominates."""
    F = np.asarray(F, dtype=np.float64)
    n = len(F)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not mask[i]:
            continue
        dominates_i = np.all(F <= F[i], axis=1) & np.any(F < F[i], axis=1)
        if dominates_i.any():
            mask[i] = False
    return mask


def front_ranks(F: np.ndarray) -> np.ndarray:
    """Non-dominated sorting: rank 0 for the first front, 1 for the next, and so on."""
    F = np.asarray(F, dtype=np.float64)
    ranks = np.full(len(F), -1, dtype=np.int64)
    rank = 0
    while (left := np.flatnonzero(ranks < 0)).size:
        ranks[left[non_dominated(F[left])]] = rank
        rank += 1
    return ranks


def hypervolume(F: np.ndarray, ref: float = REFERENCE_POINT) -> float:
    """pymoo's hypervolume of the normalised points F against the point (ref, ..., ref)."""
    from pymoo.indicators.hv import HV

    F = np.asarray(F, dtype=np.float64)
    if F.size == 0:
        return 0.0
    inside = F[np.all(F < ref, axis=1)]
    if inside.size == 0:
        return 0.0
    return float(HV(ref_point=np.full(F.shape[1], ref))(inside))


class HypervolumeTracker:
    """Hypervolume of a growing set of points, recomputed only when the front changes."""

    def __init__(self, n_objectives: int, ref: float = REFERENCE_POINT) -> None:
        self.ref = ref
        self._front = np.zeros((0, n_objectives))
        self.value = 0.0

    def add(self, f: np.ndarray) -> float:
        """Add one point (feasible, normalised) and return the hypervolume after it."""
        f = np.asarray(f, dtype=np.float64).reshape(1, -1)
        front = self._front
        if len(front) and np.any(np.all(front <= f, axis=1)):
            return self.value  # dominated by or equal to a point already held
        keep = ~np.all(f <= front, axis=1)
        self._front = np.vstack([front[keep], f])
        self.value = hypervolume(self._front, self.ref)
        return self.value
