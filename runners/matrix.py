"""The cross-device matrix: every device's front measured on every device.

A search specialises its front to its device. The matrix shows whether that mattered:
each device's exported front models (RUN/devices/<name>/export/manifest.json) are
measured again on every device of the run, all fronts interleaved in one measurement per
device (onnxruntime devices run the exported ONNX files, torch devices the extracted
modules). For each device, its own front is set against the other fronts measured there:
a model of another front that some model of the device's own front dominates (as
accurate or more, as fast or faster, better in one) shows what specialising bought.

With the Ray executor, each device's measurement runs on the node advertising it
(`runners.remote.measure_on_ray`; matrix.json's ray_nodes names the node of each device).

Files: RUN/matrix.json (schema, devices, statistic, one row per model and device) and
RUN/matrix.csv (the rows); RUN/report/report.md and report.html (the cross-device report).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ._errors import UserInputError
from ._io import atomic_write_json, atomic_write_text
from .exporting import load_export_manifest, measurable

MATRIX_SCHEMA = 1
Echo = Callable[[str], None]


def _fronts(units: dict[str, Path]) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for name, unit in units.items():
        manifest = load_export_manifest(unit)
        out[name] = [{**m, "onnx_file": unit / m["onnx_path"]} for m in manifest["models"] if m["kind"] == "front"]
    return out


def measure_matrix(run_dir: Path, config, units: dict[str, Path], *, echo: Echo = print) -> dict[str, Any]:
    """Measure every device's front on every device; write and return RUN/matrix.json (+ .csv)."""
    from hwprofiles import get_device, measure_models
    from supernet import Arch

    from .pipeline import load_supernet, task_from_meta

    run_dir = Path(run_dir)
    supernet, meta = load_supernet(run_dir)
    task = task_from_meta(meta)
    fronts = _fronts(units)
    measure = config.profile.measure_config()
    stat = config.profile.target
    order = [(owner, m) for owner, models in fronts.items() for m in models]
    archs = [Arch.from_dict(m["arch"]) for _, m in order]
    onnx_files = [m["onnx_file"] for _, m in order]
    devices = [get_device(target) for target in units]
    echo(f"matrix: measuring {len(order)} front models of {len(fronts)} devices on {', '.join(units)}")
    placement: dict[str, str] = {}
    if config.executor.kind == "ray":  # each device's measurement on the node advertising it
        from .remote import measure_on_ray

        results = measure_on_ray(devices, onnx_files, archs, run_dir / "supernet", task.spec, config=measure,
                                 seed=config.seed, address=config.executor.ray_address,
                                 num_cpus=config.executor.num_cpus)
        per_device = [measured for measured, _, _ in results]
        placement = {d.name: node for d, (_, node, _) in zip(devices, results)}  # the node each device ran on
    else:
        per_device = [measure_models(measurable(d, onnx_files, lambda: [supernet.extract(a) for a in archs]), d,
                                     task.spec, measure, seed=config.seed) for d in devices]
    rows = []
    for target, measured in zip(units, per_device):
        for (owner, m), r in zip(order, measured):
            rows.append({"front_of": owner, "model": m["name"], "measured_on": target,
                         "arch": json.dumps(m["arch"], sort_keys=True), "arch_description": m["arch_description"],
                         "test_accuracy": m["onnx_test_accuracy"], "test_accuracy_se": m["onnx_test_accuracy_se"],
                         "median_ms": r.median_ms, "min_ms": r.min_ms, "p10_ms": r.p10_ms, "p90_ms": r.p90_ms,
                         "flagged": bool(r.flagged)})
    frame = pd.DataFrame(rows)
    frame["dominated_by_own_front"] = _dominated_by_own(frame, stat)
    matrix = {"schema_version": MATRIX_SCHEMA, "devices": list(units), "statistic": stat,
              "measure_config": measure.to_dict(), "task": task.record(), "ray_nodes": placement,
              "rows": json.loads(frame.to_json(orient="records"))}
    atomic_write_json(run_dir / "matrix.json", matrix)
    atomic_write_text(run_dir / "matrix.csv", frame.to_csv(index=False))
    for line in specialisation_lines(matrix):
        echo(line)
    return matrix


def _dominated_by_own(frame: pd.DataFrame, stat: str) -> list[bool | None]:
    """For each row of another device's front: does the measuring device's own front dominate
    it on that device (accuracy and latency)? None for the device's own models."""
    out: list[bool | None] = []
    for _, r in frame.iterrows():
        if r.front_of == r.measured_on:
            out.append(None)
            continue
        own = frame[(frame.front_of == r.measured_on) & (frame.measured_on == r.measured_on)]
        better = ((own.test_accuracy >= r.test_accuracy) & (own[stat] <= r[stat])
                  & ((own.test_accuracy > r.test_accuracy) | (own[stat] < r[stat])))
        out.append(bool(better.any()))
    return out


def load_matrix(run_dir: Path) -> dict[str, Any] | None:
    """RUN/matrix.json, or None when the run has none (one device, or not measured yet)."""
    path = Path(run_dir) / "matrix.json"
    if not path.exists():
        return None
    try:
        matrix = json.loads(path.read_text())
        if matrix.get("schema_version") != MATRIX_SCHEMA or not isinstance(matrix["rows"], list):
            raise ValueError(f"schema version {matrix.get('schema_version')!r}, expected {MATRIX_SCHEMA}")
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise UserInputError(f"{path} is not a valid cross-device matrix: {exc}") from None
    return matrix


def specialisation_lines(matrix: dict[str, Any]) -> list[str]:
    """One line per device: how many models of the other fronts its own front dominates there."""
    frame = pd.DataFrame(matrix["rows"])
    lines = []
    for device in matrix["devices"]:
        others = frame[(frame.measured_on == device) & (frame.front_of != device)]
        n_dom = int(others.dominated_by_own_front.fillna(False).astype(bool).sum())
        lines.append(f"on '{device}': its own front dominates {n_dom} of the {len(others)} models of the other "
                     f"devices' fronts (measured there, {matrix['statistic']})")
    return lines


def cross_device_lines(matrix: dict[str, Any]) -> list[str]:
    """Markdown section: for each device, its own front against the other fronts measured there."""
    stat = matrix["statistic"]
    frame = pd.DataFrame(matrix["rows"])
    lines = ["## Cross-device matrix", "",
             f"Every device's front measured on every device ({stat}, ms; test accuracy ± binomial SE). "
             "`dominated` says whether the measuring device's own front has a model at least as accurate and "
             "at least as fast there (better in one).", ""]
    lines += [f"- {line}" for line in specialisation_lines(matrix)] + [""]
    for device in matrix["devices"]:
        part = frame[frame.measured_on == device].sort_values([stat])
        table = pd.DataFrame({
            "front of": part.front_of, "model": part.model, "arch": part.arch_description,
            "test acc": [f"{100 * a:.1f} ± {100 * s:.1f}" for a, s in zip(part.test_accuracy, part.test_accuracy_se)],
            f"{stat} on {device}": part[stat].round(4),
            "p10-p90": [f"{a:.4f}-{b:.4f}" for a, b in zip(part.p10_ms, part.p90_ms)],
            "dominated": ["own" if d is None or pd.isna(d) else ("yes" if d else "no")
                          for d in part.dominated_by_own_front],
        })
        lines += [f"### Measured on '{device}'", "", table.to_markdown(index=False), ""]
    return lines


def device_section(unit: Path) -> list[str]:
    """Markdown for the report of one device of a multi-device run (UNIT = RUN/devices/<name>):
    its own front against the other devices' fronts measured on it; [] for any other folder."""
    unit = Path(unit)
    if unit.parent.name != "devices":
        return []
    matrix = load_matrix(unit.parent.parent)
    if matrix is None or unit.name not in matrix["devices"]:
        return []
    own = {**matrix, "devices": [unit.name]}
    section = cross_device_lines(own)
    section[0] = f"## This device's front against the other devices' fronts, measured on '{unit.name}'"
    return section


def write_cross_device_report(run_dir: Path) -> dict[str, Path]:
    """RUN/report/report.md and report.html: the devices' reports linked, and the matrix."""
    import html

    run_dir = Path(run_dir)
    matrix = load_matrix(run_dir)
    if matrix is None:
        raise UserInputError(f"{run_dir / 'matrix.json'} does not exist: run `hwnas run --run {run_dir}` to measure it")
    lines = [f"# hwnas report: {run_dir.name} ({len(matrix['devices'])} devices)", "",
             "One supernet, trained once; one search and one export per device. Each device's own report:", ""]
    lines += [f"- `{d}`: [devices/{d}/report/report.md](../devices/{d}/report/report.md)" for d in matrix["devices"]]
    lines += [""] + cross_device_lines(matrix)
    md = "\n".join(lines) + "\n"
    out = run_dir / "report"
    atomic_write_text(out / "report.md", md)
    page = ("<!doctype html><meta charset='utf-8'><title>hwnas report</title>"
            f"<pre style='font-family: monospace'>{html.escape(md)}</pre>\n")
    atomic_write_text(out / "report.html", page)
    return {"markdown": out / "report.md", "html": out / "report.html"}


__all__ = ["cross_device_lines", "device_section", "load_matrix", "measure_matrix", "specialisation_lines",
           "write_cross_device_report"]
