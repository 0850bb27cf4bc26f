"""Block protocols judged with every measurement taken together: blocks, picks and held-out subnets.

A device's latencies drift over hours on a shared VM (torch-cpu's held-out subnets measured
again hours later: 22-46% within ±10% of the first measurement), so blocks measured now cannot
be judged against subnets measured earlier. Here, on `--device`, `--cycles` cycles each measure
the blocks with one protocol, then the k = 20 adaptation subnets of every source and the 100
held-out subnets (default `MeasureConfig`), then the blocks with the other protocol; the
protocols swap places from one cycle to the next, so each is as often measured just before its
subnets as just after them. Each block measurement then adapts every source predictor (fitted on
a benchmarks/latency_predictors.py work folder, `--work`) with its cycle's picks, scored on its
cycle's held-out subnets. Also reported: how far the block sum explains the held-out subnets
(coefficient of variation of subnet / block sum) and how far a protocol's measurements agree.

A protocol is `hwprofiles.profile_device` as it is, with its block constants set as in
PROTOCOLS: "quarter visits" (what profile_device does for a single-thread device: 24 rounds of
visits a quarter as long, no spread re-measurement), "re-measured" (the protocol before it: six
rounds of full visits, and six more for a block whose spread is wide, keeping the narrower
attempt) and "not re-measured" (six rounds of full visits once). All take the blocks in one list
here; before quarter visits, profile_device took them in chunks of 25. fresh_blocks_run1
compared re-measured and not re-measured blocks (chunked) with one subnet measurement between
two pairs of block measurements (this script as of commit 1e2d537). Writes
benchmarks/results/fresh_blocks.{md,json}.

    .venv/bin/python benchmarks/fresh_blocks.py --work /tmp/hwnas-bench-lp3 --device torch-cpu \
        --protocols "re-measured,quarter visits" --cycles 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from hwprofiles import Profile, fingerprint
from predictors import FeatureSchema, within
from runners.config import DEFAULT_TASK
from supernet import DEFAULT_SPACE
from supernet.tasks import get_task

from _common import held_out_split, machine_line, measure_blocks, save_report
from latency_predictors import (_pair_device, adapted_scores, block_sum_cv, measure_picks_and_held_out, meets_goal,
                                source_predictors)

RESULTS = Path(__file__).parent / "results"
K = 20
PROTOCOLS = {"quarter visits": {"_BLOCK_REMEASURE": False, "_BLOCK_VISIT_SPLIT": 4},  # profile_device's constants
             "re-measured": {"_BLOCK_REMEASURE": True, "_BLOCK_VISIT_SPLIT": 1},
             "not re-measured": {"_BLOCK_REMEASURE": False, "_BLOCK_VISIT_SPLIT": 1}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="a benchmarks/latency_predictors.py work folder")
    parser.add_argument("--device", default="torch-cpu")
    parser.add_argument("--sources", default="cpu,cpu-2t,cpu-b4,cpu-s64")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--protocols", default="re-measured,quarter visits", help="two names from PROTOCOLS")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    protocols = args.protocols.split(",")
    if len(protocols) != 2 or any(p not in PROTOCOLS for p in protocols):
        parser.error(f"--protocols takes two of {list(PROTOCOLS)}, got {args.protocols!r}")
    spec = get_task(DEFAULT_TASK).spec
    schema = FeatureSchema(DEFAULT_SPACE, spec)
    archs, train_idx, test_idx = held_out_split(DEFAULT_SPACE, 500, 100, args.seed)
    train, test = [archs[i] for i in train_idx[:100]], [archs[i] for i in test_idx]
    device = _pair_device(args.device, args.work)
    sources = source_predictors(args.work, args.sources.split(","), schema, train, args.seed, K)
    report = {"device": device.to_dict(), "machine": fingerprint(), "load_at_start": os.getloadavg(),
              "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cycles": [], "measurements": []}
    stored = Profile.load(args.work / args.device)
    before = dict(zip(stored.table["arch"], stored.latency("min_ms")))
    blocks: dict[str, list[dict[str, float]]] = {p: [] for p in protocols}
    with tempfile.TemporaryDirectory(prefix="hwnas-fresh-blocks-") as work:
        for c in range(args.cycles):
            first, second = protocols if c % 2 == 0 else protocols[::-1]
            measured = [_blocks(device, spec, Path(work) / f"blocks{c}-{first}", args.seed, first)]
            load0, started, t0 = os.getloadavg()[0], time.strftime("%H:%M:%S", time.gmtime()), time.perf_counter()
            got = measure_picks_and_held_out(device, spec, sources, test, Path(work) / f"subnets{c}", args.seed + c)
            y_test = np.array([got[a.to_json()] for a in test])
            report["cycles"].append({"started_utc": started, "load_at_start": load0, "n_subnets": len(got),
                                     "seconds": time.perf_counter() - t0, "held_out_vs_work_folder_within_10":
                                     within(y_test, np.array([before[a.to_json()] for a in test]), 0.10)})
            print(f"cycle {c}: {len(got)} subnets measured", flush=True)
            measured.append(_blocks(device, spec, Path(work) / f"blocks{c}-{second}", args.seed, second))
            for row, costs in measured:
                row.update(cycle=c, pairs=adapted_scores(sources, got, device, costs, test, args.seed),
                           subnet_over_block_sum_cv=block_sum_cv(schema, test, y_test, costs))
                if blocks[row["protocol"]]:
                    earlier = blocks[row["protocol"]][-1]
                    row["blocks_within_10_of_previous"] = within(np.array([earlier[k] for k in costs]),
                                                                 np.array(list(costs.values())), 0.10)
                blocks[row["protocol"]].append(costs)
                report["measurements"].append(row)
    report["load_at_end"] = os.getloadavg()
    names = list(sources)
    rows = report["measurements"]
    lines = [f"# Block protocols on {device.name}, blocks, picks and held-out subnets measured together", "",
             "Written by `benchmarks/fresh_blocks.py` (see its docstring); nothing else ran.",
             f"{machine_line(report['machine'])} Started {report['started_utc']}; load average (1 min) "
             f"{report['load_at_start'][0]:.2f} at the start, {report['load_at_end'][0]:.2f} at the end.",
             f"Each cycle measures one protocol's blocks, its {report['cycles'][0]['n_subnets']} subnets (the {K} picks of each source and "
             f"{len(test)} held-out), then the other protocol's blocks. Cells: adapted predictor's share of the "
             "cycle's held-out subnets within ±10% / Kendall tau. cv: coefficient of variation of held-out subnet "
             "over its block sum. agree: blocks within ±10% of the protocol's previous measurement.", "",
             "| cycle | subnets (UTC) | held-out within ±10% of work folder |", "|---|---|---|"]
    lines += [f"| {c} | {r['started_utc']} | {r['held_out_vs_work_folder_within_10']:.2f} |"
              for c, r in enumerate(report["cycles"])]
    lines += ["", "| cycle | protocol | started (UTC) | load | measure s | cv | agree | "
              + " | ".join(f"{n} ->" for n in names) + " | met |", "|---|---|---|---|---|---|---|" + "---|" * len(names)
              + "---|"]
    for r in rows:
        cells = " | ".join(f"{r['pairs'][n]['within_10']:.2f} / {r['pairs'][n]['kendall_tau']:.2f}" for n in names)
        met = sum(map(meets_goal, r["pairs"].values()))
        agree = f"{r['blocks_within_10_of_previous']:.2f}" if "blocks_within_10_of_previous" in r else "-"
        lines.append(f"| {r['cycle']} | {r['protocol']} | {r['started_utc']} | {r['load_at_start']:.2f} | "
                     f"{r['seconds']:.1f} | {r['subnet_over_block_sum_cv']:.3f} | {agree} | {cells} | {met} |")
    lines += ["", "| protocol | measure s | mean cv | pairs met | mean within ±10% |", "|---|---|---|---|---|"]
    for p in protocols:
        mine = [r for r in rows if r["protocol"] == p]
        shares = [r["pairs"][n]["within_10"] for r in mine for n in names]
        met = sum(meets_goal(scores) for r in mine for scores in r["pairs"].values())
        lines.append(f"| {p} | {min(r['seconds'] for r in mine):.0f}-{max(r['seconds'] for r in mine):.0f} | "
                     f"{np.mean([r['subnet_over_block_sum_cv'] for r in mine]):.3f} | {met} of {len(shares)} | "
                     f"{np.mean(shares):.2f} |")
    save_report(args.out, "fresh_blocks", report, lines)


def _blocks(device, spec, folder: Path, seed: int, protocol: str) -> tuple[dict, dict[str, float]]:
    """(report row, cost per block name) of one block measurement with `protocol`."""
    load0, started = os.getloadavg()[0], time.strftime("%H:%M:%S", time.gmtime())
    costs, seconds = measure_blocks(device, spec, folder, seed, **PROTOCOLS[protocol])
    print(f"blocks {protocol}: {seconds['measure']:.1f} s", flush=True)
    return {"protocol": protocol, "started_utc": started, "load_at_start": load0, "seconds": seconds["measure"]}, costs


if __name__ == "__main__":
    main()
