"""Subnets measured chunk by chunk with one slow-phase gate for the whole profile, or one per chunk.

`hwprofiles.profile_device` measures a profile's subnets in chunks of 25, each one call of the
protocol. With a gate per chunk, a chunk's rounds are judged only against each other, so a chunk
that falls wholly inside a slow phase passes as fast and its subnets are stored slow together
(cpu-b4: one chunk of 24 of 143 subnets measured 17-36% slow, the rest within 1%). With one gate
for the whole profile (`_SHARED_GATE`, the default) every chunk is judged against the fastest
probe of all chunks so far, and once every chunk is measured, a chunk whose every round probed
slow against the fastest probe of the whole profile (the first chunk above all, which no earlier
chunk judges) is measured once more (the profile's `slow_chunks`).

On each of `--devices`, `--cycles` cycles each measure the same `--subnets` subnets (the
latency benchmarks' 100 held-out subnets and the first of the others, coverage first) once with
each gate, the order swapped from cycle to cycle, by profile_device as it is (default
`MeasureConfig`, chunks of 25, export helper, no repeatability subset). Every measurement is
compared with the consensus of all the others on its device (the element-wise median of their
fastest runs): the share within ±10% and ±5%, and each chunk's shift (the chunk's median ratio
over the whole list's median ratio, minus one); a chunk shifted by more than 5% is counted.
Also the seconds each measurement took. Writes benchmarks/results/chunk_gate.{md,json}.

    .venv/bin/python benchmarks/chunk_gate.py --devices torch-cpu,cpu-b4 --cycles 3 --subnets 140
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from hwprofiles import fingerprint, profile_device
from hwprofiles._protocol import chunk_bounds
from runners.config import DEFAULT_TASK
from supernet import DEFAULT_SPACE
from supernet.tasks import get_task

from _common import held_out_split, machine_line, profile_constants, save_report
from latency_predictors import _pair_device

RESULTS = Path(__file__).parent / "results"
GATES = {"one gate": True, "a gate per chunk": False}  # profile_device's _SHARED_GATE
CHUNK = 25  # profile_device's default chunk_size
SHIFTED = 0.05


def measure(device, spec, archs: list, folder: Path, seed: int, shared: bool) -> tuple[np.ndarray, float, int]:
    """The fastest run of each of `archs`, the seconds the subnets took and the chunks measured again."""
    with profile_constants(_SHARED_GATE=shared):
        prof = profile_device(device, DEFAULT_SPACE, spec, n_samples=len(archs), archs=archs, out_dir=folder,
                              seed=seed, repeat_fraction=0.0, progress=False, export_workers=2, chunk_size=CHUNK)
    got = dict(zip(prof.table["arch"], prof.latency("min_ms")))
    return (np.array([got[a.to_json()] for a in archs]), float(prof.meta["seconds"]["subnets"]),
            int(prof.meta.get("slow_chunks", 0)))


def chunk_shifts(y: np.ndarray, reference: np.ndarray) -> list[float]:
    """Each chunk's median ratio y / reference over the whole list's, minus one."""
    q = y / reference
    whole = float(np.median(q))
    return [float(np.median(q[a:b])) / whole - 1 for a, b in chunk_bounds(len(y), CHUNK, equal=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="torch-cpu,cpu-b4")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--subnets", type=int, default=140)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    spec = get_task(DEFAULT_TASK).spec
    archs, train_idx, test_idx = held_out_split(DEFAULT_SPACE, 500, 100, args.seed)
    order = list(test_idx) + list(train_idx)
    todo = [archs[i] for i in sorted(order[: args.subnets])]
    load = [os.getloadavg()[0]]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    report: dict = {"started": started, "subnets": len(todo), "chunk": CHUNK, "cycles": args.cycles, "devices": {}}
    with tempfile.TemporaryDirectory(prefix="hwnas-chunk-gate-") as tmp:
        for name in args.devices.split(","):
            device = _pair_device(name, Path(tmp))
            runs = []
            for cycle in range(args.cycles):
                gates = list(GATES) if cycle % 2 == 0 else list(GATES)[::-1]
                for gate in gates:
                    folder = Path(tmp) / f"{name}-{cycle}-{GATES[gate]}"
                    y, seconds, again = measure(device, spec, todo, folder, args.seed + cycle, GATES[gate])
                    load.append(os.getloadavg()[0])
                    runs.append({"gate": gate, "cycle": cycle, "y": y, "seconds": seconds, "measured_again": again,
                                 "at": time.strftime("%H:%M:%S", time.gmtime())})
                    print(f"{runs[-1]['at']} {name} cycle {cycle} {gate}: {seconds:.0f} s, {again} chunks again",
                          flush=True)
            rows = []
            for i, r in enumerate(runs):
                consensus = np.median([o["y"] for j, o in enumerate(runs) if j != i], axis=0)
                q = r["y"] / consensus
                shifts = chunk_shifts(r["y"], consensus)
                rows.append({"gate": r["gate"], "cycle": r["cycle"], "at": r["at"], "seconds": round(r["seconds"], 1),
                             "measured_again": r["measured_again"],
                             "within_10": float(np.mean(np.abs(q - 1) <= 0.10)),
                             "within_5": float(np.mean(np.abs(q - 1) <= 0.05)),
                             "chunk_shifts": [round(s, 4) for s in shifts],
                             "shifted": int(sum(abs(s) > SHIFTED for s in shifts))})
            report["devices"][name] = rows
    report["load_1min"] = load
    report["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    report["machine"] = fingerprint()

    lines = ["# One slow-phase gate per profile, or one per chunk", "",
             f"Started {started}, finished {report['finished']}. {machine_line(report['machine'])} Nothing else "
             f"was running; 1-minute load {load[0]:.2f} at the start, {min(load):.2f}-{max(load):.2f} over the run "
             "(a measurement's own threads count in it).", "",
             f"{len(todo)} subnets, chunks of {CHUNK} (equal sizes), {args.cycles} cycles, each measuring them once "
             "with each gate (order swapped every cycle). Each measurement against the consensus of the others on "
             f"its device (element-wise median of their fastest runs); a chunk counts as shifted beyond "
             f"{SHIFTED:.0%}. Command: `.venv/bin/python benchmarks/chunk_gate.py --devices {args.devices} "
             f"--cycles {args.cycles} --subnets {args.subnets}`.", ""]
    for name, rows in report["devices"].items():
        lines += [f"## {name}", "", "| cycle | gate | finished | seconds | chunks measured again | within ±10% | "
                  "within ±5% | chunk shifts (%) | shifted |", "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            shifts = " ".join(f"{100 * s:+.1f}" for s in r["chunk_shifts"])
            lines.append(f"| {r['cycle']} | {r['gate']} | {r['at']} | {r['seconds']:.0f} | {r['measured_again']} | "
                         f"{r['within_10']:.2f} | "
                         f"{r['within_5']:.2f} | {shifts} | {r['shifted']} |")
        for gate in GATES:
            mine = [r for r in rows if r["gate"] == gate]
            lines.append(f"\n{gate}: {sum(r['shifted'] for r in mine)} of {sum(len(r['chunk_shifts']) for r in mine)} "
                         f"chunks shifted, mean within ±10% {np.mean([r['within_10'] for r in mine]):.2f}, "
                         f"mean {np.mean([r['seconds'] for r in mine]):.0f} s.")
        lines.append("")
    save_report(args.out, "chunk_gate", report, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
