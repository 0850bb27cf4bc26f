"""Does the supernet rank subnets as standalone training does, and how well could it?

For 18 subnets covering every attention type, int8 and fp32, and the depth and width
extremes of the default space, compares the test accuracy with inherited supernet weights
against the same architecture trained alone from a fresh initialisation (same optimizer,
schedule, batch order and number of updates, labels only). Every twin is trained with two
seeds: the seed-to-seed Kendall tau is the ceiling of any ranking (the ranking's own
repeatability), and each subnet's seed spread is shown beside it.

Supernet variants (training recipes) are compared on the same twins; each reports its tau
against each seed (mean), its tau against the mean of the seeds, the largest subnet's gap to
its standalone twin and its training cost. Every accuracy carries its binomial standard error.

    .venv/bin/python benchmarks/supernet_quality.py --task mnist1d --option samples=10000 --option patch=2
    .venv/bin/python benchmarks/supernet_quality.py --task recall --epochs 6

Work is cached per item in --work (default /tmp/hwnas-supernet-quality-<label>), so an
interrupted run resumes and new variants reuse the twins; two worker processes share it.
Writes benchmarks/results/supernet_quality_<label>.{md,csv,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from supernet import DEFAULT_SPACE, Arch, LayerConfig, binomial_se, get_task

RESULTS = Path(__file__).parent / "results"
TWIN_SEEDS = (1000, 2000)  # initialisation seeds of the two standalone twins

# name -> TrainConfig overrides (on top of the run's epochs, batch size and seed).
VARIANTS: dict[str, dict[str, Any]] = {
    "shared, first-choice sandwich (old default)": {"attention_weights": "shared", "sandwich_choices": "first"},
    "shared, random-choice sandwich": {"attention_weights": "shared", "sandwich_choices": "random"},
    "per-type Q/K/V/O, first-choice sandwich": {"attention_weights": "per_type", "sandwich_choices": "first"},
    "per-type Q/K/V/O, random-choice sandwich": {"attention_weights": "per_type", "sandwich_choices": "random"},
    "per-type, random sandwich, k_random 4": {"attention_weights": "per_type", "sandwich_choices": "random",
                                              "k_random": 4},
    "per-type, random sandwich, 2x epochs": {"attention_weights": "per_type", "sandwich_choices": "random",
                                             "epochs_factor": 2},
    "per-type, random sandwich + 40-step fine-tune per subnet before scoring": {"tune_steps": 40, "base": 3},
    "shared, random sandwich + 40-step fine-tune per subnet before scoring": {"tune_steps": 40, "base": 1},
    "shared, sandwich of first-choice largest (teacher) + random-choice largest and smallest":
        {"attention_weights": "shared", "sandwich_choices": "both"},
    "shared, random sandwich + 120-step fine-tune per subnet before scoring": {"tune_steps": 120, "base": 1},
    "shared, random sandwich + 360-step fine-tune per subnet before scoring": {"tune_steps": 360, "base": 1},
    "shared, random sandwich, 3x epochs": {"attention_weights": "shared", "sandwich_choices": "random",
                                           "epochs_factor": 3},
    "shared, random sandwich, no distillation": {"attention_weights": "shared", "sandwich_choices": "random",
                                                 "distill": False},
    "shared, random sandwich 3x epochs + 360-step fine-tune per subnet before scoring": {"tune_steps": 360,
                                                                                          "base": 11},
    "shared, random sandwich + 360-step fine-tune at lr 2e-3 (not 1e-3)": {"tune_steps": 360, "base": 1,
                                                                           "tune_lr": 2e-3},
    "shared, random sandwich + 120-step fine-tune at lr 3e-3": {"tune_steps": 120, "base": 1, "tune_lr": 3e-3},
    "shared, random sandwich + 360-step fine-tune at lr 3e-3": {"tune_steps": 360, "base": 1, "tune_lr": 3e-3},
    "shared, random sandwich 3x epochs + 360-step fine-tune at lr 2e-3": {"tune_steps": 360, "base": 11,
                                                                          "tune_lr": 2e-3},
    "shared, random sandwich + 360-step fine-tune at lr 2e-3, other batch order (tune seed + 100)":
        {"tune_steps": 360, "base": 1, "tune_lr": 2e-3, "tune_seed": 100},
    "shared, random sandwich + 360-step fine-tune at lr 1.5e-3": {"tune_steps": 360, "base": 1, "tune_lr": 1.5e-3},
    "shared, random sandwich + 360-step fine-tune at lr 2e-3 after a 36-step warm-up":
        {"tune_steps": 360, "base": 1, "tune_lr": 2e-3, "tune_warmup": 36},
    "shared, random sandwich, 2x epochs": {"attention_weights": "shared", "sandwich_choices": "random",
                                           "epochs_factor": 2},
    "shared, random sandwich 2x epochs + 360-step fine-tune at lr 2e-3": {"tune_steps": 360, "base": 21,
                                                                          "tune_lr": 2e-3},
}


def _layers(attn: list[str], quant: list[str], heads: int, ratio: int) -> tuple[LayerConfig, ...]:
    return tuple(LayerConfig(heads, ratio, a, q) for a, q in zip(attn, quant))


def subnets() -> list[tuple[str, Arch]]:
    """18 architectures over DEFAULT_SPACE, largest first: every attention type, both policies,
    the depth and width extremes."""
    s, S, L, Q, F, I = DEFAULT_SPACE, "softmax", "linear", "local", "fp32", "int8"
    return [
        ("largest", s.largest()),
        ("largest all-int8", Arch(128, _layers([S] * 6, [I] * 6, 4, 4))),
        ("largest all-linear", Arch(128, _layers([L] * 6, [F] * 6, 4, 4))),
        ("largest all-local int8", Arch(128, _layers([Q] * 6, [I] * 6, 4, 4))),
        ("mixed attention E128 d4", Arch(128, _layers([S, L, Q, S], [F] * 4, 4, 2))),
        ("int8/fp32 alternating E128 d4", Arch(128, _layers([S] * 4, [I, F, I, F], 4, 4))),
        ("shallow-wide E128 d1", Arch(128, _layers([S], [F], 4, 4))),
        ("shallow-wide linear int8 E128 d2", Arch(128, _layers([L, L], [I, I], 4, 4))),
        ("mid softmax E96 d3", Arch(96, _layers([S] * 3, [F] * 3, 2, 2))),
        ("mid linear E96 d3", Arch(96, _layers([L] * 3, [F] * 3, 2, 2))),
        ("mid local E96 d3", Arch(96, _layers([Q] * 3, [F] * 3, 2, 2))),
        ("mid local-then-softmax int8 E96 d4", Arch(96, _layers([Q, Q, Q, S], [I] * 4, 2, 2))),
        ("deep-narrow E64 d6", Arch(64, _layers([S] * 6, [F] * 6, 1, 1))),
        ("deep-narrow mixed int8 E64 d6", Arch(64, _layers([Q, L, S, Q, L, S], [I, F] * 3, 1, 2))),
        ("narrow local E64 d2", Arch(64, _layers([Q, Q], [F, F], 1, 2))),
        ("smallest linear int8", Arch(64, _layers([L], [I], 1, 1))),
        ("smallest local", Arch(64, _layers([Q], [F], 1, 1))),
        ("smallest", s.smallest()),
    ]


def machine() -> str:
    import torch

    from hwprofiles import fingerprint

    fp = fingerprint()
    return (f"{fp.get('cpu_model', 'unknown CPU')}, {fp.get('cpu_count', '?')} cores, torch {torch.__version__} "
            f"(1 thread per worker), Python {platform.python_version()}")


def tau(a: np.ndarray, b: np.ndarray) -> float:
    return float(kendalltau(a, b).statistic)


def tau_interval(statistic, n: int, draws: int = 1000) -> str:
    """95% bootstrap interval of a ranking statistic over the n subnets (resampled with
    replacement): how far the tau of 18 subnets could move with another choice of subnets."""
    rng = np.random.default_rng(0)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(draws)])
    lo, hi = np.nanpercentile(values, [2.5, 97.5])
    return f"{lo:.2f} to {hi:.2f}"


# --------------------------------------------------------------------- work items (run in workers)
_TASKS: dict[str, Any] = {}


def _task(args: dict[str, Any]):
    """The task, generated once per worker process."""
    key = json.dumps([args["task"], args["seed"], args["options"]], sort_keys=True)
    if key not in _TASKS:
        _TASKS[key] = get_task(args["task"], seed=args["seed"], **args["options"])
    return _TASKS[key]


def _config(args: dict[str, Any], overrides: dict[str, Any]):
    from supernet.train import TrainConfig

    overrides = dict(overrides)
    factor = overrides.pop("epochs_factor", 1)
    return TrainConfig(epochs=args["epochs"] * factor, batch_size=args["batch_size"], seed=args["seed"], **overrides)


def run_item(item: dict[str, Any]) -> dict[str, Any]:
    """Train one twin or one supernet variant; cache its result as JSON in the work folder."""
    import torch

    torch.set_num_threads(1)
    path = Path(item["path"])
    if path.exists():
        return json.loads(path.read_text())
    from supernet.evaluate import evaluate_archs, evaluate_module
    from supernet.model import Subnet
    from supernet.train import train_standalone, train_supernet

    args = item["args"]
    task = _task(args)
    t0 = time.perf_counter()
    if item["kind"] == "twin":
        arch = Arch.from_json(item["arch"])
        twin = Subnet.initialised(DEFAULT_SPACE, task.spec, arch, seed=item["twin_seed"])
        train_standalone(twin, task, _config(args, {}))
        out = {"test_acc": evaluate_module(twin, task.x_test, task.y_test), "seconds": time.perf_counter() - t0}
    elif "tune_steps" in VARIANTS[item["variant"]]:
        # Score each subnet after a short fine-tune from inherited weights; the supernet is the
        # base variant's, trained (and kept) by that variant's item.
        from supernet.train import tune_briefly

        settings = VARIANTS[item["variant"]]
        work = Path(item["path"]).parent
        base_json, base_dir = work / f"variant-{settings['base']}.json", work / f"supernet-{settings['base']}"
        while not base_json.exists():
            time.sleep(10)  # the base variant is still training in the other worker
        base_config = _config(args, VARIANTS[list(VARIANTS)[settings["base"]]])
        result = train_supernet(task, DEFAULT_SPACE, base_config, base_dir, progress=False)  # resumes; trains if absent
        t0 = time.perf_counter()
        acc = []
        for i, a in enumerate(item["archs"]):
            sub = tune_briefly(result.supernet.extract(Arch.from_json(a)), task, steps=settings["tune_steps"],
                               lr=settings.get("tune_lr", 1e-3), seed=settings.get("tune_seed", 0) + i,
                               warmup_steps=settings.get("tune_warmup", 0))
            acc.append(evaluate_module(sub, task.x_test, task.y_test))
        tune = time.perf_counter() - t0
        out = {"test_acc": acc, "seconds": json.loads(base_json.read_text())["seconds"] + tune,
               "tune_seconds": tune, "updates": result.steps, "epochs": base_config.epochs}
    else:
        config = _config(args, VARIANTS[item["variant"]])
        keep = Path(item["path"]).parent / f"supernet-{Path(item['path']).stem.split('-')[1]}"
        result = train_supernet(task, DEFAULT_SPACE, config, keep, progress=False)
        archs = [Arch.from_json(a) for a in item["archs"]]
        out = {"test_acc": evaluate_archs(result.supernet, archs, task.x_test, task.y_test).tolist(),
               "seconds": result.train_seconds, "updates": result.steps, "epochs": config.epochs}
    tmp_path = path.with_suffix(".tmp")
    tmp_path.write_text(json.dumps(out))
    os.replace(tmp_path, path)
    return out


# --------------------------------------------------------------------- main
def main() -> None:
    from supernet.train import TrainConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="mnist1d")
    ap.add_argument("--option", action="append", default=[], help="task option KEY=INT (repeatable)")
    ap.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    ap.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    ap.add_argument("--variants", default=",".join(str(i) for i in range(len(VARIANTS))),
                    help="indices into the variant list (comma separated)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    command = "python " + " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    options = {k: int(v) for k, v in (o.split("=", 1) for o in args.option)}
    label = "_".join([args.task, *(f"{k}{v}" for k, v in options.items()), f"e{args.epochs}"])
    work = Path(args.work or f"/tmp/hwnas-supernet-quality-{label}")
    work.mkdir(parents=True, exist_ok=True)
    common = {"task": args.task, "options": options, "seed": args.seed, "epochs": args.epochs,
              "batch_size": args.batch_size}
    task = _task(common)
    n_test = len(task.y_test)
    picked = subnets()
    names, archs = [n for n, _ in picked], [a for _, a in picked]
    variant_names = [list(VARIANTS)[int(i)] for i in args.variants.split(",")]
    print(task.describe(), flush=True)

    items = []
    for vi, vname in enumerate(variant_names):
        items.append({"kind": "variant", "variant": vname, "args": common, "archs": [a.to_json() for a in archs],
                      "path": str(work / f"variant-{list(VARIANTS).index(vname)}.json")})
    for s in TWIN_SEEDS:
        for i, arch in enumerate(archs):
            items.append({"kind": "twin", "arch": arch.to_json(), "twin_seed": s, "args": common,
                          "path": str(work / f"twin-{s}-{i:02d}.json")})
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        done = list(pool.map(run_item, items))
    wall = time.perf_counter() - t0
    variants_out = dict(zip(variant_names, done[: len(variant_names)]))
    twins = np.array([d["test_acc"] for d in done[len(variant_names):]]).reshape(len(TWIN_SEEDS), len(archs))
    twin_seconds = sum(d["seconds"] for d in done[len(variant_names):])

    table = pd.DataFrame({"subnet": names, "arch": [a.describe() for a in archs]})
    for k, s in enumerate(TWIN_SEEDS):
        table[f"standalone seed {s}"] = twins[k]
    table["standalone mean"] = twins.mean(axis=0)
    table["seed spread (points)"] = 100 * np.abs(twins[0] - twins[1])
    ceiling = tau(twins[0], twins[1])
    summary = [{"variant": "seed-to-seed ceiling (standalone seed A vs seed B)", "kendall_tau_per_seed": ceiling,
                "tau_95_interval": tau_interval(lambda i: tau(twins[0][i], twins[1][i]), len(archs)),
                "kendall_tau_vs_mean": np.nan, "largest_gap_points": np.nan, "inherited_range_points": np.nan,
                "train_s": twin_seconds / len(TWIN_SEEDS), "updates": np.nan}]
    for vname, out in variants_out.items():
        acc = np.array(out["test_acc"])
        table[f"inherited [{vname}]"] = acc
        summary.append({"variant": vname,
                        "kendall_tau_per_seed": float(np.mean([tau(acc, t) for t in twins])),
                        "tau_95_interval": tau_interval(
                            lambda i, acc=acc: float(np.mean([tau(acc[i], t[i]) for t in twins])), len(archs)),
                        "kendall_tau_vs_mean": tau(acc, twins.mean(axis=0)),
                        "largest_gap_points": float(100 * (twins[:, 0].mean() - acc[0])),
                        "inherited_range_points": float(100 * (acc.max() - acc.min())),
                        "train_s": out["seconds"], "updates": out["updates"]})
    summary_df = pd.DataFrame(summary)
    spread = 100 * (twins.mean(axis=0).max() - twins.mean(axis=0).min())
    typical_se = 100 * float(np.median(binomial_se(twins.mean(axis=0), n_test)))

    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"supernet_quality_{label}"
    _write(stem.with_suffix(".csv"), table.to_csv(index=False))
    _write(stem.with_suffix(".json"), json.dumps({
        "command": command, "machine": machine(), "task": task.record(), "epochs": args.epochs,
        "batch_size": args.batch_size, "twin_seeds": list(TWIN_SEEDS), "seed_to_seed_tau": ceiling,
        "standalone_spread_points": spread, "typical_se_points": typical_se,
        "summary": json.loads(summary_df.to_json(orient="records")),
        "subnets": json.loads(table.to_json(orient="records"))}, indent=2))
    shown = table.copy()
    for col in shown.columns[2:]:
        if col != "seed spread (points)":
            shown[col] = [f"{100 * p:.1f} ± {100 * e:.1f}" for p, e in zip(table[col], binomial_se(table[col].to_numpy(), n_test))]
    load = os.getloadavg()[0]
    md = [f"# Supernet ranking quality: {task.describe()}", "", f"Command: `{command}`", "",
          f"Machine: {machine()}; {args.workers} worker processes; load average at the end {load:.1f}; "
          f"wall time {wall / 60:.1f} min (items already cached in the work folder are not re-run).", "",
          f"Each supernet and each standalone twin: {args.epochs} epochs (unless the variant says otherwise), "
          f"batch {args.batch_size}, AdamW, warm-up + cosine. Test split, {n_test} examples: an accuracy's "
          f"binomial standard error is about {typical_se:.1f} points here. Standalone twins span "
          f"{spread:.1f} points (mean of two seeds). Gap = standalone (mean of seeds) minus inherited, in points. "
          "`kendall_tau_per_seed` is the mean of tau(inherited, seed A) and tau(inherited, seed B), "
          "comparable with the seed-to-seed ceiling tau(seed A, seed B); `tau_95_interval` is its 95% "
          "bootstrap interval over the subnets (1,000 resamples), a measure of how much a tau over this "
          "many subnets can move.", "",
          summary_df.to_markdown(index=False, floatfmt=".3f"), "",
          "Accuracies (%, ± binomial standard error):", "",
          shown.to_markdown(index=False, floatfmt=".1f"), ""]
    _write(stem.with_suffix(".md"), "\n".join(md))
    print("\n".join(md))


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
