"""The registered latency estimators (see `_base` for the contract).

- ``lut``: lookup-table sum. With measured block costs: y = scale * (counts @ costs) +
  overhead, scale and overhead fitted. Without: per-component costs and the overhead
  fitted by non-negative least squares on relative error over the component counts.
- ``ridge``: ridge regression on standardized features; by default on the latency itself
  with weights 1/y^2 (relative error, additive structure kept), or on log latency.
- ``gbt``: gradient-boosted trees (scikit-learn) on log latency; predicts from the trees'
  arrays, which is also how it is saved.
- ``mlp``: a small multi-layer perceptron (scikit-learn, L-BFGS) on standardized log latency.
- ``hybrid``: lookup-table sum (first `n_lut_columns` columns) plus a ridge correction of
  log(y / lut) on the other features and the log LUT sum.
- ``calibrated``: a fitted base estimator recalibrated to a new device with a few
  measurements: log y = a * log base(x) + b, `a` shrunk towards 1.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy.optimize import nnls

from ._base import Estimator, register


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


@register
class LookupTablePredictor(Estimator):
    """Sum of per-block costs plus an overhead; X holds block (or component) counts."""

    name = "lut"

    def __init__(self, *, block_costs: Sequence[float] | np.ndarray | None = None) -> None:
        self.block_costs = block_costs

    def fit(self, X: np.ndarray, y: np.ndarray) -> "LookupTablePredictor":
        X, y = self._check_xy(X, y)
        if self.block_costs is not None:
            costs = np.asarray(self.block_costs, dtype=np.float64)
            if costs.shape != (X.shape[1],):
                raise ValueError(f"block_costs must hold one cost per column ({X.shape[1]}), got {costs.shape}")
            total = X @ costs
            A = np.column_stack([total, np.ones_like(total)]) / y[:, None]  # relative error
            (scale, overhead), *_ = np.linalg.lstsq(A, np.ones_like(y), rcond=None)
            self.costs_, self.scale_, self.overhead_ = costs, float(scale), float(overhead)
        else:
            A = np.column_stack([X, np.ones(len(y))]) / y[:, None]
            sol, _ = nnls(A, np.ones_like(y))
            self.costs_, self.scale_, self.overhead_ = sol[:-1], 1.0, float(sol[-1])
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self._check_predict(X)
        return np.maximum(self.scale_ * (X @ self.costs_) + self.overhead_, 1e-6)


@register
class RidgePredictor(Estimator):
    """Ridge regression on standardized features."""

    name = "ridge"

    def __init__(self, *, alpha: float = 1e-3, target: str = "relative") -> None:
        self.alpha, self.target = alpha, target

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
            self.coef_, self.intercept_ = _ridge(Z, y, 1.0 / y**2, self.alpha)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self._check_predict(X)
        raw = ((X - self.mean_) / self.scale_) @ self.coef_ + self.intercept_
        return np.exp(raw) if self.target == "log" else np.maximum(raw, 1e-6)


@register
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
        return np.exp(self.init_ + self.learning_rate * self.value_[node].sum(axis=1))


@register
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
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self._check_predict(X)
        h = (X - self.mean_) / self.scale_
        for i, (w, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            h = h @ w + b
            if i < len(self.coefs_) - 1:
                h = np.maximum(h, 0.0)
        return np.exp(h[:, 0] * self.y_scale_ + self.y_mean_)


@register
class HybridPredictor(Estimator):
    """Lookup-table sum of the first `n_lut_columns` columns times a learned correction."""

    name = "hybrid"

    def __init__(self, *, n_lut_columns: int, block_costs: Sequence[float] | np.ndarray | None = None,
                 alpha: float = 1.0) -> None:
        self.n_lut_columns, self.block_costs, self.alpha = n_lut_columns, block_costs, alpha

    def _correction_features(self, X: np.ndarray, base: np.ndarray) -> np.ndarray:
        return np.column_stack([X[:, self.n_lut_columns:], np.log(base)])

    def fit(self, X: np.ndarray, y: np.ndarray) -> "HybridPredictor":
        X, y = self._check_xy(X, y)
        k = self.n_lut_columns
        if isinstance(k, bool) or not isinstance(k, int) or not 0 < k <= X.shape[1]:
            raise ValueError(f"n_lut_columns must be an integer in [1, {X.shape[1]}], got {k!r}")
        _check_nonneg_float("alpha", self.alpha)
        self.lut_ = LookupTablePredictor(block_costs=self.block_costs).fit(X[:, :k], y)
        base = self.lut_.predict(X[:, :k])
        F = self._correction_features(X, base)
        self.mean_, self.scale_ = _standardize(F)
        self.coef_, self.intercept_ = _ridge((F - self.mean_) / self.scale_, np.log(y / base), np.ones_like(y),
                                             self.alpha)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self._check_predict(X)
        base = self.lut_.predict(X[:, : self.n_lut_columns])
        F = (self._correction_features(X, base) - self.mean_) / self.scale_
        return base * np.exp(F @ self.coef_ + self.intercept_)


@register
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
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        X, _ = self._check_xy(X)
        return np.exp(self.slope_ * np.log(self.base.predict(X)) + self.offset_)
