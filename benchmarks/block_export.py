"""Exporting a device's blocks to ONNX: this process alone, or with the export helper.

`hwprofiles.profile_device` writes the ONNX file of every block (168 in the default space)
before measuring them, a chunk of 25 at a time; with `export_workers=2` (what `hwnas profile`,
`hwnas adapt` and the main job use) a helper process (`hwprofiles._models.ExportHelper`)
exports every second file, all at once before the first chunk, while this process exports the
rest. Timed here the way `profile_device` does it (building the supernet, starting and stopping
the helper, and each chunk's look-up of its files inside the timing), into a fresh folder each
time, the two ways taking turns. Nothing is measured on a device.
Writes benchmarks/results/block_export.{md,json}.

    .venv/bin/python benchmarks/block_export.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from hwprofiles import block_keys, fingerprint, get_device
from hwprofiles._models import ExportHelper, block_model_for
from hwprofiles._protocol import chunk_bounds
from runners.config import DEFAULT_TASK
from supernet import DEFAULT_SPACE, Supernet
from supernet.tasks import get_task

from _common import machine_line, save_report

RESULTS = Path(__file__).parent / "results"
CHUNK = 25  # profile_device's default chunk_size


def export_all(workers: int, spec, seed: int) -> float:
    """Seconds to write every block's ONNX file of the default space into a fresh folder."""
    device, keys = get_device("cpu"), block_keys(DEFAULT_SPACE)
    with tempfile.TemporaryDirectory(prefix="hwnas-block-export-") as folder:
        t0 = time.perf_counter()  # as in profile_device: the helper starts, then this process builds its supernet
        helper = ExportHelper(DEFAULT_SPACE, spec, seed) if workers == 2 else None
        net = Supernet(DEFAULT_SPACE, spec, seed=seed)
        try:
            if helper is not None:
                helper.blocks(net, keys, Path(folder))
            for start, end in chunk_bounds(len(keys), CHUNK):
                for k in keys[start:end]:
                    block_model_for(net, k, device, Path(folder))
        finally:
            if helper is not None:
                helper.close()
        seconds = time.perf_counter() - t0
        assert len(list(Path(folder).glob("block-*.onnx"))) == len(keys)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    spec = get_task(DEFAULT_TASK).spec
    report = {"machine": fingerprint(), "blocks": len(block_keys(DEFAULT_SPACE)), "task": DEFAULT_TASK,
              "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_at_start": os.getloadavg(),
              "runs": []}
    for r in range(args.repeats):
        for workers in (1, 2):
            seconds = export_all(workers, spec, args.seed)
            report["runs"].append({"workers": workers, "repeat": r, "seconds": seconds, "load": os.getloadavg()[0]})
            print(f"{workers} worker(s) #{r}: {seconds:.1f} s", flush=True)
    report["load_at_end"] = os.getloadavg()
    lines = ["# Exporting a device's blocks to ONNX", "",
             "Written by `benchmarks/block_export.py` (see its docstring).",
             f"{machine_line(report['machine'])} Started {report['started_utc']}; load average (1 min) "
             f"{report['load_at_start'][0]:.2f} at the start and {report['load_at_end'][0]:.2f} at the end.",
             f"{report['blocks']} blocks of the default space at task `{DEFAULT_TASK}`'s input, chunks of {CHUNK}.", "",
             "| export | runs (s) | mean s |", "|---|---|---|"]
    for workers, label in ((1, "this process alone"), (2, "with the export helper")):
        s = [run["seconds"] for run in report["runs"] if run["workers"] == workers]
        lines.append(f"| {label} | {', '.join(f'{x:.1f}' for x in s)} | {np.mean(s):.1f} |")
    save_report(args.out, "block_export", report, lines)


if __name__ == "__main__":
    main()
