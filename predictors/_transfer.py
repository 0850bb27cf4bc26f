"""Few-shot transfer of a fitted latency estimator to a new device: ``transfer``.

The source device's estimator is the prior; a few measurements on the new device (and,
optionally, that device's measured block costs) move it. Two stages, both fitted on the
k new-device latencies y (ms):

1. log y = c + a * log base(x) + b * log B(x), where B(x) = counts(x) @ block_costs is the
   new device's sum of measured block costs (no b term without block costs). (a, b) are
   pulled towards (1, 0) without blocks and (0.5, 0.5) with them by a small ridge penalty
   (`shrinkage`, on centred log features). The block term is what re-ranks across devices
   whose costs differ in ratio (int8 and attention cheap on one runtime, dear on another).
2. A residual over per-component shares: y = f1(x) * (1 + sum_j d_j * s_j(x)), where
   s_j(x) = n_j(x) * prior_j / sum_i n_i(x) * prior_i is the share of the source latency
   that component j takes (`prior_costs`: the source device's per-component costs). d_j
   is component j's relative cost change on the new device (ridge, shrunk towards 0:
   the source's ratios). With blocks, the residual also has between-layer counts z_k(x)
   (`n_between_columns`, the last columns of X: `hwnas adapt` gives any_int8 and the
   number of precision changes between adjacent layers) as additive costs:
   + sum_k c_k * z_k(x) * m / f1(x), m the median measured latency. Its penalty is chosen
   by leave-one-out error over `alphas`, including "no residual", so with few or
   uninformative points it switches itself off.

Why the between-layer counts. Each block is measured alone, so a sum of block costs
misses what a model pays between its layers. Over the 200 subnets of each device in
benchmarks/results/latency_predictors_all_pairs (min_ms), a model's latency over its block
sum on the onnxruntime devices is 0.89-0.98 for all-fp32 models, 0.97-1.05 for
mixed-precision ones, and 1.15-1.17 for one-layer int8 models at batch 4 or sequence
length 64. The adaptation subnets are mostly uniform (the extremes of the space), the
held-out random subnets mostly mixed, so without these columns the fit on the picks did not
carry to them: cpu-2t -> cpu-b4 reached 0.94 within ±10% at k = 20. With them, offline on
the same profiles: every one of the 20 ordered pairs of cpu, cpu-2t, torch-cpu, cpu-b4 and
cpu-s64 at >= 0.96 (cpu-2t -> cpu-b4 1.00); over 72 cases (those pairs plus the four into
cpu-2t with 13 other cpu-2t block measurements) 64 met 0.95 against 62 before, the worst
0.86 against 0.75. Counting every
change between layers instead of precision changes only took cpu -> torch-cpu to 0.78.

Why this form. Figures taken on this 2-core machine while other jobs loaded it (so noisy):
source = a cpu predictor fitted on the 500-subnet cpu profile (min_ms); 60 subnets measured
on each target with the fast preset; 20 of the 22 coverage subnets adapt, the 38 random
ones are held out; ±10% share / Kendall tau.

| target | calibrated | transfer, no blocks | transfer |
|---|---|---|---|
| torch-cpu | 0.11 / 0.62 | 0.11 / 0.61 | 0.89-0.95 / 0.94-0.95 |
| seq_len 64 | 0.55 / 0.85 | 0.92 / 0.95 | 0.92 / 0.97 |
| batch 4 | 0.53 / 0.87 | 0.92 / 0.97 | 0.95 / 0.97 |

A monotone map keeps the source's ranking; the component residual alone re-ranks where
cost ratios move moderately (batch, sequence length) but not for torch-cpu, whose
per-operator costs differ too much for 20 points to learn; the new device's blocks
(168, ~20-60 s) carry those ratios. A log-space mix beat a linear one (torch-cpu 0.95 vs
0.92) and scaled blocks plus a per-block overhead (0.89). Stage 1's penalty matters: base
and block sums are correlated and the penalty decides their split; at calibrated's 1.0
torch-cpu fell to 0.76 within ±10%, at 0.01 (the default) it reaches 0.95.

X = [base columns (`n_base_columns`) | residual counts (len(prior_costs)) | block counts
(len(block_costs)) | between-layer counts (`n_between_columns`)]; the residual and block
parts are present only when their costs are given.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ._base import Estimator, register_estimator

_ALPHAS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
_TINY_MS = 1e-9


def _costs(value: Any, name: str) -> np.ndarray | None:
    if value is None:
        return None
    costs = np.asarray(value, dtype=np.float64)
    if costs.ndim != 1 or costs.size == 0 or not np.all(np.isfinite(costs)) or np.any(costs < 0):
        raise ValueError(f"{name} must be a non-empty 1-d sequence of non-negative costs (ms), got {value!r}")
    return costs


def _loo_ridge(S: np.ndarray, r: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Ridge without intercept of r on S: (coef, mean absolute leave-one-out error)."""
    G = S.T @ S + alpha * np.eye(S.shape[1])
    coef = np.linalg.solve(G, S.T @ r)
    hat = np.einsum("ij,ji->i", S, np.linalg.solve(G, S.T))
    loo = (r - S @ coef) / np.maximum(1.0 - hat, 1e-6)
    return coef, float(np.mean(np.minimum(np.abs(loo), 1.0)))


@register_estimator
class TransferPredictor(Estimator):
    """A fitted `base` estimator moved to a new device by a few measurements (see the module docstring)."""

    name = "transfer"

    def __init__(self, *, base: Estimator, n_base_columns: int,
                 prior_costs: Sequence[float] | np.ndarray | None = None,
                 block_costs: Sequence[float] | np.ndarray | None = None, n_between_columns: int = 0,
                 shrinkage: float = 0.01, alphas: Sequence[float] = _ALPHAS) -> None:
        self.base, self.n_base_columns, self.prior_costs = base, n_base_columns, prior_costs
        self.block_costs, self.n_between_columns = block_costs, n_between_columns
        self.shrinkage, self.alphas = shrinkage, alphas

    # ------------------------------------------------------------------ parts of X
    def _parts(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray]:
        prior, blocks = _costs(self.prior_costs, "prior_costs"), _costs(self.block_costs, "block_costs")
        nb, nw = self.n_base_columns, self.n_between_columns
        m = 0 if prior is None else prior.size
        nk = 0 if blocks is None else blocks.size
        if X.shape[1] != nb + m + nk + nw:
            raise ValueError(f"X must have {nb + m + nk + nw} columns (base {nb}, residual {m}, blocks {nk}, "
                             f"between {nw}), got {X.shape[1]}")
        residual = None if prior is None else X[:, nb:nb + m] * prior
        block_sum = None if blocks is None else X[:, nb + m:nb + m + nk] @ blocks
        return X[:, :nb], residual, block_sum, X[:, nb + m + nk:]

    def _stage1_features(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        Xb, residual, block_sum, between = self._parts(X)
        G = [np.log(self.base.predict(Xb))]
        if block_sum is not None:
            G.append(np.log(np.maximum(block_sum, _TINY_MS)))
        shares = None
        if residual is not None:
            total = residual.sum(axis=1, keepdims=True)
            shares = residual / np.where(total > 0, total, 1.0)
        return np.column_stack(G), shares, between

    def _stage2_features(self, shares: np.ndarray | None, between: np.ndarray, f1: np.ndarray) -> np.ndarray:
        """Columns of the relative residual: component shares, then between-layer counts as a share of f1."""
        parts = [] if shares is None else [shares]
        if between.shape[1]:
            parts.append(between * self.scale_ / f1[:, None])  # an additive cost, in units of the median latency
        return np.column_stack(parts) if parts else np.zeros((len(f1), 0))

    # ------------------------------------------------------------------ fit / predict
    def fit(self, X: np.ndarray, y: np.ndarray) -> "TransferPredictor":
        if not isinstance(self.base, Estimator) or not self.base.is_fitted():
            raise ValueError(f"base must be a fitted estimator, got {self.base!r}")
        nb = self.n_base_columns
        if isinstance(nb, bool) or not isinstance(nb, int) or nb <= 0:
            raise ValueError(f"n_base_columns must be a positive integer, got {nb!r}")
        if isinstance(self.shrinkage, bool) or not isinstance(self.shrinkage, (int, float)) or self.shrinkage < 0:
            raise ValueError(f"shrinkage must be a non-negative number, got {self.shrinkage!r}")
        alphas = tuple(self.alphas)
        if not alphas or any(isinstance(a, bool) or not isinstance(a, (int, float)) or a <= 0 for a in alphas):
            raise ValueError(f"alphas must be a non-empty sequence of positive numbers, got {self.alphas!r}")
        nw = self.n_between_columns
        if isinstance(nw, bool) or not isinstance(nw, int) or nw < 0:
            raise ValueError(f"n_between_columns must be a non-negative integer, got {nw!r}")
        X, y = self._check_xy(X, y)
        G, shares, between = self._stage1_features(X)
        t = np.log(y)
        # Stage 1: ridge on centred log features, pulled towards the prior slopes.
        prior = np.array([1.0]) if G.shape[1] == 1 else np.array([0.5, 0.5])
        gm, tm = G.mean(axis=0), t.mean()
        Gc = G - gm
        self.slopes_ = np.linalg.solve(Gc.T @ Gc + self.shrinkage * np.eye(G.shape[1]),
                                       Gc.T @ (t - tm) + self.shrinkage * prior)
        self.offset_ = float(tm - gm @ self.slopes_)
        # Stage 2: relative residual over component shares and between-layer counts, penalty by
        # leave-one-out error.
        self.scale_ = float(np.median(y))
        f1 = np.exp(G @ self.slopes_ + self.offset_)
        S = self._stage2_features(shares, between, f1)
        self.deltas_ = np.zeros(S.shape[1])
        self.alpha_ = float("inf")
        if S.shape[1] and len(y) >= 3:
            r = y / f1 - 1.0
            best = float(np.mean(np.minimum(np.abs(r), 1.0)))  # no residual: every point's own error
            for alpha in alphas:
                coef, err = _loo_ridge(S, r, float(alpha))
                if err < best:
                    best, self.deltas_, self.alpha_ = err, coef, float(alpha)
        # Floor: half the fastest measurement here, at most the base's floor mapped by stage 1.
        self._learn_floor(y)
        base_floor = getattr(self.base, "floor_", None)
        if base_floor is not None and G.shape[1] == 1:
            self.floor_ = min(self.floor_, float(np.exp(self.slopes_[0] * np.log(base_floor) + self.offset_)))
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self._check_predict(X)
        G, shares, between = self._stage1_features(X)
        out = np.exp(G @ self.slopes_ + self.offset_)
        if self.deltas_.size:
            S = self._stage2_features(shares, between, out)
            out = out * np.maximum(1.0 + S @ self.deltas_, 0.5)  # a residual never more than halves
        return self._clip(out)
