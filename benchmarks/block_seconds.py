"""How long measuring a device's blocks takes with the default protocol, device by device.

`hwnas adapt` measures every block of the space (168 in the default one) on the new device
besides its 20 subnets; the budget for that is 60 s. Here each of `--devices` (names, or the
batch 4 and sequence length 64 devices of benchmarks/latency_predictors.py) has its blocks
measured once by `hwprofiles.profile_device` with the default `MeasureConfig`, as `hwnas adapt`
does, into a fresh folder (export with the helper). Reported: export and measuring seconds and
the load average around each. Writes benchmarks/results/block_seconds.{md,json}.

    .venv/bin/python benchmarks/block_seconds.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from hwprofiles import fingerprint, profile_device
from runners.config import DEFAULT_TASK
from supernet import DEFAULT_SPACE
from supernet.tasks import get_task

from _common import machine_line, save_report
from latency_predictors import _pair_device

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="cpu,cpu-2t,torch-cpu,cpu-b4,cpu-s64")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    spec = get_task(DEFAULT_TASK).spec
    report = {"machine": fingerprint(), "task": DEFAULT_TASK, "load_at_start": os.getloadavg(), "devices": []}
    with tempfile.TemporaryDirectory(prefix="hwnas-block-seconds-") as work:
        for name in args.devices.split(","):
            device = _pair_device(name, Path(work))
            load0, started = os.getloadavg()[0], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            prof = profile_device(device, DEFAULT_SPACE, spec, n_samples=0, archs=[], out_dir=Path(work) / name,
                                  seed=args.seed, blocks=True, repeat_fraction=0.0, progress=False, export_workers=2)
            seconds = prof.meta["seconds"]
            row = {"device": device.to_dict(), "started_utc": started, "load_at_start": load0,
                   "load_at_end": os.getloadavg()[0], "blocks": len(prof.blocks),
                   "export_seconds": seconds.get("block_export", 0.0), "measure_seconds": seconds["blocks"]}
            report["devices"].append(row)
            print(f"{name}: {row['blocks']} blocks, export {row['export_seconds']:.1f} s, "
                  f"measure {row['measure_seconds']:.1f} s", flush=True)
    report["load_at_end"] = os.getloadavg()
    lines = ["# Measuring a device's blocks with the default protocol", "",
             "Written by `benchmarks/block_seconds.py` (see its docstring); nothing else ran.",
             f"{machine_line(report['machine'])} Load average (1 min) {report['load_at_start'][0]:.2f} at the "
             f"start and {report['load_at_end'][0]:.2f} at the end (a two-thread device's own spinning threads "
             "raise it).", "",
             "| device | backend | threads | batch | tokens | blocks | started (UTC) | load | export s | measure s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["devices"]:
        d = r["device"]
        lines.append(f"| {d['name']} | {d['backend']} | {d['threads']} | {d['batch']} | {d.get('seq_len') or '-'} | "
                     f"{r['blocks']} | {r['started_utc'][11:19]} | {r['load_at_start']:.2f} | "
                     f"{r['export_seconds']:.1f} | {r['measure_seconds']:.1f} |")
    save_report(args.out, "block_seconds", report, lines)


if __name__ == "__main__":
    main()
