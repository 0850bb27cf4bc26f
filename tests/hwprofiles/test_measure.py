"""The measurement protocol: statistics, interleaved order, flagging of wide spreads.

Custom backends registered here are real workloads (they sleep or record), not stand-ins
for the protocol under test.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from hwprofiles import DeviceSpec, MeasureConfig, Measurement, Runner, measure_models, register_backend
from supernet import Supernet, export_onnx

CALLS: list[int] = []


def _recording(model, threads, shape, seed):
    return Runner(run=lambda: CALLS.append(model))


def _sleeping(model, threads, shape, seed):
    """model = (base seconds, jitter seconds): each run sleeps base + uniform(0, jitter)."""
    base, jitter = model
    rng = np.random.default_rng(seed)
    return Runner(run=lambda: time.sleep(base + jitter * rng.random()))


register_backend("test-recording", _recording)
register_backend("test-sleep", _sleeping)


def test_statistics_from_timings():
    raw = list(np.linspace(1.0, 2.0, 11))
    m = Measurement.from_timings(raw, attempts=1, threshold=0.2)
    assert m.median_ms == pytest.approx(1.5)
    assert m.p10_ms == pytest.approx(np.percentile(raw, 10)) and m.p90_ms == pytest.approx(np.percentile(raw, 90))
    assert m.raw_ms == tuple(raw)
    assert m.spread == pytest.approx((m.p90_ms - m.p10_ms) / 1.5)
    assert m.flagged  # spread 0.53 > 0.2
    assert not Measurement.from_timings([1.0] * 5, attempts=1, threshold=0.2).flagged


def test_interleaved_random_order_over_rounds(tiny_spec):
    device = DeviceSpec("rec", "test-recording")
    config = MeasureConfig(warmup=0, min_runs=1, max_runs=1, rounds=5, repeats=0, gate=0)  # no reference runs
    CALLS.clear()
    results = measure_models([0, 1, 2, 3], device, tiny_spec, config, seed=3)
    assert len(results) == 4 and all(len(m.raw_ms) == 5 for m in results)
    rounds = [tuple(CALLS[i : i + 4]) for i in range(0, 20, 4)]
    assert all(sorted(r) == [0, 1, 2, 3] for r in rounds)  # every model once per round
    assert len(set(rounds)) > 1  # the order changes between rounds
    CALLS.clear()
    measure_models([0, 1, 2, 3], device, tiny_spec, config, seed=3)
    assert [tuple(CALLS[i : i + 4]) for i in range(0, 20, 4)] == rounds  # seeded


def test_timed_runs_bounded_by_count():
    config = MeasureConfig(warmup=2, min_runs=3, max_runs=7, max_seconds=10.0, rounds=2, repeats=0, gate=0)
    CALLS.clear()
    from supernet import InputSpec

    m = measure_models(["a"], DeviceSpec("rec", "test-recording"), InputSpec(4, 2, 2), config)[0]
    assert len(m.raw_ms) == 14 and len(CALLS) == 2 * (2 + 7)


def test_noisy_measurement_is_repeated_and_flagged(tiny_spec):
    device = DeviceSpec("sleepy", "test-sleep")
    config = MeasureConfig(warmup=1, min_runs=10, max_runs=10, rounds=2, spread_threshold=0.2, repeats=2)
    noisy, steady = measure_models([(0.0005, 0.004), (0.003, 0.0)], device, tiny_spec, config, seed=0)
    assert noisy.flagged and noisy.attempts == 3  # measured three times, still too wide
    assert noisy.spread > 0.2
    loose = MeasureConfig(warmup=1, min_runs=10, max_runs=10, rounds=2, spread_threshold=5.0, repeats=2)
    steady = measure_models([(0.003, 0.0)], device, tiny_spec, loose, seed=0)[0]
    assert not steady.flagged and steady.attempts == 1 and steady.median_ms >= 3.0


def test_real_onnxruntime_measurement(tmp_path, tiny_space, tiny_spec):
    net = Supernet(tiny_space, tiny_spec, seed=0)
    paths = []
    for i, arch in enumerate([tiny_space.smallest(), tiny_space.largest()]):
        paths.append(tmp_path / f"{i}.onnx")
        export_onnx(net.extract(arch), paths[-1], check=False)
    config = MeasureConfig(warmup=2, min_runs=5, max_runs=20, max_seconds=0.01, rounds=2, repeats=0)
    results = measure_models([str(p) for p in paths], DeviceSpec("cpu", "ort-cpu"), tiny_spec, config, seed=1)
    for m in results:
        assert 0 < m.p10_ms <= m.median_ms <= m.p90_ms
        assert 10 <= len(m.raw_ms) <= 40


def test_torch_backend_measures_modules(tiny_space, tiny_spec):
    net = Supernet(tiny_space, tiny_spec, seed=0)
    config = MeasureConfig(warmup=1, min_runs=3, max_runs=3, rounds=1, repeats=0)
    m = measure_models([net.extract(tiny_space.smallest())], DeviceSpec("t", "torch-cpu"), tiny_spec, config)[0]
    assert m.median_ms > 0 and len(m.raw_ms) == 3
    with pytest.raises(ValueError, match="ONNX file paths"):
        measure_models([net.extract(tiny_space.smallest())], DeviceSpec("cpu", "ort-cpu"), tiny_spec, config)


@pytest.mark.parametrize("kwargs", [{"warmup": -1}, {"min_runs": 0}, {"max_runs": 2, "min_runs": 5},
                                    {"max_seconds": 0}, {"spread_threshold": -1.0}, {"rounds": 1.5}])
def test_bad_config(kwargs):
    with pytest.raises(ValueError):
        MeasureConfig(**kwargs)


def test_presets():
    assert MeasureConfig.preset("fast") == MeasureConfig.fast()
    assert MeasureConfig.fast().rounds <= MeasureConfig().rounds
    with pytest.raises(ValueError, match="known: \\['default', 'fast'\\]"):
        MeasureConfig.preset("slowest")


def test_measure_in_passes_pools_nothing_itself_and_runs_between_once_after_the_first_pass(tiny_spec):
    """Each pass visits every model in every round; `between` runs once, after the first pass and
    before the second; one gate judges both passes (its reference loaded once, for the first)."""
    from hwprofiles import measure_in_passes

    device = DeviceSpec("rec", "test-recording")
    config = MeasureConfig(warmup=0, min_runs=1, max_runs=1, rounds=3, repeats=0, probe_runs=1, passes=2,
                           pass_gap=0, gate_retries=0)  # slow rounds are judged but not redone: fixed counts
    CALLS.clear()
    marks: list[int] = []
    passes, done = measure_in_passes([0, 1, 2], device, tiny_spec, config, seed=0,
                                     between=lambda: marks.append(len(CALLS)) or "scored")
    assert done == "scored" and len(passes) == 2
    assert all(len(p) == 3 and all(len(m.raw_ms) == 3 for m in p) for p in passes)
    assert len(marks) == 1 and 0 < marks[0] < len(CALLS)  # between the passes
    first, second = CALLS[: marks[0]], CALLS[marks[0]:]
    assert sorted(set(first)) == sorted(set(second)) == [0, 1, 2]
    # the gate's pre-pass (3 runs of each model, to choose the reference) happens in the first pass only
    assert len(first) == 3 * 3 + 3 * 3 * 2 and len(second) == 3 * 3 * 2
    pooled = Measurement.pooled(list(zip(*passes))[0], threshold=config.spread_threshold)
    assert len(pooled.raw_ms) == 6
    one, _ = measure_in_passes([0, 1], device, tiny_spec, config.one_pass(), between=lambda: None)
    assert len(one) == 1  # a one-pass protocol: `between` still runs, after it
