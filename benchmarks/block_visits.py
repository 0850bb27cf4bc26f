"""How a single-thread device's block visits are spent: protocols compared on one recording.

On `--device`, every block of the default space (168) is visited in 24 interleaved rounds, all
blocks in one list, each visit as `hwprofiles._protocol.time_runs` makes it with the default
`MeasureConfig` (5 warm-up runs, then runs until 100 or 50 ms), and every visit's timed runs
are kept. Then the k = 20 adaptation subnets of every source and the 100 held-out subnets are
measured (default `MeasureConfig`), then the blocks are recorded again. Block protocols are
simulated on the recordings by taking visits and the first part of each visit:
- "re-measured": what profile_device did for a single-thread device's blocks until this
  comparison: six full visits, and for a block whose spread is wide six more, keeping the
  attempt with the narrower spread;
- "6 full visits": the same without the re-measurement;
- "12 full visits": both attempts pooled;
- "12 half visits": twelve visits, each cut at 50 runs or 25 ms;
- "24 quarter visits": what profile_device does now, every visit cut at 25 runs or 12.5 ms.
Protocols of at most 12 visits take two disjoint samples per recording (visits 0-11 and 12-23),
the others one. Each sample's block costs (fastest run) adapt every source predictor (fitted on
a benchmarks/latency_predictors.py work folder, `--work`) with the picks, scored on the held-out
subnets. Reported per protocol: timed seconds (runs only, no warm-up), the coefficient of
variation of held-out subnet over its block sum, the adapted share within ±10%, the pairs that
meet the goal, and blocks within ±10% between the first sample of the two recordings.
A caveat: a recording lasts minutes, and a sample's visits spread over the share of it they
use, so protocols using more visits also spread over more time; benchmarks/fresh_blocks.py
compares the protocols as profile_device runs them. Writes
benchmarks/results/block_visits_DEVICE.{md,json}.

    .venv/bin/python benchmarks/block_visits.py --work /tmp/hwnas-bench-lp3 --device torch-cpu
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from hwprofiles import MeasureConfig, Measurement, block_keys, fingerprint
from hwprofiles._backends import load_runner
from hwprofiles._models import block_model_for
from hwprofiles._protocol import time_runs
from predictors import FeatureSchema, within
from runners.config import DEFAULT_TASK
from supernet import DEFAULT_SPACE, Supernet
from supernet.tasks import get_task

from _common import held_out_split, machine_line, save_report
from latency_predictors import (_pair_device, adapted_scores, block_sum_cv, measure_picks_and_held_out, meets_goal,
                                source_predictors)

RESULTS = Path(__file__).parent / "results"
K, ROUNDS = 20, 24
# name: (visits per attempt, share of a visit, how the re-measurement is used: None, "narrower" or "pooled")
PROTOCOLS = {"re-measured": (6, 1.0, "narrower"), "6 full visits": (6, 1.0, None), "12 full visits": (6, 1.0, "pooled"),
             "12 half visits": (12, 0.5, None), "24 quarter visits": (24, 0.25, None)}


def record(device, net, keys, config: MeasureConfig, folder: Path, seed: int) -> tuple[list[list[list[float]]], float]:
    """Every visit's timed runs (ms) per block over ROUNDS interleaved rounds, and the seconds it took."""
    built = [block_model_for(net, k, device, folder) for k in keys]
    runners = [load_runner(device.backend, m, threads=device.threads, input_shape=(device.batch, *shape), seed=seed)
               for m, shape in built]
    rng = np.random.default_rng(seed)
    visits: list[list[list[float]]] = [[] for _ in keys]
    t0 = time.perf_counter()
    try:
        for _ in range(ROUNDS):
            for i in rng.permutation(len(keys)):
                runs: list[float] = []
                time_runs(runners[i].run, config, runs)
                visits[i].append(runs)
    finally:
        for r in runners:
            r.close()
    return visits, time.perf_counter() - t0


def cut(runs: list[float], share: float, config: MeasureConfig) -> list[float]:
    """The runs a visit with `share` of the runs and seconds would have taken (at least min_runs)."""
    out, spent = [], 0.0
    for t in runs:
        if len(out) >= config.min_runs and (len(out) >= config.max_runs * share
                                            or spent >= config.max_seconds * 1e3 * share):
            break
        out.append(t)
        spent += t
    return out


def simulate(visits: list[list[list[float]]], start: int, protocol: str, config: MeasureConfig
             ) -> tuple[list[float], float]:
    """Fastest run per block under `protocol` from visits `start`..., and the timed seconds it spent."""
    n, share, again = PROTOCOLS[protocol]
    costs, seconds = [], 0.0
    for per_block in visits:
        part = [cut(v, share, config) for v in per_block[start: start + n * (2 if again else 1)]]
        first = Measurement.from_timings([t for v in part[:n] for t in v], attempts=1,
                                         threshold=config.spread_threshold)
        seconds += sum(map(sum, part[:n])) / 1e3
        if again is None or (again == "narrower" and not first.flagged):
            costs.append(first.min_ms)
            continue
        second = Measurement.from_timings([t for v in part[n:] for t in v], attempts=2,
                                          threshold=config.spread_threshold)
        seconds += sum(map(sum, part[n:])) / 1e3
        kept = second if again == "narrower" and second.spread < first.spread else first
        costs.append(min(first.min_ms, second.min_ms) if again == "pooled" else kept.min_ms)
    return costs, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="a benchmarks/latency_predictors.py work folder")
    parser.add_argument("--device", default="torch-cpu")
    parser.add_argument("--sources", default="cpu,cpu-2t,torch-cpu,cpu-b4,cpu-s64",
                        help="source devices (the device itself is left out)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    spec, config = get_task(DEFAULT_TASK).spec, MeasureConfig()
    schema = FeatureSchema(DEFAULT_SPACE, spec)
    archs, train_idx, test_idx = held_out_split(DEFAULT_SPACE, 500, 100, args.seed)
    train, test = [archs[i] for i in train_idx[:100]], [archs[i] for i in test_idx]
    device = _pair_device(args.device, args.work)
    names = [s for s in args.sources.split(",") if s != args.device]
    sources = source_predictors(args.work, names, schema, train, args.seed, K)
    net, keys = Supernet(DEFAULT_SPACE, spec, seed=args.seed), block_keys(DEFAULT_SPACE)
    report = {"device": device.to_dict(), "machine": fingerprint(), "load_at_start": os.getloadavg(),
              "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "recordings": [], "protocols": {}}
    recordings = []
    with tempfile.TemporaryDirectory(prefix="hwnas-block-visits-") as work:
        for step in ("blocks", "subnets", "blocks"):
            load0, started = os.getloadavg()[0], time.strftime("%H:%M:%S", time.gmtime())
            if step == "subnets":
                got = measure_picks_and_held_out(device, spec, sources, test, Path(work) / "subnets", args.seed)
                report["subnets"] = {"n": len(got), "started_utc": started, "load_at_start": load0}
                continue
            visits, seconds = record(device, net, keys, config, Path(work), args.seed + len(recordings))
            recordings.append(visits)
            report["recordings"].append({"started_utc": started, "load_at_start": load0, "seconds": seconds})
            print(f"recording {len(recordings)}: {seconds:.0f} s", flush=True)
    report["load_at_end"] = os.getloadavg()
    y_test = np.array([got[a.to_json()] for a in test])
    for protocol, (n, _, again) in PROTOCOLS.items():
        starts = [0, ROUNDS // 2] if n * (2 if again else 1) <= ROUNDS // 2 else [0]
        samples = []
        for r, visits in enumerate(recordings):
            for start in starts:
                costs, seconds = simulate(visits, start, protocol, config)
                by_name = dict(zip([k.name for k in keys], costs))
                pairs = adapted_scores(sources, got, device, by_name, test, args.seed)
                samples.append({"recording": r, "start": start, "costs": costs, "seconds": seconds,
                                "cv": block_sum_cv(schema, test, y_test, by_name), "pairs": pairs})
        firsts = [s["costs"] for s in samples if s["start"] == 0]
        report["protocols"][protocol] = {
            "samples": [{k: v for k, v in s.items() if k != "costs"} for s in samples],
            "seconds": float(np.mean([s["seconds"] for s in samples])),
            "cv": float(np.mean([s["cv"] for s in samples])),
            "within_10": float(np.mean([p["within_10"] for s in samples for p in s["pairs"].values()])),
            "met": sum(meets_goal(p) for s in samples for p in s["pairs"].values()),
            "cases": len(samples) * len(names),
            "agree": within(np.array(firsts[0]), np.array(firsts[1]), 0.10)}
        print(protocol, {k: v for k, v in report["protocols"][protocol].items() if k != "samples"}, flush=True)
    lines = [f"# Block visits on {device.name}: protocols simulated on one recording", "",
             "Written by `benchmarks/block_visits.py` (see its docstring); nothing else ran.",
             f"{machine_line(report['machine'])} Started {report['started_utc']}; load average (1 min) "
             f"{report['load_at_start'][0]:.2f} at the start, {report['load_at_end'][0]:.2f} at the end.",
             f"Recordings of {ROUNDS} visits per block at {report['recordings'][0]['started_utc']} and "
             f"{report['recordings'][1]['started_utc']} UTC ({report['recordings'][0]['seconds']:.0f} and "
             f"{report['recordings'][1]['seconds']:.0f} s), the {report['subnets']['n']} subnets between them at "
             f"{report['subnets']['started_utc']}. Timed s: runs only. cv: coefficient of variation of held-out "
             "subnet over its block sum. Within ±10%: adapted predictors' mean share of the held-out subnets. "
             "Agree: blocks within ±10% between the two recordings.", "",
             "| protocol | timed s | cv | within ±10% | pairs met | agree |", "|---|---|---|---|---|---|"]
    for protocol, r in report["protocols"].items():
        lines.append(f"| {protocol} | {r['seconds']:.1f} | {r['cv']:.3f} | {r['within_10']:.2f} | "
                     f"{r['met']} of {r['cases']} | {r['agree']:.2f} |")
    save_report(args.out, f"block_visits_{device.name}", report, lines)


if __name__ == "__main__":
    main()
