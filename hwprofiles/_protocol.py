"""The latency measurement protocol and the environment fingerprint, in one portable file.

This module imports only the standard library and numpy (onnxruntime and psutil lazily,
where they are used), so profiling kits ship it verbatim (as ``hwnas_protocol.py``) and a
target device measures with exactly the code hwnas measures with.

For a list of loaded models (zero-argument callables that run one inference each):
1. for each of `rounds` rounds, visit the models in a fresh random order (so slow drift of
   the machine hits all of them alike); per visit: `warmup` untimed runs, then timed runs
   until at least `min_runs` were taken and either `max_runs` or `max_seconds` is reached;
2. slow-phase gate: a shared machine has phases of seconds in which everything runs 25-60%
   slower. The model that ran fastest in a pre-pass is the reference; after every visit it
   runs `probe_runs` more times, and a round whose fastest reference run is more than `gate`
   slower than the fastest reference run of the whole measurement is measured again, after a
   pause of `gate_pause` seconds (at most `gate_retries` passes; a round still slow then is
   kept, and counted in `Measurement.slow_rounds`). A list measured in chunks (a profile's
   subnets) shares one gate: every chunk is judged against the fastest probe of all of them;
3. pool each model's timed runs over the rounds: median, p10, p90 (ms), raw timings kept;
4. a model whose spread (p90 - p10) / median exceeds `spread_threshold` is measured again
   (`repeats` more times, all rounds); the attempt with the smallest spread is kept, and
   `flagged` is set when even that one stays too wide;
5. passes (`MeasureConfig.passes_for`): the whole list of models (a whole profile, a whole
   export) is measured by steps 1-4 once per pass, the passes one after another and at least
   `pass_gap` seconds apart, and each model's timed runs are pooled over them. Several intra-op
   threads on a shared 2-core VM have slow states of 15-80% that last seconds to minutes and hit
   models unevenly (one model 15% slow for minutes while the models timed beside it are not), so
   no reference probe sees them: on cpu-2t, 100 subnets measured once each six times over three
   and a half hours agreed pairwise only 72-98% within ±10% (45-93% within ±5%), while two
   measurements in three passes agreed 100% within ±10% and 99% within ±5%
   (benchmarks/results/measure_passes.md). A multi-thread device is therefore measured in three
   full passes by default (three times the runs, plus the gaps on a short list); one thread
   keeps one pass, since its slow phases hit every model alike, which the gate catches. A
   profile's blocks take four passes of a third of the rounds each, back to back, without the
   spread re-measurement; on one thread, one pass over all blocks at once of four times the
   rounds, each visit a quarter as long, also without it (`hwprofiles.profile_device`).

Timing uses `time.perf_counter_ns` around each single run; the loop adds well under a
microsecond per run, small against the 0.05-2 ms of the models measured here.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from typing import Any, Callable, Iterator, Sequence

import numpy as np

__all__ = [
    "Gate", "MeasureConfig", "Measurement", "PRESETS", "chunk_bounds", "chunks_in_passes", "compare_fingerprints",
    "example_input", "fingerprint", "interleaved_rounds", "measure_runs", "ort_runner", "time_runs",
]

Clock = Callable[[], int]  # nanoseconds, monotonic
PRESETS = ("default", "fast")  # MeasureConfig.preset's names: MeasureConfig() and MeasureConfig.fast()


# ----------------------------------------------------------------------------- protocol
@dataclass(frozen=True)
class MeasureConfig:
    """How long and how often each model is timed (see the module docstring)."""

    # Six short rounds rather than three long ones (same run budget), with the slow-phase gate: on
    # the development VM 100% of fastest-run figures within ±10% of the model's median over 20
    # repetitions, against 96% for 6 rounds without the gate and 89.5% for 3 x 0.1 s
    # (benchmarks/results/measure_protocol.md).
    warmup: int = 5
    min_runs: int = 10
    max_runs: int = 100
    max_seconds: float = 0.05  # per model per round
    rounds: int = 6
    spread_threshold: float = 0.2  # (p90 - p10) / median
    repeats: int = 1  # extra attempts for a model whose spread is too wide
    gate: float = 0.15  # a round whose reference ran this much slower than its fastest is redone; 0: off
    gate_retries: int = 3  # passes over the slow rounds
    gate_pause: float = 1.0  # seconds to wait before each pass
    probe_runs: int = 5  # reference runs after each visit
    passes: int | None = None  # passes over the whole list (step 5); None: `passes_for` decides
    pass_gap: float = 60.0  # least seconds from the start of one pass to the start of the next

    def __post_init__(self) -> None:
        for key in ("warmup", "repeats", "gate_retries", "probe_runs"):
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
        for key in ("gate", "gate_pause", "pass_gap"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{key} must be a non-negative number, got {value!r}")
        if self.passes is not None and (isinstance(self.passes, bool) or not isinstance(self.passes, int)
                                        or self.passes <= 0):
            raise ValueError(f"passes must be a positive integer or None (three for several threads, else one), "
                             f"got {self.passes!r}")

    def passes_for(self, threads: int) -> int:
        """Passes for a device running `threads` intra-op threads: `passes` when set, else three
        for several threads and one for a single thread (module docstring, step 5)."""
        if self.passes is not None:
            return self.passes
        return 3 if threads > 1 else 1

    def one_pass(self) -> "MeasureConfig":
        """This protocol measured in a single pass (what each pass of several runs)."""
        return replace(self, passes=1)

    @classmethod
    def fast(cls) -> "MeasureConfig":
        """A cheap protocol for the main job's default profile (~0.1 s of timing per model)."""
        return cls(warmup=5, min_runs=10, max_runs=100, max_seconds=0.03, rounds=2, repeats=1)

    @classmethod
    def preset(cls, name: str) -> "MeasureConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown measurement preset {name!r}; known: {list(PRESETS)}")
        return cls.fast() if name == "fast" else cls()

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
    slow_rounds: int = 0  # rounds the slow-phase gate found slow even after its retries

    @property
    def min_ms(self) -> float:
        """Fastest timed run: the statistic least moved by other work on a shared machine."""
        return min(self.raw_ms)

    @property
    def spread(self) -> float:
        return (self.p90_ms - self.p10_ms) / self.median_ms if self.median_ms > 0 else float("inf")

    @classmethod
    def from_timings(cls, raw_ms: Sequence[float], *, attempts: int, threshold: float,
                     slow_rounds: int = 0) -> "Measurement":
        """Statistics of one attempt's timed runs (ms); flagged when the spread exceeds `threshold`."""
        arr = np.asarray(raw_ms, dtype=np.float64)
        p10, med, p90 = np.percentile(arr, [10, 50, 90])
        spread = (p90 - p10) / med if med > 0 else float("inf")
        return cls(float(med), float(p10), float(p90), tuple(float(v) for v in arr), attempts,
                   bool(spread > threshold), slow_rounds)

    @classmethod
    def pooled(cls, parts: Sequence["Measurement"], *, threshold: float) -> "Measurement":
        """One measurement from the passes of a model (step 5): their timed runs together."""
        return cls.from_timings([t for m in parts for t in m.raw_ms], attempts=max(m.attempts for m in parts),
                                threshold=threshold, slow_rounds=sum(m.slow_rounds for m in parts))

    def to_dict(self) -> dict[str, Any]:
        """The statistics as stored in profiles and kit results (spread included, raw timings as a list)."""
        return {"median_ms": self.median_ms, "p10_ms": self.p10_ms, "p90_ms": self.p90_ms, "spread": self.spread,
                "raw_ms": list(self.raw_ms), "attempts": self.attempts, "flagged": self.flagged}


def time_runs(run: Callable[[], Any], config: MeasureConfig, out: list[float], *,
              clock: Clock = time.perf_counter_ns) -> None:
    """One visit of one model: `warmup` untimed runs, then timed runs (ms) appended to `out`.

    Timed runs continue while fewer than `min_runs` were taken, or while fewer than
    `max_runs` were taken and the visit has lasted less than `max_seconds`.
    """
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


def _fastest_run(run: Callable[[], Any], n: int, clock: Clock) -> float:
    """The fastest of `n` timed runs (ms); inf when n is 0."""
    best = float("inf")
    for _ in range(n):
        t0 = clock()
        run()
        best = min(best, (clock() - t0) / 1e6)
    return best


def _round(runs: Sequence[Callable[[], Any]], config: MeasureConfig, rng: np.random.Generator,
           reference: Callable[[], Any] | None, clock: Clock) -> tuple[list[list[float]], float]:
    """One round: every model visited once in a fresh random order; its timings per model and the
    fastest reference run after any of its visits (inf without a reference)."""
    timings: list[list[float]] = [[] for _ in runs]
    probe = float("inf")
    for i in rng.permutation(len(runs)):
        time_runs(runs[i], config, timings[i], clock=clock)
        if reference is not None:
            probe = min(probe, _fastest_run(reference, config.probe_runs, clock))
    return timings, probe


@dataclass
class Gate:
    """The slow-phase gate's reference model and the fastest of its probes so far. One gate
    serves every pass of a measurement, so a re-measured subset (a few flagged models) is judged
    against the first pass's fastest probe, not against itself: a subset short enough to fall
    wholly inside a slow phase would otherwise pass as fast. A caller measuring a long list in
    chunks passes one `Gate()` to every chunk for the same reason: its reference is chosen by the
    first chunk (the fastest model there) and probed after every visit of every later one.
    `probes` holds the fastest probe of every round it kept, in order, so a caller can judge a
    chunk again once later chunks have lowered `fastest`. `close` frees the reference's
    resources once the gate is done with (set by whoever loaded it)."""

    reference: Callable[[], Any] | None = None
    probes: list[float] = field(default_factory=list)
    close: Callable[[], None] = lambda: None

    @property
    def fastest(self) -> float:
        """The fastest probe of every round kept so far (inf before the first)."""
        return min(self.probes, default=float("inf"))


def interleaved_rounds(runs: Sequence[Callable[[], Any]], config: MeasureConfig, rng: np.random.Generator, *,
                       clock: Clock = time.perf_counter_ns, sleep: Callable[[float], Any] = time.sleep,
                       gate: Gate | None = None) -> tuple[list[list[float]], int, Gate | None]:
    """`config.rounds` rounds, each visiting every model once in a fresh random order, slow rounds
    measured again (module docstring, step 2): timings (ms) per model, the number of rounds
    still slow after the gate's retries, and the gate (chosen here when none is given, its
    reference chosen when it has none; None when `config` turns the gate off)."""
    if config.gate <= 0 or config.probe_runs == 0 or not runs:
        gate = None
    elif gate is None or gate.reference is None:
        gate = gate or Gate()
        gate.reference = runs[int(np.argmin([_fastest_run(r, 3, clock) for r in runs]))]
    reference = gate.reference if gate is not None else None
    rounds = [_round(runs, config, rng, reference, clock) for _ in range(config.rounds)]
    slow: list[int] = []
    if gate is not None:
        for attempt in range(config.gate_retries + 1):
            fastest = min(gate.fastest, *(probe for _, probe in rounds))
            slow = [r for r, (_, probe) in enumerate(rounds) if probe > fastest * (1 + config.gate)]
            if not slow or attempt == config.gate_retries:
                break
            sleep(config.gate_pause)
            for r in slow:
                rounds[r] = _round(runs, config, rng, reference, clock)
        gate.probes += [probe for _, probe in rounds]
    timings: list[list[float]] = [[] for _ in runs]
    for per_model, _ in rounds:
        for i, t in enumerate(per_model):
            timings[i] += t
    return timings, len(slow), gate


def _one_pass(runs: Sequence[Callable[[], Any]], config: MeasureConfig, rng: np.random.Generator, gate: Gate | None,
              clock: Clock, sleep: Callable[[float], Any]) -> tuple[list[Measurement], Gate | None]:
    """Steps 1-4 of the protocol over loaded models, judged by `gate` (chosen here when None)."""
    threshold = config.spread_threshold
    timings, slow, gate = interleaved_rounds(runs, config, rng, clock=clock, sleep=sleep, gate=gate)
    results = [Measurement.from_timings(t, attempts=1, threshold=threshold, slow_rounds=slow) for t in timings]
    for attempt in range(2, config.repeats + 2):
        wide = [i for i, m in enumerate(results) if m.flagged]
        if not wide:
            break
        again, slow, _ = interleaved_rounds([runs[i] for i in wide], config, rng, clock=clock, sleep=sleep,
                                            gate=gate)
        for i, t in zip(wide, again):
            new = Measurement.from_timings(t, attempts=attempt, threshold=threshold, slow_rounds=slow)
            best = new if new.spread < results[i].spread else results[i]
            results[i] = replace(best, attempts=attempt)
    return results, gate


def chunk_bounds(n: int, size: int, *, equal: bool = False) -> list[tuple[int, int]]:
    """(start, end) of chunks of at most `size` of n items; `equal`: all of (nearly) one size."""
    if not equal:
        return [(i, min(i + size, n)) for i in range(0, n, size)]
    return [(int(idx[0]), int(idx[-1]) + 1) for idx in np.array_split(np.arange(n), -(-n // size))]


def chunks_in_passes(bounds: Sequence[tuple[int, int]], passes: int, gap: float, *,
                     now: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], Any] = time.sleep) -> Iterator[tuple[int, int, int]]:
    """(pass, start, end) of every chunk `bounds` (start, end) of a list, once per pass, the passes
    one after another and at least `gap` seconds apart from start to start (step 5; `now`: seconds)."""
    started = 0.0
    for p in range(passes):
        if p and now() - started < gap:
            sleep(gap - (now() - started))
        started = now()
        for start, end in bounds:
            yield p, start, end


def measure_runs(runs: Sequence[Callable[[], Any]], config: MeasureConfig, *, seed: int | np.random.Generator = 0,
                 clock: Clock = time.perf_counter_ns, sleep: Callable[[float], Any] = time.sleep,
                 threads: int = 1, gate: Gate | None = None) -> list[Measurement]:
    """The whole protocol (module docstring) over loaded models run with `threads` intra-op threads,
    in `config.passes_for(threads)` passes judged by one gate (`gate`, shared with the caller's
    other chunks, or one chosen here); results in the order of `runs`."""
    if not runs:
        return []
    rng = np.random.default_rng(seed)
    passes, single = [], config.one_pass()
    for _ in chunks_in_passes([(0, len(runs))], config.passes_for(threads), config.pass_gap,
                              now=lambda: clock() / 1e9, sleep=sleep):
        results, gate = _one_pass(runs, single, rng, gate, clock, sleep)
        passes.append(results)
    if len(passes) == 1:
        return passes[0]
    return [Measurement.pooled(parts, threshold=config.spread_threshold) for parts in zip(*passes)]


# ----------------------------------------------------------------------------- onnxruntime
def example_input(shape: Sequence[int], seed: int) -> np.ndarray:
    """The seeded float32 input every model of a measurement is fed."""
    return np.random.default_rng(seed).standard_normal(tuple(shape)).astype(np.float32)


def ort_runner(path: str, *, threads: int, provider: str, input_shape: Sequence[int], seed: int = 0
               ) -> Callable[[], Any]:
    """An onnxruntime session of the ONNX file `path` as a zero-argument callable running one inference.

    Fixed threads (`threads` intra-op, one inter-op, sequential execution), all graph
    optimisations, input from `example_input(input_shape, seed)`.
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - a declared dependency of hwnas and of kits
        raise ImportError("onnxruntime backends need onnxruntime: pip install onnxruntime") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=[provider])
    feed = {session.get_inputs()[0].name: example_input(input_shape, seed)}
    run = session.run
    return lambda: run(None, feed)


# ----------------------------------------------------------------------------- fingerprint
# Keys whose difference makes latencies incomparable (memory size and hostname do not).
_COMPARED = ("cpu_model", "cpu_count", "physical_cores", "gpu_name", "gpu_driver", "os", "machine",
             "python", "torch", "onnxruntime", "numpy")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_and_physical_cores() -> tuple[int | None, int | None]:
    """(memory bytes, physical cores) from psutil; without psutil (kits), memory from sysconf."""
    try:
        import psutil
    except ImportError:
        try:
            return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")), None
        except (ValueError, OSError, AttributeError):
            return None, None
    return int(psutil.virtual_memory().total), psutil.cpu_count(logical=False)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _gpu() -> tuple[str | None, str | None]:
    """(GPU name, driver version) from nvidia-smi when present; no torch import needed."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None, None
    try:
        out = subprocess.run([exe, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None, None
    if not out:
        return None, None
    name, _, driver = out.splitlines()[0].partition(",")
    return name.strip(), driver.strip()


def fingerprint() -> dict[str, Any]:
    """CPU model, cores, memory, GPU and driver, OS and library versions of this machine."""
    memory, physical = _memory_and_physical_cores()
    gpu_name, gpu_driver = _gpu()
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "physical_cores": physical,
        "memory_bytes": memory,
        "gpu_name": gpu_name,
        "gpu_driver": gpu_driver,
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "hostname": platform.node(),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "onnxruntime": _version("onnxruntime") or _version("onnxruntime-gpu"),
        "numpy": _version("numpy"),
    }


def compare_fingerprints(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Differences that matter for latency, one line each ("cpu_model: 'X' != 'Y'")."""
    return [f"{key}: {a.get(key)!r} != {b.get(key)!r}" for key in _COMPARED if a.get(key) != b.get(key)]
