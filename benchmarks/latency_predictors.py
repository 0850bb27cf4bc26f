"""Latency predictors on this machine's `cpu` device: accuracy versus profiled samples,
the repeatability ceiling, profiling time, and few-sample adaptation to other settings.

One profile of `--total` subnets (default 500) of the default space on the input shape of
`--task` (default: the main job's task); a fixed held-out set of `--held-out` random subnets (default 100, never trained
on); training sets are prefixes of the rest (coverage subnets first) of sizes `--sizes`.
Adaptation (monotone recalibration, kept for comparison with earlier runs): the best cpu
predictor, recalibrated with k measurements of `cpu-2t` (onnxruntime, 2 threads) and
`torch-cpu` (torch eager, 1 thread), scored on the same held-out subnets measured there.

Adaptation between every ordered pair of `--devices` (cpu, cpu-2t, torch-cpu and two
device TOMLs: batch 4, and sequence length 64): each device is profiled on the first
`--pair-train` training subnets, the held-out set and its blocks; its full-profile
predictor (min_ms) is the source. For each pair the source picks 20 subnets
(`predictors.adaptation_archs`), measured on the target; k = 5, 10, 20 of them (prefixes)
adapt it (`transfer` with the target's blocks, `transfer` without, `calibrated`), and the
same k fit predictors from scratch (lookup table on the target's blocks, ridge). Everything
is scored on the target's held-out subnets next to the target's own full-profile predictor.
Writes benchmarks/results/latency_predictors.{json,md} and latency_predictors_pairs.csv.

    .venv/bin/python benchmarks/latency_predictors.py            # ~60 minutes, on an idle machine
    .venv/bin/python benchmarks/latency_predictors.py --total 60 --held-out 20 --sizes 20,40 --pair-train 30 --quick
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # fitting uses one BLAS thread: timing runs beside it
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import shutil
import tempfile
from dataclasses import replace
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hwprofiles import DeviceSpec, MeasureConfig, Profile, coverage_archs, fingerprint, get_device, profile_device
from predictors import (DEFAULT_NAMES, FeatureSchema, adaptation_archs, block_costs_of, build_latency_predictor,
                        compare_predictors, kendall_tau, latency_metrics, within)
from supernet import DEFAULT_SPACE
from runners.config import DEFAULT_TASK
from supernet.tasks import get_task

from _common import held_out_split

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=500)
    parser.add_argument("--held-out", type=int, default=100)
    parser.add_argument("--sizes", default="25,50,100,200,400")
    parser.add_argument("--adapt-pool", type=int, default=20)
    parser.add_argument("--blocks", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--fast-samples", type=int, default=60, help="extra subnets profiled with the fast preset")
    parser.add_argument("--quick", action="store_true", help="short protocol, for trying the script out")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--work", type=Path, default=None, help="profiles folder (default: a temp folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--task", default=DEFAULT_TASK, help="task whose input shape is profiled")
    parser.add_argument("--devices", default="cpu,cpu-2t,torch-cpu,cpu-b4,cpu-s64",
                        help="devices of the pairwise adaptation table (cpu-b4, cpu-s64: TOMLs written to --work)")
    parser.add_argument("--pair-train", type=int, default=200, help="subnets of each device's full profile")
    parser.add_argument("--adapt-rounds", type=int, default=None,
                        help="measure the adaptation subnets on each target with this many rounds (default: "
                             "the profile's) in a folder of their own; still 20 subnets")
    parser.add_argument("--pair-targets", default=None,
                        help="targets of the pairwise table (comma separated; default: every device)")
    parser.add_argument("--refit", action="store_true",
                        help="profiles in --work are complete: refit only, keep the recorded start time and load")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    config = MeasureConfig(warmup=2, min_runs=5, max_runs=20, max_seconds=0.01, rounds=2) if args.quick \
        else MeasureConfig()
    spec = get_task(args.task).spec
    space, seed = DEFAULT_SPACE, args.seed
    work = args.work or Path(tempfile.mkdtemp(prefix="hwnas-bench-"))
    cache = work / "onnx"
    report: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "loadavg_start": os.getloadavg(), "fingerprint": fingerprint(), "config": config.to_dict(),
                    "task": args.task, "spec": spec.to_dict(), "total": args.total, "held_out": args.held_out}
    previous = args.out / "latency_predictors.json"
    if args.refit and previous.exists():
        old = json.loads(previous.read_text())
        report.update({k: old[k] for k in ("started", "loadavg_start", "loadavg_end", "finished") if k in old})
        report["refitted"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"load average {os.getloadavg()}", flush=True)

    # ------------------------------------------------------------------ profile cpu
    archs, train_idx, test_idx = held_out_split(space, args.total, args.held_out, seed)  # coverage first
    n_cover = len(coverage_archs(space, seed))
    cpu = profile_device("cpu", space, spec, n_samples=args.total, out_dir=work / "cpu", seed=seed, blocks=args.blocks,
                         config=config, onnx_cache=cache, repeat_fraction=0.1, progress=True)
    pos = {a: i for i, a in enumerate(cpu.table["arch"])}
    order = [pos[a.to_json()] for a in archs]
    y = cpu.latency("median_ms")[order]
    y_min = cpu.latency("min_ms")[order]
    rep_min = cpu.repeatability_of("min_ms")
    secs = cpu.meta["seconds"]
    per_sample = secs["subnets"] / args.total
    rep = cpu.repeatability
    report["profile"] = {"seconds": secs, "seconds_per_subnet": per_sample, "flagged": int(cpu.table["flagged"].sum()),
                         "median_ms_range": [float(y.min()), float(y.max())],
                         "repeatability": rep.to_dict() if rep else None, "n_blocks": len(cpu.block_costs()),
                         "repeatability_min_ms": rep_min.to_dict() if rep_min else None}
    print(f"profiled {args.total} subnets: {per_sample:.2f} s per subnet; repeatability {rep}", flush=True)

    # ------------------------------------------------------------------ accuracy vs samples
    schema = FeatureSchema(space, spec)
    test = ([archs[i] for i in test_idx], y[test_idx])
    curve = []
    names = list(DEFAULT_NAMES)
    for n in sizes:
        idx = train_idx[:n]
        train = ([archs[i] for i in idx], y[idx])
        _, table = compare_predictors(schema, cpu.device, train, test, names=names, seed=seed)
        if cpu.block_costs():
            _, blocks_table = compare_predictors(schema, cpu.device, train, test, names=["lut", "hybrid"],
                                                 block_costs=cpu.block_costs(), seed=seed)
            blocks_table["predictor"] += "+blocks"
            table = pd.concat([table, blocks_table], ignore_index=True)
        table["n_samples"] = n
        table["profiling_minutes"] = n * per_sample / 60
        table.loc[table["predictor"].str.endswith("+blocks"), "profiling_minutes"] += (
            secs.get("blocks", 0) + secs.get("block_export", 0)) / 60  # block export counted apart since block_passes
        curve.append(table)
        best = table.sort_values(["within_10", "mape"], ascending=[False, True]).iloc[0]
        print(f"n={n}: best {best.predictor} ±10% {best.within_10:.3f} MAPE {best.mape:.2f}% tau {best.kendall_tau:.3f}",
              flush=True)
    curve_df = pd.concat(curve, ignore_index=True)
    curve_df["target"] = "median_ms"
    # The same subnets, fitting the fastest run (min_ms): what other work on the machine moves least.
    min_curve = []
    for n in sizes:
        idx = train_idx[:n]
        _, table = compare_predictors(schema, cpu.device, ([archs[i] for i in idx], y_min[idx]),
                                      (test[0], y_min[test_idx]), names=names, seed=seed)
        table["n_samples"], table["profiling_minutes"], table["target"] = n, n * per_sample / 60, "min_ms"
        min_curve.append(table)
    curve_df = pd.concat([curve_df, *min_curve], ignore_index=True)
    report["curve"] = json.loads(curve_df.to_json(orient="records"))

    # ------------------------------------------------------------------ few-sample adaptation
    largest = sizes[-1]
    idx = train_idx[:largest]
    pool_idx = train_idx[n_cover : n_cover + args.adapt_pool]  # random subnets, not the coverage ones
    adapt_pool = len(pool_idx)  # fewer than --adapt-pool when the profile is small (--quick)
    target_archs = [archs[i] for i in pool_idx] + test[0]
    targets = {}
    for name in ("cpu-2t", "torch-cpu"):
        t0 = time.perf_counter()
        targets[name] = profile_device(name, space, spec, n_samples=len(target_archs), archs=target_archs,
                                       out_dir=work / name, seed=seed, config=config, onnx_cache=cache,
                                       repeat_fraction=0.1, progress=True)
    adaptation = []
    for stat, y_src in (("median_ms", y), ("min_ms", y_min)):
        rows_n = curve_df[(curve_df["n_samples"] == largest) & (curve_df["target"] == stat)
                          & ~curve_df["predictor"].str.endswith("+blocks")]  # sources built from subnets alone
        src_name = rows_n.sort_values(["within_10", "mape"], ascending=[False, True]).iloc[0]["predictor"]
        source = build_latency_predictor(src_name, schema, cpu.device, seed=seed).fit_archs([archs[i] for i in idx],
                                                                                   y_src[idx])
        for name, prof in targets.items():
            got = dict(zip(prof.table["arch"], prof.latency(stat)))
            y_pool = np.array([got[a.to_json()] for a in target_archs[: adapt_pool]])
            y_test = np.array([got[a.to_json()] for a in test[0]])
            ceiling = prof.repeatability_of(stat)
            row = {"device": name, "target": stat, "source": src_name,
                   "repeatability": ceiling.to_dict() if ceiling else None,
                   "unadapted": latency_metrics(y_test, source.predict_archs(test[0])),
                   "correlation_with_cpu": float(np.corrcoef(np.log(y_test), np.log(y_src[test_idx]))[0, 1])}
            for k in (5, 10, 20):
                if k > adapt_pool:
                    continue
                draws = [np.arange(k)] if k == adapt_pool else \
                    [np.random.default_rng(seed + d).choice(adapt_pool, k, replace=False) for d in range(5)]
                adapted, scratch = [], []
                for d in draws:
                    pool = [target_archs[i] for i in d]
                    pred = source.adapt(pool, y_pool[d], prof.device, method="calibrated").predict_archs(test[0])
                    adapted.append((within(y_test, pred, 0.10), kendall_tau(y_test, pred),
                                    latency_metrics(y_test, pred)["mape"]))
                    own = build_latency_predictor("lut", schema, prof.device).fit_archs(pool, y_pool[d]).predict_archs(test[0])
                    scratch.append((within(y_test, own, 0.10), kendall_tau(y_test, own)))
                a, s_ = np.array(adapted), np.array(scratch)
                row[f"k{k}"] = {"within_10": float(a[:, 0].mean()), "kendall_tau": float(a[:, 1].mean()),
                                "mape": float(a[:, 2].mean()), "draws": len(draws),
                                "scratch_lut_within_10": float(s_[:, 0].mean()),
                                "scratch_lut_tau": float(s_[:, 1].mean())}
            adaptation.append(row)
            print(f"adapt to {name} ({stat}): " + ", ".join(
                f"k={k}: ±10% {row[f'k{k}']['within_10']:.3f} tau {row[f'k{k}']['kendall_tau']:.3f}"
                for k in (5, 10, 20) if f"k{k}" in row), flush=True)
    report["adaptation"] = adaptation

    # ------------------------------------------------------------------ adaptation between every pair
    pairs_df = pair_table(args, schema, archs, train_idx, test_idx, config, work, cache)
    report["pairs"] = json.loads(pairs_df.to_json(orient="records"))
    report["pair_devices"] = pairs_df.attrs
    report["adapt_rounds"] = args.adapt_rounds

    # ------------------------------------------------------------------ fast preset (the main job's profile)
    if args.fast_samples:
        fast = profile_device("cpu", space, spec, n_samples=args.fast_samples, out_dir=work / "cpu-fast",
                              seed=seed + 100, config=MeasureConfig.fast(), repeat_fraction=0.2, progress=True)
        from predictors import fit_and_select

        best, table = fit_and_select(fast, seed=seed)
        report["fast_preset"] = {"n_samples": args.fast_samples, "seconds": fast.meta["seconds"],
                                 "seconds_per_subnet": fast.meta["seconds"]["subnets"] / args.fast_samples,
                                 "repeatability": fast.repeatability.to_dict() if fast.repeatability else None,
                                 "best": best.name,
                                 "held_out_on_cpu_test_set": latency_metrics(test[1], best.predict_archs(test[0])),
                                 "table": json.loads(table.to_json(orient="records"))}
        print(f"fast preset: {report['fast_preset']['seconds_per_subnet']:.2f} s per subnet", flush=True)

    if not args.refit:
        report["loadavg_end"] = os.getloadavg()
        report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency_predictors.json").write_text(json.dumps(report, indent=1, default=float))
    curve_df.to_csv(args.out / "latency_predictors_curve.csv", index=False)
    pairs_df.to_csv(args.out / "latency_predictors_pairs.csv", index=False)
    (args.out / "latency_predictors.md").write_text(markdown(report, curve_df))
    if not args.quick:  # keep the cpu profile (parquet + JSON) next to the figures
        keep = args.out / "profile-cpu"
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(work / "cpu", keep)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    print((args.out / "latency_predictors.md").read_text())


EXTRA_DEVICES = {  # device TOMLs: another batch size, another sequence length
    "cpu-b4": '[device]\nname = "cpu-b4"\nbackend = "ort-cpu"\nthreads = 1\nbatch = 4\n',
    "cpu-s64": '[device]\nname = "cpu-s64"\nbackend = "ort-cpu"\nthreads = 1\nbatch = 1\nseq_len = 64\n',
}
PAIR_KS = (5, 10, 20)
GOAL = {"within_10": 0.95, "kendall_tau": 0.9}  # at k = 20 on the held-out subnets


def _pair_device(name: str, work: Path) -> DeviceSpec:
    if name in EXTRA_DEVICES:
        path = work / f"{name}.toml"
        path.write_text(EXTRA_DEVICES[name])
        return get_device(path)
    return get_device(name)


def _full_predictor(schema: FeatureSchema, device: DeviceSpec, archs: list, y: np.ndarray, seed: int):
    """The device's own predictor: the best of the default estimators on an inner 75/25 split, refitted on all."""
    cut = int(0.75 * len(archs))
    order = np.random.default_rng(seed).permutation(len(archs))
    fit_i, val_i = order[:cut], order[cut:]
    pick = lambda idx: ([archs[i] for i in idx], y[idx])  # noqa: E731
    _, table = compare_predictors(schema, device, pick(fit_i), pick(val_i), names=DEFAULT_NAMES, seed=seed)
    name = table.sort_values(["within_10", "mape"], ascending=[False, True]).iloc[0]["predictor"]
    pred = build_latency_predictor(name, schema, device, seed=seed, profile={"target": "min_ms"})
    return pred.fit_archs(archs, y)


def source_predictors(work: Path, names: list[str], schema: FeatureSchema, train: list, seed: int,
                      k: int = max(PAIR_KS)) -> dict[str, tuple]:
    """name -> (the device's full predictor fitted on `train` from its profile in `work`, its k picks)."""
    out = {}
    for name in names:
        prof = Profile.load(work / name)
        got = dict(zip(prof.table["arch"], prof.latency("min_ms")))
        full = _full_predictor(schema, _pair_device(name, work), train, np.array([got[a.to_json()] for a in train]),
                               seed)
        out[name] = (full, adaptation_archs(full, k, seed=seed))
    return out


def adapted_scores(sources: dict[str, tuple], measured: dict[str, float], device: DeviceSpec,
                   block_costs: dict[str, float], test: list, seed: int) -> dict[str, dict[str, float]]:
    """Each source predictor adapted to `device` with its picks' latencies in `measured` (arch JSON ->
    ms) and `block_costs`: its share of `test` within ±10% of `measured` and Kendall tau."""
    y_test = np.array([measured[a.to_json()] for a in test])
    out = {}
    for name, (full, picks) in sources.items():
        y = np.array([measured[a.to_json()] for a in picks])
        pred = full.adapt(picks, y, device, block_costs=block_costs, seed=seed).predict_archs(test)
        scores = latency_metrics(y_test, pred)
        out[name] = {"within_10": scores["within_10"], "kendall_tau": scores["kendall_tau"]}
    return out


def meets_goal(scores: dict[str, float]) -> bool:
    """Whether an adapted predictor's scores (within_10, kendall_tau) meet GOAL."""
    return all(scores[key] >= bar for key, bar in GOAL.items())


def measure_picks_and_held_out(device: DeviceSpec, spec, sources: dict[str, tuple], test: list, folder: Path,
                               seed: int) -> dict[str, float]:
    """Every source's picks and the held-out subnets `test` measured on `device` by profile_device (default
    `MeasureConfig`, export helper): arch JSON -> fastest run (ms)."""
    archs = list(dict.fromkeys([a for _, picks in sources.values() for a in picks] + test))
    prof = profile_device(device, DEFAULT_SPACE, spec, n_samples=len(archs), archs=archs, out_dir=folder, seed=seed,
                          repeat_fraction=0.0, progress=False, export_workers=2)
    return dict(zip(prof.table["arch"], prof.latency("min_ms")))


def block_sum_cv(schema: FeatureSchema, archs: list, y: np.ndarray, block_costs: dict[str, float]) -> float:
    """Coefficient of variation of each subnet's latency `y` over its block sum (block counts @ costs,
    the transfer predictor's B(x)): how far the blocks explain the subnets up to one factor."""
    sums = schema.transform(archs, ["blocks"]) @ np.array([block_costs[n] for n in schema.names(["blocks"])])
    ratio = y / sums
    return float(ratio.std() / ratio.mean())


def pair_table(args, schema, archs, train_idx, test_idx, config, work: Path, cache: Path) -> pd.DataFrame:
    """Adaptation between every ordered pair of `args.devices` (see the module docstring); one row per pair, k, method."""
    devices = {n: _pair_device(n, work) for n in args.devices.split(",")}
    train = [archs[i] for i in train_idx[: args.pair_train]]
    test = [archs[i] for i in test_idx]
    profiles, full, blocks = {}, {}, {}
    for name, dev in devices.items():
        profiles[name] = profile_device(dev, schema.space, schema.spec, n_samples=len(train) + len(test),
                                        archs=train + test, out_dir=work / name, seed=args.seed, blocks=True,
                                        config=config, onnx_cache=cache, repeat_fraction=0.1, progress=True)
        got = dict(zip(profiles[name].table["arch"], profiles[name].latency("min_ms")))
        full[name] = _full_predictor(schema, dev, train, np.array([got[a.to_json()] for a in train]), args.seed)
        blocks[name] = block_costs_of(profiles[name], "min_ms")
    picks = {name: adaptation_archs(full[name], max(PAIR_KS), seed=args.seed) for name in devices}
    # every source's picks, measured on every other device
    extra_of = {name: list(dict.fromkeys(a for src, chosen in picks.items() if src != name for a in chosen))
                for name in devices}
    for name, dev in devices.items():
        extra = extra_of[name]
        profiles[name] = profile_device(dev, schema.space, schema.spec, n_samples=len(extra), archs=extra,
                                        out_dir=work / name, seed=args.seed, blocks=True, config=config,
                                        onnx_cache=cache, repeat_fraction=0.0, progress=True)
    targets = args.pair_targets.split(",") if args.pair_targets else list(devices)
    picked_on = {}  # target -> its measurements of the adaptation subnets
    for name in targets:
        picked_on[name] = dict(zip(profiles[name].table["arch"], profiles[name].latency("min_ms")))
        if args.adapt_rounds:  # the same subnets measured again, with more rounds each
            extra = extra_of[name]
            strong = replace(config, rounds=args.adapt_rounds)
            t0 = time.perf_counter()
            again = profile_device(devices[name], schema.space, schema.spec, n_samples=len(extra), archs=extra,
                                   out_dir=work / f"{name}-picks-r{args.adapt_rounds}", seed=args.seed, blocks=False,
                                   config=strong, onnx_cache=cache, repeat_fraction=0.0, progress=True)
            print(f"{name}: {len(extra)} adaptation subnets measured with {args.adapt_rounds} rounds in "
                  f"{time.perf_counter() - t0:.0f} s (load average {os.getloadavg()[0]:.2f})", flush=True)
            picked_on[name] = dict(zip(again.table["arch"], again.latency("min_ms")))
    rows = []
    for tgt in targets:
        dev = devices[tgt]
        got = dict(zip(profiles[tgt].table["arch"], profiles[tgt].latency("min_ms")))
        y_test = np.array([got[a.to_json()] for a in test])
        ceiling = profiles[tgt].repeatability_of("min_ms")
        base_row = {"target": tgt, "n_test": len(test), "ceiling_within_10": ceiling.within_10 if ceiling else None,
                    "block_seconds": float(profiles[tgt].meta["seconds"].get("blocks", 0.0))}
        rows.append({**base_row, "source": "-", "k": args.pair_train, "method": f"full profile ({full[tgt].name})",
                     **latency_metrics(y_test, full[tgt].predict_archs(test))})
        for src in devices:
            if src == tgt:
                continue
            chosen = picks[src]
            y_chosen = np.array([picked_on[tgt][a.to_json()] for a in chosen])
            corr = kendall_tau(y_test, full[src].predict_archs(test))
            for k in PAIR_KS:
                pool, y_pool = chosen[:k], y_chosen[:k]
                methods = {
                    "transfer": full[src].adapt(pool, y_pool, dev, block_costs=blocks[tgt], seed=args.seed),
                    "transfer (no blocks)": full[src].adapt(pool, y_pool, dev, seed=args.seed),
                    "calibrated": full[src].adapt(pool, y_pool, dev, method="calibrated"),
                    "scratch lut+blocks": build_latency_predictor("lut", schema, dev, block_costs=blocks[tgt]).fit_archs(
                        pool, y_pool),
                    "scratch ridge": build_latency_predictor("ridge", schema, dev).fit_archs(pool, y_pool),
                }
                for method, pred in methods.items():
                    rows.append({**base_row, "source": src, "k": k, "method": method, "source_tau": corr,
                                 **latency_metrics(y_test, pred.predict_archs(test))})
            t = rows[-5]
            print(f"{src} -> {tgt}: transfer k=20 ±10% {t['within_10']:.3f} tau {t['kendall_tau']:.3f} "
                  f"(source ranking tau {corr:.3f})", flush=True)
    out = pd.DataFrame(rows)
    out.attrs = {n: d.to_dict() for n, d in devices.items()}
    return out


def pairs_markdown(report: dict) -> list[str]:
    pairs = pd.DataFrame(report["pairs"])
    lines = ["", "## Adaptation between devices (k subnet measurements on the new device)", "",
             f"Held-out: {int(pairs['n_test'].iloc[0])} subnets measured on each target (never fitted on); "
             f"statistic min_ms. `transfer` also uses the target's blocks (time in the last column). Goal at "
             f"k = 20: ±10% >= {GOAL['within_10']:.2f} and tau >= {GOAL['kendall_tau']:.2f}. Cells: ±10% / tau.", "",
             "| source -> target | source tau | transfer k=5 | k=10 | k=20 | goal | no blocks k=20 | calibrated k=20 "
             "| scratch lut+blocks k=5 / 20 | scratch ridge k=20 | full profile | ceiling ±10% | blocks s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    if report.get("adapt_rounds"):
        lines[5:5] = [f"The adaptation subnets were measured on each target with {report['adapt_rounds']} rounds "
                      "each (the profiles' protocol otherwise); the held-out subnets as profiled.", ""]
    cell = lambda r: f"{r['within_10']:.2f} / {r['kendall_tau']:.2f}"  # noqa: E731
    for (src, tgt), g in pairs[pairs["source"] != "-"].groupby(["source", "target"], sort=False):
        at = lambda method, k: g[(g["method"] == method) & (g["k"] == k)].iloc[0]  # noqa: E731
        best = at("transfer", 20)
        ok = meets_goal(best)
        own = pairs[(pairs["target"] == tgt) & (pairs["source"] == "-")].iloc[0]
        ceiling = "-" if own["ceiling_within_10"] is None or pd.isna(own["ceiling_within_10"]) \
            else f"{own['ceiling_within_10']:.2f}"
        lines.append(f"| {src} -> {tgt} | {best['source_tau']:.2f} | {cell(at('transfer', 5))} | "
                     f"{cell(at('transfer', 10))} | {cell(best)} | {'yes' if ok else 'no'} | "
                     f"{cell(at('transfer (no blocks)', 20))} | {cell(at('calibrated', 20))} | "
                     f"{at('scratch lut+blocks', 5)['within_10']:.2f} / {cell(at('scratch lut+blocks', 20))} | "
                     f"{cell(at('scratch ridge', 20))} | {cell(own)} ({own['method'].split('(')[-1].rstrip(')')}, "
                     f"k={int(own['k'])}) | {ceiling} | {own['block_seconds']:.0f} |")
    return lines


def markdown(report: dict, curve: pd.DataFrame) -> str:
    p, rep = report["profile"], report["profile"]["repeatability"] or {}
    rep_min = report["profile"].get("repeatability_min_ms") or {}
    lines = [f"# Latency predictors on `cpu` ({report['fingerprint']['cpu_model']}, onnxruntime "
             f"{report['fingerprint']['onnxruntime']}, 1 thread)", "",
             f"Started {report['started']}; load average at start {tuple(round(v, 2) for v in report['loadavg_start'])}, "
             f"at end {tuple(round(v, 2) for v in report['loadavg_end'])} (2 cores).", "",
             f"- profile: {report['total']} subnets, {p['seconds_per_subnet']:.2f} s per subnet (export + measurement), "
             f"{p['flagged']} flagged; latencies {p['median_ms_range'][0]:.3f}-{p['median_ms_range'][1]:.3f} ms",
             f"- repeatability ceiling (two independent measurements of {rep.get('n')} subnets): "
             f"{rep.get('within_10', float('nan')):.1%} within ±10%, {rep.get('within_5', float('nan')):.1%} within ±5%",
             f"- the same for the fastest run (min_ms): {rep_min.get('within_10', float('nan')):.1%} within ±10%, "
             f"{rep_min.get('within_5', float('nan')):.1%} within ±5%",
             f"- input: task `{report.get('task', 'digits')}`, {report['spec'].get('seq_len')} tokens "
             f"of {report['spec'].get('in_features')} values",
             f"- held-out set: {report['held_out']} random subnets, never trained on", ""]
    for target in ("median_ms", "min_ms"):
        lines += [f"### target {target}", "",
                  "| samples | profiling min | predictor | ±10% | ±5% | MAPE % | Kendall tau | Spearman |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in curve[curve["target"] == target].itertuples():
            lines.append(f"| {r.n_samples} | {r.profiling_minutes:.1f} | {r.predictor} | {r.within_10:.3f} | "
                         f"{r.within_5:.3f} | {r.mape:.2f} | {r.kendall_tau:.3f} | {r.spearman:.3f} |")
        lines.append("")
    lines += ["", "## Monotone recalibration (`calibrated`, the earlier adaptation; k measurements of the new device)", "",
              "| device | statistic | source | ceiling ±10% | unadapted ±10% / tau | k=5 ±10% / tau | k=10 | k=20 | LUT from scratch k=5 / 10 / 20 ±10% |",
              "|---|---|---|---|---|---|---|---|---|"]
    for a in report["adaptation"]:
        cells = [f"{a[f'k{k}']['within_10']:.3f} / {a[f'k{k}']['kendall_tau']:.3f}" if f"k{k}" in a else "-"
                 for k in (5, 10, 20)]
        scratch = " / ".join(f"{a[f'k{k}']['scratch_lut_within_10']:.3f}" for k in (5, 10, 20) if f"k{k}" in a)
        ceiling = a["repeatability"]["within_10"] if a["repeatability"] else float("nan")
        lines.append(f"| {a['device']} | {a['target']} | {a['source']} (cpu) | {ceiling:.3f} | {a['unadapted']['within_10']:.3f} / "
                     f"{a['unadapted']['kendall_tau']:.3f} | " + " | ".join(cells) + f" | {scratch} |")
    if report.get("pairs"):
        lines += pairs_markdown(report)
    if "fast_preset" in report:
        f = report["fast_preset"]
        frep = f["repeatability"] or {}
        lines += ["", "## Fast preset (what the main job profiles)", "",
                  f"{f['n_samples']} new subnets with `MeasureConfig.fast()`: {f['seconds_per_subnet']:.2f} s per subnet; "
                  f"repeatability {frep.get('within_10', float('nan')):.1%} within ±10%; kept `{f['best']}`, which "
                  f"scores {f['held_out_on_cpu_test_set']['within_10']:.3f} within ±10% and tau "
                  f"{f['held_out_on_cpu_test_set']['kendall_tau']:.3f} on the held-out set measured with the default protocol."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
