"""Train the exported models on: front models from their inherited weights, baselines from scratch.

Inherited supernet weights are a compromise shared by every subnet, and the exported models
are what users deploy. This stage fine-tunes each exported front model from the weights
`Supernet.extract` copies, and trains each uniform baseline standalone from a fresh seeded
initialisation, all with one recipe (`supernet.train.train_standalone` with one TrainConfig:
the same epochs, batch size, learning-rate schedule and data order), so the fine-tuned front
meets the baselines on an equal budget. Each trained model is exported again (the export
checks itself against torch), its ONNX test accuracy re-evaluated with onnxruntime, and all
files measured together on the export's device with the export's measurement protocol.

    RUN/finetune/records/NAME.json         one per finished model, written last (the resume marker)
    RUN/finetune/weights/NAME.safetensors  the trained weights
    RUN/finetune/models/NAME.onnx          the trained model, int8 layers quantized
    RUN/finetune/manifest.json             every model: inherited and trained test accuracy with
                                           standard errors, ONNX path, size, measured latency, and
                                           which trained models dominate it on those figures

A killed stage resumes: a finished model (record present with the same recipe and
architecture, its ONNX file intact) is not trained again; a model killed mid-training starts
over. The export manifest is never written here, so older code keeps reading it.

A run with several devices fine-tunes each device's export in its unit folder
(RUN/devices/NAME/finetune/, `runners.layout`). Training does not depend on the device, so a
model another device of the run has already trained (same architecture, same start, same
recipe) is copied from there rather than trained again; each device measures its own files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from supernet import Arch, atomic_write, binomial_se, within_noise

from ._errors import UserInputError, user_errors
from ._io import atomic_write_json
from .config import FinetuneSettings
from .exporting import check_model_fields, dominance, dominance_lines, dominance_record, measurable

FINETUNE_SCHEMA = 1
INIT_OF_KIND = {"front": "inherited", "baseline": "scratch"}  # how each kind of exported model starts
# The TrainConfig settings train_standalone reads: what makes two trained models comparable.
RECIPE_KEYS = ("epochs", "batch_size", "lr", "weight_decay", "warmup_epochs", "grad_clip", "seed")
Echo = Callable[[str], None]
# What every model entry of a finetune manifest holds (dominated_by is newer and optional).
MODEL_FIELDS = {"name": str, "kind": str, "init": str, "arch": dict, "onnx_path": str, "size_bytes": (int, float),
                "inherited_test_accuracy": (int, float), "trained_test_accuracy": (int, float),
                "trained_test_accuracy_se": (int, float), "accuracy_change": (int, float), "within_noise": bool,
                "measured_latency_ms": (int, float), "measured_latency_min_ms": (int, float),
                "measured_latency_p10_ms": (int, float), "measured_latency_p90_ms": (int, float)}


def load_finetune_manifest(run_dir: Path) -> dict[str, Any] | None:
    """RUN/finetune/manifest.json, or None when the stage has not finished in this run."""
    path = Path(run_dir) / "finetune" / "manifest.json"
    if not path.exists():
        return None
    with user_errors(f"{path} is not a valid finetune manifest: ", catch=(ValueError, KeyError, TypeError)):
        manifest = json.loads(path.read_text())
        if not isinstance(manifest, dict) or not isinstance(manifest.get("models"), list):
            raise TypeError("'models' is missing or not a list")
        check_model_fields(manifest["models"], MODEL_FIELDS)
    return manifest


def finetune_run(run_dir: Path, settings: FinetuneSettings, echo: Echo = print, *, threads: int = 1,
                 unit: Path | None = None, train_device: str = "cpu") -> dict[str, Any]:
    """Train on every exported model, export and measure again; write and return the manifest
    (the body of the finetune stage and of `hwnas finetune`).

    `unit` is the folder whose export is trained on (a device of a multi-device run,
    `runners.layout`); by default the run folder itself. The supernet is always the run's.
    `train_device` ("cpu" or "cuda[:N]") is where the models train; they are exported and
    measured on the CPU and the export's device as always.
    """
    from hwprofiles import DeviceSpec, MeasureConfig, backend_unavailable_reason, fingerprint, measure_models
    from supernet.train_config import TrainConfig

    from .exporting import load_export_manifest
    from .pipeline import check_train_device, load_supernet, pin_torch_threads, task_from_meta

    run_dir = Path(run_dir)
    unit = run_dir if unit is None else Path(unit)
    settings.train_config(TrainConfig(), train_device)  # bad settings fail before the run folder is read
    check_train_device(train_device)
    if not run_dir.is_dir():
        raise UserInputError(f"run folder {run_dir} does not exist")
    export = load_export_manifest(unit)
    supernet, meta = load_supernet(run_dir)
    task = task_from_meta(meta)
    with user_errors(f"cannot fine-tune from {run_dir}: ", catch=(KeyError, TypeError, ValueError)):
        base = TrainConfig.from_dict(meta["train_config"])
        device = DeviceSpec.from_dict(export["device"])
        measure = MeasureConfig(**export["measure_config"])
        items = [(m["name"], m["kind"], Arch.from_dict(m["arch"])) for m in export["models"]
                 if m["kind"] == "front" or (m["kind"] == "baseline" and settings.baselines)]
    if isinstance(export.get("task"), dict) and export["task"] != task.record():
        raise UserInputError(f"{unit}/export was made for another task than the supernet's: "
                             f"run `hwnas export --run {run_dir}` again first")
    unavailable = backend_unavailable_reason(device.backend)
    if unavailable:  # checked before hours of training, not after
        raise UserInputError(f"cannot measure the trained models on device '{device.name}' here: {unavailable}")
    config = settings.train_config(base, train_device)
    recipe = {k: getattr(config, k) for k in RECIPE_KEYS}
    out = unit / "finetune"
    _refuse_other_recipes(out, recipe)
    pin_torch_threads(threads)

    n_test = len(task.y_test)
    records = []
    echo(f"training {len(items)} models for {config.epochs} epochs each (batch {config.batch_size}, "
         f"peak lr {config.lr:g}): front models from their inherited weights, baselines from scratch")
    for i, (name, kind, arch) in enumerate(items):
        step = f"[{i + 1}/{len(items)}] {name}"
        record = _finished_record(out, name, arch, recipe)
        if record is not None:
            echo(f"{step}: already trained ({record['train_seconds']:.1f} s), kept")
        elif (record := _copy_trained_elsewhere(run_dir, out, name, kind, arch, recipe)) is not None:
            echo(f"{step}: already trained for {record['copied_from']}, copied")
        else:
            record = _train_one(out, name, kind, arch, supernet, task, config, recipe)
            echo(f"{step}: {'fine-tuned' if kind == 'front' else 'trained from scratch'} in "
                 f"{record['train_seconds']:.1f} s, loss {record['train_loss'][-1]:.3f}, "
                 f"ONNX test {_pct(record['trained_test_accuracy'], n_test)}")
        records.append(record)

    echo(f"measuring {len(records)} trained models on device '{device.name}'")
    models_to_measure = measurable(device, [unit / r["onnx_path"] for r in records],
                                   lambda: [_load_trained(unit, r, supernet) for r in records])
    with user_errors(f"cannot measure on device '{device.name}': "):
        measured = measure_models(models_to_measure, device, task.spec, measure, seed=config.seed)
    inherited = {m["name"]: m for m in export["models"]}
    models = [_model_entry(r, inherited[r["name"]], m, n_test) for r, m in zip(records, measured)]
    stat = export.get("latency_statistic", "median_ms")
    for model, beaten_by in zip(models, dominance(models, statistic=stat, accuracy="trained_test_accuracy",
                                                   accuracy_se="trained_test_accuracy_se")):
        model["dominated_by"] = beaten_by  # among the trained models, on their trained accuracies
    manifest = {
        "schema_version": FINETUNE_SCHEMA,
        "task": task.record(),
        "device": device.to_dict(),
        "fingerprint": fingerprint(),
        "measure_config": measure.to_dict(),
        "latency_statistic": stat,
        "dominance": dominance_record(stat, "trained_test_accuracy"),
        "recipe": recipe,
        "export_manifest": "export/manifest.json",
        "models": models,
    }
    atomic_write_json(out / "manifest.json", manifest)
    return manifest


def summary(manifest: dict[str, Any]) -> str:
    """One line: how many models were trained and how far the front moved from its inherited accuracy."""
    models = manifest["models"]
    front = [m for m in models if m["kind"] == "front"]
    line = (f"{len(front)} front models fine-tuned, {len(models) - len(front)} baselines trained from scratch, "
            f"{manifest['recipe']['epochs']} epochs each")
    if front:
        change = [100 * m["accuracy_change"] for m in front]
        line += (f"; front test accuracy {min(change):+.1f} to {max(change):+.1f} points over inherited "
                 f"({sum(not m['within_noise'] for m in front)} of {len(front)} beyond noise)")
    return line


def comparison_lines(manifest: dict[str, Any]) -> list[str]:
    """Inherited vs trained ONNX test accuracy and the new measured latency, one line per model."""
    n = manifest["task"]["n_test"]
    stat = manifest.get("latency_statistic", "median_ms")
    lines = [f"ONNX test accuracy ± SE ({n} test examples): inherited supernet weights vs trained "
             f"(front: fine-tuned, baselines: standalone from scratch); latency {stat}",
             f"{'model':38s} {'inherited':>13s} {'trained':>13s} {'change':>7s} {'latency':>10s}"]
    for m in manifest["models"]:
        noise = "  (within noise)" if m["within_noise"] else ""
        lines.append(f"{m['name'][:38]:38s} {_pct(m['inherited_test_accuracy'], n):>13s} "
                     f"{_pct(m['trained_test_accuracy'], n):>13s} {100 * m['accuracy_change']:+6.1f} "
                     f"{_latency(m, stat):9.4f}ms{noise}")
    return lines + dominance_lines(manifest, "trained front model")


# --------------------------------------------------------------------- internals
def _train_one(out: Path, name: str, kind: str, arch: Arch, supernet, task, config, recipe: dict[str, Any]
               ) -> dict[str, Any]:
    """Train one model, save its weights and ONNX file, then its record (last, atomically)."""
    from safetensors.torch import save_file

    from supernet import Subnet, export_onnx
    from supernet.evaluate import evaluate_module
    from supernet.train import train_standalone

    from .exporting import onnx_accuracy

    init = INIT_OF_KIND[kind]
    if init == "inherited":
        module = supernet.extract(arch)
    else:
        module = Subnet.initialised(supernet.space, supernet.spec, arch, seed=config.seed)
    t0 = time.perf_counter()
    history = train_standalone(module, task, config)
    seconds = time.perf_counter() - t0
    module.cpu()  # exported, saved and evaluated on the CPU wherever it trained
    weights = out / "weights" / f"{name}.safetensors"
    tensors = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    atomic_write(weights, lambda tmp: save_file(tensors, str(tmp), metadata={"arch": arch.to_json()}))
    onnx_path = out / "models" / f"{name}.onnx"
    check = export_onnx(module, onnx_path, seed=config.seed)
    n_val, n_test = len(task.y_val), len(task.y_test)
    val_acc = evaluate_module(module, task.x_val, task.y_val)
    record = {
        "schema_version": FINETUNE_SCHEMA,
        "name": name, "kind": kind, "init": init,
        "arch": arch.to_dict(), "arch_description": arch.describe(),
        "recipe": recipe,
        "train_loss": [h["loss"] for h in history],
        "train_seconds": round(seconds, 2),
        "weights_path": str(weights.relative_to(out.parent)),
        "onnx_path": str(onnx_path.relative_to(out.parent)),
        "onnx_sha256": _sha256(onnx_path),
        "size_bytes": onnx_path.stat().st_size,
        "parity_rel_err": check.rel_err if check is not None else None,
        "trained_val_accuracy": val_acc,
        "trained_val_accuracy_se": binomial_se(val_acc, n_val),
        "trained_torch_test_accuracy": evaluate_module(module, task.x_test, task.y_test),
        "trained_test_accuracy": onnx_accuracy(onnx_path, task.x_test, task.y_test),
    }
    record["trained_test_accuracy_se"] = binomial_se(record["trained_test_accuracy"], n_test)
    atomic_write_json(out / "records" / f"{name}.json", record)
    return record


def _finished_record(out: Path, name: str, arch: Arch, recipe: dict[str, Any]) -> dict[str, Any] | None:
    """The record of a model already trained with this recipe and architecture, its ONNX file intact."""
    record = _read_record(out / "records" / f"{name}.json")
    if record is None or record.get("recipe") != recipe or record.get("arch") != arch.to_dict():
        return None
    onnx_path = out.parent / record["onnx_path"]
    if not onnx_path.exists() or _sha256(onnx_path) != record.get("onnx_sha256"):
        return None
    return record


def _copy_trained_elsewhere(run_dir: Path, out: Path, name: str, kind: str, arch: Arch, recipe: dict[str, Any]
                            ) -> dict[str, Any] | None:
    """Copy a model another unit of the run trained with the same start and recipe; its record, or None.

    The weights and ONNX file are copied under this model's name (atomically, the record last),
    so each unit's folder stands alone and resumes as if it had trained the model itself.
    """
    wanted = arch.to_dict()
    for records in sorted(Path(run_dir).glob("devices/*/finetune/records")):
        if records.parent == out:
            continue
        for path in sorted(records.glob("*.json")):
            found = _read_record(path)
            if found is None or found.get("init") != INIT_OF_KIND[kind] or found.get("arch") != wanted:
                continue
            if _finished_record(records.parent, found["name"], arch, recipe) is None:
                continue  # another recipe, or its ONNX file is missing or changed
            source_unit = records.parent.parent
            record = {**found, "name": name, "kind": kind,
                      "copied_from": str(source_unit.relative_to(run_dir) / "finetune" / "records" / path.name)}
            for key, folder, suffix in (("weights_path", "weights", ".safetensors"), ("onnx_path", "models", ".onnx")):
                source, target = source_unit / found[key], out / folder / f"{name}{suffix}"
                atomic_write(target, lambda tmp, source=source: shutil.copyfile(source, tmp))
                record[key] = str(target.relative_to(out.parent))
            atomic_write_json(out / "records" / f"{name}.json", record)
            return record
    return None


def _load_trained(unit: Path, record: dict[str, Any], supernet):
    """The trained module of `record` (for torch devices), from its safetensors weights."""
    from safetensors.torch import load_file

    from supernet import Subnet

    module = Subnet.initialised(supernet.space, supernet.spec, Arch.from_dict(record["arch"]), seed=0)
    module.load_state_dict(load_file(str(unit / record["weights_path"])))
    return module.eval()


def _refuse_other_recipes(out: Path, recipe: dict[str, Any]) -> None:
    """Models trained with another recipe are kept, never overwritten: refuse before training."""
    for path in sorted((out / "records").glob("*.json")):
        record = _read_record(path)
        if record is not None and record.get("recipe") != recipe:
            stored = record.get("recipe") or {}
            diff = [f"{k}: {stored.get(k)!r} there, {recipe[k]!r} given" for k in RECIPE_KEYS
                    if stored.get(k) != recipe[k]]
            raise UserInputError(f"{out} holds models trained with other settings ({', '.join(diff)}); "
                                 "use the same settings to resume, or move that folder away to start over")


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # missing, or not a record: the model is trained (again)
    required = ("name", "recipe", "arch", "onnx_path", "train_seconds", "trained_test_accuracy")
    return record if isinstance(record, dict) and all(k in record for k in required) else None


def _model_entry(record: dict[str, Any], exported: dict[str, Any], m, n_test: int) -> dict[str, Any]:
    """A manifest entry: the record, the inherited model's figures from the export, the new measurement."""
    inherited, trained = exported["onnx_test_accuracy"], record["trained_test_accuracy"]
    entry = {k: v for k, v in record.items() if k != "schema_version"}
    entry.update({
        "inherited_onnx_path": exported["onnx_path"],
        "inherited_test_accuracy": inherited,
        "inherited_test_accuracy_se": binomial_se(inherited, n_test),
        "accuracy_change": trained - inherited,
        "within_noise": within_noise(trained, inherited, n_test),
        "measured_latency_ms": m.median_ms,
        "measured_latency_p10_ms": m.p10_ms,
        "measured_latency_p90_ms": m.p90_ms,
        "measured_latency_min_ms": m.min_ms,
        "measurement_flagged": m.flagged,
    })
    return entry


def _latency(m: dict[str, Any], stat: str) -> float:
    return m["measured_latency_min_ms"] if stat == "min_ms" else m["measured_latency_ms"]


def _pct(p: float, n: int) -> str:
    return f"{100 * p:.1f} ± {100 * binomial_se(p, n):.1f}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


__all__ = ["FINETUNE_SCHEMA", "comparison_lines", "finetune_run", "load_finetune_manifest", "summary"]
