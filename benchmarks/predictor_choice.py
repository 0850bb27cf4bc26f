"""Which latency predictor fit-predictor keeps, and whether the choice holds on the exported models.

For each finished default run folder (RUN/profile, RUN/export/manifest.json, as
`benchmarks/end_to_end.py` leaves them):

1. the choice made on one held-out quarter of the profile (the former fit-predictor: 60 subnets
   fitted, 20 scored) for split seeds 0-9, and the choice made out of fold (the present one,
   `predictors.cross_validate`: four folds, every subnet scored once) for fold seeds 0-9: how
   often each predictor is chosen (seed 0 is what the default run does, `seed = 0`);
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
    from predictors import (DEFAULT_NAMES, FeatureSchema, build_latency_predictor, compare_predictors,
                            cross_validate, latency_metrics, split_indices)
    from supernet import Arch

    profile = Profile.load(run_dir / "profile")
    manifest = json.loads((run_dir / "export/manifest.json").read_text())
    archs, y = profile.archs(), profile.latency("min_ms")
    schema, costs = FeatureSchema(profile.space, profile.spec), profile.block_costs()
    pick = lambda idx: ([archs[i] for i in idx], y[idx])  # noqa: E731

    quarter, folds = {}, {}
    for seed in SEEDS:
        train_idx, test_idx = split_indices(len(archs), 0.25, seed)
        _, table = compare_predictors(schema, profile.device, pick(train_idx), pick(test_idx), block_costs=costs,
                                      seed=0)
        quarter[seed] = choice(table)
        folds[seed] = choice(cross_validate(schema, profile.device, archs, y, block_costs=costs, seed=seed))

    exported = [Arch.from_dict(m["arch"]) for m in manifest["models"]]
    measured = np.array([m["measured_latency_min_ms"] for m in manifest["models"]])
    at_export = {}
    for name in DEFAULT_NAMES:
        predictor = build_latency_predictor(name, schema, profile.device, block_costs=costs, seed=0)
        predictor.fit_archs(archs, y)
        metrics = latency_metrics(measured, predictor.predict_archs(exported))
        at_export[name] = {"within_10": metrics["within_10"], "mape": metrics["mape"]}
    return {"run": str(run_dir), "quarter_choice": quarter, "fold_choice": folds, "at_export": at_export,
            "quarter_export_within_10": float(np.mean([at_export[c]["within_10"] for c in quarter.values()])),
            "fold_export_within_10": float(np.mean([at_export[c]["within_10"] for c in folds.values()])),
            "exported_models": len(exported)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="finished run folders (RUN with profile/ and export/)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    from hwprofiles import fingerprint

    rows = [one_run(r) for r in args.runs]
    command = "python benchmarks/predictor_choice.py " + " ".join(str(r) for r in args.runs)
    lines = ["# Choosing the latency predictor: one held-out quarter against every subnet out of fold", "",
             machine_line(fingerprint()) + f" Command: `{command}` (no measurement: profiles and manifests read).", "",
             "Chosen over 10 seeds each (the former way: one split of 60 fitted / 20 scored; the present way: "
             "four folds, all 80 scored); then each predictor fitted on the whole profile and scored on the "
             "run's exported models against their measured fastest runs.", "",
             "| run | chosen on one quarter (10 splits) | chosen out of fold (10 fold seeds) | export within ±10%: "
             "quarter's pick / fold's pick (mean over seeds) | each predictor at export (within ±10%, MAPE) |",
             "|---|---|---|---|---|"]
    for row in rows:
        count = lambda picks: ", ".join(f"{k} {v}" for k, v in Counter(picks.values()).most_common())  # noqa: E731
        each = "; ".join(f"{k} {v['within_10']:.2f}, {v['mape']:.1f}%" for k, v in row["at_export"].items())
        lines.append(f"| {Path(row['run']).parent.name} | {count(row['quarter_choice'])} | "
                     f"{count(row['fold_choice'])} | {row['quarter_export_within_10']:.3f} / "
                     f"{row['fold_export_within_10']:.3f} | {each} |")
    save_report(args.out, "predictor_choice", {"command": command, "machine": fingerprint(), "runs": rows}, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
