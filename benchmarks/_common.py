"""What the benchmarks share: the command, a timed run with the machine and its load around it,
stage times, the load line for a copied report, and the latency benchmarks' held-out subnets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

HWNAS = [sys.executable, "-m", "runners.cli"]


def run(cmd: list[str], log: Path | None = None, cwd: Path | None = None) -> float:
    """Wall time of a command; its console output goes to `log` when given."""
    t0 = time.perf_counter()
    with open(log or os.devnull, "w") as out:
        subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    return time.perf_counter() - t0


def timed_hwnas(argv: list[str], out: Path, command: str, cwd: Path | None = None) -> dict[str, Any]:
    """`hwnas ARGV` into a fresh folder `out` (its console in out/output.txt): the benchmark's
    command, the machine, the load average at the start and end, the start time, wall seconds."""
    from hwprofiles import fingerprint

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    result = {"command": command, "machine": fingerprint(), "load_average_at_start": os.getloadavg(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    result["wall_seconds"] = round(run([*HWNAS, *argv], log=out / "output.txt", cwd=cwd), 1)
    result["load_average_at_end"] = os.getloadavg()
    return result


def stage_seconds(run_dir: Path) -> dict[str, float]:
    """Wall seconds of each stage of a run folder, in pipeline order (run.json)."""
    from runners.pipeline import STAGES

    stages = json.loads((Path(run_dir) / "run.json").read_text())["stages"]
    return {k: stages[k]["seconds"] for k in STAGES if k in stages}


def with_load_line(report_md: str, result: dict[str, Any]) -> str:
    """A run's report.md with a line under its title naming the benchmark command, the machine
    and the load average its timings were taken under."""
    m = result["machine"]
    line = (f"Measured by `{result['command']}` on {m.get('cpu_model')}, {m.get('cpu_count')} cores: load average "
            f"{result['load_average_at_start'][0]:.2f} at the start, {result['load_average_at_end'][0]:.2f} at the end.")
    return report_md.replace("\n", f"\n\n{line}\n", 1)


def held_out_split(space: Any, total: int, held_out: int, seed: int) -> tuple[list, Any, Any]:
    """The latency benchmarks' subnets: `sample_profile_archs(space, total, seed)`, the indices of
    `held_out` random ones (never the coverage subnets) and of the rest, coverage first."""
    import numpy as np

    from hwprofiles import coverage_archs, sample_profile_archs

    archs = sample_profile_archs(space, total, seed)
    n_cover = len(coverage_archs(space, seed))
    test_idx = np.sort(np.random.default_rng(seed + 1).permutation(np.arange(n_cover, total))[:held_out])
    held = set(test_idx.tolist())
    train_idx = np.array([i for i in range(total) if i not in held])
    return archs, train_idx, test_idx


def machine_line(machine: dict[str, Any]) -> str:
    """"Machine: CPU, N logical cores, torch T, onnxruntime O." from `hwprofiles.fingerprint()`."""
    return (f"Machine: {machine.get('cpu_model')}, {machine.get('cpu_count')} logical cores, torch "
            f"{machine.get('torch')}, onnxruntime {machine.get('onnxruntime')}.")


def save_report(out: Path, stem: str, report: dict[str, Any], lines: list[str]) -> None:
    """`report` as OUT/STEM.json and `lines` as OUT/STEM.md."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")


@contextmanager
def profile_constants(**constants: Any) -> Iterator[None]:
    """`hwprofiles.profile_device`'s module constants (e.g. `_BLOCK_PASSES=5`) set to `constants` inside
    the block, and back to their values after it."""
    import hwprofiles._profile as profile_module

    saved = {name: getattr(profile_module, name) for name in constants}
    for name, value in constants.items():
        setattr(profile_module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(profile_module, name, value)


def measure_blocks(device: Any, spec: Any, folder: Path, seed: int, **constants: Any
                   ) -> tuple[dict[str, float], dict[str, float]]:
    """Every block of the default space measured once on `device` by `hwprofiles.profile_device` (fastest
    runs, exported with the helper as `hwnas adapt` does) with its block constants set to `constants`
    (e.g. `_BLOCK_PASSES=5`) for the call: (cost per block name, seconds of export and of measuring)."""
    from hwprofiles import profile_device
    from predictors import block_costs_of
    from supernet import DEFAULT_SPACE

    with profile_constants(**constants):
        prof = profile_device(device, DEFAULT_SPACE, spec, n_samples=0, archs=[], out_dir=folder, seed=seed,
                              blocks=True, repeat_fraction=0.0, progress=False, export_workers=2)
    seconds = prof.meta["seconds"]
    return block_costs_of(prof, "min_ms"), {"export": seconds.get("block_export", 0.0), "measure": seconds["blocks"]}
