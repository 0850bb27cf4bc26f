"""The default `hwnas run`, end to end: stage times, exported-model figures, local vs Ray.

1. `hwnas run` with embedded defaults into a fresh folder: wall time by stage (run.json);
   share of exported front models within ±10% of predicted latency; largest gap between
   ONNX and supernet test accuracy; speed-up of the front over the best uniform baseline
   at equal test accuracy (all read from export/manifest.json).
2. The same pipeline with `--executor ray` (local Ray, 2 CPUs): wall time.
3. Same front for the same seed: `hwnas search` with the local and the Ray executor on the
   same supernet and predictor (copied from run 1), fronts compared.

    .venv/bin/python benchmarks/end_to_end.py            # all three
    .venv/bin/python benchmarks/end_to_end.py --skip-ray-pipeline
    .venv/bin/python benchmarks/end_to_end.py --local-only     # 1 only: what `make run` does
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import pandas as pd

from _common import HWNAS, run, stage_seconds, with_load_line

RESULTS = Path(__file__).parent / "results"


def figures(run_dir: Path) -> dict:
    from runners.report import models_frame, speedup_summary

    manifest = json.loads((run_dir / "export/manifest.json").read_text())
    df = models_frame(manifest)
    front = df[df.kind == "front"]
    stages = stage_seconds(run_dir)
    return {
        "stage_seconds": stages,
        "total_seconds": round(sum(stages.values()), 1),
        "front_models": len(front),
        "share_within_10pct": float((~front.latency_off).mean()),
        "share_within_10pct_all_models": float((~df.latency_off).mean()),
        **first_pass_share(manifest),
        "max_onnx_vs_supernet_test_gap_points": float((front.test_acc - front.supernet_test_acc).abs().max() * 100),
        "speedup_vs_uniform_baselines": speedup_summary(df),
        "front": front[["name", "arch", "test_acc", "predicted_ms", "measured_ms"]].to_dict("records"),
    }


def first_pass_share(manifest: dict) -> dict:
    """Share of all exported models within ±10% of prediction on the export's first pass alone
    (what one pass would have reported), when the manifest keeps each pass's fastest run."""
    models = [m for m in manifest["models"] if "measured_latency_min_ms_by_pass" in m]
    if manifest.get("latency_statistic") != "min_ms" or not models:
        return {}
    first = [abs(m["predicted_latency_ms"] / m["measured_latency_min_ms_by_pass"][0] - 1) <= 0.10 for m in models]
    return {"share_within_10pct_all_models_first_pass": sum(first) / len(first)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/hwnas-e2e"))
    parser.add_argument("--skip-ray-pipeline", action="store_true")
    parser.add_argument("--local-only", action="store_true", help="only the default run (1), as `make run`")
    parser.add_argument("--config", type=Path, default=None,
                        help="a TOML config for the runs (default: none, the default job of `make run`)")
    parser.add_argument("--from-existing", action="store_true",
                        help="recompute the figures from the run folders under --out and the wall times "
                             "recorded in benchmarks/results/end_to_end.json (no new runs)")
    args = parser.parse_args()
    if args.from_existing:
        from runners.report import write_report

        result = json.loads((RESULTS / "end_to_end.json").read_text())
        write_report(args.out / "local")
        for kind in ("local", "ray"):
            if kind in result:
                result[kind] = {"wall_seconds": result[kind]["wall_seconds"], **figures(args.out / kind)}
        write(result, args.out)
        return
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    from hwprofiles import fingerprint

    load_start = os.getloadavg()
    local_dir = args.out / "local"
    RESULTS.mkdir(exist_ok=True)
    with_config = ["--config", str(args.config)] if args.config else []
    wall_local = run([*HWNAS, "run", "--run", str(local_dir), *with_config], log=RESULTS / "end_to_end_output.txt")
    command = "python benchmarks/end_to_end.py" + (" --local-only" if args.local_only else "") + \
        (f" --config {args.config}" if args.config else "")
    result = {"command": command, "machine": fingerprint(), "load_average_at_start": load_start,
              "local": {"wall_seconds": round(wall_local, 1), **figures(local_dir)}}

    if args.local_only:
        result["load_average_at_end"] = os.getloadavg()
        write(result, args.out)
        return
    if not args.skip_ray_pipeline:
        ray_dir = args.out / "ray"
        wall_ray = run([*HWNAS, "run", "--run", str(ray_dir), "--executor", "ray", *with_config])
        result["ray"] = {"wall_seconds": round(wall_ray, 1), **figures(ray_dir)}

    # Same supernet and predictor, search with each executor: the fronts must be identical.
    fronts, times = {}, {}
    for kind in ("local", "ray"):
        d = args.out / f"search-{kind}"
        d.mkdir()
        shutil.copytree(local_dir / "supernet", d / "supernet")
        times[kind] = run([*HWNAS, "search", "--run", str(d), "--predictor", str(local_dir / "predictor"),
                           "--executor", kind, "--seed", "0"])
        fronts[kind] = sorted(pd.read_csv(d / "search/front.csv")["arch"])
    result["search_executor_comparison"] = {
        "same_front": fronts["local"] == fronts["ray"], "front_size": len(fronts["local"]),
        "wall_seconds": {k: round(v, 1) for k, v in times.items()},
    }
    result["load_average_at_end"] = os.getloadavg()
    write(result, args.out)


def write(result: dict, out: Path) -> None:
    local_dir = out / "local"
    load_start = result["load_average_at_start"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "end_to_end.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    shutil.copy(local_dir / "report/pareto.png", RESULTS / "end_to_end_pareto.png")
    report = (local_dir / "report/report.md").read_text()
    (RESULTS / "end_to_end_report.md").write_text(with_load_line(report, result))

    loc = result["local"]
    sp = loc["speedup_vs_uniform_baselines"]
    lines = [
        "# End to end: the default `hwnas run`",
        "",
        f"Machine: {result['machine'].get('cpu_model')}, {result['machine'].get('cpu_count')} cores; load average "
        f"at start {load_start[0]:.2f}, at end {result['load_average_at_end'][0]:.2f}. Command: `{result['command']}`.",
        "",
        "| stage | seconds |", "|---|---|",
        *[f"| {k} | {v:.1f} |" for k, v in loc["stage_seconds"].items()],
        f"| **total (stages)** | **{loc['total_seconds']:.1f}** |",
        f"| wall time of the command | {loc['wall_seconds']:.1f} |",
        "",
        f"- front models exported: {loc['front_models']}; within ±10% of predicted latency: "
        f"{loc['share_within_10pct']:.0%} (all exported models incl. baselines: "
        f"{loc['share_within_10pct_all_models']:.0%}"
        + (f"; on the export's first pass alone: {loc['share_within_10pct_all_models_first_pass']:.0%})"
           if "share_within_10pct_all_models_first_pass" in loc else ")"),
        f"- largest gap between ONNX and supernet test accuracy on the front: "
        f"{loc['max_onnx_vs_supernet_test_gap_points']:.2f} points",
        (f"- speed-up over the uniform baselines at equal or better test accuracy (fastest front model matching "
         f"each baseline): worst {sp['min']:.2f}x, median {sp['median']:.2f}x, best {sp['max']:.2f}x over "
         f"{sp['matched_baselines']} matched baselines ({sp['unmatched_baselines']} more accurate than the whole "
         "front); per baseline in end_to_end.json") if sp else
        "- speed-up: no front model reaches a baseline's test accuracy",
    ]
    if "ray" in result:
        lines.append(f"- `hwnas run --executor ray` (local Ray, 2 CPUs): {result['ray']['wall_seconds']:.1f} s wall "
                     f"vs {loc['wall_seconds']:.1f} s local")
    cmp_ = result.get("search_executor_comparison")
    if cmp_:
        lines.append(f"- `hwnas search` on the same supernet and predictor, seed 0: same front with local and Ray "
                     f"executors: {cmp_['same_front']} ({cmp_['front_size']} models); wall "
                     f"{cmp_['wall_seconds']['local']:.1f} s local, {cmp_['wall_seconds']['ray']:.1f} s Ray")
    (RESULTS / "end_to_end.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
