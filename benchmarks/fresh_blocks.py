"""Block protocols judged with every measurement taken together: blocks, picks and held-out subnets.

A device's latencies drift over hours on a shared VM (torch-cpu's held-out subnets measured
again hours later: 29% within ±10% of the first measurement), so blocks measured now cannot be
judged against subnets measured earlier. Here, on `--device`, the blocks are measured with each
protocol twice (order A B, then the subnets, then B A), and in between the k = 20 adaptation
subnets of every source and the 100 held-out subnets, all with the default `MeasureConfig`.
Each block measurement then adapts every source predictor (fitted on a benchmarks/
latency_predictors.py work folder, `--work`) with those picks, scored on those held-out subnets.
Protocols: "re-measured" (what profile_device does for a single-thread device's blocks: a block
whose spread is wide is measured again) and "not re-measured" (tried, not adopted; it halves
torch-cpu's block time). Writes benchmarks/results/fresh_blocks.{md,json}.

    .venv/bin/python benchmarks/fresh_blocks.py --work /tmp/hwnas-bench-lp3 --device torch-cpu
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from hwprofiles import Profile, fingerprint, profile_device
from predictors import FeatureSchema, within
from runners.config import DEFAULT_TASK
from supernet import DEFAULT_SPACE
from supernet.tasks import get_task

from _common import held_out_split, machine_line, measure_blocks, save_report
from latency_predictors import _pair_device, adapted_scores, source_predictors

RESULTS = Path(__file__).parent / "results"
K = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="a benchmarks/latency_predictors.py work folder")
    parser.add_argument("--device", default="torch-cpu")
    parser.add_argument("--sources", default="cpu,cpu-2t,cpu-b4,cpu-s64")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    spec = get_task(DEFAULT_TASK).spec
    schema = FeatureSchema(DEFAULT_SPACE, spec)
    archs, train_idx, test_idx = held_out_split(DEFAULT_SPACE, 500, 100, args.seed)
    train, test = [archs[i] for i in train_idx[:100]], [archs[i] for i in test_idx]
    device = _pair_device(args.device, args.work)
    sources = source_predictors(args.work, args.sources.split(","), schema, train, args.seed, K)
    report = {"device": device.to_dict(), "machine": fingerprint(), "load_at_start": os.getloadavg(),
              "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "measurements": []}
    order = [True, False, None, False, True]  # re-measured, not, the subnets, not, re-measured
    blocks = []
    with tempfile.TemporaryDirectory(prefix="hwnas-fresh-blocks-") as work:
        for i, step in enumerate(order):
            load0, started = os.getloadavg()[0], time.strftime("%H:%M:%S", time.gmtime())
            if step is None:
                todo = list(dict.fromkeys([a for _, chosen in sources.values() for a in chosen] + test))
                t0 = time.perf_counter()
                sub = profile_device(device, DEFAULT_SPACE, spec, n_samples=len(todo), archs=todo,
                                     out_dir=Path(work) / "subnets", seed=args.seed, repeat_fraction=0.0,
                                     progress=False, export_workers=2)
                report["subnets"] = {"n": len(todo), "seconds": time.perf_counter() - t0, "started_utc": started,
                                     "load_at_start": load0}
                got = dict(zip(sub.table["arch"], sub.latency("min_ms")))
                print(f"{len(todo)} subnets measured", flush=True)
                continue
            costs, seconds = measure_blocks(device, spec, Path(work) / f"blocks{i}", args.seed, _BLOCK_REMEASURE=step)
            blocks.append(costs)
            report["measurements"].append({"protocol": "re-measured" if step else "not re-measured",
                                           "started_utc": started, "load_at_start": load0,
                                           "seconds": seconds["measure"]})
            print(f"blocks {'re-measured' if step else 'not re-measured'}: {seconds['measure']:.1f} s", flush=True)
    y_test = np.array([got[a.to_json()] for a in test])
    stored = Profile.load(args.work / args.device)
    before = dict(zip(stored.table["arch"], stored.latency("min_ms")))
    report["held_out_vs_work_folder_within_10"] = within(y_test, np.array([before[a.to_json()] for a in test]), 0.10)
    for row, costs in zip(report["measurements"], blocks):
        row["pairs"] = adapted_scores(sources, got, device, costs, test, args.seed)
        row["blocks_within_10_of_first"] = within(np.array(list(blocks[0].values())),
                                                  np.array([costs[k] for k in blocks[0]]), 0.10)
    report["load_at_end"] = os.getloadavg()
    names = list(sources)
    lines = [f"# Block protocols on {device.name}, blocks, picks and held-out subnets measured together", "",
             "Written by `benchmarks/fresh_blocks.py` (see its docstring); nothing else ran.",
             f"{machine_line(report['machine'])} Started {report['started_utc']}; load average (1 min) "
             f"{report['load_at_start'][0]:.2f} at the start, {report['load_at_end'][0]:.2f} at the end.",
             f"Subnets ({report['subnets']['n']}: the {K} picks of each source and 100 held-out) measured at "
             f"{report['subnets']['started_utc']} UTC between the second and third block measurement; the held-out "
             f"ones are {report['held_out_vs_work_folder_within_10']:.0%} within ±10% of the work folder's "
             "measurement of them. Cells: adapted predictor's share within ±10% / Kendall tau.", "",
             "| # | protocol | started (UTC) | load | measure s | blocks within ±10% of #0 | "
             + " | ".join(f"{n} ->" for n in names) + " |", "|---|---|---|---|---|---|" + "---|" * len(names)]
    for i, r in enumerate(report["measurements"]):
        cells = " | ".join(f"{r['pairs'][n]['within_10']:.2f} / {r['pairs'][n]['kendall_tau']:.2f}" for n in names)
        lines.append(f"| {i} | {r['protocol']} | {r['started_utc']} | {r['load_at_start']:.2f} | {r['seconds']:.1f} | "
                     f"{r['blocks_within_10_of_first']:.2f} | {cells} |")
    save_report(args.out, "fresh_blocks", report, lines)


if __name__ == "__main__":
    main()
