"""Fit every registered predictor on a profile, compare them out of fold, keep the best."""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import pandas as pd

from hwprofiles import DEFAULT_TARGET, Profile
from supernet import Arch

from ._base import get_estimator
from ._latency import LatencyPredictor
from .features import FeatureSchema
from .metrics import latency_metrics

DEFAULT_NAMES = ("lut", "ridge", "gbt", "mlp", "hybrid")
# From fewest learned parameters to most: of predictors whose out-of-fold figures are within one
# standard error of the best's, fit-predictor keeps the first in this order (`choose`).
SIMPLEST_FIRST = ("lut", "ridge", "hybrid", "gbt", "mlp")
_MODEL_GROUPS = ("global", "layers", "analytic")


def build_latency_predictor(name: str, schema: FeatureSchema, device: Any, *, block_costs: dict[str, float] | None = None,
                    seed: int = 0, profile: dict[str, Any] | None = None) -> LatencyPredictor:
    """An unfitted `LatencyPredictor` for a registered estimator with its default feature groups.

    The lookup-table estimators use measured block costs when `block_costs` covers every
    block of the space, and otherwise fit component costs from whole-model measurements,
    with the once-per-model cost of int8 kernels (feature group ``quant``) and the cost of
    each change between adjacent layers (``changes``) beside them.
    """
    costs = None
    if block_costs:
        names = schema.names(["blocks"])
        if all(n in block_costs for n in names):
            costs = np.array([block_costs[n] for n in names])
    lut_groups = ("blocks",) if costs is not None else ("components", "quant", "changes")
    if name == "lut":
        est, groups = get_estimator("lut", block_costs=costs), lut_groups
    elif name == "ridge":
        est, groups = get_estimator("ridge"), ("components", "quant", "changes", *_MODEL_GROUPS)
    elif name == "gbt":
        est, groups = get_estimator("gbt", random_state=seed), _MODEL_GROUPS
    elif name == "mlp":
        est, groups = get_estimator("mlp", random_state=seed), _MODEL_GROUPS
    elif name == "hybrid":
        n_lut = len(schema.names(lut_groups))
        est, groups = get_estimator("hybrid", n_lut_columns=n_lut, block_costs=costs), (*lut_groups, *_MODEL_GROUPS)
    else:
        raise ValueError(f"no default setup for predictor {name!r}; known: {list(DEFAULT_NAMES)}")
    return LatencyPredictor(est, schema, groups, device, profile=profile)


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    if n < 4:
        raise ValueError(f"a profile needs at least 4 measured subnets to fit and compare predictors, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(test_fraction * n)))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def compare_predictors(schema: FeatureSchema, device: Any, train: tuple[Sequence[Arch], np.ndarray],
                       test: tuple[Sequence[Arch], np.ndarray], *, names: Sequence[str] = DEFAULT_NAMES,
                       block_costs: dict[str, float] | None = None, seed: int = 0
                       ) -> tuple[dict[str, LatencyPredictor], pd.DataFrame]:
    """Fit each named predictor on `train`, score it on `test`: (fitted predictors, metric table)."""
    fitted, rows = {}, []
    for name in names:
        pred = build_latency_predictor(name, schema, device, block_costs=block_costs, seed=seed)
        t0 = time.perf_counter()
        pred.fit_archs(*train)
        fit_s = time.perf_counter() - t0
        metrics = latency_metrics(test[1], pred.predict_archs(test[0]))
        fitted[name] = pred
        rows.append({"predictor": name, **metrics, "fit_seconds": fit_s, "n_train": len(train[0]),
                     "n_test": len(test[0])})
    return fitted, pd.DataFrame(rows)


def fold_indices(n: int, test_fraction: float, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs of round(1 / test_fraction) folds of n rows in a seeded random
    order: every row is held out exactly once."""
    split_indices(n, test_fraction, seed)  # the same checks
    folds = min(n, max(2, int(round(1 / test_fraction))))
    order = np.random.default_rng(seed).permutation(n)
    return [(np.sort(np.setdiff1d(order, held)), np.sort(held)) for held in np.array_split(order, folds)]


def cross_validate(schema: FeatureSchema, device: Any, archs: Sequence[Arch], y: np.ndarray, *,
                   names: Sequence[str] = DEFAULT_NAMES, block_costs: dict[str, float] | None = None,
                   test_fraction: float = 0.25, seed: int = 0) -> pd.DataFrame:
    """Each named predictor scored out of fold: fitted on all folds but one and predicting that
    one, for every fold (`fold_indices`), its metrics taken over every row's held-out
    prediction. One table row per predictor, as `compare_predictors` gives (fit_seconds: all folds)."""
    y = np.asarray(y, dtype=float)
    held_out = {name: np.empty(len(y)) for name in names}
    seconds = dict.fromkeys(names, 0.0)
    folds = fold_indices(len(y), test_fraction, seed)
    for train_idx, test_idx in folds:
        pick = lambda idx: ([archs[i] for i in idx], y[idx])  # noqa: E731
        fitted, table = compare_predictors(schema, device, pick(train_idx), pick(test_idx), names=names,
                                           block_costs=block_costs, seed=seed)
        for name, row in zip(names, table.itertuples()):
            held_out[name][test_idx] = fitted[name].predict_archs(pick(test_idx)[0])
            seconds[name] += row.fit_seconds
    n_train = float(np.mean([len(train) for train, _ in folds]))
    return pd.DataFrame([{"predictor": name, **latency_metrics(y, held_out[name]),
                          "mape_se": _mape_se(y, held_out[name]), "fit_seconds": seconds[name],
                          "n_train": n_train, "n_test": len(y)} for name in names])


def _mape_se(y: np.ndarray, predicted: np.ndarray) -> float:
    """Standard error (%) of the mean absolute percentage error over the rows."""
    ape = 100 * np.abs(predicted - y) / y
    return float(ape.std(ddof=1) / np.sqrt(len(ape))) if len(ape) > 1 else float("nan")


def choose(table: pd.DataFrame) -> str:
    """The predictor to keep from a `cross_validate` table, by the one-standard-error rule: the
    best is the highest share within ±10%, then the lowest MAPE; kept is the simplest
    (SIMPLEST_FIRST) whose share within ±10% is no more than one binomial standard error below
    the best's and whose MAPE is no more than one standard error (`mape_se`) above it. On random
    subnets the lookup table and the hybrid tie within noise, while on the exported models (the
    uniform baselines repeat one layer, unlike any random subnet) the hybrid's MAPE was the
    higher in each of four default runs (benchmarks/results/predictor_choice.md)."""
    best = table.sort_values(["within_10", "mape"], ascending=[False, True]).iloc[0]
    n = float(best["n_test"])
    w_se = np.sqrt(best["within_10"] * (1 - best["within_10"]) / n)
    m_se = best["mape_se"] if np.isfinite(best["mape_se"]) else 0.0
    close = table[(table["within_10"] >= best["within_10"] - w_se - 1e-12) & (table["mape"] <= best["mape"] + m_se)]
    rank = {name: i for i, name in enumerate(SIMPLEST_FIRST)}
    return str(min(close["predictor"], key=lambda name: (rank.get(name, len(rank)), name)))


def fit_and_select(profile: Profile, *, seed: int = 0, names: Sequence[str] = DEFAULT_NAMES,
                   test_fraction: float = 0.25, target: str = DEFAULT_TARGET
                   ) -> tuple[LatencyPredictor, pd.DataFrame]:
    """Score `names` on `profile` out of fold (`cross_validate`: round(1 / test_fraction) folds,
    every subnet held out once), keep the best.

    The one `choose` keeps (the simplest within one standard error of the best by held-out
    share within ±10%, then by MAPE) is refitted on every row and
    returned with the comparison table; the table's last row is the repeatability
    ceiling (two independent measurements of the same subnets) when the profile has one.
    Every subnet counts in the choice: scored on one held-out quarter (20 of the default 80
    subnets), the choice moved with one or two subnets measured in a slow phase
    (benchmarks/results/predictor_choice.md).
    `target` is the statistic fitted: ``min_ms`` (`hwprofiles.DEFAULT_TARGET`), the fastest
    run, which other work on a shared machine moves least, or ``median_ms``.
    """
    archs, y = profile.archs(), profile.latency(target)
    schema = FeatureSchema(profile.space, profile.spec)
    table = cross_validate(schema, profile.device, archs, y, names=names, block_costs=profile.block_costs(),
                           test_fraction=test_fraction, seed=seed)
    best_row = table.loc[table["predictor"] == choose(table)].iloc[0]
    best = build_latency_predictor(best_row["predictor"], schema, profile.device, block_costs=profile.block_costs(),
                           seed=seed, profile={**profile.reference(), "target": target})
    best.fit_archs(archs, y)
    ceiling = profile.repeatability_of(target)
    best.metrics = {"held_out": {k: (float(v) if isinstance(v, (float, np.floating)) else v)
                                 for k, v in best_row.to_dict().items()},
                    "repeatability": None if ceiling is None else ceiling.to_dict(),
                    "selected_by": "out-of-fold within_10, then mape; the simplest within one standard error", "target": target}
    if ceiling is not None:
        table = pd.concat([table, pd.DataFrame([{"predictor": "repeatability (ceiling)", "mape": ceiling.mape,
                                                 "within_5": ceiling.within_5, "within_10": ceiling.within_10,
                                                 "n_test": ceiling.n}])], ignore_index=True)
    table["selected"] = table["predictor"] == best_row["predictor"]
    return best, table
