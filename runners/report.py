"""The run report: Pareto plot, hypervolume plot, tables, markdown and one HTML page.

Every number comes from the run folder's files (export/manifest.json, search/*.csv and,
when the finetune stage ran, finetune/manifest.json): nothing is typed in. With a finetune
manifest the tables put each model's inherited and trained (fine-tuned front, standalone
baselines) test accuracy side by side, the Pareto plot adds the trained models, and the
speed-up at equal accuracy compares the fine-tuned front with the standalone baselines.
Front models that another exported model dominates on the measured figures are flagged
(the manifests' `dominated_by`; derived here for manifests written before it was kept).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from supernet import binomial_se, within_noise

from ._errors import UserInputError
from ._io import atomic_write_bytes, atomic_write_text
from .exporting import DOMINANCE_Z, load_export_manifest
from .finetune import load_finetune_manifest
from .matrix import device_section

# The trained model's columns in `models_frame` (NaN where the finetune stage did not train it).
TRAINED_COLUMNS = ("init", "trained_acc", "trained_acc_se", "trained_ms", "trained_p10_ms", "trained_p90_ms",
                   "accuracy_change", "change_within_noise", "trained_dominated_by")
HYPERVOLUME_COLUMNS = ("evaluation", "hypervolume")  # search/hypervolume.csv, one row per expensive evaluation


def load_manifest(run_dir: Path) -> dict[str, Any]:
    """The run's export manifest, checked (a broken one, or models lacking fields, is bad input)."""
    return load_export_manifest(run_dir)


def load_hypervolume(run_dir: Path) -> pd.DataFrame | None:
    """RUN/search/hypervolume.csv (None without one); a file that is not that table is bad input."""
    path = Path(run_dir) / "search" / "hypervolume.csv"
    if not path.exists():
        return None
    try:
        hv = pd.read_csv(path)
        if tuple(hv.columns) != HYPERVOLUME_COLUMNS:
            raise ValueError(f"columns {list(hv.columns)}, expected {list(HYPERVOLUME_COLUMNS)}")
        if not np.isfinite(hv.to_numpy(dtype=np.float64)).all():
            raise ValueError("it holds missing or non-finite values")
    except (OSError, ValueError) as exc:  # pandas' parser errors and bad text are ValueErrors
        raise UserInputError(f"{path} is not a hypervolume table: {exc}") from None
    return hv


def models_frame(manifest: dict[str, Any], finetune: dict[str, Any] | None = None) -> pd.DataFrame:
    """One row per exported model. `measured_ms` is the statistic the predictor was fitted to
    and checked against (the fastest run or the median, `manifest["latency_statistic"]`).

    With a finetune manifest, each model it trained (same name and architecture) also gets the
    trained model's ONNX test accuracy (`trained_acc`, `trained_acc_se`) and its latency
    measured after training (`trained_ms`, same statistic); see TRAINED_COLUMNS.
    """
    stat = manifest.get("latency_statistic", "median_ms")
    trained = {m["name"]: m for m in (finetune or {}).get("models", [])}
    n_test = test_examples(manifest)
    rows = []
    for m in manifest["models"]:
        rows.append({
            "test_acc_se": m.get("onnx_test_accuracy_se", binomial_se(m["onnx_test_accuracy"], n_test) if n_test
                                 else float("nan")),
            "name": m["name"], "kind": m["kind"], "arch": m["arch_description"],
            "test_acc": m["onnx_test_accuracy"], "supernet_test_acc": m["supernet_test_accuracy"],
            "val_acc": m["supernet_val_accuracy"], "predicted_ms": m["predicted_latency_ms"],
            "measured_ms": m["measured_latency_min_ms"] if stat == "min_ms" else m["measured_latency_ms"],
            "median_ms": m["measured_latency_ms"], "min_ms": m["measured_latency_min_ms"],
            "p10_ms": m["measured_latency_p10_ms"],
            "p90_ms": m["measured_latency_p90_ms"], "size_kb": m["size_bytes"] / 1024,
            "latency_off": m["latency_off_by_more_than_10pct"],
            **_trained_columns(trained.get(m["name"]), m, stat),
        })
    df = pd.DataFrame(rows)
    stored = [m.get("dominated_by") for m in manifest["models"]]
    df["dominated_by"] = ([tuple(d) for d in stored] if all(isinstance(d, list) for d in stored)
                          else _derived_dominance(df))
    return df


def _derived_dominance(df: pd.DataFrame) -> list[tuple[str, ...] | None]:
    """`dominated_by` for a manifest written before it was kept (None where accuracies lack an SE)."""
    from predictors import dominated_on_measurements

    try:
        beaten = dominated_on_measurements(df.measured_ms, df.size_kb * 1024, df.test_acc, df.test_acc_se,
                                           z=DOMINANCE_Z)
    except ValueError:  # no SE recorded (NaN), or figures the rule cannot compare
        return [None] * len(df)
    return [tuple(df["name"].iloc[j] for j in row) for row in beaten]


def _trained_columns(t: dict[str, Any] | None, exported: dict[str, Any], stat: str) -> dict[str, Any]:
    if t is None or t.get("arch") != exported["arch"]:  # not trained, or trained from an older export
        return {c: (None if c in ("init", "change_within_noise", "trained_dominated_by") else float("nan"))
                for c in TRAINED_COLUMNS}
    return {"init": t["init"], "trained_acc": t["trained_test_accuracy"], "trained_acc_se": t["trained_test_accuracy_se"],
            "trained_ms": t["measured_latency_min_ms"] if stat == "min_ms" else t["measured_latency_ms"],
            "trained_p10_ms": t["measured_latency_p10_ms"], "trained_p90_ms": t["measured_latency_p90_ms"],
            "accuracy_change": t["accuracy_change"], "change_within_noise": bool(t["within_noise"]),
            "trained_dominated_by": tuple(t["dominated_by"]) if isinstance(t.get("dominated_by"), list) else None}


def test_examples(manifest: dict[str, Any]) -> int | None:
    """Test examples behind the manifest's accuracies (None for manifests written before it was kept)."""
    task = manifest.get("task")
    return int(task["n_test"]) if isinstance(task, dict) and task.get("n_test") else None


def task_label(manifest: dict[str, Any]) -> str:
    task = manifest.get("task")
    if not isinstance(task, dict):
        return str(task)
    options = ", ".join(f"{k}={v}" for k, v in (task.get("options") or {}).items())
    sizes = f"{task.get('n_train')}/{task.get('n_val')}/{task.get('n_test')} train/val/test"
    return f"{task['name']}" + (f" ({options})" if options else "") + f", {sizes}"


def speedups_at_equal_accuracy(df: pd.DataFrame, n_test: int | None = None, *, trained: bool = False
                               ) -> pd.DataFrame:
    """For each uniform baseline, the fastest front model with test accuracy >= the baseline's.

    One row per baseline that some front model matches: both models, their measured
    latencies and the speed-up baseline_ms / front_ms (below 1: the baseline is faster).
    `within_noise` says whether the two test accuracies differ by less than two standard
    errors of their difference (on `n_test` examples), i.e. are indistinguishable.
    With `trained`, the fine-tuned front meets the standalone-trained baselines: trained
    accuracies and the latencies measured after training (models the finetune stage did not
    train are left out).
    """
    if trained:
        df = df[df.trained_acc.notna()].assign(test_acc=df.trained_acc, measured_ms=df.trained_ms)
    front, base = df[df.kind == "front"], df[df.kind == "baseline"]
    rows = []
    for _, b in base.iterrows():
        match = front[front.test_acc >= b.test_acc]
        if match.empty:
            continue
        f = match.loc[match.measured_ms.idxmin()]
        noise = within_noise(float(f.test_acc), float(b.test_acc), n_test) if n_test else None
        rows.append({"baseline": b["name"], "baseline_acc": float(b.test_acc), "baseline_ms": float(b.measured_ms),
                     "front": f["name"], "front_acc": float(f.test_acc), "front_ms": float(f.measured_ms),
                     "speedup": float(b.measured_ms / f.measured_ms), "within_noise": noise})
    return pd.DataFrame(rows, columns=["baseline", "baseline_acc", "baseline_ms", "front", "front_acc",
                                       "front_ms", "speedup", "within_noise"])


def speedup_summary(df: pd.DataFrame, n_test: int | None = None, *, trained: bool = False) -> dict[str, Any] | None:
    """Worst case, median and best speed-up over the baselines the front matches (see
    `speedups_at_equal_accuracy` for `trained`)."""
    table = speedups_at_equal_accuracy(df, n_test, trained=trained)
    if table.empty:
        return None
    baselines = df[df.kind == "baseline"]
    if trained:
        baselines = baselines[baselines.trained_acc.notna()]
    return {"matched_baselines": len(table), "unmatched_baselines": int(len(baselines) - len(table)),
            "min": float(table.speedup.min()), "median": float(table.speedup.median()),
            "max": float(table.speedup.max()), "table": table.to_dict("records")}


def _pareto_plot(df: pd.DataFrame, path: Path, title: str, stat: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tuned = bool(df.trained_acc.notna().any())
    fig, ax = plt.subplots(figsize=(7, 6) if tuned else (7, 4.5), dpi=120)
    front = df[df.kind == "front"].sort_values("measured_ms")
    base = df[df.kind == "baseline"]
    low = np.minimum(front.p10_ms, front.measured_ms)
    err = np.vstack([front.measured_ms - low, np.maximum(front.p90_ms - front.measured_ms, 0)])
    label = "fastest run" if stat == "min_ms" else "median"
    inherited = "inherited weights, " if tuned else ""
    ax.errorbar(front.measured_ms, front.test_acc * 100, xerr=err, yerr=front.test_acc_se * 100, fmt="o",
                color="tab:blue", label=f"searched front ({inherited}measured {label}; bars: p10-p90, ±1 SE accuracy)",
                capsize=2, zorder=3)
    ax.scatter(front.predicted_ms, front.test_acc * 100, marker="o", facecolors="none",
               edgecolors="tab:orange", label="same models, predicted latency", zorder=2)
    for _, r in front.iterrows():
        ax.plot([r.predicted_ms, r.measured_ms], [r.test_acc * 100] * 2, color="tab:orange", lw=0.6, zorder=1)
    if len(base):
        ax.errorbar(base.measured_ms, base.test_acc * 100, yerr=base.test_acc_se * 100, fmt="X", ms=8,
                    color="tab:red", label=f"uniform baselines ({inherited}measured)", capsize=2, zorder=3)
    _trained_points(ax, df)
    ax.set_xscale("log")
    ax.set_xlabel(f"latency per inference, {'fastest of the timed runs' if stat == 'min_ms' else 'median'}"
                  " (ms, log scale)")
    ax.set_ylabel("test accuracy of the exported ONNX model (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    if tuned:  # five entries: below the axes, clear of the points
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    else:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    buf = _savefig(fig)
    plt.close(fig)
    atomic_write_bytes(path, buf)


def _trained_points(ax, df: pd.DataFrame) -> None:
    """The finetune stage's models: the fine-tuned front and the standalone baselines, each
    joined to its inherited-weights point by a dotted line."""
    done = df[df.trained_acc.notna()]
    styles = {"front": ("o", "tab:green", "fine-tuned front"), "baseline": ("X", "tab:purple", "standalone baselines")}
    for kind, (marker, color, label) in styles.items():
        part = done[done.kind == kind]
        if part.empty:
            continue
        ax.errorbar(part.trained_ms, part.trained_acc * 100, yerr=part.trained_acc_se * 100, fmt=marker,
                    ms=7 if marker == "X" else 6, color=color, capsize=2, zorder=4,
                    label=f"{label} (trained, measured again; ±1 SE)")
        for _, r in part.iterrows():
            ax.plot([r.measured_ms, r.trained_ms], [r.test_acc * 100, r.trained_acc * 100], color=color, lw=0.6,
                    ls=":", zorder=1)


def _hypervolume_plot(hv: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot(hv.iloc[:, 0], hv.iloc[:, 1], color="tab:green")
    ax.set_xlabel("expensive evaluations")
    ax.set_ylabel("hypervolume (normalised objectives)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = _savefig(fig)
    plt.close(fig)
    atomic_write_bytes(path, buf)


def _savefig(fig) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")  # keeps a legend placed below the axes
    return buf.getvalue()


def _table(df: pd.DataFrame) -> pd.DataFrame:
    out = df[["name", "arch", "test_acc", "supernet_test_acc", "predicted_ms", "min_ms", "median_ms", "p10_ms",
              "p90_ms", "size_kb", "latency_off"]].copy()
    out["test_acc"] = [_pct(a, e) for a, e in zip(df.test_acc, df.test_acc_se)]
    out["supernet_test_acc"] = (out.supernet_test_acc * 100).round(2)
    for c in ("predicted_ms", "min_ms", "median_ms", "p10_ms", "p90_ms"):
        out[c] = out[c].round(4)
    out["size_kb"] = out.size_kb.round(1)
    out["dominated by"] = [_names(d) for d in df.dominated_by]
    acc = "ONNX test acc % ± SE"
    if df.trained_acc.notna().any():
        # Inherited and trained accuracy side by side, right after the architecture.
        out.insert(3, "trained test acc % ± SE", [_pct(a, e) if a == a else "" for a, e in
                                                   zip(df.trained_acc, df.trained_acc_se)])
        out.insert(4, "change (points)", [f"{100 * c:+.1f}" + (" (within noise)" if w else "") if c == c else ""
                                          for c, w in zip(df.accuracy_change, df.change_within_noise)])
        out.insert(5, "trained ms", df.trained_ms.round(4))
        out.insert(6, "trained: dominated by", [_names(d) if a == a else "" for d, a in
                                                 zip(df.trained_dominated_by, df.trained_acc)])
        acc = "inherited ONNX test acc % ± SE"
    return out.rename(columns={"test_acc": acc, "supernet_test_acc": "supernet test acc %",
                               "size_kb": "size KiB", "latency_off": "off >10%"})


def _names(dominated_by: tuple[str, ...] | None, shown: int = 3) -> str:
    if dominated_by is None:
        return "n/a"
    more = len(dominated_by) - shown
    return ", ".join(dominated_by[:shown]) + (f" and {more} more" if more > 0 else "")


def _dominance_line(df: pd.DataFrame, column: str, what: str, stat: str) -> str:
    """Summary bullet: how many front models (`what`) another exported model dominates, and which."""
    front = df[df.kind == "front"]
    known = front[[d is not None for d in front[column]]]
    rule = (f"no slower in {stat}, no larger, accuracy not better beyond {DOMINANCE_Z:g} standard error of the "
            "difference")
    if known.empty:
        return f"- {what} dominated on measured figures: not recorded"
    flagged = known[[bool(d) for d in known[column]]]
    names = "; ".join(f"{r['name']} by {', '.join(r[column])}" for _, r in flagged.iterrows())
    return (f"- {what} dominated on measured figures by another exported model ({rule}): "
            f"{len(flagged)} of {len(known)}" + (f" ({names})" if names else ""))


def _pct(p: float, se: float) -> str:
    return f"{100 * p:.1f} ± {100 * se:.1f}"


def _speedup_line(speed: dict[str, Any] | None, what: str) -> str:
    if not speed:
        return f"- Speed-up at equal accuracy ({what}): no front model reaches a baseline's test accuracy"
    return (f"- Speed-up at equal or better test accuracy ({what}; fastest front model matching each baseline): "
            f"worst {speed['min']:.2f}x, median {speed['median']:.2f}x, best {speed['max']:.2f}x over "
            f"{speed['matched_baselines']} baselines ({speed['unmatched_baselines']} more accurate than every "
            f"front model); {sum(bool(r['within_noise']) for r in speed['table'])} of the matched pairs are within "
            "noise in accuracy")


def _speedup_table(speed: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(speed["table"]).round({"baseline_acc": 4, "front_acc": 4, "baseline_ms": 4, "front_ms": 4,
                                               "speedup": 2})


def write_report(run_dir: Path) -> dict[str, Path]:
    """Write report/{pareto.png, hypervolume.png, report.md, report.html}; return the paths."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserInputError(f"run folder {run_dir} does not exist")
    manifest = load_manifest(run_dir)
    finetune = load_finetune_manifest(run_dir)
    df = models_frame(manifest, finetune)
    hv = load_hypervolume(run_dir)  # refused before anything is written
    out = run_dir / "report"
    out.mkdir(exist_ok=True)
    device = manifest["device"]["name"]
    pareto, hv_png = out / "pareto.png", out / "hypervolume.png"
    stat = manifest.get("latency_statistic", "median_ms")
    task = manifest.get("task")
    _pareto_plot(df, pareto, f"{task['name'] if isinstance(task, dict) else task} on device '{device}'", stat)
    if hv is not None and len(hv):
        _hypervolume_plot(hv, hv_png)

    front, base = df[df.kind == "front"], df[df.kind == "baseline"]
    within = float((~front.latency_off).mean()) if len(front) else float("nan")
    gap = float((front.test_acc - front.supernet_test_acc).abs().max() * 100) if len(front) else float("nan")
    n_test = test_examples(manifest)
    speed = speedup_summary(df, n_test)
    tuned = bool(df.trained_acc.notna().any())
    speed_trained = speedup_summary(df, n_test, trained=True) if tuned else None
    fp = manifest.get("fingerprint", {})
    noise = (f"- Test accuracies carry a binomial standard error of up to {50 / n_test ** 0.5:.1f} points "
             f"({n_test} test examples); accuracies closer than about twice that are within noise"
             if n_test else "- Test accuracies: the number of test examples was not recorded (old manifest)")
    lines = [
        f"# hwnas report: {run_dir.name}",
        "",
        f"Task `{task_label(manifest)}`, device `{device}` ({manifest['device'].get('backend')}, "
        f"{manifest['device'].get('threads')} thread(s)) on {fp.get('cpu_model', 'unknown CPU')}, "
        f"{fp.get('cpu_count', '?')} cores.",
        "",
        f"- Pareto-front models exported: {len(front)}; uniform baselines: {len(base)}",
        f"- Latency statistic predicted and compared: {'fastest timed run (min_ms)' if stat == 'min_ms' else 'median'}"
        " (the tables give the median and p10/p90 too)",
        f"- Front models whose measured latency is within ±10% of the predicted: {within:.0%}",
        f"- Largest gap between ONNX and supernet test accuracy on the front: {gap:.2f} points",
        noise,
        _dominance_line(df, "dominated_by", "Front models" + (" (inherited weights)" if tuned else ""), stat),
    ]
    scored = manifest.get("val_accuracy_tune")
    if isinstance(scored, dict):
        lines.append(f"- The search scored val accuracy after {scored.get('steps')} fine-tuning updates of each "
                     f"subnet from its inherited weights (lr {scored.get('lr')}); the exported files and their "
                     "test accuracies carry the inherited weights")
    if tuned:
        lines += _finetune_lines(finetune, df)
        lines.append(_dominance_line(df[df.trained_acc.notna()], "trained_dominated_by", "Fine-tuned front models",
                                     stat))
        lines.append(_speedup_line(speed_trained, "fine-tuned front vs standalone-trained baselines"))
        lines.append(_speedup_line(speed, "both with inherited supernet weights"))
    else:
        lines.append(_speedup_line(speed, "front vs uniform baselines, inherited supernet weights"))
    if hv is not None and len(hv):
        lines.append(f"- Search: {len(hv)} expensive evaluations, final hypervolume {hv.hypervolume.iloc[-1]:.4f}")
    lines += ["", "![Pareto front](pareto.png)", ""]
    if hv is not None and len(hv):
        lines += ["![Hypervolume](hypervolume.png)", ""]
    lines += ["## Pareto front", "", _table(front).to_markdown(index=False), ""]
    if len(base):
        lines += ["## Baselines", "", _table(base).to_markdown(index=False), ""]
    speed_tables = []
    if speed_trained:
        speed_tables.append(("Speed-up at equal accuracy: fine-tuned front vs standalone baselines",
                             _speedup_table(speed_trained)))
    if speed:
        title = "Speed-up at equal accuracy" + (": inherited weights" if tuned else "")
        speed_tables.append((title, _speedup_table(speed)))
    for title, table in speed_tables:
        lines += [f"## {title}", "", table.to_markdown(index=False), ""]
    lines += device_section(run_dir)  # a device of a multi-device run: its front against the others there
    md = "\n".join(lines) + "\n"
    atomic_write_text(out / "report.md", md)
    atomic_write_text(out / "report.html", _html(md, df, out, front, base, speed_tables))
    return {"markdown": out / "report.md", "html": out / "report.html", "pareto": pareto, "hypervolume": hv_png}


def _finetune_lines(finetune: dict[str, Any], df: pd.DataFrame) -> list[str]:
    """Summary bullets of the finetune stage: its recipe and how far training moved each kind."""
    r = finetune.get("recipe", {})
    lines = [f"- Finetune stage: front models fine-tuned from their inherited weights, baselines trained "
             f"standalone from scratch, one recipe for all ({r.get('epochs')} epochs, batch {r.get('batch_size')}, "
             f"peak lr {r.get('lr')}, seed {r.get('seed')}); accuracies of the trained ONNX models"]
    for kind, what in (("front", "fine-tuned front"), ("baseline", "standalone baselines")):
        part = df[(df.kind == kind) & df.trained_acc.notna()]
        if len(part):
            change = part.accuracy_change * 100
            lines.append(f"- Test accuracy of the {what} against the same models with inherited weights: "
                         f"{change.min():+.1f} to {change.max():+.1f} points (median {change.median():+.1f}); "
                         f"{int(part.change_within_noise.sum())} of {len(part)} within noise")
    return lines


def _img(path: Path) -> str:
    if not path.exists():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{path.stem}" src="data:image/png;base64,{data}">'


def _html(md: str, df: pd.DataFrame, out: Path, front: pd.DataFrame, base: pd.DataFrame,
          speed_tables: list[tuple[str, pd.DataFrame]] = ()) -> str:
    """One self-contained page: the summary bullets, both plots inlined, the tables."""
    summary = [line[2:] for line in md.splitlines() if line.startswith("- ")]
    head = md.splitlines()[2]
    body = [f"<h1>{html.escape(md.splitlines()[0][2:])}</h1>", f"<p>{html.escape(head)}</p>", "<ul>"]
    body += [f"<li>{html.escape(s)}</li>" for s in summary] + ["</ul>"]
    body += [_img(out / "pareto.png"), _img(out / "hypervolume.png")]
    body += ["<h2>Pareto front</h2>", _table(front).to_html(index=False, border=0)]
    if len(base):
        body += ["<h2>Baselines</h2>", _table(base).to_html(index=False, border=0)]
    for title, table in speed_tables:
        body += [f"<h2>{html.escape(title)}</h2>", table.to_html(index=False, border=0)]
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
             "font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #ddd}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>hwnas report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")
