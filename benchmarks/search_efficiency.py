"""Search efficiency: hypervolume vs expensive evaluations for every search algorithm.

The real problem: a trained digits supernet (accuracy on the val split, expensive), a
device's latency predictor (ms, cheap) and the analytic size (bytes, cheap); every
algorithm x seeds, budgets up to 400. Writes benchmarks/results/search_efficiency.{json,md}
(and .png when matplotlib is there).

    .venv/bin/python benchmarks/search_efficiency.py --checkpoint RUN_DIR --predictor RUN_DIR/predictor
    .venv/bin/python benchmarks/search_efficiency.py --synthetic      # analytic stand-in, no torch

Budgets: the algorithms never look at the budget (it only cuts the last batch), so the
first B evaluations of a 400-evaluation run are exactly a B-evaluation run; each
algorithm x seed runs once at the largest budget and is read at every budget.

Accuracy evaluations are cached across runs (same architecture, same value) so the
whole grid stays affordable on 2 cores. Evaluation time is reported honestly as the
time a fresh evaluation of each candidate took; the algorithm's overhead is the run's
wall time minus the time it spent getting accuracies (cache hits or fresh).

Hypervolume: the search records it with fixed bounds (accuracy in [0, 1]; latency and
size from the space's extreme and sampled members). Here, to compare algorithms, each
run's candidates are also normalised to the reference front (the union of all runs'
fronts): its ideal point maps to 0, its nadir to 1, reference point 1.1 per objective.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import search  # noqa: E402
from search import HypervolumeTracker, non_dominated  # noqa: E402
from supernet import Arch  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
# benchmark-only variants: name -> (registered algorithm, settings)
VARIANTS = {"linas-ridge": ("linas", {"predictor": "ridge"})}


class CachedAccuracy:
    """Accuracy with a cache across runs; remembers each architecture's fresh evaluation time."""

    def __init__(self, evaluate) -> None:
        self.evaluate = evaluate
        self.values: dict[Arch, float] = {}
        self.fresh_seconds: dict[Arch, float] = {}

    def __call__(self, archs: list[Arch]) -> np.ndarray:
        for a in archs:
            if a not in self.values:
                start = time.perf_counter()
                self.values[a] = float(np.asarray(self.evaluate([a])).reshape(-1)[0])
                self.fresh_seconds[a] = time.perf_counter() - start
        return np.array([self.values[a] for a in archs])


def real_problem(checkpoint: Path, predictor_path: Path):
    import torch

    from predictors import LatencyPredictor
    from supernet.checkpoint import load_checkpoint
    from supernet.evaluate import evaluate_archs
    from supernet.tasks import get_task

    # one thread: on a shared 2-core machine a second torch thread made an evaluation ~60x slower
    torch.set_num_threads(1)
    folder = checkpoint / "supernet" if (checkpoint / "supernet").is_dir() else checkpoint
    net, meta = load_checkpoint(folder)
    net.eval()
    t = meta["task"]
    task = get_task(t["name"], seed=t.get("seed", 0), **t.get("options", {}))
    predictor = LatencyPredictor.load(predictor_path, space=net.space)
    acc = CachedAccuracy(lambda archs: evaluate_archs(net, archs, task.x_val, task.y_val))
    problem = search.SearchProblem(net.space, (
        search.accuracy_objective(acc), search.latency_objective(predictor.predict_archs),
        search.size_objective(net.space, task.spec)))
    about = {"checkpoint": str(folder), "predictor": str(predictor_path), "task": t["name"],
             "device": str(getattr(predictor, "device", "")), "n_val": int(len(task.y_val)), "torch_threads": 1}
    return problem, acc, about


def synthetic_problem():
    """The default space with an analytic, saturating 'accuracy' and FLOPs as latency."""
    from supernet import DEFAULT_SPACE, InputSpec, arch_cost

    space, spec = DEFAULT_SPACE, InputSpec(seq_len=16, in_features=4, num_classes=10)
    gain = {"softmax": 0.03, "linear": 0.0, "local": 0.02}

    def accuracy(archs):
        out = []
        for a in archs:
            params = arch_cost(a, space, spec).params
            layer = np.mean([gain[x.attention] - (0.02 if x.quant == "int8" else 0.0) for x in a.layers])
            out.append(0.5 + 0.4 * (1 - np.exp(-params / 150_000)) + layer + 0.005 * a.depth)
        return np.clip(out, 0, 1)

    acc = CachedAccuracy(accuracy)
    problem = search.SearchProblem(space, (
        search.accuracy_objective(acc), search.flops_objective(space, spec, name="latency"),
        search.size_objective(space, spec)))
    return problem, acc, {"problem": "synthetic (analytic accuracy, FLOPs as latency)"}


def hv_curve(F: np.ndarray, feasible: np.ndarray) -> list[float]:
    tracker = HypervolumeTracker(F.shape[1])
    return [tracker.add(f) if ok else tracker.value for f, ok in zip(F, feasible)]


def evals_to_reach(curve: list[float], target: float) -> int | None:
    hit = np.flatnonzero(np.asarray(curve) >= target - 1e-12)
    return int(hit[0]) + 1 if hit.size else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="run folder (or its supernet/ folder) of a trained supernet")
    parser.add_argument("--predictor", type=Path, help="latency predictor folder for the device")
    parser.add_argument("--synthetic", action="store_true", help="analytic stand-in problem (no checkpoint)")
    parser.add_argument("--algorithms", default=",".join([*search.algorithm_names(), *VARIANTS]))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budgets", default="50,100,200,400")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="search_efficiency")
    parser.add_argument("--work", type=Path, default=Path("/tmp/search_efficiency_runs"),
                        help="finished runs are kept here; delete it to start afresh")
    args = parser.parse_args(argv)
    if args.synthetic:
        problem, acc, about = synthetic_problem()
    elif args.checkpoint and args.predictor:
        problem, acc, about = real_problem(args.checkpoint, args.predictor)
    else:
        parser.error("give --checkpoint and --predictor, or --synthetic")
    algorithms = args.algorithms.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    budgets = sorted(int(b) for b in args.budgets.split(","))
    names = [o.name for o in problem.objectives]

    # each finished run is kept in --work, so an interrupted benchmark picks up where it stopped
    args.work.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in seeds:
        for name in algorithms:
            path = args.work / f"{name}-seed{seed}-b{budgets[-1]}.json"
            if path.exists():
                run = json.loads(path.read_text())
                run["raw"], run["feasible"] = np.array(run["raw"]), np.array(run["feasible"], dtype=bool)
                runs.append(run)
                continue
            start = time.perf_counter()
            registered, settings = VARIANTS.get(name, (name, {}))
            algorithm = search.get_algorithm(registered, **settings)
            result = search.run_search(problem, algorithm, budget=budgets[-1], seed=seed)
            wall = time.perf_counter() - start
            archs = [Arch.from_json(a) for a in result.candidates["arch"]]
            fresh = [acc.fresh_seconds[a] for a in archs]
            run = {"algorithm": name, "seed": seed, "wall_s": wall,
                   "eval_fresh_s": float(np.sum(fresh)), "overhead_s": result.algorithm_seconds,
                   "fixed_hv": result.hypervolume, "raw": result.candidates[names].to_numpy().tolist(),
                   "feasible": result.candidates["feasible"].tolist(), "stop": result.stop_reason,
                   "archs": result.candidates["arch"].tolist()}
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(run))
            tmp.replace(path)
            run["raw"], run["feasible"] = np.array(run["raw"]), np.array(run["feasible"], dtype=bool)
            runs.append(run)
            print(f"{name:13s} seed {seed}: {len(archs)} evals, fixed-bounds HV {result.hypervolume[-1]:.4f}, "
                  f"wall {wall:.1f}s (overhead {result.algorithm_seconds:.1f}s), "
                  f"fresh-eval {np.sum(fresh):.1f}s; cache {len(acc.values)}", flush=True)

    # reference front: union of all runs' fronts; normalise to its ideal/nadir box
    all_F = np.vstack([problem.normalise(r["raw"])[r["feasible"]] for r in runs])
    ref_front = all_F[non_dominated(all_F)]
    ideal, nadir = ref_front.min(axis=0), ref_front.max(axis=0)
    scale = np.where(nadir > ideal, nadir - ideal, 1.0)
    ref_hv = search.hypervolume((ref_front - ideal) / scale)
    for r in runs:
        r["hv"] = hv_curve((problem.normalise(r["raw"]) - ideal) / scale, r["feasible"])

    # targets: 95% and 99% of plain NSGA-II's hypervolume at the largest budget (mean over seeds),
    # under both normalisations
    final = {kind: [r[kind][budgets[-1] - 1] for r in runs if r["algorithm"] == "nsga2"
                    and len(r[kind]) >= budgets[-1]] for kind in ("hv", "fixed_hv")}
    target = {kind: float(np.mean(v)) if v else None for kind, v in final.items()}
    summary = {"about": about, "objectives": names, "seeds": seeds, "budgets": budgets,
               "reference_front_size": int(len(ref_front)), "reference_front_hv": ref_hv,
               "reference_ideal": ideal.tolist(), "reference_nadir": nadir.tolist(),
               "nsga2_final_hv_mean": target,
               "unique_accuracy_evaluations": len({a for r in runs for a in r["archs"]}),
               "fresh_eval_s_mean": float(np.mean([r["eval_fresh_s"] / len(r["raw"]) for r in runs])),
               "algorithms": {}}
    for name in algorithms:
        mine = [r for r in runs if r["algorithm"] == name]
        at = {b: [r["hv"][b - 1] / ref_hv for r in mine if len(r["hv"]) >= b] for b in budgets}
        fixed = {b: [r["fixed_hv"][b - 1] for r in mine if len(r["fixed_hv"]) >= b] for b in budgets}
        reach = {kind: {pct: [evals_to_reach(r[kind], pct / 100 * target[kind]) for r in mine]
                        for pct in (95, 99)} for kind in ("hv", "fixed_hv") if target[kind] is not None}
        summary["algorithms"][name] = {
            "hv_over_reference": {b: [float(np.mean(v)), float(np.std(v))] for b, v in at.items() if v},
            "fixed_bounds_hv": {b: [float(np.mean(v)), float(np.std(v))] for b, v in fixed.items() if v},
            "evals_to_reach_nsga2_final": {"reference_normalised": reach.get("hv"),
                                           "fixed_bounds": reach.get("fixed_hv")},
            "wall_s": float(np.mean([r["wall_s"] for r in mine])),
            "eval_fresh_s": float(np.mean([r["eval_fresh_s"] for r in mine])),
            "overhead_s": float(np.mean([r["overhead_s"] for r in mine])),
            "stop": sorted({r["stop"] for r in mine}),
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(summary, indent=1, default=str))
    curves = {f"{r['algorithm']}/{r['seed']}": r["hv"] for r in runs}
    (args.out / f"{args.name}_curves.json").write_text(json.dumps(curves))
    table = markdown(summary, budgets)
    (args.out / f"{args.name}.md").write_text(table)
    print(table)
    plot(runs, algorithms, ref_hv, args.out / f"{args.name}.png")


def _reach(needed: list[int | None]) -> str:
    """Median over seeds (a seed that never reaches counts as infinite), then each seed."""
    if not needed:
        return "-"
    median = float(np.median([np.inf if n is None else n for n in needed]))
    head = "not reached" if not np.isfinite(median) else f"{median:g}"
    return f"{head} ({', '.join('never' if n is None else str(n) for n in needed)})"


def markdown(summary: dict, budgets: list[int]) -> str:
    lines = [f"# Search efficiency ({summary['about']})", "",
             f"Objectives {summary['objectives']}; seeds {summary['seeds']}. Reference front: "
             f"{summary['reference_front_size']} points (union of all runs' fronts). "
             f"{summary['unique_accuracy_evaluations']} distinct architectures evaluated; a fresh accuracy "
             f"evaluation took {summary['fresh_eval_s_mean'] * 1000:.1f} ms on average.", ""]
    for key, title in (("hv_over_reference", "Hypervolume / reference-front hypervolume, objectives normalised "
                        "to the reference front's ideal-nadir box"),
                       ("fixed_bounds_hv", "Hypervolume as the search records it (fixed bounds, reference "
                        "point 1.1, max 1.1^3 = 1.331)")):
        lines += [f"## {title} (mean ± std over seeds)", "",
                  "| algorithm | " + " | ".join(f"{b} evals" for b in budgets) + " |",
                  "|---|" + "---|" * len(budgets)]
        for name, s in summary["algorithms"].items():
            cells = [f"{s[key][b][0]:.4f} ± {s[key][b][1]:.4f}" if b in s[key] else "-" for b in budgets]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [f"## Evaluations to reach 95% / 99% of NSGA-II's {budgets[-1]}-evaluation hypervolume "
              "(median over seeds; per seed in brackets)", "",
              "| algorithm | 95% (fixed bounds) | 99% (fixed bounds) | 95% (reference-normalised) "
              "| 99% (reference-normalised) |", "|---|---|---|---|---|"]
    for name, s in summary["algorithms"].items():
        r = s["evals_to_reach_nsga2_final"]
        cells = [_reach((r[kind] or {}).get(pct, [])) for kind in ("fixed_bounds", "reference_normalised")
                 for pct in (95, 99)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"## Time per run (mean over seeds, {budgets[-1]} evaluations)", "",
              "| algorithm | wall s (cached accuracies) | fresh evaluation s | algorithm overhead s |",
              "|---|---|---|---|"]
    for name, s in summary["algorithms"].items():
        lines.append(f"| {name} | {s['wall_s']:.1f} | {s['eval_fresh_s']:.1f} | {s['overhead_s']:.1f} |")
    lines += ["", "Accuracies are cached across runs, so wall s includes cache hits; a run on its own "
              "takes about fresh evaluation s + algorithm overhead s."]
    return "\n".join(lines) + "\n"


def plot(runs: list[dict], algorithms: list[str], ref_hv: float, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in algorithms:
        curves = [np.asarray(r["hv"]) / ref_hv for r in runs if r["algorithm"] == name]
        n = min(len(c) for c in curves)
        mean = np.mean([c[:n] for c in curves], axis=0)
        ax.plot(np.arange(1, n + 1), mean, label=name)
    ax.set_xlabel("expensive evaluations")
    ax.set_ylabel("hypervolume / reference front")
    ax.set_ylim(bottom=max(0.0, ax.get_ylim()[0]))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
