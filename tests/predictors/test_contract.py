"""Every registered estimator meets the scikit-learn-style contract and persists as JSON plus arrays."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from predictors import Estimator, NotFittedError, get_estimator, estimator_names


def _data(seed=0, n=120, k=8):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 4, size=(n, k)).astype(float)
    y = 0.05 + X @ rng.uniform(0.01, 0.2, size=k)  # additive latency in ms
    return X, y


def _make(name: str) -> Estimator:
    if name == "hybrid":
        return get_estimator(name, n_lut_columns=5)
    if name == "calibrated":
        X, y = _data()
        return get_estimator(name, base=get_estimator("ridge").fit(X, y))
    if name == "transfer":  # base on the first 5 columns, a residual over the other 3
        X, y = _data()
        return get_estimator(name, base=get_estimator("ridge").fit(X[:, :5], y), n_base_columns=5,
                             prior_costs=[0.05, 0.1, 0.15])
    return get_estimator(name)


def test_registry_lists_the_predictors():
    assert {"lut", "ridge", "gbt", "mlp", "hybrid", "calibrated", "transfer"} <= set(estimator_names())
    with pytest.raises(ValueError, match="unknown predictor 'svm'; known: \\['lut'"):
        get_estimator("svm")


@pytest.mark.parametrize("name", estimator_names())
def test_contract(name):
    est = _make(name)
    params = est.get_params()
    sig = inspect.signature(type(est).__init__)
    assert all(p.kind == p.KEYWORD_ONLY for n, p in sig.parameters.items() if n != "self")
    assert not est.is_fitted()
    X, y = _data()
    with pytest.raises(NotFittedError, match="not fitted"):
        est.predict(X)
    assert est.fit(X[:90], y[:90]) is est
    assert est.get_params() == params  # fit leaves hyperparameters alone
    learned = [k for k in vars(est) if k.endswith("_")]
    assert learned and est.is_fitted()
    pred = est.predict(X[90:])
    assert pred.shape == (30,) and np.all(pred > 0) and np.all(np.isfinite(pred))
    assert np.mean(np.abs(pred - y[90:]) / y[90:]) < 0.5  # learned something
    with pytest.raises(ValueError):
        est.predict(X[:, :3])
    with pytest.raises(ValueError, match="positive"):
        _make(name).fit(X, -y)


@pytest.mark.parametrize("name", estimator_names())
def test_state_round_trip(name):
    X, y = _data(1)
    est = _make(name).fit(X, y)
    desc, arrays = est.get_state()
    import json

    json.dumps(desc)  # the description is plain JSON
    assert all(isinstance(v, np.ndarray) for v in arrays.values())
    again = Estimator.from_state(json.loads(json.dumps(desc)), arrays)
    assert type(again) is type(est)
    np.testing.assert_allclose(again.predict(X), est.predict(X), rtol=1e-12)


def test_additive_latency_is_learned_by_lookup_table():
    X, y = _data(2, n=200)
    lut = get_estimator("lut").fit(X[:150], y[:150])
    np.testing.assert_allclose(lut.predict(X[150:]), y[150:], rtol=1e-6)
    costs = np.linspace(0.01, 0.08, X.shape[1])
    measured = get_estimator("lut", block_costs=costs).fit(X, 1.2 * (X @ costs) + 0.3)
    assert measured.scale_ == pytest.approx(1.2) and measured.overhead_ == pytest.approx(0.3)


def test_gbt_predicts_like_scikit_learn():
    from sklearn.ensemble import GradientBoostingRegressor

    X, y = _data(3)
    ours = get_estimator("gbt", n_estimators=50, subsample=1.0, random_state=0).fit(X, y)
    ref = GradientBoostingRegressor(n_estimators=50, learning_rate=0.05, max_depth=3, random_state=0).fit(X, np.log(y))
    np.testing.assert_allclose(np.log(ours.predict(X)), ref.predict(X), atol=1e-10)


def test_registry_refuses_a_duplicate_name():
    from predictors import register_estimator

    class Another(Estimator):
        name = "ridge"

        def fit(self, X, y):
            return self

        def predict(self, X):
            return np.ones(len(X))

    with pytest.raises(ValueError, match="estimator name .ridge. is already registered by .*RidgePredictor"):
        register_estimator(Another)
    assert type(get_estimator("ridge")).__name__ == "RidgePredictor"  # the first one stays
