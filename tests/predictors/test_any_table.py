"""Estimators on tables that are not this project's space: plain numeric features, targets
spanning orders of magnitude with some near zero, and predictors saved before these rules."""

from __future__ import annotations

import json

import numpy as np
import pytest

from predictors import Estimator, LatencyPredictor, build_latency_predictor, get_estimator, estimator_names, spearman, within
from predictors.features import FeatureSchema


def _plain_table(seed: int, n: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """Another space's architectures, six numeric features of its own (two of them signed)."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.integers(1, 13, n),             # layers
                         rng.choice([128.0, 256.0, 512.0], n),  # width
                         rng.uniform(0.5, 4.0, n),              # ffn ratio
                         rng.integers(0, 2, n),                 # quantised
                         rng.normal(0.0, 1.0, n),               # a centred score
                         rng.uniform(-1.0, 1.0, n)]).astype(np.float64)
    y = (0.02 * X[:, 0] * (X[:, 1] / 256) ** 1.5 * (1 + 0.3 * X[:, 2]) * np.where(X[:, 3] > 0, 0.6, 1.0)
         * np.exp(0.1 * X[:, 4]))
    return X, y * (1 + 0.02 * rng.standard_normal(n))


def _make(name: str, X: np.ndarray, y: np.ndarray) -> Estimator:
    if name == "hybrid":
        return get_estimator(name, n_lut_columns=4)  # the non-negative columns first
    if name == "calibrated":
        return get_estimator(name, base=get_estimator("ridge", target="log").fit(X, y))
    if name == "transfer":  # a base on the whole table, nothing else: the table of another space adapts too
        return get_estimator(name, base=get_estimator("ridge", target="log").fit(X, y), n_base_columns=X.shape[1])
    return get_estimator(name)


@pytest.mark.parametrize("name", [n for n in estimator_names() if n != "lut"])
def test_every_estimator_fits_a_plain_feature_table(name):
    X, y = _plain_table(0)
    est = _make(name, X[:120], y[:120]).fit(X[:120], y[:120])
    pred = est.predict(X[120:])
    assert pred.shape == (40,) and np.all(np.isfinite(pred)) and np.all(pred > 0)
    # Latency here is a product of the features: the additive lookup-table part of `hybrid` ranks worse.
    assert spearman(y[120:], pred) > (0.6 if name == "hybrid" else 0.9)


def test_lookup_table_needs_non_negative_columns():
    X, y = _plain_table(1)
    with pytest.raises(ValueError, match=r"lut columns must be non-negative .* in column 4"):
        get_estimator("lut").fit(X, y)
    with pytest.raises(ValueError, match="lut columns must be non-negative"):
        get_estimator("hybrid", n_lut_columns=5).fit(X, y)
    lut = get_estimator("lut").fit(X[:120, :4], y[:120])  # plain non-negative amounts: a non-negative linear model
    assert np.all(lut.costs_ >= 0) and spearman(y[120:], lut.predict(X[120:, :4])) > 0.6


def test_few_shot_calibration_to_another_device_on_a_plain_table():
    X, y_a = _plain_table(2, n=200)
    y_b = 2.5 * y_a**0.9  # another device: slower, compressed range
    base = get_estimator("mlp").fit(X[:150], y_a[:150])
    assert within(y_b[150:], base.predict(X[150:]), 0.10) == 0.0
    calibrated = get_estimator("calibrated", base=base).fit(X[150:165], y_b[150:165])  # 15 measurements
    assert within(y_b[:150], calibrated.predict(X[:150]), 0.10) >= within(y_a[:150], base.predict(X[:150]), 0.10) - 0.1


def _wide_table(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Additive latency over sparse component counts, costs 1e-3..1 ms: targets span 4 orders of magnitude."""
    rng = np.random.default_rng(seed)
    k = 12
    X = ((rng.random((n, k)) < rng.uniform(0.02, 0.4, k)) * rng.integers(1, 4, (n, k))).astype(np.float64)
    true = X @ np.exp(rng.uniform(np.log(1e-3), 0.0, k)) + 1e-4
    return X, true * (1 + 0.03 * rng.standard_normal(n)), true


@pytest.mark.parametrize("seed", [0, 1])
def test_targets_spanning_orders_of_magnitude_keep_the_ranking(seed):
    X, y, true = _wide_table(seed)
    assert y.max() / y.min() > 1e3 and np.mean(y < 0.01 * np.median(y)) > 0.05  # some near zero
    fit, test = slice(0, 200), slice(200, None)
    for name in ("ridge", "lut"):
        pred = get_estimator(name).fit(X[fit], y[fit]).predict(X[test])
        assert spearman(true[test], pred) > 0.98 and within(true[test], pred, 0.10) > 0.85, name
    # Plain relative error (no weight floor) lets the near-zero rows dominate ridge's fit.
    unfloored = get_estimator("ridge", weight_floor=0.0).fit(X[fit], y[fit]).predict(X[test])
    assert spearman(true[test], unfloored) < 0.95


@pytest.mark.parametrize("name", estimator_names())
def test_predictions_never_fall_below_half_the_fastest_fitted_latency(name):
    X, y, _ = _wide_table(3)
    est = _make(name, X, y).fit(X, y)
    assert est.floor_ <= 0.5 * y.min() * (1 + 1e-12)
    extreme = np.vstack([np.zeros(X.shape[1]), X.max(axis=0) * 5, -X.max(axis=0) if name not in ("lut", "hybrid")
                         else np.zeros(X.shape[1])])
    pred = est.predict(np.vstack([X, extreme]))
    assert np.all(np.isfinite(pred)) and np.all(pred >= est.floor_) and est.floor_ > 0


def test_weight_floor_is_validated():
    X, y, _ = _wide_table(4)
    with pytest.raises(ValueError, match="weight_floor must be a non-negative number, got -1"):
        get_estimator("ridge", weight_floor=-1).fit(X, y)


def test_estimators_saved_before_the_floor_still_load(tmp_path, tiny_space, tiny_spec):
    """A predictor file without `floor_` / `weight_floor` (saved by an earlier version) loads and predicts."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    schema = FeatureSchema(tiny_space, tiny_spec)
    archs = tiny_space.sample_many(40, 0)
    y = 0.05 + 0.01 * schema.transform(archs, ["components"]).sum(axis=1)
    for name in ("lut", "ridge", "hybrid"):
        pred = build_latency_predictor(name, schema, "cpu").fit_archs(archs, y)
        path = pred.save(tmp_path / f"{name}.safetensors")
        with safe_open(str(path), framework="np") as fh:
            header = json.loads(fh.metadata()["hwnas"])
            arrays = {k: fh.get_tensor(k) for k in fh.keys()}

        def strip(desc: dict) -> None:
            desc["params"].pop("weight_floor", None)
            desc["learned"].pop("floor_", None)
            for value in [*desc["params"].values(), *desc["learned"].values()]:
                if isinstance(value, dict) and "__estimator__" in value:
                    strip(value["__estimator__"])

        strip(header["estimator"])
        assert "floor_" not in json.dumps(header["estimator"])
        save_file(arrays, str(path), metadata={"hwnas": json.dumps(header)})
        old = LatencyPredictor.load(path, space=tiny_space, device="cpu")
        assert not hasattr(old.estimator, "floor_")
        np.testing.assert_allclose(old.predict_archs(archs), pred.predict_archs(archs), rtol=1e-9)


def test_one_slow_measurement_is_set_aside_by_the_lookup_table():
    """An additive table with 1% noise and one row measured 50% slow (a slow phase of the
    machine): the default lookup table sets that row aside and predicts the rest as if it were
    not there; without the outlier rule every prediction moves."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 4, (80, 6)).astype(np.float64)
    y = (0.01 + X @ np.array([0.02, 0.05, 0.01, 0.03, 0.04, 0.02])) * (1 + 0.01 * rng.standard_normal(80))
    i = int(np.argsort(y)[40])  # a mid-sized model, as in the run that showed it
    slow = y.copy()
    slow[i] *= 1.5
    clean = get_estimator("lut").fit(X, y)
    robust = get_estimator("lut").fit(X, slow)
    naive = get_estimator("lut", outlier_threshold=None).fit(X, slow)
    assert robust.outliers_ == [i] and clean.outliers_ == [] and naive.outliers_ == []
    others = np.arange(80) != i
    assert np.max(np.abs(robust.predict(X[others]) / clean.predict(X[others]) - 1)) < 0.005
    assert np.max(np.abs(naive.predict(X[others]) / clean.predict(X[others]) - 1)) > 0.01
