"""The latency measurement protocol.

For a list of models on one device:
1. load every model (fixed thread count, same seeded input);
2. for each of `rounds` rounds, visit the models in a fresh random order (so slow drift of
   the machine hits all of them alike); per visit: `warmup` untimed runs, then timed runs
   until at least `min_runs` were taken and either `max_runs` or `max_seconds` is reached;
3. pool each model's timed runs over the rounds: median, p10, p90 (ms), raw timings kept;
4. a model whose spread (p90 - p10) / median exceeds `spread_threshold` is measured again
   (`repeats` more times, all rounds); the attempt with the smallest spread is kept, and
   `flagged` is set when even that one stays too wide.

Timing uses `time.perf_counter_ns` around each single run; the loop adds well under a
microsecond per run, small against the 0.05-2 ms of the models measured here.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from ._backends import Runner, load_runner
from supernet import InputSpec

from ._device import DeviceSpec


@dataclass(frozen=True)
class MeasureConfig:
    """How long and how often each model is timed (see the module docstring)."""

    warmup: int = 10
    min_runs: int = 20
    max_runs: int = 200
    max_seconds: float = 0.1  # per model per round
    rounds: int = 3
    spread_threshold: float = 0.2  # (p90 - p10) / median
    repeats: int = 1  # extra attempts for a model whose spread is too wide

    def __post_init__(self) -> None:
        for key in ("warmup", "repeats"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{key} must be a non-negative integer, got {value!r}")
        for key in ("min_runs", "max_runs", "rounds"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if self.max_runs < self.min_runs:
            raise ValueError(f"max_runs must be >= min_runs ({self.min_runs}), got {self.max_runs}")
        if not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be positive, got {self.max_seconds!r}")
        if not self.spread_threshold > 0:
            raise ValueError(f"spread_threshold must be positive, got {self.spread_threshold!r}")

    @classmethod
    def fast(cls) -> "MeasureConfig":
        """A cheap protocol for the main job's default profile (~0.1 s of timing per model)."""
        return cls(warmup=5, min_runs=10, max_runs=100, max_seconds=0.03, rounds=2, repeats=1)

    @classmethod
    def preset(cls, name: str) -> "MeasureConfig":
        presets = {"default": cls(), "fast": cls.fast()}
        if name not in presets:
            raise ValueError(f"unknown measurement preset {name!r}; known: {list(presets)}")
        return presets[name]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Measurement:
    """Latency statistics of one model on one device (milliseconds)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    raw_ms: tuple[float, ...] = field(repr=False)
    attempts: int
    flagged: bool

    @property
    def min_ms(self) -> float:
        """Fastest timed run: the statistic least moved by other work on a shared machine."""
        return min(self.raw_ms)

    @property
    def spread(self) -> float:
        return (self.p90_ms - self.p10_ms) / self.median_ms if self.median_ms > 0 else float("inf")

    @classmethod
    def from_timings(cls, raw_ms: Sequence[float], *, attempts: int, threshold: float) -> "Measurement":
        arr = np.asarray(raw_ms, dtype=np.float64)
        p10, med, p90 = np.percentile(arr, [10, 50, 90])
        spread = (p90 - p10) / med if med > 0 else float("inf")
        return cls(float(med), float(p10), float(p90), tuple(float(v) for v in arr), attempts,
                   bool(spread > threshold))


def _time_one(runner: Runner, config: MeasureConfig, out: list[float]) -> None:
    run, clock = runner.run, time.perf_counter_ns
    for _ in range(config.warmup):
        run()
    budget_ns = int(config.max_seconds * 1e9)
    start = clock()
    n = 0
    while n < config.min_runs or (n < config.max_runs and clock() - start < budget_ns):
        t0 = clock()
        run()
        out.append((clock() - t0) / 1e6)
        n += 1


def _rounds(runners: list[Runner], config: MeasureConfig, rng: np.random.Generator) -> list[list[float]]:
    timings: list[list[float]] = [[] for _ in runners]
    for _ in range(config.rounds):
        for i in rng.permutation(len(runners)):
            _time_one(runners[i], config, timings[i])
    return timings


def measure_models(models: Sequence[Any], device: DeviceSpec, spec: InputSpec,
                   config: MeasureConfig | None = None, *, seed: int = 0) -> list[Measurement]:
    """Measure each model's latency on `device` for inputs shaped by `spec` and the device.

    `models` are ONNX file paths for onnxruntime backends and torch modules for torch
    backends. Results come back in the order of `models`.
    """
    shape = input_shape_for(device, spec)
    return measure_shaped(models, device, [shape] * len(models), config, seed=seed)


def measure_shaped(models: Sequence[Any], device: DeviceSpec, shapes: Sequence[tuple[int, int, int]],
                   config: MeasureConfig | None = None, *, seed: int = 0) -> list[Measurement]:
    """`measure_models` with one explicit input shape per model (blocks take other inputs)."""
    config = config or MeasureConfig()
    if len(shapes) != len(models):
        raise ValueError(f"need one input shape per model, got {len(shapes)} for {len(models)} models")
    if not models:
        return []
    rng = np.random.default_rng(seed)
    runners: list[Runner] = []
    try:
        for m, shape in zip(models, shapes):
            runners.append(load_runner(device.backend, m, threads=device.threads, input_shape=tuple(shape),
                                       seed=seed))
        timings = _rounds(runners, config, rng)
        results = [Measurement.from_timings(t, attempts=1, threshold=config.spread_threshold) for t in timings]
        for attempt in range(2, config.repeats + 2):
            wide = [i for i, m in enumerate(results) if m.flagged]
            if not wide:
                break
            again = _rounds([runners[i] for i in wide], config, rng)
            for i, t in zip(wide, again):
                new = Measurement.from_timings(t, attempts=attempt, threshold=config.spread_threshold)
                best = new if new.spread < results[i].spread else results[i]
                results[i] = Measurement(best.median_ms, best.p10_ms, best.p90_ms, best.raw_ms, attempt,
                                         best.flagged)
    finally:
        for r in runners:
            r.close()
    return results


def input_shape_for(device: DeviceSpec, spec: InputSpec) -> tuple[int, int, int]:
    """(batch, tokens, features) the device is measured with."""
    return (device.batch, device.seq_len or spec.seq_len, spec.in_features)
