"""Which long-sequence task separates attention types: uniform and hybrid models trained alone.

Before a search can find hybrid-attention designs, the task must reward them: on a task where
one attention type is best at every cost, the front is simply that type. This benchmark
trains a fixed set of architectures standalone (uniform softmax, linear and local models at
two sizes, and hybrids that keep softmax in one layer) on mnist1d stretched to each given
length, one value per token, with two training seeds, then measures every model's ONNX file on
a device. Per length it reports each model's test accuracy (mean of the seeds, with the
binomial standard error of one seed and the seeds' spread), its latency, which kind of model
is the most accurate within each latency, and the latency ratio that `hybrid_attention` would
compute: the fastest model reaching 97% of the reference (the fastest all-softmax model within
noise of the best all-softmax one) over the reference's latency.

Training runs in `--workers` processes at once on `--train-device` (a GPU makes this a few
minutes); measuring starts only once every training has finished, with nothing else running.

    .venv/bin/python benchmarks/long_tasks.py --train-device cuda --workers 8
    .venv/bin/python benchmarks/long_tasks.py --lengths 256 --epochs 4 --samples 5000   # CPU, ~1 hour

Writes benchmarks/results/long_tasks.{json,md} (`--out` for another folder); every finished
training is also appended to WORK/trained.jsonl as it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SHARE = 0.97  # as in hybrid_attention: a model "matches" the reference at this share of its accuracy
S, L, Q = "softmax", "linear", "local"
# (name, embed_dim, attention per layer): uniform models of each type at two sizes, and hybrids
# that keep one softmax layer (last or first) beside cheap layers.
ARCHS = [
    ("softmax-E32-d2", 32, [S, S]), ("softmax-E48-d4", 48, [S] * 4),
    ("linear-E32-d2", 32, [L, L]), ("linear-E48-d4", 48, [L] * 4),
    ("local-E32-d2", 32, [Q, Q]), ("local-E48-d4", 48, [Q] * 4),
    ("local-softmax-E32-d2", 32, [Q, S]), ("linear-softmax-E32-d2", 32, [L, S]),
    ("local3-softmax-E48-d4", 48, [Q, Q, Q, S]), ("linear3-softmax-E48-d4", 48, [L, L, L, S]),
    ("softmax-local3-E48-d4", 48, [S, Q, Q, Q]),
]


def space():
    from supernet import SearchSpace

    return SearchSpace(embed_dims=(32, 48), depths=(2, 4), heads=(2,), ffn_ratios=(2,), attentions=(S, L, Q),
                       quants=("fp32",), head_dim=16, local_window=8)


def arch_of(embed_dim: int, kinds: list[str]):
    from supernet import Arch, LayerConfig

    return Arch(embed_dim, tuple(LayerConfig(2, 2, k, "fp32") for k in kinds))


_TASKS: dict = {}


def task_for(length: int, samples: int):
    from supernet import get_task

    key = (length, samples)
    if key not in _TASKS:
        _TASKS[key] = get_task("mnist1d", seed=0, samples=samples, length=length, patch=1)
    return _TASKS[key]


def train_job(job: dict) -> dict:
    """Train one (length, architecture, seed) standalone; its accuracies, and its ONNX file for seed 0."""
    import torch

    from supernet import Subnet, TrainConfig, export_onnx
    from supernet.evaluate import evaluate_module
    from supernet.train import train_standalone

    torch.set_num_threads(job["threads"])
    task = task_for(job["length"], job["samples"])
    arch = arch_of(job["embed_dim"], job["kinds"])
    module = Subnet.initialised(space(), task.spec, arch, seed=job["seed"])
    config = TrainConfig(epochs=job["epochs"], batch_size=job["batch_size"], lr=job["lr"], seed=job["seed"],
                         device=job["device"])
    t0 = time.perf_counter()
    history = train_standalone(module, task, config)
    seconds = time.perf_counter() - t0
    out = {k: job[k] for k in ("length", "name", "seed")}
    out.update(train_seconds=round(seconds, 1), final_loss=history[-1]["loss"],
               val_accuracy=evaluate_module(module, task.x_val, task.y_val),
               test_accuracy=evaluate_module(module, task.x_test, task.y_test),
               n_test=len(task.y_test), n_train=len(task.y_train))
    if job["onnx"]:
        export_onnx(module.cpu(), job["onnx"], seed=0)
        out["onnx"] = job["onnx"]
    return out


def latency_ratio(df: pd.DataFrame, n_test: int) -> dict:
    """hybrid_attention's headline figure on these models (seed-mean accuracies)."""
    from supernet import within_noise

    soft = df[df.kinds.map(lambda k: set(k) == {S})]
    best = soft.accuracy.max()
    reach = soft[[a >= best or within_noise(a, best, n_test) for a in soft.accuracy]]
    ref = reach.sort_values("latency_ms").iloc[0]
    ok = df[(df.accuracy >= SHARE * ref.accuracy)].sort_values("latency_ms")
    fastest = ok.iloc[0]
    return {"reference": ref["name"], "reference_accuracy": float(ref.accuracy),
            "reference_latency_ms": float(ref.latency_ms), "fastest_at_97pct": fastest["name"],
            "fastest_accuracy": float(fastest.accuracy), "fastest_latency_ms": float(fastest.latency_ms),
            "latency_ratio": round(float(fastest.latency_ms / ref.latency_ms), 3)}


def best_within(df: pd.DataFrame) -> list[dict]:
    """At each model's latency, the most accurate model no slower than it."""
    rows = []
    for budget in sorted(df.latency_ms):
        inside = df[df.latency_ms <= budget]
        top = inside.sort_values("accuracy", ascending=False).iloc[0]
        rows.append({"budget_ms": round(float(budget), 4), "best": top["name"], "accuracy": float(top.accuracy)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--train-device", default="cpu")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="torch threads per training process")
    ap.add_argument("--device", default="cpu", help="latency device (built-in name or TOML)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/hwnas-long-tasks"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()

    from hwprofiles import fingerprint, get_device, measure_models
    from supernet import binomial_se

    args.work.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_start = os.getloadavg()
    jobs = [{"length": n, "name": name, "embed_dim": e, "kinds": kinds, "seed": seed, "samples": args.samples,
             "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "device": args.train_device,
             "threads": args.threads, "onnx": str(args.work / f"L{n}-{name}.onnx") if seed == args.seeds[0] else None}
            for n in args.lengths for name, e, kinds in ARCHS for seed in args.seeds]
    t0 = time.perf_counter()
    trained = []
    log = args.work / "trained.jsonl"  # one line per finished training: a run cut short keeps them
    log.write_text("")
    with ProcessPoolExecutor(args.workers) as pool:
        for done in as_completed([pool.submit(train_job, job) for job in jobs]):
            r = done.result()
            trained.append(r)
            with log.open("a") as f:
                f.write(json.dumps(r) + "\n")
            print(f"[{len(trained)}/{len(jobs)}] L{r['length']} {r['name']} seed {r['seed']}: test "
                  f"{100 * r['test_accuracy']:.1f}% ({r['train_seconds']:.0f} s)", flush=True)
    train_wall = time.perf_counter() - t0
    print(f"trained {len(trained)} models in {train_wall:.0f} s", flush=True)

    device = get_device(args.device)
    load_measure = os.getloadavg()
    latencies = {}
    for n in args.lengths:
        spec = task_for(n, args.samples).spec
        rows = [r for r in trained if r["length"] == n and r.get("onnx")]
        for r, m in zip(rows, measure_models([r["onnx"] for r in rows], device, spec, seed=0)):
            latencies[(n, r["name"])] = m.min_ms
    kinds_of = {name: kinds for name, _, kinds in ARCHS}

    lengths = {}
    md = [f"# Long-sequence tasks: uniform and hybrid models trained alone, {args.device} latency", "",
          f"Run: `python benchmarks/long_tasks.py --lengths {' '.join(map(str, args.lengths))} --samples "
          f"{args.samples} --epochs {args.epochs} --batch-size {args.batch_size} --lr {args.lr:g} --seeds "
          f"{' '.join(map(str, args.seeds))} --train-device {args.train_device} --workers {args.workers} "
          f"--device {args.device}`.", ""]
    m = fingerprint()
    md += [f"Machine: {m.get('cpu_model')}, {m.get('cpu_count')} cores, GPU {m.get('gpu') or 'none'}; trained on "
           f"`{args.train_device}` ({len(trained)} trainings in {train_wall:.0f} s, {args.workers} at once), then "
           f"measured on `{args.device}` (min_ms, the project's protocol) with nothing else running: load average "
           f"{load_measure[0]:.2f} when measuring began.", ""]
    for n in args.lengths:
        rows = [r for r in trained if r["length"] == n]
        n_test = rows[0]["n_test"]
        table = []
        for name, _, kinds in ARCHS:
            accs = [r["test_accuracy"] for r in rows if r["name"] == name]
            table.append({"name": name, "kinds": kinds, "accuracy": float(np.mean(accs)),
                          "seed_accuracies": accs, "seed_spread": float(np.ptp(accs)),
                          "se_one_seed": binomial_se(float(np.mean(accs)), n_test),
                          "latency_ms": latencies[(n, name)]})
        df = pd.DataFrame(table)
        lengths[n] = {"models": table, "ratio": latency_ratio(df, n_test), "best_within": best_within(df),
                      "n_test": n_test, "n_train": rows[0]["n_train"]}
        r = lengths[n]["ratio"]
        md += [f"## {n} tokens ({rows[0]['n_train']} training, {n_test} test examples)", "",
               f"Reference `{r['reference']}` {100 * r['reference_accuracy']:.1f}% at {r['reference_latency_ms']:.3f} ms;"
               f" fastest model at >= 97% of it: `{r['fastest_at_97pct']}` {100 * r['fastest_accuracy']:.1f}% at "
               f"{r['fastest_latency_ms']:.3f} ms: **latency ratio {r['latency_ratio']:.2f}**.", ""]
        shown = df.sort_values("latency_ms").assign(
            accuracy=lambda d: [f"{100 * a:.1f} ± {100 * s:.1f}" for a, s in zip(d.accuracy, d.se_one_seed)],
            seeds=lambda d: ["/".join(f"{100 * a:.1f}" for a in accs) for accs in d.seed_accuracies])
        md += [shown[["name", "accuracy", "seeds", "latency_ms"]].rename(
            columns={"accuracy": "test acc % (seed mean ± SE)", "seeds": "per seed %", "latency_ms": "min_ms"}
        ).to_markdown(index=False, floatfmt=".4f"), ""]
        winners = pd.DataFrame(lengths[n]["best_within"])
        md += ["Most accurate model within each latency: " + ", ".join(
            f"{w} ({c}x)" for w, c in winners.best.value_counts().items()), ""]
    result = {"started": started, "machine": m, "load_average_at_start": load_start,
              "load_average_at_measure": load_measure, "train_wall_seconds": round(train_wall, 1),
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "trained": trained, "lengths": {str(k): v for k, v in lengths.items()}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "long_tasks.json").write_text(json.dumps(result, indent=1, default=str))
    (args.out / "long_tasks.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
