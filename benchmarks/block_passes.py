"""How a multi-thread device's blocks are measured, and what that does to predictors adapted into it.

The blocks of `--device` (168 of the default space) are measured `--repeats` times with each
protocol of `--protocols`, the protocols taking turns. A protocol is `hwprofiles.profile_device`
as it is, with its block constants set as in PROTOCOLS (passes; share of the subnets' rounds per pass):
- "four passes": 4 and 3, what profile_device does: four passes of two rounds;
- "five passes": 5 and 6, five passes of one round (tried, not adopted).
Every pass is back to back with fresh sessions and without the spread re-measurement; each
block's cost is its fastest run over all passes; the ONNX files are exported afresh with the
export helper, as `hwnas adapt` does.

Each measurement then serves as the block costs of predictors adapted into the device from
every `--sources` profile, with the k = 20 subnets `predictors.adaptation_archs` picks, as in
benchmarks/latency_predictors.py: run that first with the same `--work` folder, which holds the
device's and the sources' profiles (their held-out subnets and the picks measured on the device).
Reported: seconds (export and measurement), the share of the held-out subnets within ±10% and
Kendall tau of each adapted predictor, and how far two measurements of a protocol agree.
Writes benchmarks/results/block_passes.{md,json}. (block_passes_run1 and run2 compared four
passes with the three re-measured passes before them, with this script as of commit 7e5fbfb.)

    .venv/bin/python benchmarks/block_passes.py --work /tmp/hwnas-bench-lp3 --repeats 3
"""

from __future__ import annotations

import argparse
import itertools
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
from latency_predictors import _pair_device, adapted_scores, source_predictors

RESULTS = Path(__file__).parent / "results"
K = 20
PROTOCOLS = {"four passes": {"_BLOCK_PASSES": 4, "_BLOCK_ROUND_SHARE": 3},  # profile_device's block constants
             "five passes": {"_BLOCK_PASSES": 5, "_BLOCK_ROUND_SHARE": 6}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="a benchmarks/latency_predictors.py work folder")
    parser.add_argument("--device", default="cpu-2t")
    parser.add_argument("--sources", default="cpu,torch-cpu,cpu-b4,cpu-s64")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--total", type=int, default=500)
    parser.add_argument("--held-out", type=int, default=100)
    parser.add_argument("--pair-train", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--protocols", default="five passes,four passes", help="names from PROTOCOLS, in turn")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    protocols = args.protocols.split(",")
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        parser.error(f"unknown protocol {unknown[0]!r}; choose from {list(PROTOCOLS)}")

    space, spec = DEFAULT_SPACE, get_task(DEFAULT_TASK).spec
    schema = FeatureSchema(space, spec)
    archs, train_idx, test_idx = held_out_split(space, args.total, args.held_out, args.seed)
    train, test = [archs[i] for i in train_idx[: args.pair_train]], [archs[i] for i in test_idx]
    device = _pair_device(args.device, args.work)
    target = Profile.load(args.work / args.device)
    on_target = dict(zip(target.table["arch"], target.latency("min_ms")))
    sources = source_predictors(args.work, args.sources.split(","), schema, train, args.seed, K)

    report = {"device": device.to_dict(), "machine": fingerprint(), "k": K, "n_held_out": len(test),
              "work": str(args.work), "load_at_start": os.getloadavg(), "measurements": []}
    print(f"load average at the start {os.getloadavg()[0]:.2f}", flush=True)
    for r in range(args.repeats):
        order = protocols if r % 2 == 0 else protocols[::-1]
        for protocol in order:
            load0, started = os.getloadavg()[0], time.strftime("%H:%M:%S", time.gmtime())
            with tempfile.TemporaryDirectory(prefix="hwnas-blocks-") as folder:
                costs, seconds = measure_blocks(device, spec, Path(folder) / "profile", args.seed,
                                                **PROTOCOLS[protocol])
            row = {"protocol": protocol, "repeat": r, "started_utc": started, "load_at_start": load0,
                   "load_at_end": os.getloadavg()[0], "seconds": seconds, "costs": costs,
                   "pairs": adapted_scores(sources, on_target, device, costs, test, args.seed)}
            report["measurements"].append(row)
            cells = ", ".join(f"{n} {v['within_10']:.2f}" for n, v in row["pairs"].items())
            print(f"{protocol} #{r}: export {seconds['export']:.0f} s, measure {seconds['measure']:.0f} s; {cells}",
                  flush=True)
    report["agreement"] = {}
    for protocol in protocols:
        runs = [m["costs"] for m in report["measurements"] if m["protocol"] == protocol]
        shares = [within(np.array(list(a.values())), np.array([b[n] for n in a]), 0.10)
                  for a, b in itertools.combinations(runs, 2)]
        report["agreement"][protocol] = shares
    report["load_at_end"] = os.getloadavg()
    save_report(args.out, "block_passes", report, markdown(report, sources))


def markdown(r: dict, sources: dict) -> list[str]:
    names = list(sources)
    lines = [f"# Block measurement on {r['device']['name']}: passes and adapted predictors",
             "", "Written by `benchmarks/block_passes.py` (see its docstring for the protocols).",
             f"{machine_line(r['machine'])} Load average (1 min) "
             f"{r['load_at_start'][0]:.2f} at the start and {r['load_at_end'][0]:.2f} at the end; nothing else ran. "
             "Two intra-op threads push the load above 2 while measuring: the process's own spinning "
             "onnxruntime workers, one per loaded session.",
             f"Adapted predictors: k = {r['k']} subnets picked per source and measured on the device, scored on "
             f"{r['n_held_out']} held-out subnets measured there (work folder {r['work']}). "
             "Cells: share within ±10% / Kendall tau; the goal is >= 0.95 / >= 0.90.", "",
             "| protocol | # | started (UTC) | load | export s | measure s | " + " | ".join(f"{n} ->" for n in names)
             + " |", "|---|---|---|---|---|---|" + "---|" * len(names)]
    for m in r["measurements"]:
        cells = " | ".join(f"{m['pairs'][n]['within_10']:.2f} / {m['pairs'][n]['kendall_tau']:.2f}" for n in names)
        lines.append(f"| {m['protocol']} | {m['repeat']} | {m['started_utc']} | {m['load_at_start']:.2f} | "
                     f"{m['seconds']['export']:.0f} | {m['seconds']['measure']:.0f} | {cells} |")
    lines += ["", "| protocol | measure s (mean) | pairs meeting 0.95 | mean within ±10% per source | "
              "blocks within ±10% between two measurements |", "|---|---|---|---|---|"]
    for protocol, shares in r["agreement"].items():
        ms = [m for m in r["measurements"] if m["protocol"] == protocol]
        met = sum(m["pairs"][n]["within_10"] >= 0.95 for m in ms for n in names)
        means = ", ".join(f"{n} {np.mean([m['pairs'][n]['within_10'] for m in ms]):.2f}" for n in names)
        lines.append(f"| {protocol} | {np.mean([m['seconds']['measure'] for m in ms]):.0f} | {met} of "
                     f"{len(ms) * len(names)} | {means} | {', '.join(f'{s:.2f}' for s in shares)} |")
    return lines


if __name__ == "__main__":
    main()
