"""Latency predictors: features, estimators (a registry), metrics, persistence, selection, scoring.

Estimators follow the scikit-learn contract (see `_base`); `LatencyPredictor` binds one to
its feature schema, space, device and profile and saves it as JSON plus arrays only.
"""

from ._adapt import adapt_predictor, adaptation_archs, block_costs_of, source_component_costs
from ._base import Estimator, NotFittedError, estimator_names, get_estimator, register_estimator
from ._dominance import dominated_on_measurements
from ._estimators import (CalibratedPredictor, GBTPredictor, HybridPredictor, LookupTablePredictor, MLPPredictor,
                          RidgePredictor)
from ._latency import LatencyPredictor
from ._score import PredictorScore, score_predictor
from ._select import (DEFAULT_NAMES, SIMPLEST_FIRST, build_latency_predictor, choose, compare_predictors,
                      cross_validate, fit_and_select, fold_indices, split_indices)
from ._transfer import TransferPredictor
from .features import FeatureSchema
from .metrics import kendall_tau, latency_metrics, mape, rmse, spearman, within

__all__ = [
    "CalibratedPredictor", "DEFAULT_NAMES", "Estimator", "FeatureSchema", "GBTPredictor", "HybridPredictor",
    "LatencyPredictor", "LookupTablePredictor", "MLPPredictor", "NotFittedError", "PredictorScore", "RidgePredictor",
    "SIMPLEST_FIRST", "TransferPredictor", "adapt_predictor", "adaptation_archs", "block_costs_of",
    "build_latency_predictor", "choose",
    "compare_predictors", "cross_validate", "dominated_on_measurements", "fit_and_select", "fold_indices",
    "estimator_names", "get_estimator", "kendall_tau", "latency_metrics", "mape", "register_estimator", "rmse",
    "score_predictor", "source_component_costs", "spearman", "split_indices", "within",
]
