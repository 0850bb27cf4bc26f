"""Latency predictors: features, estimators (a registry), metrics, persistence, selection, scoring.

Estimators follow the scikit-learn contract (see `_base`); `LatencyPredictor` binds one to
its feature schema, space, device and profile and saves it as JSON plus arrays only.
"""

from ._base import Estimator, NotFittedError, get_predictor, predictor_names, register
from ._estimators import (CalibratedPredictor, GBTPredictor, HybridPredictor, LookupTablePredictor, MLPPredictor,
                          RidgePredictor)
from ._latency import LatencyPredictor
from ._score import PredictorScore, score_predictor
from ._select import DEFAULT_NAMES, build_predictor, compare_predictors, fit_and_select, split_indices
from .features import FeatureSchema
from .metrics import kendall_tau, latency_metrics, mape, rmse, spearman, within

__all__ = [
    "CalibratedPredictor", "DEFAULT_NAMES", "Estimator", "FeatureSchema", "GBTPredictor", "HybridPredictor",
    "LatencyPredictor", "LookupTablePredictor", "MLPPredictor", "NotFittedError", "PredictorScore", "RidgePredictor",
    "build_predictor", "compare_predictors", "fit_and_select", "get_predictor", "kendall_tau", "latency_metrics",
    "mape", "predictor_names", "register", "rmse", "score_predictor", "spearman", "split_indices", "within",
]
