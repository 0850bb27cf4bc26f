"""Device profiles: measured subnets (and optionally blocks) of one space on one device.

A profile folder holds
- ``profile.json``: schema version, device spec, environment fingerprint, space, input
  spec, seed, measurement protocol, profiling time, repeatability, and ``slow_chunks``: chunks
  of subnets measured again after a slow phase (see `profile_device`);
- ``measurements.parquet``: one row per subnet (arch JSON, genome, median/p10/p90 ms,
  spread, raw timings, attempts, flagged);
- ``blocks.parquet`` (optional): the same statistics per distinct block;
- ``repeat.parquet``: a second, independent measurement of a subset of the subnets.

Every file is written atomically (temp file, then rename) after each chunk of models, so
a profile killed midway resumes without re-measuring what is stored.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
import warnings
from contextlib import closing, contextmanager, nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from supernet import Arch, InputSpec, SearchSpace, atomic_write

from ._backends import backend_unavailable_reason
from ._device import DeviceSpec, get_device
from ._measure import measure_shaped
from ._models import BlockKey, ExportHelper, block_keys, block_model_for, deploy_spec, model_for
from ._protocol import (Gate, MeasureConfig, Measurement, chunk_bounds, chunks_in_passes, compare_fingerprints,
                        fingerprint)
from ._sampling import sample_profile_archs

SCHEMA_VERSION = 1
META, TABLE, BLOCKS, REPEAT = "profile.json", "measurements.parquet", "blocks.parquet", "repeat.parquet"
_BLOCK_PASSES = 4  # passes over the blocks of a multi-thread device (profile_device)
_BLOCK_ROUND_SHARE = 3  # each of them with a third of the subnets' rounds (two of the default six)
_BLOCK_VISIT_SPLIT = 4  # one thread: 4x the subnets' rounds, each visit 1/4 of a subnet visit's runs and seconds
_BLOCK_REMEASURE = False  # one thread: re-measure a block whose spread is wide (benchmarks/fresh_blocks.py)
_SHARED_GATE = True  # one slow-phase gate for every chunk of a profile's subnets (benchmarks/chunk_gate.py)
TARGETS = ("median_ms", "min_ms")  # statistics a predictor can be fitted to
# The statistic fitted when none is named: the fastest timed run. On shared or virtual
# machines the median drifts with the neighbours' load while the fastest run repeats
# (see benchmarks/results/latency_predictors.md).
DEFAULT_TARGET = "min_ms"
STAT_COLUMNS = ["median_ms", "p10_ms", "p90_ms", "spread", "raw_ms", "attempts", "flagged"]
TABLE_COLUMNS = ["arch", "genome", "embed_dim", "depth", *STAT_COLUMNS]


@dataclass(frozen=True)
class Repeatability:
    """Agreement of two independent measurements of the same subnets: the predictor ceiling."""

    n: int
    within_5: float
    within_10: float
    mape: float

    @classmethod
    def between(cls, first: np.ndarray, second: np.ndarray) -> "Repeatability":
        rel = np.abs(np.asarray(second) - np.asarray(first)) / np.asarray(first)
        return cls(int(rel.size), float(np.mean(rel <= 0.05)), float(np.mean(rel <= 0.10)), float(100 * rel.mean()))

    @property
    def within_10pct(self) -> float:
        return self.within_10

    @property
    def within_5pct(self) -> float:
        return self.within_5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------- files
def write_json_atomic(path: Path, data: Any) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, sort_keys=True)))


def write_parquet_atomic(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def _stat_row(m: Measurement) -> dict[str, Any]:
    return m.to_dict()  # the same statistics a kit writes into its results file


def arch_row(arch: Arch, space: SearchSpace, m: Measurement) -> dict[str, Any]:
    return {"arch": arch.to_json(), "genome": space.encode(arch).tolist(), "embed_dim": arch.embed_dim,
            "depth": arch.depth, **_stat_row(m)}


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------------- Profile
class Profile:
    """A stored device profile (see the module docstring); read it with `Profile.load`."""

    def __init__(self, path: Path, meta: dict[str, Any], table: pd.DataFrame,
                 blocks: pd.DataFrame | None = None, repeat: pd.DataFrame | None = None) -> None:
        self.path, self.meta, self.table, self.blocks, self.repeat = Path(path), meta, table, blocks, repeat

    @property
    def device(self) -> DeviceSpec:
        return DeviceSpec.from_dict(self.meta["device"])

    @property
    def fingerprint(self) -> dict[str, Any]:
        return self.meta["fingerprint"]

    @property
    def space(self) -> SearchSpace:
        return SearchSpace.from_dict(self.meta["space"])

    @property
    def spec(self) -> InputSpec:
        return InputSpec(**self.meta["spec"])

    @property
    def remote(self) -> bool:
        """True for profiles measured elsewhere (a profiling kit), not on this machine."""
        return bool(self.meta.get("remote", False))

    @property
    def measure_config(self) -> MeasureConfig:
        return MeasureConfig(**self.meta["measure_config"])

    @property
    def profiling_seconds(self) -> float:
        return float(self.meta.get("profiling_seconds", 0.0))

    def archs(self) -> list[Arch]:
        return [Arch.from_json(s) for s in self.table["arch"]]

    @property
    def latency_ms(self) -> np.ndarray:
        """Median latency (ms) of each subnet, in table order."""
        return self.latency("median_ms")

    def latency(self, stat: str = "median_ms") -> np.ndarray:
        """One statistic per subnet: ``median_ms`` or ``min_ms`` (fastest run, from the raw timings)."""
        if stat not in TARGETS:
            raise ValueError(f"latency statistic must be one of {TARGETS}, got {stat!r}")
        if stat == "min_ms":
            return np.array([min(r) for r in self.table["raw_ms"]], dtype=np.float64)
        return self.table["median_ms"].to_numpy(dtype=np.float64)

    @property
    def repeatability(self) -> Repeatability | None:
        """Agreement of the two independent measurements of the median (the predictor ceiling)."""
        return self.repeatability_of("median_ms")

    def repeatability_of(self, stat: str = "median_ms") -> Repeatability | None:
        column = f"repeat_{stat}"
        if self.repeat is None or self.repeat.empty or column not in self.repeat.columns:
            return None
        first = pd.Series(self.latency(stat), index=self.table["arch"], name="first")
        joined = self.repeat.join(first, on="arch", how="inner")
        if joined.empty:
            return None
        return Repeatability.between(joined["first"].to_numpy(), joined[column].to_numpy())

    def block_costs(self) -> dict[str, float]:
        """Median ms of each measured block, by block name (empty without block measurements)."""
        if self.blocks is None or self.blocks.empty:
            return {}
        return dict(zip(self.blocks["block"], self.blocks["median_ms"].astype(float)))

    def environment_differences(self) -> list[str]:
        """How this machine differs from the one profiled (empty for remote profiles)."""
        return [] if self.remote else compare_fingerprints(self.fingerprint, fingerprint())

    def reference(self) -> dict[str, Any]:
        """What a predictor records about the profile it came from."""
        return {"path": str(self.path.resolve()), "device": self.device.to_dict(), "n_rows": int(len(self.table)),
                "fingerprint": self.fingerprint, "remote": self.remote, "created": self.meta.get("created"),
                "repeatability": None if self.repeatability is None else self.repeatability.to_dict()}

    @classmethod
    def load(cls, path: str | Path) -> "Profile":
        """Read a profile folder; a missing or corrupt one raises one clear ValueError."""
        path = Path(path)
        meta_path = path / META
        if not meta_path.is_file():
            raise ValueError(f"no device profile at {path} (missing {META})")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"corrupt device profile at {path}: cannot read {META} ({exc})") from None
        if not isinstance(meta, dict) or meta.get("kind") != "hwnas-profile":
            raise ValueError(f"{meta_path} is not an hwnas device profile")
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"profile schema version must be {SCHEMA_VERSION}, got {meta.get('schema_version')!r}")
        try:
            DeviceSpec.from_dict(meta["device"]), SearchSpace.from_dict(meta["space"]), InputSpec(**meta["spec"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"corrupt device profile at {path}: {exc}") from None
        tables = {}
        for name, required in ((TABLE, TABLE_COLUMNS), (BLOCKS, ["block", *STAT_COLUMNS]),
                               (REPEAT, ["arch", "repeat_median_ms"])):
            file = path / name
            if not file.exists():
                tables[name] = _frame([], TABLE_COLUMNS) if name == TABLE else None
                continue
            try:
                frame = pd.read_parquet(file)
            except Exception as exc:  # pyarrow raises several types for a damaged file
                raise ValueError(f"corrupt device profile at {path}: cannot read {name} ({exc})") from None
            missing = [c for c in required if c not in frame.columns]
            if missing:
                raise ValueError(f"corrupt device profile at {path}: {name} lacks columns {missing}")
            tables[name] = frame
        return cls(path, meta, tables[TABLE], tables[BLOCKS], tables[REPEAT])

    def __repr__(self) -> str:
        return f"Profile({str(self.path)!r}, device={self.device.name!r}, rows={len(self.table)})"


def new_meta(device: DeviceSpec, space: SearchSpace, spec: InputSpec, *, seed: int, config: MeasureConfig,
             env: dict[str, Any], remote: bool, source: str) -> dict[str, Any]:
    return {"kind": "hwnas-profile", "schema_version": SCHEMA_VERSION, "device": device.to_dict(),
            "fingerprint": env, "space": space.to_dict(), "spec": spec.to_dict(), "seed": seed,
            "measure_config": config.to_dict(), "remote": remote, "source": source,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "profiling_seconds": 0.0,
            "seconds": {}}


def _open_or_create(out_dir: Path, device: DeviceSpec, space: SearchSpace, spec: InputSpec, seed: int,
                    config: MeasureConfig) -> Profile:
    if (out_dir / META).exists():
        profile = Profile.load(out_dir)
        for label, stored, wanted in (("device", profile.device, device), ("search space", profile.space, space),
                                      ("input spec", profile.spec, spec)):
            if stored != wanted:
                raise ValueError(f"{out_dir} holds a profile of another {label} ({stored} != {wanted}); "
                                 f"choose another folder")
        differences = profile.environment_differences()
        if differences:
            warnings.warn(f"resuming profile {out_dir} on a different machine: {'; '.join(differences)}",
                          stacklevel=3)
        return profile
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ValueError(f"{out_dir} exists and is not a device profile; choose an empty or new folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = new_meta(device, space, spec, seed=seed, config=config, env=fingerprint(), remote=False, source="local")
    write_json_atomic(out_dir / META, meta)
    return Profile(out_dir, meta, _frame([], TABLE_COLUMNS))


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[..., Any]]:
    """Yields `add(description, total) -> advance(n)`; silent when disabled."""
    if not enabled:
        yield lambda description, total: (lambda n=1: None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), transient=False) as bar:
        def add(description: str, total: int) -> Callable[[int], None]:
            task = bar.add_task(description, total=total)
            return lambda n=1: bar.advance(task, n)
        yield add


def _repeat_subset(archs: Sequence[Arch], fraction: float) -> list[Arch]:
    if fraction <= 0 or len(archs) < 2:
        return []
    n = min(len(archs), max(10, math.ceil(fraction * len(archs))))
    return [archs[int(i)] for i in np.unique(np.linspace(0, len(archs) - 1, n).round().astype(int))]


def profile_device(device: DeviceSpec | str, space: SearchSpace, spec: InputSpec, *, n_samples: int,
                   out_dir: str | Path, seed: int = 0, blocks: bool = False, progress: bool = True,
                   config: MeasureConfig | None = None, archs: Sequence[Arch] | None = None,
                   onnx_cache: str | Path | None = None, repeat_fraction: float = 0.1,
                   chunk_size: int = 25, export_workers: int = 1) -> Profile:
    """Measure `n_samples` subnets of `space` on `device` into the profile folder `out_dir`.

    Subnets: `sample_profile_archs(space, n_samples, seed)` (extremes and every choice
    first), or the given `archs`. Rows already stored are not measured again, so an
    interrupted run resumes. `blocks` also measures every distinct block for a lookup
    table. A `repeat_fraction` of the subnets (at least 10) is measured a second time,
    independently, at the end: `Profile.repeatability`. Subnets are measured in chunks of
    `chunk_size`, all judged by one slow-phase gate; on a device measured in one pass, a chunk
    whose every round was slow against the whole profile is measured once more at the end
    (``slow_chunks`` in the meta). ONNX files go to a temporary
    folder, or to `onnx_cache` to be reused by later profiles. `export_workers=2` exports half
    of the ONNX files (each chunk's subnets; the blocks all at once) in a helper process
    (`ExportHelper`) while this one exports the rest; measuring starts only once both are done.
    """
    device = get_device(device)
    reason = backend_unavailable_reason(device.backend)
    if reason:
        raise ValueError(f"device {device.name} ({device.backend}) cannot run here: {reason}")
    config = config or MeasureConfig()
    if archs is None:
        archs = sample_profile_archs(space, n_samples, seed)
    else:
        archs = [space.validate(a) for a in archs]
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if export_workers not in (1, 2):
        raise ValueError(f"export_workers must be 1 or 2, got {export_workers!r}")
    out_dir = Path(out_dir)
    dspec = deploy_spec(spec, device)
    profile = _open_or_create(out_dir, device, space, spec, seed, config)
    meta = profile.meta
    net = None

    def supernet() -> Any:
        nonlocal net
        if net is None:
            from supernet import Supernet

            net = Supernet(space, dspec, seed=seed)
        return net

    shape = (device.batch, dspec.seq_len, dspec.in_features)
    done = set(profile.table["arch"])
    todo = [a for a in archs if a.to_json() not in done]
    rows = profile.table.to_dict("records")
    block_rows = [] if profile.blocks is None else profile.blocks.to_dict("records")
    todo_blocks = [k for k in block_keys(space) if k.name not in {r["block"] for r in block_rows}] if blocks else []
    repeat_rows = [] if profile.repeat is None else profile.repeat.to_dict("records")
    repeated = {r["arch"] for r in repeat_rows}
    todo_repeat = [a for a in _repeat_subset(archs, repeat_fraction) if a.to_json() not in repeated]
    keep = set(todo_repeat)

    def drop_files(chunk: Sequence[Arch], models: Sequence[Any]) -> None:
        """Delete measured ONNX files from the temporary folder; repeated subnets keep theirs."""
        if not onnx_cache:
            for a, m in zip(chunk, models):
                if isinstance(m, Path) and a not in keep:
                    m.unlink(missing_ok=True)

    def measure_chunk(models: Sequence[Any], chunk_seed: int) -> tuple[list[Measurement], float]:
        """One chunk of subnets measured by the profile's gate: its results, and the fastest probe of
        any round kept while measuring it (inf without a gate)."""
        mark = len(gate.probes) if gate is not None else 0
        results = measure_shaped(models, device, [shape] * len(models), single, seed=chunk_seed, gate=gate)
        return results, min(gate.probes[mark:], default=math.inf) if gate is not None else math.inf

    def save_meta(phase: str, t0: float) -> None:
        meta["profiling_seconds"] = float(meta.get("profiling_seconds", 0.0)) + time.perf_counter() - t0
        meta.setdefault("seconds", {})[phase] = meta.get("seconds", {}).get(phase, 0.0) + time.perf_counter() - t0
        write_json_atomic(out_dir / META, meta)

    cache = nullcontext(Path(onnx_cache)) if onnx_cache else tempfile.TemporaryDirectory(prefix="hwnas-profile-")
    helper = (ExportHelper(space, dspec, seed) if export_workers == 2 and (todo or todo_blocks) and not device.is_torch
              else None)
    # One slow-phase gate judges every chunk of subnets (the repeatability ones too): its reference
    # is the first chunk's fastest model, and a chunk's rounds are judged against the fastest probe
    # of the whole profile so far, not only against each other. A chunk measured in seconds can
    # fall wholly inside a slow phase, and judged against itself it passes as fast
    # (end_to_end_run23: its last 5 subnets measured 23-32% slow, every other one within 1.3% of
    # the run before; cpu-b4: one chunk of 24 of 143 subnets 17-36% slow).
    gate = Gate() if _SHARED_GATE else None  # None: each chunk chooses its own
    with (cache as folder, _progress(progress) as add, closing(helper) if helper else nullcontext(),
          closing(gate) if gate is not None else nullcontext()):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        passes = config.passes_for(device.threads)  # whole-list passes (hwprofiles._protocol, step 5)
        single = config.one_pass()
        if todo:
            advance = add(f"profiling {device.name}", len(todo) * passes)
            # Chunks of equal size (80 subnets: 4 of 20, not 25, 25, 25 and 5), so that no chunk is
            # a few models measured in a few seconds.
            parts: dict[Arch, list[Measurement]] = {}
            probes: dict[tuple[int, int], float] = {}  # one pass: a chunk's fastest probe of any kept round
            first_row = len(rows)
            bounds = chunk_bounds(len(todo), chunk_size, equal=True)
            for p, start, end in chunks_in_passes(bounds, passes, config.pass_gap):
                t0 = time.perf_counter()
                chunk, at = todo[start:end], first_row + start
                models = (helper.models(supernet(), chunk, device, folder) if helper is not None and p == 0
                          else [model_for(supernet(), a, device, folder) for a in chunk])
                results, probe = measure_chunk(models, seed + at + 100_003 * p)
                if passes == 1 and probe < math.inf:
                    probes[start, end] = probe
                for a, m in zip(chunk, results):
                    parts.setdefault(a, []).append(m)
                pooled = [Measurement.pooled(parts[a], threshold=config.spread_threshold) for a in chunk]
                rows[at : at + len(chunk)] = [arch_row(a, space, m) for a, m in zip(chunk, pooled)]
                write_parquet_atomic(out_dir / TABLE, _frame(rows, TABLE_COLUMNS))
                if p == passes - 1:
                    drop_files(chunk, models)
                save_meta("subnets", t0)
                advance(len(chunk))
            # A second look (one pass; several pool their passes instead): a chunk whose every round
            # probed slower than the gate allows against the fastest probe of the whole profile (the
            # first chunk, judged by no earlier one, or one whose retries did not outlast a slow
            # phase) is measured once more, and the new runs replace the old when they probed faster.
            slow = [bound for bound, probe in probes.items() if probe > gate.fastest * (1 + config.gate)]
            for start, end in slow:
                t0 = time.perf_counter()
                chunk, at = todo[start:end], first_row + start
                models = [model_for(supernet(), a, device, folder) for a in chunk]
                results, probe = measure_chunk(models, seed + at + 200_003)
                if probe < probes[start, end]:
                    rows[at : at + len(chunk)] = [arch_row(a, space, m) for a, m in zip(chunk, results)]
                    write_parquet_atomic(out_dir / TABLE, _frame(rows, TABLE_COLUMNS))
                drop_files(chunk, models)
                meta["slow_chunks"] = meta.get("slow_chunks", 0) + 1
                save_meta("subnets", t0)
        if todo_blocks:
            # Blocks run in microseconds: a reference probe that short is too noisy to judge a round
            # by, and the gate's retries made block profiling slower than the 60 s it may take
            # (cpu-2t, 168 blocks: 74 s with the gate, 58 s without, 45 s with the former 3 rounds).
            # Several threads: a block's cost is the fastest run of fresh sessions in four passes of a
            # third of the rounds each, back to back, without the spread re-measurement (only the
            # fastest run is used, and at microseconds nearly every block's spread is wide, so it
            # doubled the runs). A slow state belongs to a session, so every pass opens fresh ones.
            # cpu-2t, 168 blocks: 53-64 s measuring (plus 9-15 s exporting with the
            # export helper, 13 s without: benchmarks/results/block_export.md), two measurements
            # 95-99% within ±10% of each other, and predictors adapted into cpu-2t from four sources
            # met the goal (0.95 within ±10%) in 23 of 24 pairs over six measurements (0.80 once;
            # block_passes_run2.md, block_passes.md). Five passes of one round (more sessions, fewer
            # runs each) took 43-54 s but met it in 6 of 12 there; three re-measured passes 56-69 s.
            # One thread: one pass over all blocks at once (a block's visits spread over the whole
            # measurement, not over one chunk's seconds) of four times the rounds, each visit a quarter
            # of a subnet visit's runs and seconds, without the spread re-measurement: the same runs
            # at more moments. The protocol before (six full visits, and six more for a block whose
            # spread was wide, keeping the narrower attempt) threw half the moments away, and in
            # unsteady hours, when nearly every block's spread is wide, took torch-cpu 71-92 s (39 s in
            # a steady one). Quarter visits: 45-55 s in both; measured beside the same subnets, adapted
            # pairs as good (8 of 8 met the goal with each in a steady hour) and, in an unsteady one,
            # blocks measured minutes apart agreeing 100% within ±10% against 92%
            # (benchmarks/results/fresh_blocks.md, fresh_blocks_run2.md, block_seconds.md); the
            # protocols simulated on recorded visits agreed as well or better (block_visits_*.md).
            if passes > 1:
                block_passes, block_chunk = _BLOCK_PASSES, chunk_size
                block_config = replace(config, gate=0, passes=1, rounds=max(1, config.rounds // _BLOCK_ROUND_SHARE),
                                       repeats=0)
            else:
                block_passes, block_chunk = 1, len(todo_blocks)
                block_config = replace(config, gate=0, passes=1, rounds=config.rounds * _BLOCK_VISIT_SPLIT,
                                       max_runs=max(config.min_runs, config.max_runs // _BLOCK_VISIT_SPLIT),
                                       max_seconds=config.max_seconds / _BLOCK_VISIT_SPLIT,
                                       repeats=config.repeats if _BLOCK_REMEASURE else 0)
            advance = add(f"blocks of {device.name}", len(todo_blocks) * block_passes)
            if helper is not None:  # every file at once, half of them in the helper: one wait, not one per chunk
                t0 = time.perf_counter()
                helper.blocks(supernet(), todo_blocks, folder)
                save_meta("block_export", t0)
            measured: dict[BlockKey, list[Measurement]] = {}
            for p, start, end in chunks_in_passes(chunk_bounds(len(todo_blocks), block_chunk), block_passes, 0.0):
                t0 = time.perf_counter()
                chunk = todo_blocks[start:end]
                built = [block_model_for(supernet(), k, device, folder) for k in chunk]
                save_meta("block_export", t0)  # ONNX files, written once: the host's work, not the device's
                t0 = time.perf_counter()
                shapes = [(device.batch, *example) for _, example in built]
                results = measure_shaped([m for m, _ in built], device, shapes, block_config,
                                         seed=seed + 7 + start + 100_003 * p)
                for k, m in zip(chunk, results):
                    measured.setdefault(k, []).append(m)
                if p == block_passes - 1:
                    block_rows += [_block_row(k, Measurement.pooled(measured[k], threshold=config.spread_threshold))
                                   for k in chunk]
                    write_parquet_atomic(out_dir / BLOCKS, pd.DataFrame(block_rows))
                save_meta("blocks", t0)
                advance(len(chunk))
        if todo_repeat:
            advance = add(f"repeatability of {device.name}", len(todo_repeat) * passes)
            t0 = time.perf_counter()
            again: dict[Arch, list[Measurement]] = {}
            for p, start, end in chunks_in_passes(chunk_bounds(len(todo_repeat), chunk_size), passes, config.pass_gap):
                chunk = todo_repeat[start:end]
                models = [model_for(supernet(), a, device, folder) for a in chunk]
                results, _ = measure_chunk(models, seed + 10_007 + start + 100_003 * p)
                for a, m in zip(chunk, results):
                    again.setdefault(a, []).append(m)
                advance(len(chunk))
            for a in todo_repeat:
                m = Measurement.pooled(again[a], threshold=config.spread_threshold)
                repeat_rows.append({"arch": a.to_json(), "repeat_median_ms": m.median_ms, "repeat_min_ms": m.min_ms,
                                    "repeat_flagged": m.flagged})
            write_parquet_atomic(out_dir / REPEAT, pd.DataFrame(repeat_rows))
            save_meta("repeat", t0)
    loaded = Profile.load(out_dir)
    if loaded.repeatability is not None:
        meta["repeatability"] = loaded.repeatability.to_dict()
        write_json_atomic(out_dir / META, meta)
        loaded.meta = meta
    return loaded


def _block_row(key: BlockKey, m: Measurement) -> dict[str, Any]:
    return {"block": key.name, "kind": key.kind, "embed_dim": key.embed_dim, "heads": key.heads,
            "ffn_ratio": key.ffn_ratio, "attention": key.attention, "quant": key.quant, **_stat_row(m)}
