"""Train once, search every device: one `hwnas run --devices ...`, the cross-device matrix.

One run of the default job on several devices (default: cpu, cpu-2t, torch-cpu; add cuda
and torch-cuda on a machine with a GPU): the supernet trained once, each device profiled and
searched, every device's front exported and then measured on every device (RUN/matrix.json).
From those files this script writes:

- stage times (run.json) and the accuracy cache's hits per device search (search.json): the
  second and third searches read what the first evaluated;
- the specialisation result, per measuring device: each model of another device's front set
  against the measuring device's own front there. "Own choice" is the own front's fastest model
  at least as accurate (test accuracy); the ratio foreign / own latency above 1 means the
  foreign model is slower at equal accuracy. A second column relaxes "at least as accurate" to
  "within the binomial standard error" (`supernet.within_noise`).

    .venv/bin/python benchmarks/multi_device.py                          # ~15 minutes, idle machine
    .venv/bin/python benchmarks/multi_device.py --devices cpu,cpu-2t,torch-cpu,cuda,torch-cuda
    .venv/bin/python benchmarks/multi_device.py --from-existing          # figures from the run in --out

Writes benchmarks/results/multi_device.{json,md} and multi_device_matrix.csv. A timing
benchmark: run it with nothing else computing on the machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from _common import stage_seconds, timed_hwnas

RESULTS = Path(__file__).resolve().parent / "results"


def specialisation(matrix: dict) -> pd.DataFrame:
    """One row per (measuring device, foreign front model): its latency there against the
    own front's fastest model at least as accurate (and within noise of it)."""
    from supernet import within_noise

    stat = matrix["statistic"]
    frame = pd.DataFrame(matrix["rows"])
    n_test = matrix["task"]["n_test"]
    rows = []
    for device in matrix["devices"]:
        here = frame[frame.measured_on == device]
        own = here[here.front_of == device]
        for r in here[here.front_of != device].itertuples():
            strict = own[own.test_accuracy >= r.test_accuracy]
            noisy = own[[a >= r.test_accuracy or within_noise(a, r.test_accuracy, n_test) for a in own.test_accuracy]]
            row = {"measured_on": device, "front_of": r.front_of, "model": r.model, "arch": r.arch_description,
                   "also_in_own_front": bool((own.arch == r.arch).any()),
                   "test_accuracy": r.test_accuracy, "latency_ms": getattr(r, stat),
                   "dominated_by_own_front": bool(r.dominated_by_own_front)}
            for key, match in (("", strict), ("_within_noise", noisy)):
                best = match.sort_values(stat).iloc[0] if len(match) else None
                row[f"own_model{key}"] = None if best is None else best.model
                row[f"own_latency_ms{key}"] = None if best is None else float(best[stat])
                row[f"ratio{key}"] = None if best is None else float(getattr(r, stat) / best[stat])
            rows.append(row)
    return pd.DataFrame(rows)


def summarise(run_dir: Path) -> dict:
    matrix = json.loads((run_dir / "matrix.json").read_text())
    stages = stage_seconds(run_dir)
    searches, fronts = {}, {}
    for device in matrix["devices"]:
        unit = run_dir / "devices" / Path(device).stem
        record = json.loads((unit / "search/search.json").read_text())
        searches[device] = record.get("accuracy_cache", {})
        manifest = json.loads((unit / "export/manifest.json").read_text())
        models = manifest["models"]
        front = [m for m in models if m["kind"] == "front"]
        off = [m["latency_off_by_more_than_10pct"] for m in models if "latency_off_by_more_than_10pct" in m]
        fronts[device] = {"front_models": len(front),
                          "exported_within_10pct": 1.0 - float(np.mean(off)) if off else None}
    spec = specialisation(matrix)
    per_device = {}
    for device, part in spec.groupby("measured_on", sort=False):
        strict, noisy = part.ratio.dropna(), part.ratio_within_noise.dropna()
        per_device[device] = {
            "foreign_models": len(part), "also_in_own_front": int(part.also_in_own_front.sum()),
            "dominated_by_own_front": int(part.dominated_by_own_front.sum()),
            "matched": len(strict), "slower_than_own": int((strict > 1).sum()),
            "median_ratio": float(strict.median()) if len(strict) else None,
            "max_ratio": float(strict.max()) if len(strict) else None,
            "matched_within_noise": len(noisy),
            "median_ratio_within_noise": float(noisy.median()) if len(noisy) else None,
        }
    return {"stage_seconds": stages, "total_seconds": round(sum(stages.values()), 1), "statistic": matrix["statistic"],
            "devices": matrix["devices"], "accuracy_cache": searches, "fronts": fronts,
            "specialisation": per_device, "pairs": json.loads(spec.to_json(orient="records"))}


def markdown(result: dict) -> str:
    s, m = result["summary"], result["machine"]
    stat = s["statistic"]
    lines = [f"# Train once, search every device: {', '.join(s['devices'])}", "",
             f"Machine: {m.get('cpu_model')}, {m.get('cpu_count')} cores, GPU: {m.get('gpu_name') or 'none'}; "
             f"load average {result['load_average_at_start'][0]:.2f} at the start, "
             f"{result['load_average_at_end'][0]:.2f} at the end. Command: `{result['command']}` "
             f"(started {result['started']}).", "",
             "| stage | seconds |", "|---|---|", *[f"| {k} | {v:.1f} |" for k, v in s["stage_seconds"].items()],
             f"| **total (stages)** | **{s['total_seconds']:.1f}** |",
             f"| wall time of the command | {result['wall_seconds']:.1f} |", "",
             "## Per device", "",
             "| device | front models | exported within ±10% of predicted | search: cache hits | new evaluations |",
             "|---|---|---|---|---|"]
    for d in s["devices"]:
        f, c = s["fronts"][d], s["accuracy_cache"].get(d, {})
        share = "-" if f["exported_within_10pct"] is None else f"{f['exported_within_10pct']:.0%}"
        lines.append(f"| {d} | {f['front_models']} | {share} | {c.get('hits', '-')} | {c.get('new_evaluations', '-')} |")
    lines += ["", f"## Specialisation ({stat}, measured on each device)", "",
              "Each model of another device's front, measured on this device, against this device's own front "
              "there: the own front's fastest model at least as accurate (test accuracy). Ratio = foreign latency / "
              "own latency; above 1, the model searched for another device is slower here at equal accuracy. "
              "A foreign model with the same architecture as one of the own front's counts as a ratio of 1.", "",
              "| measured on | foreign models | same arch in own front | dominated by own front | matched | "
              "slower than own | median ratio | max ratio | matched within noise | median ratio within noise |",
              "|---|---|---|---|---|---|---|---|---|---|"]

    def fmt(v):
        return "-" if v is None else f"{v:.2f}"

    for d, r in s["specialisation"].items():
        lines.append(f"| {d} | {r['foreign_models']} | {r['also_in_own_front']} | {r['dominated_by_own_front']} | "
                     f"{r['matched']} | "
                     f"{r['slower_than_own']} | {fmt(r['median_ratio'])} | {fmt(r['max_ratio'])} | "
                     f"{r['matched_within_noise']} | {fmt(r['median_ratio_within_noise'])} |")
    lines += ["", "Every pair: multi_device.json (`summary.pairs`); every measurement: multi_device_matrix.csv.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="cpu,cpu-2t,torch-cpu")
    parser.add_argument("--out", type=Path, default=Path("/tmp/hwnas-multi-device"))
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--from-existing", action="store_true", help="figures from the run already in --out")
    parser.add_argument("hwnas_args", nargs="*", help="more `hwnas run` options, after --")
    args = parser.parse_args()
    run_dir = args.out / "run"
    command = f"python benchmarks/multi_device.py --devices {args.devices}"
    previous = args.results / "multi_device.json"
    if args.from_existing:
        result = json.loads(previous.read_text())
    else:
        result = timed_hwnas(["run", "--run", str(run_dir), "--devices", args.devices, *args.hwnas_args], args.out,
                             command)
    result["summary"] = summarise(run_dir)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "multi_device.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    shutil.copy(run_dir / "matrix.csv", args.results / "multi_device_matrix.csv")
    text = markdown(result)
    (args.results / "multi_device.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
