"""A fitted latency predictor never predicts outside the band its profile supports."""

from __future__ import annotations

import numpy as np

from predictors import LatencyPredictor, get_estimator
from predictors.features import FeatureSchema


def test_predictions_stay_within_the_fitted_range(tiny_space, tiny_spec, tmp_path):
    archs = tiny_space.sample_many(30, 0)
    schema = FeatureSchema(tiny_space, tiny_spec)
    # Latency driven by depth only: the lookup table fits zero cost to everything else,
    # so a depth-1 subnet's raw prediction is the estimator's floor, far below any latency.
    y = np.array([0.05 + 0.02 * (a.depth - 1) for a in archs])
    predictor = LatencyPredictor(get_estimator("lut"), schema, ["components"], "cpu").fit_archs(archs, y)
    lo, hi = predictor.latency_range
    assert (lo, hi) == (y.min(), y.max())
    predicted = predictor.predict_archs(tiny_space.sample_many(50, 1))
    assert (predicted >= 0.5 * lo).all() and (predicted <= 2 * hi).all()
    again = LatencyPredictor.load(predictor.save(tmp_path / "p.safetensors"))
    assert again.latency_range == predictor.latency_range
    assert np.array_equal(again.predict_archs(archs), predictor.predict_archs(archs))
