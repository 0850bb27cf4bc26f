"""LatencyPredictor on a real measured profile: selection, persistence, mismatches; adaptation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwprofiles import MeasureConfig, profile_device, sample_profile_archs
from predictors import (DEFAULT_NAMES, FeatureSchema, LatencyPredictor, build_latency_predictor, choose, fit_and_select,
                        within)
from supernet import SearchSpace

QUICK = MeasureConfig(warmup=1, min_runs=3, max_runs=5, max_seconds=0.005, rounds=2, repeats=0)


@pytest.fixture(scope="module")
def profile(tmp_path_factory, tiny_space, tiny_spec):
    return profile_device("cpu", tiny_space, tiny_spec, n_samples=16, out_dir=tmp_path_factory.mktemp("p") / "prof",
                          config=QUICK, progress=False, repeat_fraction=0.5)


def test_fit_and_select(profile):
    best, table = fit_and_select(profile, seed=0, target="median_ms")
    assert best.metrics["target"] == best.profile["target"] == "median_ms"
    assert list(table["predictor"][: len(DEFAULT_NAMES)]) == list(DEFAULT_NAMES)
    assert table["predictor"].iloc[-1] == "repeatability (ceiling)"
    scored = table.iloc[: len(DEFAULT_NAMES)]
    assert scored["within_10"].between(0, 1).all() and (scored["n_test"] == 16).all()  # every subnet held out once
    top = choose(scored)  # the simplest within one standard error of the best
    assert best.name == top and table.loc[table["selected"], "predictor"].item() == top
    assert best.metrics["held_out"]["predictor"] == top and best.metrics["repeatability"]["n"] >= 8
    pred = best.predict_archs(profile.archs())
    assert pred.shape == (16,) and np.all(pred > 0)
    fastest, table = fit_and_select(profile, seed=0)  # the default: hwprofiles.DEFAULT_TARGET, the fastest run
    assert fastest.metrics["target"] == "min_ms" and fastest.profile["target"] == "min_ms"
    assert table["n_test"].iloc[-1] == profile.repeatability_of("min_ms").n


def test_save_load_and_mismatches(profile, tmp_path, tiny_space):
    best, _ = fit_and_select(profile, seed=1)
    path = best.save(tmp_path / "pred.safetensors")
    assert json.loads(path.read_bytes()[8:8 + int.from_bytes(path.read_bytes()[:8], "little")])  # JSON header
    again = LatencyPredictor.load(path, space=tiny_space, device="cpu")
    archs = profile.archs()
    np.testing.assert_allclose(again.predict_archs(archs), best.predict_archs(archs), rtol=1e-12)
    assert again.profile["n_rows"] == 16 and again.versions["numpy"] and again.device == best.device
    other = SearchSpace(embed_dims=(16,), depths=(1,), heads=(1,), ffn_ratios=(1,), head_dim=8)
    with pytest.raises(ValueError, match="another search space"):
        LatencyPredictor.load(path, space=other)
    with pytest.raises(ValueError, match="fitted for device"):
        LatencyPredictor.load(path, device="cpu-2t")
    with pytest.raises(ValueError, match="no latency predictor"):
        LatencyPredictor.load(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(ValueError, match="not a readable hwnas latency predictor"):
        LatencyPredictor.load(tmp_path / "junk.safetensors")


@pytest.mark.parametrize("name", DEFAULT_NAMES)
def test_every_default_predictor_persists(profile, tmp_path, name):
    schema = FeatureSchema(profile.space, profile.spec)
    pred = build_latency_predictor(name, schema, profile.device, profile=profile.reference())
    pred.fit_archs(profile.archs(), profile.latency_ms)
    loaded = LatencyPredictor.load(pred.save(tmp_path / f"{name}.st"), space=profile.space, device=profile.device)
    np.testing.assert_allclose(loaded.predict_archs(profile.archs()), pred.predict_archs(profile.archs()))


def test_lookup_table_uses_measured_blocks(tiny_space, tiny_spec):
    schema = FeatureSchema(tiny_space, tiny_spec)
    names = schema.names(["blocks"])
    costs = {n: 0.01 * (i + 1) for i, n in enumerate(names)}
    archs = sample_profile_archs(tiny_space, 30, seed=0)
    X = schema.transform(archs, ["blocks"])
    y = 1.1 * (X @ np.array([costs[n] for n in names])) + 0.05
    pred = build_latency_predictor("lut", schema, "cpu", block_costs=costs).fit_archs(archs, y)
    assert pred.groups == ("blocks",)
    np.testing.assert_allclose(pred.predict_archs(archs), y, rtol=1e-9)
    fallback = build_latency_predictor("lut", schema, "cpu", block_costs={})
    assert fallback.groups == ("components", "quant", "changes")  # component costs, the once-per-model int8 cost, layer changes


def test_few_sample_adaptation(tiny_space, tiny_spec, tmp_path):
    schema = FeatureSchema(tiny_space, tiny_spec)
    archs = sample_profile_archs(tiny_space, 120, seed=0)
    comps = schema.transform(archs, ["components"])
    rng = np.random.default_rng(0)
    y_a = 0.02 + comps @ rng.uniform(0.01, 0.1, comps.shape[1])
    y_b = 1.7 * y_a**0.9  # another device: slower, compressed range
    source = build_latency_predictor("ridge", schema, "cpu").fit_archs(archs[:100], y_a[:100])
    adapted = source.adapt(archs[100:110], y_b[100:110], "cpu-2t", method="calibrated")
    assert adapted.device.name == "cpu-2t" and adapted.name == "calibrated"
    assert within(y_b[:100], adapted.predict_archs(archs[:100]), 0.10) >= 0.95
    transferred = source.adapt(archs[100:110], y_b[100:110], "cpu-2t")  # the default: can re-rank, need not
    assert transferred.name == "transfer" and within(y_b[:100], transferred.predict_archs(archs[:100]), 0.10) >= 0.9
    assert within(y_b[:100], source.predict_archs(archs[:100]), 0.10) < 0.5
    loaded = LatencyPredictor.load(adapted.save(tmp_path / "adapted.st"), device="cpu-2t")
    np.testing.assert_allclose(loaded.predict_archs(archs), adapted.predict_archs(archs))


def test_cross_validate_holds_every_subnet_out_once(profile):
    from predictors import cross_validate, fold_indices

    folds = fold_indices(16, 0.25, seed=3)
    assert len(folds) == 4
    held = np.concatenate([test for _, test in folds])
    assert sorted(held.tolist()) == list(range(16))
    assert all(len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 16 for train, test in folds)
    schema = FeatureSchema(profile.space, profile.spec)
    table = cross_validate(schema, profile.device, profile.archs(), profile.latency("min_ms"), names=["lut", "ridge"],
                           seed=3)
    assert list(table["predictor"]) == ["lut", "ridge"] and (table["n_test"] == 16).all()
    assert (table["n_train"] == 12).all() and table["within_10"].between(0, 1).all()


def test_choose_keeps_the_simplest_predictor_within_one_standard_error():
    import pandas as pd

    table = pd.DataFrame([
        {"predictor": "mlp", "within_10": 0.95, "mape": 3.0, "mape_se": 0.4, "n_test": 80},
        {"predictor": "hybrid", "within_10": 0.9375, "mape": 3.3, "mape_se": 0.4, "n_test": 80},
        {"predictor": "lut", "within_10": 0.93, "mape": 3.2, "mape_se": 0.4, "n_test": 80},
        {"predictor": "ridge", "within_10": 0.80, "mape": 3.1, "mape_se": 0.4, "n_test": 80},
    ])
    assert choose(table) == "lut"  # mlp is best; lut within one SE (0.024) on share and 0.4 on MAPE
    assert choose(table.assign(mape_se=0.1)) == "mlp"  # with tighter figures only the best is close
    table.loc[table.predictor == "lut", "mape"] = 3.5
    assert choose(table) == "hybrid"  # lut's MAPE is more than one SE above the best's
