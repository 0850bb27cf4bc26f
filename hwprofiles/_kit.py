"""Profiling kits for devices that are not this machine.

`write_kit` exports the subnets to measure as ONNX files into a zip together with a
manifest, `run_kit.py` (a runner that needs only python, numpy and onnxruntime) and
`hwnas_protocol.py`, a verbatim copy of `hwprofiles._protocol`: the kit measures and
fingerprints with the very code hwnas uses. Run on
the target (``python run_kit.py --out results.json``), it writes a results file with the
target's fingerprint; `import_kit_results` turns that into a regular profile folder.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from supernet import Arch, InputSpec, SearchSpace

from ._device import DeviceSpec, get_device
from ._models import arch_key, deploy_spec
from ._profile import (META, REPEAT, TABLE, TABLE_COLUMNS, Profile, _frame, _progress, _repeat_subset, new_meta,
                       write_json_atomic, write_parquet_atomic)
from ._protocol import MeasureConfig
from ._sampling import sample_profile_archs

KIT_SCHEMA = 1
PROTOCOL_FILE = "hwnas_protocol.py"  # the name the kit's runner imports `hwprofiles._protocol` by


def write_kit(device: DeviceSpec | str, space: SearchSpace, spec: InputSpec, out_zip: str | Path, *,
              n_samples: int, seed: int = 0, config: MeasureConfig | None = None,
              archs: Sequence[Arch] | None = None, repeat_fraction: float = 0.1, progress: bool = True) -> Path:
    """Write a profiling kit (ONNX files, manifest, runner) for `device` to `out_zip`."""
    device = get_device(device)
    if device.is_torch:
        raise ValueError(f"profiling kits run onnxruntime; device {device.name} uses {device.backend}")
    out_zip = Path(out_zip)
    if out_zip.exists():
        raise ValueError(f"{out_zip} already exists; choose another path for the kit")
    config = config or MeasureConfig()
    archs = list(archs) if archs is not None else sample_profile_archs(space, n_samples, seed)
    dspec = deploy_spec(spec, device)
    from supernet import Supernet, export_onnx

    net = Supernet(space, dspec, seed=seed)
    repeat = {a: i for i, a in enumerate(archs)}
    manifest = {
        "kind": "hwnas-kit", "schema_version": KIT_SCHEMA, "kit_id": f"{device.name}-{int(time.time())}",
        "device": device.to_dict(), "space": space.to_dict(), "spec": spec.to_dict(), "seed": seed,
        "config": config.to_dict(), "input_shape": [device.batch, dspec.seq_len, dspec.in_features],
        "models": [{"file": f"models/{arch_key(a)}.onnx", "arch": a.to_json()} for a in archs],
        "repeat": [repeat[a] for a in _repeat_subset(archs, repeat_fraction)],
    }
    package = resources.files("hwprofiles")
    runner = package.joinpath("kit_runner.py.txt").read_bytes()
    protocol = package.joinpath("_protocol.py").read_bytes()
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_zip = tempfile.mkstemp(dir=out_zip.parent, prefix=f".{out_zip.name}.")
    os.close(fd)
    try:
        with tempfile.TemporaryDirectory(prefix="hwnas-kit-") as tmp, \
                zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as zf:
            with _progress(progress) as add:
                advance = add("exporting kit models", len(archs))
                for a, entry in zip(archs, manifest["models"]):
                    path = Path(tmp) / "m.onnx"
                    export_onnx(net.extract(a), path, check=False)
                    zf.write(path, entry["file"])
                    path.unlink()
                    advance(1)
            zf.writestr("manifest.json", json.dumps(manifest, indent=1))
            zf.writestr("run_kit.py", runner)
            zf.writestr(PROTOCOL_FILE, protocol)
            zf.writestr("README.txt", "Unzip on the target, then: python run_kit.py --out results.json\n"
                                      "Needs python 3, numpy, onnxruntime. Bring results.json back and run:\n"
                                      "hwnas profile --kit-in results.json --out PROFILE_DIR\n")
        os.replace(tmp_zip, out_zip)
    finally:
        if os.path.exists(tmp_zip):
            os.unlink(tmp_zip)
    return out_zip


def _check_results(data: Any, path: Path) -> None:
    if not isinstance(data, dict) or data.get("kind") != "hwnas-kit-results":
        raise ValueError(f"{path} is not an hwnas kit results file")
    if data.get("schema_version") != KIT_SCHEMA:
        raise ValueError(f"kit results schema version must be {KIT_SCHEMA}, got {data.get('schema_version')!r}")
    missing = [k for k in ("device", "fingerprint", "space", "spec", "seed", "config", "results", "repeat")
               if k not in data]
    if missing:
        raise ValueError(f"{path} lacks the entries {missing}")


def import_kit_results(results_path: str | Path, out_dir: str | Path) -> Profile:
    """Turn a kit's results file into a profile folder (with the target's fingerprint)."""
    results_path, out_dir = Path(results_path), Path(out_dir)
    try:
        data = json.loads(results_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read kit results {results_path}: {exc}") from None
    _check_results(data, results_path)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ValueError(f"{out_dir} already exists and is not empty; choose a new folder for the imported profile")
    try:
        device, space = DeviceSpec.from_dict(data["device"]), SearchSpace.from_dict(data["space"])
        spec, config = InputSpec(**data["spec"]), MeasureConfig(**data["config"])
        rows = []
        for r in data["results"]:
            arch = space.validate(Arch.from_json(r["arch"]))
            rows.append({"arch": arch.to_json(), "genome": space.encode(arch).tolist(), "embed_dim": arch.embed_dim,
                         "depth": arch.depth,
                         "median_ms": float(r["median_ms"]), "p10_ms": float(r["p10_ms"]),
                         "p90_ms": float(r["p90_ms"]), "spread": float(r["spread"]),
                         "raw_ms": [float(v) for v in r["raw_ms"]], "attempts": int(r["attempts"]),
                         "flagged": bool(r["flagged"])})
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"corrupt kit results {results_path}: {exc}") from None
    meta = new_meta(device, space, spec, seed=int(data["seed"]), config=config, env=data["fingerprint"],
                    remote=True, source=f"kit:{data.get('kit_id')}")
    meta["profiling_seconds"] = float(data.get("seconds", 0.0))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(out_dir / TABLE, _frame(rows, TABLE_COLUMNS))
    if data["repeat"]:
        import pandas as pd

        write_parquet_atomic(out_dir / REPEAT, pd.DataFrame(data["repeat"]))
    write_json_atomic(out_dir / META, meta)  # last: a folder without it is not a profile
    profile = Profile.load(out_dir)
    if profile.repeatability is not None:
        meta["repeatability"] = profile.repeatability.to_dict()
        write_json_atomic(out_dir / META, meta)
    return Profile.load(out_dir)
