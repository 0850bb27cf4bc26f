"""Which latency predictor fit-predictor keeps, and whether the choice holds on the exported models.

For each finished default run folder (RUN/profile, RUN/export/manifest.json, as
`benchmarks/end_to_end.py` leaves them):

1. how often each predictor is chosen, three ways, over seeds 0-9 (seed 0 is what a default
   run does): on one held-out quarter of the profile (60 subnets fitted, 20 scored, the best
   share within ±10%, then MAPE: fit-predictor before), out of fold (`predictors.cross_validate`,
   four folds, every subnet scored once, the same best), and out of fold with the
   one-standard-error rule (`predictors.choose`, what fit-predictor does now);
2. every predictor fitted on the whole profile and scored on the run's exported models (front
   and uniform baselines) against their measured fastest runs: share within ±10%, MAPE;
3. for each way of choosing, the export share of the predictor it picks, averaged over seeds.

Nothing is measured here: it reads the profiles and manifests. Fitting takes seconds.

    .venv/bin/python benchmarks/predictor_choice.py /tmp/hwnas-e2e38/local /tmp/hwnas-e2e39/local ...
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from _common import machine_line, save_report

RESULTS = Path(__file__).parent / "results"
SEEDS = range(10)


def choice(table) -> str:
    """The predictor fit-predictor keeps from a comparison table: within ±10%, then MAPE."""
    return str(table.sort_values(["within_10", "mape"], ascending=[False, True]).iloc[0]["predictor"])


def one_run(run_dir: Path) -> dict:
    from hwprofiles import Profile
    from predictors import (DEFAULT_NAMES, FeatureSchema, build_latency_predictor, choose, compare_predictors,
                            cross_validate, latency_metrics, split_indices)
    from supernet import Arch

    profile = Profile.load(run_dir / "profile")
    manifest = json.loads((run_dir / "export/manifest.json").read_text())
    archs, y = profile.archs(), profile.latency("min_ms")
    schema, costs = FeatureSchema(profile.space, profile.spec), profile.block_costs()
    pick = lambda idx: ([archs[i] for i in idx], y[idx])  # noqa: E731

    ways = {"one quarter": {}, "out of fold": {}, "out of fold, one-SE rule": {}}
    for seed in SEEDS:
        train_idx, test_idx = split_indices(len(archs), 0.25, seed)
        _, table = compare_predictors(schema, profile.device, pick(train_idx), pick(test_idx), block_costs=costs,
                                      seed=0)
        ways["one quarter"][seed] = choice(table)
        table = cross_validate(schema, profile.device, archs, y, block_costs=costs, seed=seed)
        ways["out of fold"][seed] = choice(table)
        ways["out of fold, one-SE rule"][seed] = choose(table)

    exported = [Arch.from_dict(m["arch"]) for m in manifest["models"]]
    measured = np.array([m["measured_latency_min_ms"] for m in manifest["models"]])
    at_export = {}
    for name in DEFAULT_NAMES:
        predictor = build_latency_predictor(name, schema, profile.device, block_costs=costs, seed=0)
        predictor.fit_archs(archs, y)
        metrics = latency_metrics(measured, predictor.predict_archs(exported))
        at_export[name] = {"within_10": metrics["within_10"], "mape": metrics["mape"]}
    return {"run": str(run_dir), "chosen": ways, "at_export": at_export, "exported_models": len(exported),
            "export_within_10": {way: float(np.mean([at_export[c]["within_10"] for c in picks.values()]))
                                 for way, picks in ways.items()},
            "export_mape": {way: float(np.mean([at_export[c]["mape"] for c in picks.values()]))
                            for way, picks in ways.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="finished run folders (RUN with profile/ and export/)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", default="", help="a paragraph appended to the report (where the runs came from)")
    args = parser.parse_args()
    from hwprofiles import fingerprint

    rows = [one_run(r) for r in args.runs]
    command = "python benchmarks/predictor_choice.py " + " ".join(str(r) for r in args.runs)
    ways = list(rows[0]["chosen"])
    lines = ["# Choosing the latency predictor: one held-out quarter, out of fold, and the one-SE rule", "",
             machine_line(fingerprint()) + f" Command: `{command}` (no measurement: profiles and manifests read).", "",
             "Each way chooses over 10 seeds (one quarter: 60 subnets fitted, 20 scored; out of fold: four folds, "
             "all 80 scored; the one-SE rule: the simplest predictor within one standard error of the best, "
             "`predictors.choose`); each predictor is then fitted on the whole profile and scored on the run's "
             "exported models (8 front models, 18 uniform baselines) against their measured fastest runs.", "",
             "| run | " + " | ".join(f"chosen: {w}" for w in ways) + " | each predictor at export (within ±10%, MAPE) |",
             "|---|" + "---|" * len(ways) + "---|"]
    count = lambda picks: ", ".join(f"{k} {v}" for k, v in Counter(picks.values()).most_common())  # noqa: E731
    for row in rows:
        each = "; ".join(f"{k} {v['within_10']:.2f}, {v['mape']:.1f}%" for k, v in row["at_export"].items())
        lines.append(f"| {Path(row['run']).parent.name} | " + " | ".join(count(row["chosen"][w]) for w in ways)
                     + f" | {each} |")
    lines += ["", "The chosen predictor on the exported models, mean over the 10 seeds and the runs:", "",
              "| way | within ±10% | MAPE |", "|---|---|---|"]
    for w in ways:
        lines.append(f"| {w} | {np.mean([r['export_within_10'][w] for r in rows]):.3f} | "
                     f"{np.mean([r['export_mape'][w] for r in rows]):.2f}% |")
    if args.note:
        lines += ["", args.note]
    save_report(args.out, "predictor_choice", {"command": command, "machine": fingerprint(), "runs": rows}, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
