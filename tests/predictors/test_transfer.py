"""Few-shot adaptation that can re-rank (`transfer`), the subnets it measures, and dominance on measurements."""

from __future__ import annotations

import numpy as np
import pytest

from predictors import (FeatureSchema, LatencyPredictor, TransferPredictor, adaptation_archs, build_latency_predictor,
                        dominated_on_measurements, get_estimator, kendall_tau, source_component_costs, within)
from supernet import Arch

ATTN_RATIO = {"softmax": 0.4, "linear": 1.0, "local": 3.0}  # the new device's cost ratio per attention type
QUANT_RATIO = {"fp32": 1.0, "int8": 4.0}  # int8 cheap on the source, dear on the new device (fake quant)


def _costs(schema: FeatureSchema, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(source, new device) per-component costs in ms; the new ones differ in ratio, not by one factor."""
    names = schema.names(["components"])
    source = rng.uniform(0.01, 0.1, len(names))
    ratio = np.ones(len(names))
    for i, name in enumerate(names):
        parts = name.split(".")
        if parts[0] == "attn":
            ratio[i] = ATTN_RATIO[parts[1]]
        elif parts[0] in ("proj", "ffn"):
            ratio[i] = QUANT_RATIO[parts[-1]]
    return source, 1.5 * source * ratio


@pytest.fixture(scope="module")
def world(tiny_space, tiny_spec):
    """A source predictor fitted on 300 source-device latencies, and the new device's ground truth."""
    schema = FeatureSchema(tiny_space, tiny_spec)
    rng = np.random.default_rng(0)
    archs = list(dict.fromkeys(tiny_space.sample(rng) for _ in range(700)))[:500]
    source_costs, new_costs = _costs(schema, np.random.default_rng(1))
    C = schema.transform(archs, ["components"])
    y_src = 0.05 + C @ source_costs
    y_new = 0.08 + C @ new_costs
    source = build_latency_predictor("lut", schema, "cpu").fit_archs(archs[:300], y_src[:300])
    return schema, archs, y_src, y_new, source, new_costs


def _new_device_blocks(schema: FeatureSchema, new_costs: np.ndarray) -> dict[str, float]:
    """Every block's cost on the new device: its components' costs plus 5 us of call overhead."""
    from hwprofiles import block_keys

    index = {n: i for i, n in enumerate(schema.names(["components"]))}
    out = {}
    for key in block_keys(schema.space):
        e = key.embed_dim
        if key.kind == "layer":
            parts = [f"proj.E{e}.h{key.heads}.{key.quant}", f"attn.{key.attention}.h{key.heads}",
                     f"ffn.E{e}.r{key.ffn_ratio}.{key.quant}"]
            cost = sum(new_costs[index[p]] for p in parts)
        else:
            cost = new_costs[index[f"stem.E{e}"]] / 2
        out[key.name] = float(cost) + 0.005
    return out


def test_ranking_differs_between_the_devices(world):
    _, _, y_src, y_new, _, _ = world
    assert kendall_tau(y_new, y_src) < 0.75  # what a monotone map of the source keeps


def test_transfer_re_ranks_where_a_monotone_map_cannot(world, tmp_path):
    schema, archs, _, y_new, source, new_costs = world
    held_out, truth = archs[300:], y_new[300:]
    picked = adaptation_archs(source, 20, seed=0)
    y_picked = 0.08 + schema.transform(picked, ["components"]) @ new_costs
    calibrated = source.adapt(picked, y_picked, "cpu-2t", method="calibrated")
    blocks = _new_device_blocks(schema, new_costs)
    adapted = source.adapt(picked, y_picked, "cpu-2t", block_costs=blocks)
    residual_only = source.adapt(picked, y_picked, "cpu-2t")
    tau_source = kendall_tau(truth, source.predict_archs(held_out))
    tau_calibrated = kendall_tau(truth, calibrated.predict_archs(held_out))
    assert tau_calibrated == pytest.approx(tau_source)  # monotone: the source's ranking, whatever the fit
    pred = adapted.predict_archs(held_out)
    assert adapted.name == "transfer"
    assert adapted.groups == (*source.groups, "components", "blocks", "quant", "quant_changes")
    assert within(truth, pred, 0.10) >= 0.95 and kendall_tau(truth, pred) >= 0.9
    assert kendall_tau(truth, residual_only.predict_archs(held_out)) > tau_source + 0.1  # the residual alone re-ranks
    assert within(truth, calibrated.predict_archs(held_out), 0.10) < 0.5

    path = adapted.save(tmp_path / "adapted.safetensors")
    loaded = LatencyPredictor.load(path, space=schema.space, device="cpu-2t")
    assert loaded.name == "transfer" and loaded.groups == adapted.groups
    np.testing.assert_allclose(loaded.predict_archs(held_out), pred, rtol=1e-12)
    again = LatencyPredictor.load(calibrated.save(tmp_path / "calibrated.safetensors"), device="cpu-2t")
    np.testing.assert_allclose(again.predict_archs(held_out), calibrated.predict_archs(held_out), rtol=1e-12)


def test_transfer_learns_what_a_model_pays_between_its_layers(world):
    # Blocks are measured one at a time: a model also pays for having int8 layers at all and
    # for each change of precision between adjacent layers, which no block's cost holds.
    schema, archs, _, _, source, new_costs = world

    def measure(batch):
        Z = schema.transform(batch, ["quant", "quant_changes"])
        return 0.08 + schema.transform(batch, ["components"]) @ new_costs + Z @ np.array([0.1, 0.1])

    # the informative subnets are uniform in precision here; random ones bring the changes to learn from
    picked = adaptation_archs(source, 12, seed=0)
    picked += [a for a in archs[:300] if a not in set(picked)][:8]
    assert schema.transform(picked, ["quant_changes"]).max() >= 1
    y_picked = measure(picked)
    blocks = _new_device_blocks(schema, new_costs)
    adapted = source.adapt(picked, y_picked, "cpu-2t", block_costs=blocks)
    assert adapted.estimator.n_between_columns == 2 and np.all(adapted.estimator.deltas_[-2:] > 0)
    held_out, truth = archs[300:], measure(archs[300:])
    pred = adapted.predict_archs(held_out)
    assert within(truth, pred, 0.10) >= 0.95
    blind = TransferPredictor(**{**adapted.estimator.get_params(), "n_between_columns": 0})
    X, X_held = adapted.features(picked)[:, :-2], adapted.features(held_out)[:, :-2]
    assert within(truth, blind.fit(X, y_picked).predict(X_held), 0.10) < within(truth, pred, 0.10) - 0.05
    no_residual = source.adapt(picked, y_picked, "cpu-2t", block_costs=blocks, residual=False)
    assert no_residual.groups == (*source.groups, "blocks")  # the between-layer costs belong to the residual


def test_adapting_an_adapted_predictor_chains(world):
    schema, archs, _, y_new, source, new_costs = world
    first = source.adapt(archs[:20], y_new[:20], "cpu-2t")
    second = first.adapt(archs[20:30], 1.1 * y_new[20:30], "torch-cpu")
    assert second.device.name == "torch-cpu" and second.profile["adapted_from"]["device"]["name"] == "cpu-2t"
    assert np.all(np.isfinite(second.predict_archs(archs[300:320])))
    once = within(y_new[300:], first.predict_archs(archs[300:]), 0.10)
    assert within(1.1 * y_new[300:], second.predict_archs(archs[300:]), 0.10) >= once - 0.1
    with pytest.raises(ValueError, match="adaptation method must be one of"):
        source.adapt(archs[:5], y_new[:5], "cpu", method="magic")


def test_source_component_costs_read_a_lookup_table(world):
    schema, _, _, _, source, _ = world
    costs = source_component_costs(source, seed=0)
    assert costs.shape == (len(schema.names(["components"])),) and np.all(costs >= 0)
    archs = [schema.space.sample(np.random.default_rng(5)) for _ in range(200)]
    explained = schema.transform(archs, ["components"]) @ costs
    offset = source.predict_archs(archs) - explained  # the overhead, up to the ridge's small bias
    assert np.ptp(offset) < 0.05 * np.median(explained)
    assert np.count_nonzero(costs) > np.count_nonzero(source.estimator.costs_)  # collinear parts share the cost


def test_adaptation_archs(world, tiny_space):
    _, _, _, _, source, _ = world
    picked = adaptation_archs(source, 12, seed=3)
    assert len(picked) == 12 == len(set(picked))
    assert picked[:2] == [tiny_space.smallest(), tiny_space.largest()]
    assert picked == adaptation_archs(source, 12, seed=3)
    assert adaptation_archs(source, 1, seed=0) == [tiny_space.smallest()]
    lp = np.log(source.predict_archs(picked))
    everything = np.log(source.predict_archs([tiny_space.sample(np.random.default_rng(9)) for _ in range(300)]))
    assert lp.max() - lp.min() >= 0.9 * (everything.max() - everything.min())  # spans the latency range
    for bad in (0, -1, True):
        with pytest.raises(ValueError, match="positive integer"):
            adaptation_archs(source, bad)


def test_transfer_checks_its_inputs():
    X = np.random.default_rng(0).uniform(1, 2, size=(10, 4))
    y = X.sum(axis=1)
    base = get_estimator("ridge").fit(X[:, :2], y)
    with pytest.raises(ValueError, match="fitted estimator"):
        TransferPredictor(base=get_estimator("ridge"), n_base_columns=2).fit(X[:, :2], y)
    with pytest.raises(ValueError, match="X must have 4 columns"):
        TransferPredictor(base=base, n_base_columns=2, prior_costs=[1.0, 1.0]).fit(X[:, :3], y)
    with pytest.raises(ValueError, match="prior_costs must be"):
        TransferPredictor(base=base, n_base_columns=2, prior_costs=[-1.0, 1.0]).fit(X, y)
    with pytest.raises(ValueError, match="n_base_columns"):
        TransferPredictor(base=base, n_base_columns=0).fit(X, y)
    with pytest.raises(ValueError, match="n_between_columns must be a non-negative integer"):
        TransferPredictor(base=base, n_base_columns=2, n_between_columns=-1).fit(X, y)
    with pytest.raises(ValueError, match=r"X must have 3 columns \(base 2, residual 0, blocks 0, between 1\)"):
        TransferPredictor(base=base, n_base_columns=2, n_between_columns=1).fit(X, y)


def test_dominated_on_measurements():
    latency = [1.0, 2.0, 1.0, 1.5, 1.0]
    size = [10, 10, 10, 20, 10]
    accuracy = [0.90, 0.95, 0.90, 0.905, 0.70]
    se = [0.01, 0.01, 0.01, 0.01, 0.01]
    flagged = dominated_on_measurements(latency, size, accuracy, se)
    # 0 and 2 tie (neither dominates); 1 is slower but better beyond noise; 3 is slower, larger and only
    # within noise more accurate: dominated by 0 and 2; 4 is far less accurate: dominated by 0 and 2.
    assert flagged == [(), (), (), (0, 2), (0, 2)]
    assert dominated_on_measurements(latency, size, accuracy, se, z=0.0)[3] == ()  # strict accuracy: 3 survives
    assert dominated_on_measurements([1.0], [1], [0.5], [0.1]) == [()]
    with pytest.raises(ValueError, match="size_bytes must be a 1-d sequence of 2 values"):
        dominated_on_measurements([1.0, 2.0], [1], [0.5, 0.6], [0.1, 0.1])
    with pytest.raises(ValueError, match="latency_ms must hold finite positive"):
        dominated_on_measurements([0.0, 2.0], [1, 2], [0.5, 0.6], [0.1, 0.1])
    with pytest.raises(ValueError, match="accuracy_se must hold finite non-negative"):
        dominated_on_measurements([1.0, 2.0], [1, 2], [0.5, 0.6], [0.1, -0.1])


def test_a_model_and_its_twin_measured_twice_do_not_dominate_each_other():
    # same architecture exported twice (a front model that is also a baseline): 0.2% apart
    flagged = dominated_on_measurements([0.1000, 0.0998], [5000, 5000], [0.7, 0.7], [0.01, 0.01])
    assert flagged == [(), ()]
    assert dominated_on_measurements([0.1000, 0.0998], [5000, 5000], [0.7, 0.7], [0.01, 0.01],
                                     latency_rtol=0.0) == [(1,), ()]
    # 10% faster at the same size and accuracy does dominate
    assert dominated_on_measurements([0.10, 0.09], [5000, 5000], [0.7, 0.7], [0.01, 0.01]) == [(1,), ()]
    with pytest.raises(ValueError, match=r"latency_rtol must be a number in \[0, 1\), got 1.5"):
        dominated_on_measurements([0.1], [1], [0.5], [0.1], latency_rtol=1.5)
