"""Metrics on known values; features mask inactive layers and count components."""

from __future__ import annotations

import numpy as np
import pytest

from predictors import FeatureSchema, kendall_tau, latency_metrics, mape, rmse, spearman, within
from supernet import Arch, LayerConfig


def test_metrics_known_values():
    t = np.array([1.0, 2.0, 4.0, 8.0])
    p = np.array([1.05, 2.0, 4.8, 7.0])
    assert mape(t, p) == pytest.approx(100 * (0.05 + 0 + 0.2 + 0.125) / 4)
    assert rmse(t, p) == pytest.approx(np.sqrt((0.05**2 + 0 + 0.8**2 + 1) / 4))
    assert within(t, p, 0.05) == 0.5 and within(t, p, 0.10) == 0.5 and within(t, p, 0.25) == 1.0
    assert kendall_tau(t, p) == pytest.approx(1.0) and spearman(t, p) == pytest.approx(1.0)
    assert kendall_tau(t, p[::-1]) == pytest.approx(-1.0)
    assert set(latency_metrics(t, p)) == {"mape", "rmse_ms", "within_5", "within_10", "kendall_tau", "spearman"}
    with pytest.raises(ValueError, match="equal-length"):
        mape(t, p[:2])
    with pytest.raises(ValueError, match="positive"):
        mape(-t, p)


def test_features_mask_inactive_layers(tiny_space, tiny_spec):
    schema = FeatureSchema(tiny_space, tiny_spec)
    groups = ("global", "layers", "analytic", "components", "blocks")
    layer = LayerConfig(2, 2, "linear", "int8")
    short = Arch(32, (layer,))
    X = schema.transform([short, Arch(32, (layer, layer))], groups)
    names = schema.names(groups)
    assert X.shape == (2, len(names))
    row = dict(zip(names, X[0]))
    assert row["layer0.active"] == 1 and row["layer0.heads"] == 2 and row["layer0.attn_linear"] == 1
    assert row["layer0.int8"] == 1
    assert all(row[n] == 0 for n in names if n.startswith(("layer1.", "layer2.")))  # masked
    assert row["stem.E32"] == 1 and row["attn.linear.h2"] == 1 and row["ffn.E32.r2.int8"] == 1
    assert row["layer.E32.h2.r2.linear.int8"] == 1 and row["embed.E32"] == 1 and row["head.E32"] == 1
    assert dict(zip(names, X[1]))["attn.linear.h2"] == 2
    assert row["log_flops"] == pytest.approx(np.log(row["flops"]))
    with pytest.raises(ValueError, match="feature group must be one of"):
        schema.names(["colour"])
    with pytest.raises(ValueError, match="embed_dim must be one of"):
        schema.transform([Arch(7, (layer,))], ["global"])


def test_quant_group_carries_a_cost_paid_once_per_model_with_int8_layers(tiny_space, tiny_spec, tmp_path):
    """A synthetic table: additive component costs plus 0.007 ms once per model that has any
    int8 layer. Component costs alone cannot carry that cost (a count of int8 layers is the sum
    of the int8 components); the `quant` group can, and predictors saved without it still load."""
    from hwprofiles import sample_profile_archs
    from predictors import LatencyPredictor, build_latency_predictor, get_estimator

    schema = FeatureSchema(tiny_space, tiny_spec)
    archs = sample_profile_archs(tiny_space, 150, seed=0)
    any_int8 = schema.transform(archs, ["quant"])[:, 0]
    assert schema.names(["quant"]) == ["any_int8"] and "any_int8" not in schema.names(["components"])
    assert list(any_int8) == [float(any(layer.quant == "int8" for layer in a.layers)) for a in archs]
    costs = np.random.default_rng(0).uniform(0.002, 0.02, len(schema.names(["components"])))

    def latency(batch):
        return 0.01 + schema.transform(batch, ["components"]) @ costs + 0.007 * schema.transform(batch, ["quant"])[:, 0]

    twins = [Arch(16, (LayerConfig(1, 1, "softmax", q),)) for q in ("fp32", "int8")]  # the smallest models
    flagged = build_latency_predictor("lut", schema, "cpu")
    assert flagged.groups == ("components", "quant", "changes")
    flagged.fit_archs(archs, latency(archs))
    assert flagged.estimator.costs_[-2] == pytest.approx(0.007, rel=1e-3)  # any_int8; the last is layer_changes
    np.testing.assert_allclose(flagged.predict_archs(twins), latency(twins), rtol=1e-3)
    old = LatencyPredictor(get_estimator("lut"), schema, ["components"], "cpu").fit_archs(archs, latency(archs))
    assert np.max(np.abs(old.predict_archs(twins) / latency(twins) - 1)) > 0.02  # cannot carry it
    loaded = LatencyPredictor.load(old.save(tmp_path / "old.safetensors"), space=tiny_space)
    assert loaded.groups == ("components",)
    np.testing.assert_allclose(loaded.predict_archs(twins), old.predict_archs(twins), rtol=1e-12)


def test_layer_changes_carry_the_cost_of_switching_between_layers(tiny_space, tiny_spec):
    """A synthetic table where each change between adjacent layers costs 0.004 ms: the default
    lookup table (with the `changes` group) predicts uniform models exactly, one without it
    predicts them too slow, having spread the cost over the components."""
    from hwprofiles import sample_profile_archs
    from predictors import LatencyPredictor, build_latency_predictor, get_estimator

    schema = FeatureSchema(tiny_space, tiny_spec)
    archs = sample_profile_archs(tiny_space, 150, seed=0)
    assert schema.names(["changes"]) == ["layer_changes"]
    a, b, c = LayerConfig(1, 1, "softmax", "fp32"), LayerConfig(2, 2, "softmax", "fp32"), LayerConfig(1, 1, "linear", "int8")
    pairs = [(a, a), (a, b), (a, b, a), (a, c)]  # heads and FFN ratio are one change (shape); c: attention and quant
    assert schema.transform([Arch(16, p) for p in pairs], ["changes"])[:, 0].tolist() == [0, 1, 2, 2]
    assert schema.names(["quant_changes"]) == ["quant_changes"]
    quant_pairs = [(a, a), (a, c), (a, c, a), (c, c, b)]  # only a change of precision counts
    assert schema.transform([Arch(16, p) for p in quant_pairs], ["quant_changes"])[:, 0].tolist() == [0, 1, 2, 1]
    costs = np.random.default_rng(1).uniform(0.002, 0.02, len(schema.names(["components"])))

    def latency(batch):
        return 0.01 + schema.transform(batch, ["components"]) @ costs + 0.004 * schema.transform(batch, ["changes"])[:, 0]

    uniform = [tiny_space._uniform(e, d, h, r) for e in tiny_space.embed_dims for d in tiny_space.depths
               for h in tiny_space.heads for r in tiny_space.ffn_ratios if d > 1]
    with_changes = build_latency_predictor("lut", schema, "cpu").fit_archs(archs, latency(archs))
    assert with_changes.estimator.costs_[-1] == pytest.approx(0.004, rel=1e-3)
    np.testing.assert_allclose(with_changes.predict_archs(uniform), latency(uniform), rtol=1e-3)
    without = LatencyPredictor(get_estimator("lut"), schema, ["components", "quant"], "cpu").fit_archs(archs, latency(archs))
    assert np.mean(without.predict_archs(uniform) / latency(uniform) - 1) > 0.01
