"""The registered latency estimators (see `_base` for the contract).

Every estimator takes any finite numeric feature matrix X (n_rows, n_features) and
positive latencies y (ms); none needs this project's search space, so a table of another
space's architectures with its own numeric features fits (and few-shot adapts) the same way.
Where an estimator assumes structure, it says so:

- ``lut``: lookup-table sum; needs non-negative columns (how many times each component
  is used, or any amounts latency is additive over) and refuses negative ones. With
  measured block costs: y = scale * (counts @ costs) + overhead, scale and overhead
  fitted. Without: per-component costs and the overhead fitted by non-negative least
  squares on relative error. On plain non-negative features it is a non-negative linear
  model of them.
- ``ridge``: ridge regression on standardized features (any matrix); by default on the
  latency itself weighted for relative error (additive structure kept), or on log latency.
- ``gbt``: gradient-boosted trees (scikit-learn) on log latency (any matrix); predicts from
  the trees' arrays, which is also how it is saved.
- ``mlp``: a small multi-layer perceptron (scikit-learn, L-BFGS) on standardized log
  latency (any matrix).
- ``hybrid``: lookup-table sum of the first `n_lut_columns` columns (non-negative, as for
  ``lut``) plus a ridge correction of log(y / lut) on the other columns and the log LUT sum.
- ``calibrated``: a fitted base estimator recalibrated to a new device with a few
  measurements: log y = a * log base(x) + b, `a` shrunk towards 1. X is whatever the
  base takes.

Targets spanning orders of magnitude, some near zero: a relative-error fit weights row i
by 1 / y_i^2, so a few near-zero (and noisy) targets dominate it and the ranking
collapses. ``lut``, ``hybrid`` and ``ridge`` (relative target) therefore weight each row as
if its latency were at least ``weight_floor`` (default 0.1) times the median latency:
relative error above that, absolute error below. Chosen by a small experiment: synthetic
additive tables (12 component counts, costs 1e-3..1 ms, 9% of the targets below 1% of
the median, 3% noise; 200 rows fitted, 100 held out, 8 seeds; Spearman / ±10% share
against the noise-free latencies): ridge 0.69 / 0.27 with no floor, 1.00 / 0.97 with
it, 0.93 / 0.09 on log latency (log loses the additive structure); lut 1.00 / 1.00 with
no floor, 1.00 / 0.97 with it, and 0.28 -> 0.50 Spearman when 3% of the rows are
mis-measured near zero. On log-linear tables ridge's ``target="log"`` is right (1.00 /
1.00 vs 0.99 / 0.09): choose it for features latency is not additive over. A profile
whose fastest subnet is above a tenth of the median is fitted exactly as without a floor.
Every prediction is also clipped to the estimator's `floor_` (see `_base`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy.optimize import nnls

from ._base import Estimator, register_estimator


def _standardize(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, scale = X.mean(axis=0), X.std(axis=0)
    return mean, np.where(scale > 0, scale, 1.0)


def _ridge(Z: np.ndarray, t: np.ndarray, w: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Weighted ridge with an unpenalised intercept: (coef, intercept)."""
    w = w / w.mean()
    zm, tm = np.average(Z, axis=0, weights=w), np.average(t, weights=w)
    sw = np.sqrt(w)[:, None]
    A, b = (Z - zm) * sw, (t - tm) * sw[:, 0]
    coef = np.linalg.solve(A.T @ A + alpha * np.eye(Z.shape[1]), A.T @ b)
    return coef, float(tm - zm @ coef)


def _check_nonneg_float(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")


def _relative_scale(y: np.ndarray, weight_floor: float) -> np.ndarray:
    """Per-row scale of a relative-error fit: the latency, floored at `weight_floor` * median (ms)."""
    _check_nonneg_float("weight_floor", weight_floor)
    return np.maximum(y, weight_floor * float(np.median(y)))


def _check_counts(X: np.ndarray, what: str) -> None:
    if np.any(X < 0):
        j = int(np.argmin(X.min(axis=0)))
        raise ValueError(f"{what} must be non-negative (component counts or amounts latency is additive over), "
                         f"got {X[:, j].min()!r} in column {j}; use ridge, gbt or mlp for other features")


@register_estimator
class LookupTablePredictor(Estimator):
    """Sum of per-component costs plus an overhead; X holds non-negative component (or block) counts."""

    name = "lut"

    def __init__(self, *, block_costs: Sequence[float] | np.ndarray | None = None,
                 weight_floor: float = 0.1, outlier_threshold: float | None = 0.15) -> None:
        self.block_costs, self.weight_floor = block_costs, weight_floor
        self.outlier_threshold = outlier_threshold

    def fit(self, X: np.ndarray, y: np.ndarray) -> "LookupTablePredictor":
        """Fit the costs; then, with `outlier_threshold` set, set aside the rows the fit misses by
        more than that relative error (and by more than 5 robust standard deviations of the
        residuals), at most a tenth of them, and fit again (their indices in `outliers_`).

        One subnet measured in a slow phase of the machine (50% slower, in every one of its 598
        timed runs, than the same subnet in the default runs before and after) moved every
        prediction of a default run (end_to_end_run20) by several percent.
        """
        X, y = self._check_xy(X, y)
        _check_counts(X, "lut columns")
        if self.outlier_threshold is not None:
            _check_nonneg_float("outlier_threshold", self.outlier_threshold)
        costs = None if self.block_costs is None else np.asarray(self.block_costs, dtype=np.float64)
        if costs is not None and costs.shape != (X.shape[1],):
            raise ValueError(f"block_costs must hold one cost per column ({X.shape[1]}), got {costs.shape}")
        keep = np.ones(len(y), dtype=bool)
        self._solve(X, y, costs)
        if self.outlier_threshold is not None and len(y) >= 10:
            r = self._sum(X) / y - 1
            off = np.abs(r - np.median(r))
            bad = off > max(self.outlier_threshold, 5 * 1.4826 * float(np.median(off)))
            if 0 < bad.sum() <= len(y) // 10:
                keep = ~bad
                self._solve(X[keep], y[keep], costs)
        self.outliers_ = [int(i) for i in np.flatnonzero(~keep)]
        self._learn_floor(y)
        self.n_features_in_ = X.shape[1]
        return self

    def _solve(self, X: np.ndarray, y: np.ndarray, costs: np.ndarray | None) -> None:
        """Costs and overhead by relative least squares: only scale and overhead over measured
        block `costs`, else non-negative per-column costs."""
        d = _relative_scale(y, self.weight_floor)  # relative error, floored (see the module docstring)
        if costs is not None:
            total = X @ costs
            A = np.column_stack([total, np.ones_like(total)]) / d[:, None]
            (scale, overhead), *_ = np.linalg.lstsq(A, y / d, rcond=None)
            self.costs_, self.scale_, self.overhead_ = costs, float(scale), float(overhead)
        else:
            A = np.column_stack([X, np.ones(len(y))]) / d[:, None]
            sol, _ = nnls(A, y / d)
            self.costs_, self.scale_, self.overhead_ = sol[:-1], 1.0, float(sol[-1])

    def _sum(self, X: np.ndarray) -> np.ndarray:
        return self.scale_ * (X @ self.costs_) + self.overhead_

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._clip(self._sum(self._check_predict(X)))


@register_estimator
class RidgePredictor(Estimator):
    """Ridge regression on standardized features: latency with relative-error weights, or log latency.

    ``target="relative"`` (default) fits y with weights 1 / max(y, weight_floor * median(y))^2
    and keeps additive structure; ``target="log"`` fits log y, for features latency is not
    additive over (see the module docstring for the experiment behind the choice).
    """

    name = "ridge"

    def __init__(self, *, alpha: float = 1e-3, target: str = "relative", weight_floor: float = 0.1) -> None:
        self.alpha, self.target, self.weight_floor = alpha, target, weight_floor

    def fit(self, X: np.ndarray, y: np.ndarray) -> "RidgePredictor":
        _check_nonneg_float("alpha", self.alpha)
        if self.target not in ("relative", "log"):
            raise ValueError(f"target must be one of ('relative', 'log'), got {self.target!r}")
        X, y = self._check_xy(X, y)
        self.mean_, self.scale_ = _standardize(X)
        Z = (X - self.mean_) / self.scale_
        if self.target == "log":
            self.coef_, self.intercept_ = _ridge(Z, np.log(y), np.ones_like(y), self.alpha)
        else:
            self.coef_, self.intercept_ = _ridge(Z, y, 1.0 / _relative_scale(y, self.weight_floor) ** 2,
                                                 self.alpha)
        self._learn_floor(y)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self._check_predict(X)
        raw = ((X - self.mean_) / self.scale_) @ self.coef_ + self.intercept_
        return self._clip(np.exp(raw) if self.target == "log" else raw)


@register_estimator
class GBTPredictor(Estimator):
    """Gradient-boosted regression trees on log latency."""

    name = "gbt"

    def __init__(self, *, n_estimators: int = 400, learning_rate: float = 0.05, max_depth: int = 3,
                 subsample: float = 0.8, random_state: int = 0) -> None:
        self.n_estimators, self.learning_rate, self.max_depth = n_estimators, learning_rate, max_depth
        self.subsample, self.random_state = subsample, random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> "GBTPredictor":
        from sklearn.ensemble import GradientBoostingRegressor

        X, y = self._check_xy(X, y)
        model = GradientBoostingRegressor(n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                                          max_depth=self.max_depth, subsample=self.subsample,
                                          random_state=self.random_state).fit(X, np.log(y))
        trees = [est.tree_ for est in model.estimators_[:, 0]]
        sizes = np.array([t.node_count for t in trees])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])

        def shifted(children: np.ndarray, offset: int) -> np.ndarray:
            return np.where(children >= 0, children + offset, -1)

        self.roots_ = offsets.astype(np.int64)
        self.left_ = np.concatenate([shifted(t.children_left, o) for t, o in zip(trees, offsets)]).astype(np.int64)
        self.right_ = np.concatenate([shifted(t.children_right, o) for t, o in zip(trees, offsets)]).astype(np.int64)
        self.feature_ = np.concatenate([t.feature for t in trees]).astype(np.int64)
        self.threshold_ = np.concatenate([t.threshold for t in trees]).astype(np.float64)
        self.value_ = np.concatenate([t.value[:, 0, 0] for t in trees]).astype(np.float64)
        self.init_ = float(model.init_.constant_.ravel()[0])
        self.depth_ = int(max(t.max_depth for t in trees))
        self._learn_floor(y)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self._check_predict(X)
        X = X.astype(np.float32).astype(np.float64)  # scikit-learn's trees split float32 inputs
        node = np.broadcast_to(self.roots_, (X.shape[0], self.roots_.size)).copy()  # (n, trees)
        rows = np.arange(X.shape[0])[:, None]
        for _ in range(self.depth_):
            left = self.left_[node]
            go_left = X[rows, np.maximum(self.feature_[node], 0)] <= self.threshold_[node]
            node = np.where(left < 0, node, np.where(go_left, left, self.right_[node]))
        return self._clip(np.exp(self.init_ + self.learning_rate * self.value_[node].sum(axis=1)))


@register_estimator
class MLPPredictor(Estimator):
    """A small ReLU multi-layer perceptron on standardized features and log latency."""

    name = "mlp"

    def __init__(self, *, hidden: Sequence[int] = (64, 64), alpha: float = 1.0, max_iter: int = 300,
                 random_state: int = 0) -> None:
        self.hidden, self.alpha, self.max_iter, self.random_state = hidden, alpha, max_iter, random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> "MLPPredictor":
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor

        X, y = self._check_xy(X, y)
        self.mean_, self.scale_ = _standardize(X)
        t = np.log(y)
        self.y_mean_, self.y_scale_ = float(t.mean()), float(t.std() or 1.0)
        model = MLPRegressor(hidden_layer_sizes=tuple(int(h) for h in self.hidden), alpha=self.alpha,
                             solver="lbfgs", max_iter=self.max_iter, random_state=self.random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit((X - self.mean_) / self.scale_, (t - self.y_mean_) / self.y_scale_)
        self.coefs_ = [np.asarray(c, dtype=np.float64) for c in model.coefs_]
        self.intercepts_ = [np.asarray(b, dtype=np.float64) for b in model.intercepts_]
        self._learn_floor(y)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self._check_predict(X)
        h = (X - self.mean_) / self.scale_
        for i, (w, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            h = h @ w + b
            if i < len(self.coefs_) - 1:
                h = np.maximum(h, 0.0)
        return self._clip(np.exp(h[:, 0] * self.y_scale_ + self.y_mean_))


@register_estimator
class HybridPredictor(Estimator):
    """Lookup-table sum of the first `n_lut_columns` (non-negative count) columns times a learned correction."""

    name = "hybrid"

    def __init__(self, *, n_lut_columns: int, block_costs: Sequence[float] | np.ndarray | None = None,
                 alpha: float = 1.0, weight_floor: float = 0.1) -> None:
        self.n_lut_columns, self.block_costs, self.alpha = n_lut_columns, block_costs, alpha
        self.weight_floor = weight_floor

    def _correction_features(self, X: np.ndarray, base: np.ndarray) -> np.ndarray:
        return np.column_stack([X[:, self.n_lut_columns:], np.log(base)])

    def fit(self, X: np.ndarray, y: np.ndarray) -> "HybridPredictor":
        X, y = self._check_xy(X, y)
        k = self.n_lut_columns
        if isinstance(k, bool) or not isinstance(k, int) or not 0 < k <= X.shape[1]:
            raise ValueError(f"n_lut_columns must be an integer in [1, {X.shape[1]}], got {k!r}")
        _check_nonneg_float("alpha", self.alpha)
        self.lut_ = LookupTablePredictor(block_costs=self.block_costs, weight_floor=self.weight_floor).fit(
            X[:, :k], y)
        base = self.lut_.predict(X[:, :k])
        F = self._correction_features(X, base)
        self.mean_, self.scale_ = _standardize(F)
        self.coef_, self.intercept_ = _ridge((F - self.mean_) / self.scale_, np.log(y / base), np.ones_like(y),
                                             self.alpha)
        self._learn_floor(y)
        self.n_features_in_ = X.shape[1]
        return self

    @property
    def outliers_(self) -> list[int]:
        """The rows its lookup table set aside (`LookupTablePredictor.fit`)."""
        return self.lut_.outliers_

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self._check_predict(X)
        base = self.lut_.predict(X[:, : self.n_lut_columns])
        F = (self._correction_features(X, base) - self.mean_) / self.scale_
        return self._clip(base * np.exp(F @ self.coef_ + self.intercept_))


@register_estimator
class CalibratedPredictor(Estimator):
    """A fitted `base` estimator mapped to a new device: log y = a * log base(X) + b."""

    name = "calibrated"

    def __init__(self, *, base: Estimator, shrinkage: float = 1.0) -> None:
        self.base, self.shrinkage = base, shrinkage

    def fit(self, X: np.ndarray, y: np.ndarray) -> "CalibratedPredictor":
        if not isinstance(self.base, Estimator) or not self.base.is_fitted():
            raise ValueError(f"base must be a fitted estimator, got {self.base!r}")
        _check_nonneg_float("shrinkage", self.shrinkage)
        X, y = self._check_xy(X, y)
        lp, ly = np.log(self.base.predict(X)), np.log(y)
        lpc, lyc = lp - lp.mean(), ly - ly.mean()
        # Least squares for the slope with a penalty shrinkage * (a - 1)^2: stays near 1 for few points.
        self.slope_ = float((lpc @ lyc + self.shrinkage) / (lpc @ lpc + self.shrinkage))
        self.offset_ = float(ly.mean() - self.slope_ * lp.mean())
        # Floor: the base's floor mapped to this device, and at most half the fastest of the few
        # measurements here (which need not include the device's fastest subnet).
        base_floor = getattr(self.base, "floor_", None)
        mapped = np.inf if base_floor is None else float(np.exp(self.slope_ * np.log(base_floor) + self.offset_))
        self._learn_floor(y)
        self.floor_ = min(self.floor_, mapped)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        X, _ = self._check_xy(X)
        return self._clip(np.exp(self.slope_ * np.log(self.base.predict(X)) + self.offset_))
