"""score_predictor: a saved predictor against a profile's measurements; mismatches refused."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from hwprofiles import MeasureConfig, Profile, profile_device
from predictors import FeatureSchema, LatencyPredictor, build_latency_predictor, score_predictor
from supernet import SearchSpace

QUICK = MeasureConfig(warmup=1, min_runs=3, max_runs=5, max_seconds=0.005, rounds=2, repeats=0)
SUMMARY = re.compile(r"^n=\d+ within10=\d\.\d\d within5=\d\.\d\d mape=\d+\.\d% kendall=-?\d\.\d\d spearman=-?\d\.\d\d$")


@pytest.fixture(scope="module")
def measured(tmp_path_factory, tiny_space, tiny_spec):
    return profile_device("cpu", tiny_space, tiny_spec, n_samples=10, out_dir=tmp_path_factory.mktemp("s") / "prof",
                          config=QUICK, progress=False, repeat_fraction=1.0)


@pytest.fixture(scope="module")
def predictor(measured):
    schema = FeatureSchema(measured.space, measured.spec)
    pred = build_latency_predictor("ridge", schema, measured.device, profile={**measured.reference(), "target": "min_ms"})
    pred.metrics = {"target": "min_ms"}
    return pred.fit_archs(measured.archs(), measured.latency("min_ms"))


def _like(profile: Profile, latency_ms: np.ndarray, **meta) -> Profile:
    """The measured profile's subnets with chosen latencies (and meta fields), in memory."""
    table = pd.DataFrame({"arch": profile.table["arch"], "median_ms": latency_ms,
                          "raw_ms": [[v, 2 * v] for v in latency_ms]})
    return Profile(profile.path.parent / "other", {**profile.meta, **meta}, table)


def test_known_scores(measured, predictor):
    p = predictor.predict_archs(measured.archs())
    factor = np.where(np.arange(p.size) % 2 == 0, 1.08, 1.02)  # half within ±5%, all within ±10%
    score = score_predictor(predictor, _like(measured, p * factor))
    assert score.target == "min_ms" and score.n == 10 and not score.in_sample
    assert score.within_10 == 1.0 and score.within_5 == 0.5
    assert score.mape == pytest.approx(100 * np.mean(1 - 1 / factor))
    assert score.kendall_tau > 0.8 and score.spearman > 0.9
    assert SUMMARY.match(score.summary()) and score.summary().startswith("n=10 within10=1.00 within5=0.50 mape=")
    assert score.to_dict()["notes"] == []
    on_median = score_predictor(predictor, _like(measured, p * factor), target="median_ms")
    assert on_median.target == "median_ms" and "fitted to min_ms" in on_median.notes[0]


def test_scored_on_its_own_profile_is_marked_in_sample(measured, predictor):
    score = score_predictor(predictor, measured)
    assert score.in_sample and any("include rows it was fitted on" in n for n in score.notes)
    assert score.ceiling_within_10 == measured.repeatability_of("min_ms").within_10
    assert 0 <= score.within_5 <= score.within_10 <= 1 and SUMMARY.match(score.summary())


def test_mismatches(measured, predictor):
    y = measured.latency("min_ms")
    torch_cpu = {**measured.meta["device"], "name": "laptop", "backend": "torch-cpu"}
    with pytest.raises(ValueError, match=r"different device kinds: predictor device 'cpu' \(backend ort-cpu\) "
                                         r"vs profile device 'laptop' \(backend torch-cpu\)"):
        score_predictor(predictor, _like(measured, y, device=torch_cpu))
    other = SearchSpace(embed_dims=(16, 64), depths=(1, 2, 3), heads=(1, 2), ffn_ratios=(1, 2), head_dim=8,
                        local_window=4)
    with pytest.raises(ValueError, match=r"different search spaces .*embed_dims \[16, 32\] vs \[16, 64\]"):
        score_predictor(predictor, _like(measured, y, space=other.to_dict()))
    two_threads = {**measured.meta["device"], "name": "cpu-2t", "threads": 2}
    score = score_predictor(predictor, _like(measured, y, device=two_threads))
    assert score.profile_device == "cpu-2t" and "threads 1 vs 2" in score.notes[0]
    with pytest.raises(ValueError, match="latency statistic must be one of"):
        score_predictor(predictor, measured, target="p90_ms")
    with pytest.raises(ValueError, match="no measured subnets"):
        score_predictor(predictor, Profile(measured.path, measured.meta, measured.table.iloc[:0]))


def test_target_recorded_by_adapted_predictors(measured, predictor, tmp_path):
    adapted = predictor.adapt(measured.archs()[:5], measured.latency("min_ms")[:5], "cpu-2t")
    assert adapted.target == "min_ms"
    loaded = LatencyPredictor.load(adapted.save(tmp_path / "a.safetensors"))
    assert loaded.target == "min_ms" and score_predictor(loaded, measured).target == "min_ms"
    bare = LatencyPredictor(predictor.estimator, predictor.schema, predictor.groups, predictor.device)
    assert bare.target is None
    assert "scored on median_ms" in score_predictor(bare, measured).notes[0]
