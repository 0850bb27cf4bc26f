"""Export the Pareto front (and uniform baselines), then measure every exported file again.

For each model: extract from the supernet, export to ONNX with its quantization policy
(the export checks itself against torch), measure its latency on the device with the
profiling protocol, and evaluate the ONNX file's accuracy on the test split with
onnxruntime, one example per call as deployed. The manifest records predicted and
measured figures side by side, and which models another exported model beats on those
measured figures (`dominated_by`, see `dominance`).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hwprofiles import DEFAULT_TARGET, TARGETS
from supernet import Arch, LayerConfig, SearchSpace, arch_cost, binomial_se

from ._errors import UserInputError, user_errors
from ._io import atomic_write_json

MANIFEST_SCHEMA = 1
LATENCY_TOLERANCE = 0.10
# Manifest key of each latency statistic a predictor can be fitted to.
LATENCY_KEYS = {"median_ms": "measured_latency_ms", "min_ms": "measured_latency_min_ms"}
# A model is dominated when another is no slower, no larger and its accuracy is not lower
# beyond DOMINANCE_Z standard errors of the difference (predictors.dominated_on_measurements).
DOMINANCE_Z = 1.0
# What every model entry of an export manifest holds (onnx_test_accuracy_se and
# dominated_by are newer and optional: readers derive them).
MODEL_FIELDS = {"name": str, "kind": str, "arch": dict, "arch_description": str, "onnx_path": str,
                "size_bytes": (int, float), "predicted_latency_ms": (int, float), "measured_latency_ms": (int, float),
                "measured_latency_min_ms": (int, float), "measured_latency_p10_ms": (int, float),
                "measured_latency_p90_ms": (int, float), "latency_off_by_more_than_10pct": bool,
                "supernet_val_accuracy": (int, float), "supernet_test_accuracy": (int, float),
                "onnx_test_accuracy": (int, float)}


@dataclass(frozen=True)
class ExportItem:
    name: str
    kind: str  # "front" or "baseline"
    arch: Arch


# Where the baselines sit along every size choice (embed width, depth, heads, FFN ratio
# together): the smallest, the middle and the largest member of the space.
BASELINE_SIZES = (0.0, 0.5, 1.0)


def uniform_baselines(space: SearchSpace) -> list[ExportItem]:
    """Hand-designed models: one layer repeated, for every attention type of the space, at
    three sizes (smallest, middle, largest), in fp32 and int8.

    In the default space that is 3 attention types x 3 sizes x 2 policies = 18 models, about
    1 s each to export, measure and evaluate. Three sizes span each type's latency range; the
    count stays small because the optional finetune stage trains every baseline from scratch.
    Spaces with fewer choices give fewer distinct sizes (duplicates are dropped).
    """

    def at(choices: tuple[int, ...], frac: float) -> int:
        return choices[int(frac * (len(choices) - 1) + 0.5)]  # round half up

    points = sorted({(at(space.embed_dims, f), at(space.depths, f), at(space.heads, f), at(space.ffn_ratios, f))
                     for f in BASELINE_SIZES})
    quants = [q for q in ("fp32", "int8") if q in space.quants]
    items = []
    for attention in space.attentions:
        for embed, depth, heads, ratio in points:
            for quant in quants:
                arch = Arch(embed, (LayerConfig(heads, ratio, attention, quant),) * depth)
                name = f"uniform-{attention}-E{embed}-d{depth}-h{heads}-r{ratio}-{quant}"
                items.append(ExportItem(name, "baseline", arch))
    return items


def export_protocol(config: Any, threads: int, passes: int) -> Any:
    """The protocol exported models are measured with: `config` (a hwprofiles.MeasureConfig) in
    at least `passes` passes, pooled (ExportSettings.passes). A second pass gives a model timed
    in a slow phase that the gate's small reference model did not feel a second moment. A device
    whose own protocol takes more passes (several threads) keeps its count and its gap between
    passes; on a device measured in one pass, whose slow phases last seconds, the passes are
    apart by the accuracy evaluation between them (tens of seconds on the default run) and no
    more (`hwprofiles.measure_in_passes`)."""
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
        raise UserInputError(f"passes over the exported models must be a positive integer, got {passes!r}")
    own = config.passes_for(threads)
    return replace(config, passes=max(passes, own), pass_gap=config.pass_gap if own > 1 else 0.0)


def measurable(device: Any, onnx_paths: list, modules: Callable[[], list]) -> list:
    """What `device` measures: onnxruntime devices the ONNX files, torch devices the torch
    modules `modules()` builds (extracted from the supernet, or trained weights loaded)."""
    if device.backend.startswith("torch"):
        return modules()
    return [str(p) for p in onnx_paths]


def load_export_manifest(run_dir: Path) -> dict[str, Any]:
    """The run's export manifest (RUN/export/manifest.json); a missing or broken one, or one
    whose models lack a field of MODEL_FIELDS, is bad input."""
    path = Path(run_dir) / "export" / "manifest.json"
    if not path.exists():
        raise UserInputError(f"{path} does not exist: run `hwnas export --run {run_dir}` first")
    with user_errors(f"{path} is not a valid export manifest: ", catch=(ValueError, KeyError, TypeError)):
        manifest = json.loads(path.read_text())
        if not isinstance(manifest, dict) or not isinstance(manifest.get("models"), list):
            raise TypeError("'models' is missing or not a list")
        if not manifest["models"]:
            raise ValueError("it lists no models")
        if not isinstance(manifest.get("device"), dict) or not isinstance(manifest["device"].get("name"), str):
            raise TypeError("'device' has no name")
        if manifest.get("latency_statistic", "median_ms") not in TARGETS:
            raise ValueError(f"latency_statistic must be one of {list(TARGETS)}, got {manifest['latency_statistic']!r}")
        check_model_fields(manifest["models"], MODEL_FIELDS)
    return manifest


def check_model_fields(models: list[Any], fields: dict[str, type | tuple[type, ...]]) -> None:
    """Raise TypeError naming the first model entry that is not a dict holding `fields` (name -> type)."""
    for i, m in enumerate(models):
        if not isinstance(m, dict):
            raise TypeError(f"model {i} is not a table")
        for key, kind in fields.items():
            value = m.get(key)
            if value is None:
                raise TypeError(f"model {i} ({m.get('name', 'unnamed')!r}) lacks {key!r}")
            if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
                raise TypeError(f"model {i} ({m.get('name', 'unnamed')!r}) has {key!r} = {value!r}, of the wrong type")


def dominance(models: list[dict[str, Any]], *, statistic: str, accuracy: str = "onnx_test_accuracy",
              accuracy_se: str = "onnx_test_accuracy_se") -> list[list[str]]:
    """For each model, the names of the models that dominate it on measured figures: no
    slower (the `statistic` the predictor was fitted to), no larger (ONNX bytes), and not less
    accurate beyond DOMINANCE_Z standard errors, better somewhere (predictors.dominated_on_measurements)."""
    from predictors import dominated_on_measurements

    if not models:
        return []
    key = LATENCY_KEYS[statistic]
    beaten = dominated_on_measurements([m[key] for m in models], [m["size_bytes"] for m in models],
                                       [m[accuracy] for m in models], [m[accuracy_se] for m in models],
                                       z=DOMINANCE_Z)
    return [[models[j]["name"] for j in row] for row in beaten]


def dominance_record(statistic: str, accuracy: str) -> dict[str, Any]:
    """The manifest's note of how `dominated_by` was decided."""
    return {"latency": statistic, "size": "size_bytes", "accuracy": accuracy, "z": DOMINANCE_Z,
            "rule": "dominated: another exported model is no slower and no larger, its accuracy not lower by more "
                    "than z standard errors of the difference, and better in one of the three"}


def dominance_lines(manifest: dict[str, Any], what: str = "front model") -> list[str]:
    """One line per front model that another exported model dominates on measured figures."""
    rule = manifest.get("dominance") or {}
    lines = []
    for m in manifest["models"]:
        if m["kind"] == "front" and m.get("dominated_by"):
            lines.append(f"{what} {m['name']} is dominated on measured figures by {', '.join(m['dominated_by'])} "
                         f"(no slower in {rule.get('latency', 'latency')}, no larger, accuracy within "
                         f"{rule.get('z', DOMINANCE_Z):g} SE or better)")
    return lines


def onnx_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of an ONNX classifier, one example per call (deployment batch 1)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(x, dtype=np.float32)
    preds = np.fromiter((int(session.run(None, {"x": x[i : i + 1]})[0].argmax()) for i in range(len(x))),
                        dtype=np.int64, count=len(x))
    return float((preds == y).mean())


def export_models(
    *,
    supernet: Any,
    space: SearchSpace,
    task: Any,
    items: list[ExportItem],
    predict_ms: Callable[[list[Arch]], np.ndarray],
    device: Any,
    measure_config: Any,
    out_dir: Path,
    fingerprint: dict[str, Any],
    statistic: str = DEFAULT_TARGET,
    seed: int = 0,
    progress: Callable[[str], None] = lambda msg: None,
    val_accuracy: Callable[[list[Arch]], np.ndarray] | None = None,
    measure_remote: Callable[[list[Path], list[Arch]], tuple[list, str, dict[str, Any]]] | None = None,
    val_accuracy_tune: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Export, re-measure and re-evaluate `items`; write and return the manifest.

    `val_accuracy(archs)` gives the supernet's val accuracies (default: evaluated here); when
    it scores each subnet after a short fine-tune, `val_accuracy_tune` (steps, lr, batch_size)
    says so in the manifest. The exported files carry the inherited weights either way.
    `measure_remote(onnx_paths, archs)` measures on another node (the Ray node advertising the
    device) and returns (measurements, node id, that node's fingerprint); the manifest then
    records that node and its machine. Default: measured here.

    `statistic` is what the latency predictor was fitted to (one of hwprofiles.TARGETS;
    default hwprofiles.DEFAULT_TARGET): the prediction is checked against the same
    statistic of the new measurement, and so is dominance. The median with p10/p90 and the
    fastest run are recorded either way.
    """
    if statistic not in TARGETS:
        raise ValueError(f"statistic must be one of {list(TARGETS)}, got {statistic!r}")
    from hwprofiles import Measurement, measure_in_passes
    from supernet import export_onnx
    from supernet.evaluate import evaluate_archs

    model_dir = out_dir / "models"
    model_dir.mkdir(parents=True, exist_ok=True)
    archs = [item.arch for item in items]
    paths = []
    for item in items:
        path = model_dir / f"{item.name}.onnx"
        check = export_onnx(supernet.extract(item.arch), path, seed=seed)
        paths.append(path)
        progress(f"exported {item.name}: {path.stat().st_size:,} bytes, parity rel err {check.rel_err:.1e}")

    def accuracies() -> tuple[np.ndarray, np.ndarray, list[float]]:
        """(supernet val, supernet test, ONNX test) accuracies. The ONNX files are evaluated on a
        second thread (onnxruntime releases the GIL) while torch evaluates the supernet here: on
        two cores the two halves overlap. Never beside a measurement."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            onnx_jobs = [pool.submit(onnx_accuracy, p, task.x_test, task.y_test) for p in paths]
            val = (np.asarray(val_accuracy(archs), dtype=float) if val_accuracy is not None
                   else evaluate_archs(supernet, archs, task.x_val, task.y_val))
            test = evaluate_archs(supernet, archs, task.x_test, task.y_test)
            return val, test, [job.result() for job in onnx_jobs]

    passes = measure_config.passes_for(device.threads)
    progress(f"measuring {len(paths)} exported models on device '{device.name}' in {passes} pass(es)")
    node = None
    if measure_remote is not None:
        measured, node, fingerprint = measure_remote(paths, archs)
        progress(f"measured on Ray node {node}")
        per_pass = []  # the node pooled its passes
        val_acc, test_acc, onnx_accs = accuracies()
    else:
        modules = measurable(device, paths, lambda: [supernet.extract(a) for a in archs])
        per_pass, scores = measure_in_passes(modules, device, task.spec, measure_config, seed=seed,
                                             between=accuracies)
        val_acc, test_acc, onnx_accs = scores
        measured = [Measurement.pooled(parts, threshold=measure_config.spread_threshold) if len(parts) > 1
                    else parts[0] for parts in zip(*per_pass)]
    predicted = np.asarray(predict_ms(archs), dtype=float)
    n_val, n_test = len(task.y_val), len(task.y_test)
    models = []
    for i, item in enumerate(items):
        onnx_acc = onnx_accs[i]
        m, pred = measured[i], float(predicted[i])
        reference = {"min_ms": m.min_ms, "median_ms": m.median_ms}[statistic]
        error = (pred - reference) / reference
        cost = arch_cost(item.arch, space, task.spec)
        models.append({
            "name": item.name,
            "kind": item.kind,
            "arch": item.arch.to_dict(),
            "arch_description": item.arch.describe(),
            "onnx_path": str(paths[i].relative_to(out_dir.parent)),
            "size_bytes": paths[i].stat().st_size,
            "params": cost.params,
            "flops": cost.flops,
            "predicted_latency_ms": pred,
            "measured_latency_ms": m.median_ms,
            "measured_latency_p10_ms": m.p10_ms,
            "measured_latency_p90_ms": m.p90_ms,
            "measured_latency_min_ms": m.min_ms,
            "latency_compared": statistic,
            "measurement_flagged": m.flagged,
            "latency_relative_error": error,
            "latency_off_by_more_than_10pct": bool(abs(error) > LATENCY_TOLERANCE),
            "supernet_val_accuracy": float(val_acc[i]),
            "supernet_val_accuracy_se": binomial_se(float(val_acc[i]), n_val),
            "supernet_test_accuracy": float(test_acc[i]),
            "supernet_test_accuracy_se": binomial_se(float(test_acc[i]), n_test),
            "onnx_test_accuracy": onnx_acc,
            "onnx_test_accuracy_se": binomial_se(onnx_acc, n_test),
        })
        if len(per_pass) > 1:  # each pass's fastest run, beside the pooled figure
            models[-1]["measured_latency_min_ms_by_pass"] = [part[i].min_ms for part in per_pass]
    for model, beaten_by in zip(models, dominance(models, statistic=statistic)):
        model["dominated_by"] = beaten_by
    manifest = {
        "schema_version": MANIFEST_SCHEMA,
        "task": task.record(),
        "device": device.to_dict(),
        "fingerprint": fingerprint,
        "measure_config": measure_config.to_dict(),
        "latency_tolerance": LATENCY_TOLERANCE,
        "latency_statistic": statistic,
        "dominance": dominance_record(statistic, "onnx_test_accuracy"),
        "models": models,
    }
    if val_accuracy_tune is not None:  # supernet_val_accuracy: after this fine-tune of each subnet
        manifest["val_accuracy_tune"] = val_accuracy_tune
    if node is not None:
        manifest["ray_node_id"] = node  # the node that measured (fingerprint: that node's machine)
    atomic_write_json(out_dir / "manifest.json", manifest)
    return manifest


def comparison_lines(manifest: dict[str, Any]) -> list[str]:
    """Predicted vs measured latency and supernet vs ONNX accuracy, one line per model."""
    stat = manifest.get("latency_statistic", "median_ms")
    task = manifest.get("task")
    n_test = task.get("n_test") if isinstance(task, dict) else None
    noise = f"; accuracies ± {100 * 0.5 / n_test ** 0.5:.1f} points at most (binomial SE, {n_test} test examples)" \
        if n_test else ""
    lines = [f"latency predicted vs measured {stat} (median and p10-p90 of the same runs beside){noise}",
             f"{'model':34s} {'predicted':>10s} {'measured':>10s} {'median':>10s} {'p10-p90':>17s} {'error':>7s} "
             f"{'val':>6s} {'test':>6s} {'onnx ± SE':>12s}"]
    for m in manifest["models"]:
        flag = "  <- off by more than 10%" if m["latency_off_by_more_than_10pct"] else ""
        se = m.get("onnx_test_accuracy_se", float("nan"))
        lines.append(
            f"{m['name'][:34]:34s} {m['predicted_latency_ms']:9.4f}ms "
            f"{m['measured_latency_min_ms' if stat == 'min_ms' else 'measured_latency_ms']:9.4f}ms "
            f"{m['measured_latency_ms']:9.4f}ms "
            f"{m['measured_latency_p10_ms']:7.4f}-{m['measured_latency_p90_ms']:7.4f}ms "
            f"{m['latency_relative_error']:+7.1%} {m['supernet_val_accuracy']:6.1%} "
            f"{m['supernet_test_accuracy']:6.1%} {m['onnx_test_accuracy']:6.1%} ± {100 * se:3.1f}{flag}"
        )
    return lines + dominance_lines(manifest)
