"""Measuring models on a device: load them with the device's backend, then run the protocol.

The protocol itself (timing loop, interleaved random order, statistics, flagging) lives in
`hwprofiles._protocol`, the file profiling kits ship; this module adds what needs hwnas:
devices, input specs and the backend registry.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence, TypeVar

from supernet import InputSpec

from ._backends import Runner, load_runner
from ._device import DeviceSpec
from ._protocol import Gate, MeasureConfig, Measurement, chunks_in_passes, measure_runs

T = TypeVar("T")


def measure_models(models: Sequence[Any], device: DeviceSpec, spec: InputSpec,
                   config: MeasureConfig | None = None, *, seed: int = 0, gate: Gate | None = None
                   ) -> list[Measurement]:
    """Measure each model's latency on `device` for inputs shaped by `spec` and the device.

    `models` are ONNX file paths for onnxruntime backends and torch modules for torch
    backends. Results come back in the order of `models`. `gate`: see `measure_shaped`.
    """
    shape = input_shape_for(device, spec)
    return measure_shaped(models, device, [shape] * len(models), config, seed=seed, gate=gate)


def measure_in_passes(models: Sequence[Any], device: DeviceSpec, spec: InputSpec, config: MeasureConfig, *,
                      seed: int = 0, between: Callable[[], T]) -> tuple[list[list[Measurement]], T]:
    """`measure_models` in `config.passes_for(device.threads)` passes, returned pass by pass
    (pool them with `Measurement.pooled`), and `between()`, work that must not run beside a
    measurement, called once right after the first pass: it fills the gap the protocol leaves
    before the second (at least `config.pass_gap` seconds from start to start). One slow-phase
    gate judges every pass, so a pass that falls wholly inside a slow phase is caught against
    the others. Returns (the passes, what `between()` returned)."""
    single, gate, passes = config.one_pass(), Gate(), []
    bounds = [(0, len(models))]
    try:
        for p, _, _ in chunks_in_passes(bounds, config.passes_for(device.threads), config.pass_gap):
            passes.append(measure_models(models, device, spec, single, seed=seed + p, gate=gate))
            if p == 0:
                done = between()
    finally:
        gate.close()
    return passes, done


@contextmanager
def _torch_threads_parked() -> Iterator[None]:
    """One torch thread while measuring, then the caller's count again.

    A process that trained or evaluated with several torch threads keeps their OpenMP pool;
    measured right after such work, single-threaded onnxruntime runs came out up to 1.5x slower
    on a 2-core machine (a default run's export had 5 of 26 models off by 18-33%). With torch at
    one thread and a short pause first, repeated measurements agreed within 2% again.
    """
    torch = sys.modules.get("torch")  # only when the caller has imported it
    threads = torch.get_num_threads() if torch is not None else 1
    if threads > 1:
        torch.set_num_threads(1)
        time.sleep(0.1)
    try:
        yield
    finally:
        if threads > 1:
            torch.set_num_threads(threads)


def measure_shaped(models: Sequence[Any], device: DeviceSpec, shapes: Sequence[tuple[int, int, int]],
                   config: MeasureConfig | None = None, *, seed: int = 0, gate: Gate | None = None
                   ) -> list[Measurement]:
    """`measure_models` with one explicit input shape per model (blocks take other inputs).

    `gate`: a slow-phase gate shared with other calls (the chunks of one profile). When this call
    chooses its reference, that model stays loaded after the call, and `gate.close()` unloads it.
    """
    config = config or MeasureConfig()
    if len(shapes) != len(models):
        raise ValueError(f"need one input shape per model, got {len(shapes)} for {len(models)} models")
    if not models:
        return []
    runners: list[Runner] = []
    with _torch_threads_parked():  # torch backends then set the device's own thread count
        try:
            for m, shape in zip(models, shapes):
                runners.append(load_runner(device.backend, m, threads=device.threads, input_shape=tuple(shape),
                                           seed=seed))
            return measure_runs([r.run for r in runners], config, seed=seed, threads=device.threads, gate=gate)
        finally:
            for r in runners:
                if gate is not None and r.run is gate.reference:
                    gate.close = r.close
                else:
                    r.close()


def input_shape_for(device: DeviceSpec, spec: InputSpec) -> tuple[int, int, int]:
    """(batch, tokens, features) the device is measured with."""
    return (device.batch, device.seq_len or spec.seq_len, spec.in_features)
