"""Hybrid attention on long sequences: the searched front against uniform baselines, all trained.

Runs the long-sequence configuration (`hwnas run --config configs/long.toml`: a task of at
least 256 tokens, the `cpu` device, the finetune stage on), then reads the run's finetune
manifest, where every exported front model has been trained on from its inherited weights
and every uniform baseline (each attention type, several sizes, fp32 and int8) trained from
scratch with the same recipe, all re-exported and measured together on the device.

- Reference: the fastest all-softmax baseline whose accuracy reaches the best all-softmax
  accuracy. "Reaches" is read two ways: the best one itself (`reference_strict`), and the
  fastest one within the binomial noise of the best (`reference`, the harder comparison,
  used for the headline).
- The fastest front model reaching >= 97% of the reference's accuracy, its latency ratio to
  the reference (`latency_ratio`; goal <= 0.5) and in which layers it keeps softmax.
- Whether one attention type is best at every cost: for each uniform type, its baselines'
  accuracy against latency, and at each baseline latency which kind of model (a uniform
  type, or a front model mixing types) is the most accurate within that latency.

    .venv/bin/python benchmarks/hybrid_attention.py                    # ~30 minutes on 2 cores
    .venv/bin/python benchmarks/hybrid_attention.py --from-existing RUN # figures from a finished run

Writes benchmarks/results/NAME.{json,md} (`--name`, default hybrid_attention) and, for a run it
made, copies the run's console and report there. `--from-existing` reads a run made elsewhere
(say, trained on a GPU machine with configs/long_gpu.toml): the latencies are the run's own,
with the machine its finetune manifest records; `--note` says how the run was made.
A timing benchmark: run it with nothing else computing on the machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd

from _common import stage_seconds, timed_hwnas, with_load_line

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SHARE = 0.97  # a front model "matches" the reference at this share of its accuracy


def trained_models(run_dir: Path) -> tuple[pd.DataFrame, dict]:
    """The finetune manifest's models with their trained accuracy, latency and attention types."""
    manifest = json.loads((run_dir / "finetune" / "manifest.json").read_text())
    stat = manifest.get("latency_statistic", "median_ms")
    rows = []
    for m in manifest["models"]:
        layers = m["arch"]["layers"]
        kinds = [layer["attention"] for layer in layers]
        rows.append({"name": m["name"], "kind": m["kind"], "init": m["init"],
                     "attentions": "-".join(kinds), "quants": "-".join(layer["quant"] for layer in layers),
                     "embed_dim": m["arch"]["embed_dim"], "depth": len(layers),
                     "softmax_layers": [i for i, k in enumerate(kinds) if k == "softmax"],
                     "uniform_type": kinds[0] if len(set(kinds)) == 1 else "mixed",
                     "accuracy": m["trained_test_accuracy"], "accuracy_se": m["trained_test_accuracy_se"],
                     "inherited_accuracy": m["inherited_test_accuracy"],
                     "latency_ms": m["measured_latency_min_ms"] if stat == "min_ms" else m["measured_latency_ms"],
                     "size_bytes": m["size_bytes"]})
    return pd.DataFrame(rows), manifest


def analyse(df: pd.DataFrame, n_test: int) -> dict:
    from supernet import within_noise

    base, front = df[df.kind == "baseline"], df[df.kind == "front"]
    soft = base[base.uniform_type == "softmax"]
    if soft.empty:
        raise SystemExit("the run has no all-softmax baseline: its space must declare softmax attention")
    strict = soft[soft.accuracy == soft.accuracy.max()].sort_values("latency_ms").iloc[0]

    def fastest_within_noise_of_best(models: pd.DataFrame) -> pd.Series:
        best = models.accuracy.max()
        reach = models[[a >= best or within_noise(a, best, n_test) for a in models.accuracy]]
        return reach.sort_values("latency_ms").iloc[0]

    reference = fastest_within_noise_of_best(soft)

    def match(ref: pd.Series) -> dict:
        ok = front[front.accuracy >= SHARE * ref.accuracy].sort_values("latency_ms")
        out = {"reference": ref["name"], "reference_accuracy": float(ref.accuracy),
               "reference_latency_ms": float(ref.latency_ms), "threshold_accuracy": float(SHARE * ref.accuracy)}
        if ok.empty:
            return {**out, "front_model": None, "latency_ratio": None}
        m = ok.iloc[0]
        return {**out, "front_model": m["name"], "front_attentions": m.attentions, "front_quants": m.quants,
                "front_softmax_layers": m.softmax_layers, "front_accuracy": float(m.accuracy),
                "front_accuracy_se": float(m.accuracy_se), "front_latency_ms": float(m.latency_ms),
                "latency_ratio": float(m.latency_ms / ref.latency_ms)}

    # Which kind of model is most accurate within each baseline's latency: one type best everywhere?
    best_within = []
    for budget in sorted(df.latency_ms.unique()):
        within = df[df.latency_ms <= budget]
        top = within.sort_values(["accuracy", "latency_ms"], ascending=[False, True]).iloc[0]
        best_within.append({"latency_budget_ms": float(budget), "best": top["name"], "best_kind": top.uniform_type
                            if top.kind == "baseline" else f"front ({top.attentions})", "accuracy": float(top.accuracy)})
    uniform_best = {}
    for b in best_within:
        uniform = df[(df.latency_ms <= b["latency_budget_ms"]) & (df.kind == "baseline")]
        if len(uniform):
            top = uniform.sort_values(["accuracy", "latency_ms"], ascending=[False, True]).iloc[0]
            uniform_best.setdefault(top.uniform_type, 0)
            uniform_best[top.uniform_type] += 1
    return {"reference_rule": "fastest all-softmax baseline within noise of the best all-softmax accuracy",
            **match(reference), "strict": match(strict),
            # beside the goal: the best uniform model of any attention type, read the same way
            "best_uniform": match(fastest_within_noise_of_best(base)), "best_within_latency": best_within,
            "uniform_type_best_at_budgets": uniform_best}


def markdown(result: dict, df: pd.DataFrame) -> str:
    a, m = result["analysis"], result["machine"]
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in result["stage_seconds"].items())
    if result.get("wall_seconds") is not None:
        timing = (f"Load average {result['load_average_at_start'][0]:.2f} at the start, "
                  f"{result['load_average_at_end'][0]:.2f} at the end. Wall time {result['wall_seconds'] / 60:.1f} min "
                  f"(stages: {stages}).")
    else:  # figures read from a finished run: its own stage times
        timing = f"Stage times recorded in the run: {stages}."
    lines = ["# Hybrid attention on long sequences: fine-tuned front vs standalone uniform baselines", "",
             f"Run: `{result['command']}` (task `{result['task']['name']}` "
             f"{result['task']['options']}, {result['seq_len']} tokens; {result['task']['n_train']} train / "
             f"{result['task']['n_val']} val / {result['task']['n_test']} test examples). Device `{result['device']}` "
             f"on {m.get('cpu_model')}, {m.get('cpu_count')} cores, GPU {m.get('gpu_name') or 'none'}; latency "
             f"statistic {result['statistic']}. {timing}", ""]
    lines += [result["note"], ""] if result.get("note") else []
    lines += ["Every accuracy is test accuracy after training ± binomial SE: front models fine-tuned from the "
              "supernet's weights, baselines trained from scratch, with the same recipe (epochs, batch, learning "
              "rate, data order). The front models have also had the supernet's training behind them.", ""]

    def verdict(x: dict, label: str, goal: str = " (goal <= 0.5)") -> list[str]:
        head = (f"- {label}: `{x['reference']}`, {100 * x['reference_accuracy']:.1f}% at "
                f"{x['reference_latency_ms']:.3f} ms.")
        if x["front_model"] is None:
            return [head, f"  No front model reaches {100 * SHARE:.0f}% of it "
                          f"({100 * x['threshold_accuracy']:.1f}%)."]
        soft = ", ".join(str(i) for i in x["front_softmax_layers"]) or "none"
        return [head, f"  Fastest front model at >= {100 * SHARE:.0f}% of it: `{x['front_model']}` "
                      f"({x['front_attentions']}, {x['front_quants']}), {100 * x['front_accuracy']:.1f} ± "
                      f"{100 * x['front_accuracy_se']:.1f}% at {x['front_latency_ms']:.3f} ms: **latency ratio "
                      f"{x['latency_ratio']:.2f}**{goal}; softmax kept in layers {soft}."]

    lines += verdict(a, "Reference (fastest all-softmax baseline within noise of the best all-softmax)")
    lines += verdict(a["strict"], "Reference, strict reading (the most accurate all-softmax baseline)")
    lines += verdict(a["best_uniform"], "Beside the goal, the best uniform baseline of any type (the fastest within "
                     "noise of the most accurate one)", goal="")
    lines += ["", "Most accurate uniform type within each baseline's latency: "
              + ", ".join(f"{k} at {v} budgets" for k, v in a["uniform_type_best_at_budgets"].items()), ""]
    table = df.sort_values("latency_ms")[["name", "kind", "attentions", "quants", "accuracy", "accuracy_se",
                                          "inherited_accuracy", "latency_ms"]].copy()
    table["accuracy"] = [f"{100 * x:.1f} ± {100 * s:.1f}" for x, s in zip(table.accuracy, table.accuracy_se)]
    table["inherited_accuracy"] = [f"{100 * x:.1f}" for x in table.inherited_accuracy]
    table["latency_ms"] = [f"{x:.4f}" for x in table.latency_ms]
    table = table.drop(columns="accuracy_se").rename(columns={"accuracy": "trained test acc %",
                                                              "inherited_accuracy": "inherited %",
                                                              "latency_ms": f"{result['statistic']} (ms)"})
    lines += ["## Every trained model, fastest first", "",
              table.to_markdown(index=False, disable_numparse=True), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "long.toml")
    parser.add_argument("--out", type=Path, default=Path("/tmp/hwnas-hybrid"))
    parser.add_argument("--from-existing", type=Path, default=None, help="a finished run folder: no new run")
    parser.add_argument("--note", default="", help="a line for the report on how the run was made")
    parser.add_argument("--name", default="hybrid_attention", help="stem of the result files")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()

    config = args.config.resolve()
    shown = config.relative_to(ROOT) if config.is_relative_to(ROOT) else config
    if args.from_existing:
        run_dir = args.from_existing
        # Figures read from a finished run: its latencies were measured where its finetune
        # manifest says, under a load this command did not see.
        result = {"command": f"python benchmarks/hybrid_attention.py --from-existing RUN (RUN made from {shown})",
                  "wall_seconds": None}
    else:
        run_dir = args.out / "run"
        command = f"python benchmarks/hybrid_attention.py --config {shown}"
        result = timed_hwnas(["run", "--config", str(config), "--run", str(run_dir)], args.out, command, cwd=ROOT)
        shutil.copy(args.out / "output.txt", args.results / f"{args.name}_output.txt")
    df, manifest = trained_models(run_dir)
    result.setdefault("machine", manifest.get("fingerprint", {}))
    result.update({"note": args.note, "task": manifest["task"], "device": manifest["device"]["name"],
                   "statistic": manifest.get("latency_statistic", "median_ms"),
                   "seq_len": json.loads((run_dir / "supernet" / "checkpoint.json").read_text())["input_spec"]["seq_len"],
                   "stage_seconds": stage_seconds(run_dir)})
    result["analysis"] = analyse(df, manifest["task"]["n_test"])
    result["latency_ratio"] = result["analysis"]["latency_ratio"]
    result["models"] = json.loads(df.to_json(orient="records"))
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{args.name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    text = markdown(result, df)
    (args.results / f"{args.name}.md").write_text(text)
    report = run_dir / "report" / "report.md"
    if report.exists() and result["wall_seconds"] is not None:  # measured in this run: with the load it saw
        (args.results / f"{args.name}_report.md").write_text(with_load_line(report.read_text(), result))
    print(text)


if __name__ == "__main__":
    main()
