"""Accuracy of latency predictions: relative errors, shares within a tolerance, rank agreement."""

from __future__ import annotations

import numpy as np
from scipy import stats


def _pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or y_true.size == 0:
        raise ValueError(f"need two equal-length non-empty 1-d arrays, got shapes {y_true.shape} and {y_pred.shape}")
    if np.any(y_true <= 0):
        raise ValueError("measured latencies must be positive")
    return y_true, y_pred


def mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute percentage error (%)."""
    t, p = _pair(y_true, y_pred)
    return float(100 * np.mean(np.abs(p - t) / t))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error, in the unit of the inputs (ms)."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def within(y_true: np.ndarray, y_pred: np.ndarray, tolerance: float) -> float:
    """Share of predictions within ±`tolerance` (relative) of the measurement."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - t) <= tolerance * t * (1 + 1e-9)))  # 1.05 vs 1.0 counts as 5%


def kendall_tau(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    t, p = _pair(y_true, y_pred)
    return float(stats.kendalltau(t, p).statistic) if _rankable(t, p) else float("nan")


def spearman(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    t, p = _pair(y_true, y_pred)
    return float(stats.spearmanr(t, p).statistic) if _rankable(t, p) else float("nan")


def _rankable(t: np.ndarray, p: np.ndarray) -> bool:
    """A rank correlation is defined: two or more pairs, and neither side constant (NaN otherwise)."""
    return t.size > 1 and np.ptp(t) > 0 and np.ptp(p) > 0


def latency_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAPE (%), RMSE (ms), shares within ±5% and ±10%, Kendall tau and Spearman rho."""
    return {"mape": mape(y_true, y_pred), "rmse_ms": rmse(y_true, y_pred),
            "within_5": within(y_true, y_pred, 0.05), "within_10": within(y_true, y_pred, 0.10),
            "kendall_tau": kendall_tau(y_true, y_pred), "spearman": spearman(y_true, y_pred)}
