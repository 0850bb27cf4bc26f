"""How repeatable each measurement protocol is on this machine, for the same time spent.

The same 10 ONNX subnets of the default space (its smallest, its largest, 8 random) are
measured again and again with each protocol in turn (protocols alternate, so a slow phase
of the machine hits all of them alike). For each protocol: the share of (model, repetition)
fastest-run figures within ±10% (and ±5%) of that model's median over the repetitions, the
largest deviation, and the seconds one measurement of the 10 models took.

A shared machine has phases of seconds in which every run is 25-60% slower; a measurement
that falls wholly inside one is off by as much. The slow-phase gate (hwprofiles._protocol,
step 2) measures such rounds again after a pause.

    .venv/bin/python benchmarks/measure_protocol.py            # 10 repetitions (about 4 min)
    .venv/bin/python benchmarks/measure_protocol.py --reps 3   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from hwprofiles import MeasureConfig, fingerprint, get_device, measure_models
from hwprofiles._models import model_for
from runners import pipeline
from runners.config import RunConfig
from supernet import Supernet

RESULTS = Path(__file__).parent / "results"

PROTOCOLS = {
    "3 rounds x 0.1 s, no gate (the default before 2026-11-22)": MeasureConfig(
        warmup=10, min_runs=20, max_runs=200, max_seconds=0.1, rounds=3, gate=0),
    "6 rounds x 0.05 s, no gate": replace(MeasureConfig(), gate=0),
    "6 rounds x 0.05 s, slow-phase gate (the default now)": MeasureConfig(),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args()

    config = RunConfig()
    space = config.space_obj()
    pipeline.pin_torch_threads(1)
    spec = pipeline.load_task(config).spec
    net = Supernet(space, spec, seed=0)
    device = get_device("cpu")
    archs = [space.smallest(), space.largest(), *(space.sample(np.random.default_rng(i)) for i in range(8))]
    load_start = os.getloadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    minima = {name: [] for name in PROTOCOLS}
    seconds = {name: [] for name in PROTOCOLS}
    with tempfile.TemporaryDirectory() as folder:
        models = [model_for(net, a, device, Path(folder)) for a in archs]
        for rep in range(args.reps):
            for name, protocol in PROTOCOLS.items():
                t0 = time.perf_counter()
                measured = measure_models(models, device, spec, protocol, seed=rep)
                seconds[name].append(time.perf_counter() - t0)
                minima[name].append([m.min_ms for m in measured])
                print(f"rep {rep} {name}: {seconds[name][-1]:.1f} s", flush=True)
    rows = []
    for name, values in minima.items():
        v = np.asarray(values)
        rel = np.abs(v / np.median(v, axis=0) - 1)
        rows.append({"protocol": name, "config": asdict(PROTOCOLS[name]), "within_10pct": float(np.mean(rel <= 0.10)),
                     "within_5pct": float(np.mean(rel <= 0.05)), "max_deviation": float(rel.max()),
                     "seconds_per_measurement": float(np.mean(seconds[name])), "seconds_max": float(np.max(seconds[name])),
                     "min_ms": v.tolist()})
    machine = fingerprint()
    result = {"command": f"python benchmarks/measure_protocol.py --reps {args.reps}", "started": started,
              "machine": machine, "load_average_at_start": load_start, "load_average_at_end": os.getloadavg(),
              "models": [a.to_json() for a in archs], "protocols": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "measure_protocol.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Measurement protocols: repeatability at equal cost",
        "",
        f"Machine: {machine.get('cpu_model')}, {machine.get('cpu_count')} cores; load average at start "
        f"{load_start[0]:.2f}, at end {result['load_average_at_end'][0]:.2f}; nothing else running; {started}. "
        f"Command: `{result['command']}`.",
        "",
        f"10 ONNX subnets of the default space (smallest, largest, 8 random), device `cpu` (onnxruntime, 1 thread), "
        f"measured {args.reps} times with each protocol, the protocols alternating. A figure is a model's fastest "
        "run (`min_ms`, what the default predictor is fitted to); it counts as repeatable when it lies within ±10% "
        "of the same model's median over the repetitions.",
        "",
        "| protocol | within ±10% | within ±5% | largest deviation | seconds per measurement of 10 models "
        "(mean, max) |",
        "|---|---|---|---|---|",
        *(f"| {r['protocol']} | {r['within_10pct']:.1%} | {r['within_5pct']:.1%} | {r['max_deviation']:.0%} | "
          f"{r['seconds_per_measurement']:.1f}, {r['seconds_max']:.1f} |" for r in rows),
    ]
    (RESULTS / "measure_protocol.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
