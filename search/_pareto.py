"""Pareto dominance and hypervolume on normalised minimisation values (moocore)."""

from __future__ import annotations

import numpy as np

from ._problem import REFERENCE_POINT


def _points(F: np.ndarray) -> np.ndarray:
    F = np.asarray(F, dtype=np.float64)
    if F.ndim != 2:
        raise ValueError(f"F must be a 2-D array (n_points, n_objectives), got shape {F.shape}")
    return F


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of F (n, m), all minimised, that no other row dominates
    (copies of a non-dominated row are all kept)."""
    from moocore import is_nondominated

    F = _points(F)
    if len(F) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(is_nondominated(F, keep_weakly=True), dtype=bool)


def front_ranks(F: np.ndarray) -> np.ndarray:
    """Non-dominated sorting: rank 0 for the first front, 1 for the next, and so on."""
    from moocore import pareto_rank

    F = _points(F)
    if len(F) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(pareto_rank(F), dtype=np.int64)


def hypervolume(F: np.ndarray, ref: float = REFERENCE_POINT) -> float:
    """Hypervolume of the normalised points F against the point (ref, ..., ref); points
    not strictly better than the reference in every objective add nothing."""
    from moocore import hypervolume as moocore_hv

    F = np.asarray(F, dtype=np.float64)
    if F.size == 0:
        return 0.0
    inside = F[np.all(F < ref, axis=1)]
    if inside.size == 0:
        return 0.0
    return float(moocore_hv(inside, ref=np.full(F.shape[1], ref)))


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
