"""Does the supernet rank subnets truthfully?

Trains the supernet on a task (sandwich rule + in-place distillation, and the ablation:
one random subnet per step, no distillation), then compares, for 12 subnets spread over
the space, the test accuracy with inherited weights against the same architecture
trained alone from a fresh initialisation with the same optimizer, schedule, batch order
and number of updates. Reports Kendall tau between the two rankings and the largest
subnet's gap to its standalone twin, plus evaluation throughput with inherited weights.

    .venv/bin/python benchmarks/supernet_quality.py --task digits
    .venv/bin/python benchmarks/supernet_quality.py --task mnist --patch 4 --epochs 6 --subnets 6

Writes benchmarks/results/supernet_quality_<task>_e<epochs>.{csv,md} and _summary.csv.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import kendalltau

from supernet import DEFAULT_SPACE, Arch, LayerConfig, get_task
from supernet.evaluate import evaluate_archs, evaluate_module
from supernet.model import Supernet
from supernet.train import TrainConfig, train_standalone, train_supernet

RESULTS = Path(__file__).parent / "results"


def _layers(attn: list[str], quant: list[str], heads: int, ratio: int) -> tuple[LayerConfig, ...]:
    return tuple(LayerConfig(heads, ratio, a, q) for a, q in zip(attn, quant))


def subnets() -> list[tuple[str, Arch]]:
    """12 architectures spread over DEFAULT_SPACE, ordered roughly from big to small."""
    s, L, Q, F, I = DEFAULT_SPACE, "linear", "local", "fp32", "int8"
    S = "softmax"
    return [
        ("largest", s.largest()),
        ("largest all-int8", Arch(128, _layers([S] * 6, [I] * 6, 4, 4))),
        ("mixed attention E128 d4", Arch(128, _layers([S, L, Q, S], [F] * 4, 4, 2))),
        ("int8/fp32 alternating E128 d4", Arch(128, _layers([S] * 4, [I, F, I, F], 4, 4))),
        ("shallow-wide E128 d1", Arch(128, _layers([S], [F], 4, 4))),
        ("shallow-wide linear int8 E128 d2", Arch(128, _layers([L, L], [I, I], 4, 4))),
        ("mid softmax E96 d3", Arch(96, _layers([S] * 3, [F] * 3, 2, 2))),
        ("mid linear E96 d3", Arch(96, _layers([L] * 3, [F] * 3, 2, 2))),
        ("mid local E96 d3", Arch(96, _layers([Q] * 3, [F] * 3, 2, 2))),
        ("deep-narrow E64 d6", Arch(64, _layers([S] * 6, [F] * 6, 1, 1))),
        ("deep-narrow mixed int8 E64 d6", Arch(64, _layers([Q, L, S, Q, L, S], [I, F] * 3, 1, 2))),
        ("smallest", s.smallest()),
    ]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} thread(s), "
            f"Python {platform.python_version()}; load average at the end {load[0]:.1f} (machine shared)")


def throughput(net: Supernet, task, n: int = 30, seed: int = 0) -> tuple[float, float]:
    """(single-arch evaluations per second, per second in one batched call) on the val split."""
    archs = DEFAULT_SPACE.sample_many(n, seed)
    t0 = time.perf_counter()
    for a in archs:
        evaluate_archs(net, [a], task.x_val, task.y_val)
    one = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    evaluate_archs(net, archs, task.x_val, task.y_val)
    return one, n / (time.perf_counter() - t0)


def figures(inherited: np.ndarray, standalone: np.ndarray) -> tuple[float, float]:
    tau = kendalltau(inherited, standalone).statistic
    return float(tau), float(100 * (standalone[0] - inherited[0]))  # row 0 is the largest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="digits")
    ap.add_argument("--patch", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    ap.add_argument("--subnets", type=int, default=12, help="first N of the 12 (largest first, smallest always kept)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python " + " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    options = {} if args.patch is None else {"patch": args.patch}
    task = get_task(args.task, seed=args.seed, **options)
    label = args.task + (f"_patch{args.patch}" if args.patch else "")
    picked = subnets()
    picked = picked[: args.subnets - 1] + [picked[-1]] if args.subnets < len(picked) else picked
    names, archs = [n for n, _ in picked], [a for _, a in picked]
    print(task.describe(), flush=True)

    variants = {
        "sandwich+distill (k=2)": TrainConfig(epochs=args.epochs, seed=args.seed),
        "ablation: 1 random/step, no distill": TrainConfig(epochs=args.epochs, seed=args.seed, sandwich=False,
                                                            distill=False, k_random=1),
    }
    table = pd.DataFrame({"subnet": names, "arch": [a.describe() for a in archs]})
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (vname, config) in enumerate(variants.items()):
            result = train_supernet(task, DEFAULT_SPACE, config, Path(tmp) / f"v{i}", progress=False)
            print(f"{vname}: {result.train_seconds:.0f} s, {result.steps} updates", flush=True)
            table[f"inherited test acc [{vname}]"] = evaluate_archs(result.supernet, archs, task.x_test, task.y_test)
            summary.append({"variant": vname, "train_s": result.train_seconds, "updates": result.steps,
                            "s_per_epoch": result.train_seconds / config.epochs})
            if i == 0:
                evals_one, evals_batch = throughput(result.supernet, task)

    base = TrainConfig(epochs=args.epochs, seed=args.seed)
    standalone, twin_seconds = [], 0.0
    for name, arch in picked:
        t0 = time.perf_counter()
        twin = Supernet(DEFAULT_SPACE, task.spec, seed=args.seed + 1000).extract(arch)  # fresh init
        train_standalone(twin, task, base)
        standalone.append(evaluate_module(twin, task.x_test, task.y_test))
        twin_seconds += time.perf_counter() - t0
        print(f"twin {name}: {standalone[-1]:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    table["standalone test acc"] = standalone
    for row in summary:
        tau, gap = figures(table[f"inherited test acc [{row['variant']}]"].to_numpy(), np.array(standalone))
        row.update({"kendall_tau": tau, "largest_gap_points": gap})
    summary_df = pd.DataFrame(summary)

    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"supernet_quality_{label}_e{args.epochs}"
    _write(stem.with_suffix(".csv"), table.to_csv(index=False))
    _write(Path(f"{stem}_summary.csv"), summary_df.to_csv(index=False))
    md = [f"# Supernet ranking quality: {task.describe()}", "", f"Command: `{command}`", "",
          f"Machine: {machine()}", "",
          f"Each supernet and each standalone twin: {args.epochs} epochs, {summary[0]['updates']} updates, "
          f"batch {base.batch_size}, AdamW lr {base.lr}, warm-up {base.warmup_epochs} epoch + cosine. "
          "Accuracies on the test split. Gap = standalone minus inherited, in points.", "",
          summary_df.to_markdown(index=False, floatfmt=".3f"), "",
          f"Standalone twins: {twin_seconds:.0f} s in all. Evaluation with inherited weights on val "
          f"({len(task.x_val)} examples): {evals_one:.1f} architectures/s one per call, "
          f"{evals_batch:.1f}/s in one batched call.", "",
          table.to_markdown(index=False, floatfmt=".3f"), ""]
    _write(stem.with_suffix(".md"), "\n".join(md))
    print("\n".join(md))


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
