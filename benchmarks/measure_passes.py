"""How many passes a multi-thread device needs: the same subnets measured again and again, apart in time.

The held-out subnets of benchmarks/latency_predictors.py (100 random members of the default
space) are measured on `--device` `--singles` times with one pass each (the protocol before
passes), and `--multi` times with the device's own number of passes (three for several
threads; `hwprofiles._protocol`, step 5), each measurement a profile folder under `--work`.
A folder that already holds the subnets is read, not measured again, so measurements taken
earlier (a latency_predictors work folder's profile of the device, say) count: name them with
`--single-from` / `--multi-from`.

Reported (fastest runs, min_ms): the pairwise agreement of the single-pass measurements
(share within ±10% and ±5%); the fastest of three single passes against the fastest of three
others; each multi-pass measurement against the fastest of all single passes and against the
other multi-pass ones. Writes benchmarks/results/measure_passes.{md,json}.

    .venv/bin/python benchmarks/measure_passes.py --work /tmp/passes --singles 6 --multi 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from hwprofiles import MeasureConfig, Profile, fingerprint, get_device, profile_device
from predictors import within
from runners.config import DEFAULT_TASK
from supernet import DEFAULT_SPACE
from supernet.tasks import get_task

from _common import held_out_split

RESULTS = Path(__file__).parent / "results"


def agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    return {"within_10": within(a, b, 0.10), "within_5": within(a, b, 0.05),
            "median_change": float(np.median(b / a - 1))}


def measure(folder: Path, device, archs, config: MeasureConfig, onnx: Path) -> tuple[np.ndarray, dict]:
    stored = set(Profile.load(folder).table["arch"]) if (folder / "profile.json").exists() else set()
    t0, load0, started = time.perf_counter(), os.getloadavg()[0], time.strftime("%H:%M:%S", time.gmtime())
    prof = profile_device(device, DEFAULT_SPACE, get_task(DEFAULT_TASK).spec, n_samples=len(archs), archs=archs,
                          out_dir=folder, seed=0, config=config, onnx_cache=onnx, repeat_fraction=0.0, progress=False)
    got = dict(zip(prof.table["arch"], prof.latency("min_ms")))
    info = {"folder": str(folder), "created": prof.meta["created"], "passes": config.passes_for(device.threads),
            "measured_now": any(a.to_json() not in stored for a in archs), "started_utc": started, "load_at_start": load0,
            "load_at_end": os.getloadavg()[0], "seconds": round(time.perf_counter() - t0, 1)}
    return np.array([got[a.to_json()] for a in archs]), info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu-2t")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--singles", type=int, default=6)
    parser.add_argument("--multi", type=int, default=2)
    parser.add_argument("--single-from", type=Path, nargs="*", default=[], help="profile folders of earlier single passes")
    parser.add_argument("--multi-from", type=Path, nargs="*", default=[], help="profile folders of earlier multi-pass runs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", default="", help="a paragraph for the report (how earlier folders were measured)")
    args = parser.parse_args()
    device = get_device(args.device)
    all_archs, _, test_idx = held_out_split(DEFAULT_SPACE, 500, 100, 0)  # latency_predictors' defaults
    archs = [all_archs[i] for i in test_idx]
    onnx = args.work / "onnx"
    args.work.mkdir(parents=True, exist_ok=True)
    report = {"device": device.to_dict(), "machine": fingerprint(), "n": len(archs), "load_at_start": os.getloadavg(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    runs = {}
    for kind, count, earlier, config in (("single", args.singles, args.single_from, replace(MeasureConfig(), passes=1)),
                                         ("multi", args.multi, args.multi_from, MeasureConfig())):
        y, info = [], []
        for i in range(count):
            folder = args.work / f"{kind}-{i + 1}"
            if i < len(earlier) and not folder.exists():
                shutil.copytree(earlier[i], folder)
            lat, meta = measure(folder, device, archs, config, onnx)
            y.append(lat)
            info.append(meta)
            print(f"{kind}-{i + 1}: {meta}", flush=True)
        runs[kind] = (np.array(y), info)
    single, multi = runs["single"][0], runs["multi"][0]
    report["measurements"] = {k: v[1] for k, v in runs.items()}
    report["single_pairs"] = {f"{i + 1}-{j + 1}": agreement(single[i], single[j])
                              for i, j in itertools.combinations(range(len(single)), 2)}
    if len(single) >= 6:
        report["min3_vs_min3"] = {"1-3 vs 4-6": agreement(single[:3].min(0), single[3:6].min(0)),
                                  "2-4 vs 5,6,1": agreement(single[1:4].min(0), single[[4, 5, 0]].min(0))}
    report["multi_vs_all_singles"] = [agreement(single.min(0), m) for m in multi]
    report["multi_pairs"] = {f"{i + 1}-{j + 1}": agreement(multi[i], multi[j])
                             for i, j in itertools.combinations(range(len(multi)), 2)}
    report["load_at_end"] = os.getloadavg()
    report["note"] = args.note
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "measure_passes.json").write_text(json.dumps(report, indent=1))
    (args.out / "measure_passes.md").write_text(markdown(report))
    print(markdown(report))


def markdown(r: dict) -> str:
    m = r["machine"]
    cell = lambda a: f"{a['within_10']:.2f} / {a['within_5']:.2f}"  # noqa: E731
    lines = [f"# Measurement passes on `{r['device']['name']}` ({r['device']['threads']} threads)", "",
             f"{m['cpu_model']}, {m['cpu_count']} cores, onnxruntime {m['onnxruntime']}; {r['n']} held-out subnets of "
             f"benchmarks/latency_predictors.py, fastest runs (min_ms). Written {r['started']}. Each measurement "
             "(folder, UTC start, load average at its start and end; a folder measured earlier is read, with its "
             "own creation time):", ""]
    for kind, info in r["measurements"].items():
        for i, x in enumerate(info):
            when = f"measured now, {x['started_utc']}, load {x['load_at_start']:.2f} -> {x['load_at_end']:.2f}, " \
                   f"{x['seconds']:.0f} s" if x["measured_now"] else f"measured earlier (created {x['created']})"
            lines.append(f"- {kind}-{i + 1}: {x['passes']} pass(es), {when}")
    lines += ["", "Load averages count this process's own intra-op threads (two per model measured, spinning); "
              "nothing else ran.", *(["", r["note"]] if r.get("note") else []), "", "Cells: share within ±10% / within ±5%.", "",
              "## Single passes against each other", "", "| pair | agreement | median change |", "|---|---|---|"]
    lines += [f"| {k} | {cell(a)} | {a['median_change']:+.3f} |" for k, a in r["single_pairs"].items()]
    if "min3_vs_min3" in r:
        lines += ["", "## Fastest of three single passes against the fastest of three others", "",
                  "| sets | agreement |", "|---|---|"]
        lines += [f"| {k} | {cell(a)} |" for k, a in r["min3_vs_min3"].items()]
    lines += ["", "## Measurements in passes (the device's default)", "", "| measurement | against the fastest of all "
              "single passes | median change |", "|---|---|---|"]
    lines += [f"| multi-{i + 1} | {cell(a)} | {a['median_change']:+.3f} |" for i, a in enumerate(r["multi_vs_all_singles"])]
    if r["multi_pairs"]:
        lines += ["", "| pair of measurements in passes | agreement | median change |", "|---|---|---|"]
        lines += [f"| {k} | {cell(a)} | {a['median_change']:+.3f} |" for k, a in r["multi_pairs"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
