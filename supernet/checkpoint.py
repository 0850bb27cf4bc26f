"""Supernet checkpoints: safetensors weights plus a JSON manifest, written atomically.

A checkpoint folder holds
- `checkpoint.json`: schema version, search space, task, input spec, training settings,
  seed, per-epoch metrics, library versions, and the names and SHA-256 of the files below;
- `supernet-<epoch>-<id>.safetensors`: the supernet weights;
- `train_state-<epoch>-<id>.safetensors` (optional): optimizer tensors needed to resume.

Each save writes new, epoch-numbered weight files first and then replaces
`checkpoint.json` in one `os.replace`, so a kill at any moment leaves either the old or the
new checkpoint, both complete. Superseded files are removed afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ._atomic import atomic_write
from .cost import InputSpec
from .model import Supernet
from .space import SearchSpace

SCHEMA_VERSION = 1
MANIFEST = "checkpoint.json"


def library_versions() -> dict[str, str]:
    import numpy
    import safetensors

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "safetensors": safetensors.__version__}


def _atomic_write(path: Path, write: Any) -> None:
    atomic_write(path, write)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _save_tensors(out_dir: Path, name: str, tensors: dict[str, torch.Tensor]) -> dict[str, str]:
    path = out_dir / name
    contiguous = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    _atomic_write(path, lambda tmp: save_file(contiguous, tmp))
    return {"file": name, "sha256": _sha256(path)}


def save_checkpoint(out_dir: str | Path, supernet: Supernet, meta: dict[str, Any], *,
                    train_state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write `supernet`'s weights and `meta` (JSON-serialisable) to `out_dir`; return the manifest path.

    `meta` may hold anything JSON can; the space, input spec, schema version and library
    versions are filled in here. `train_state` holds extra tensors for resuming (optimizer).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # A fresh name per save: re-saving an epoch never overwrites the files the live manifest names.
    tag = f"{int(meta.get('epochs_done', 0)):05d}-{uuid.uuid4().hex[:8]}"
    manifest = {**meta, "schema_version": SCHEMA_VERSION, "space": supernet.space.to_dict(),
                "input_spec": supernet.spec.to_dict(), "supernet": {"attention_weights": supernet.attention_weights},
                "library_versions": library_versions()}
    manifest["files"] = {"weights": _save_tensors(out_dir, f"supernet-{tag}.safetensors", supernet.state_dict())}
    if train_state is not None:
        manifest["files"]["train_state"] = _save_tensors(out_dir, f"train_state-{tag}.safetensors", train_state)
    text = json.dumps(manifest, indent=2, sort_keys=True)
    _atomic_write(out_dir / MANIFEST, lambda tmp: Path(tmp).write_text(text))
    keep = {entry["file"] for entry in manifest["files"].values()}
    for old in [*out_dir.glob("supernet-*.safetensors"), *out_dir.glob("train_state-*.safetensors")]:
        if old.name not in keep:
            old.unlink(missing_ok=True)
    return out_dir / MANIFEST


def has_checkpoint(out_dir: str | Path) -> bool:
    return (Path(out_dir) / MANIFEST).is_file()


def read_checkpoint_meta(out_dir: str | Path) -> dict[str, Any]:
    """The manifest of the checkpoint in `out_dir`, checked for schema and completeness."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise ValueError(f"no checkpoint in {out_dir}: {MANIFEST} is missing")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"checkpoint manifest {path} is corrupt: {exc}") from None
    if not isinstance(meta, dict) or meta.get("schema_version") != SCHEMA_VERSION:
        found = meta.get("schema_version") if isinstance(meta, dict) else None
        raise ValueError(f"checkpoint {path} has schema version {found!r}; this hwnas reads {SCHEMA_VERSION}")
    for key in ("space", "input_spec", "files"):
        if key not in meta:
            raise ValueError(f"checkpoint manifest {path} lacks {key!r}")
    return meta


def _load_tensors(out_dir: Path, entry: dict[str, str]) -> dict[str, torch.Tensor]:
    path = out_dir / entry["file"]
    if not path.is_file():
        raise ValueError(f"checkpoint file {path} is missing")
    if _sha256(path) != entry["sha256"]:
        raise ValueError(f"checkpoint file {path} is corrupt: its SHA-256 does not match {MANIFEST}")
    try:
        return load_file(path)
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"checkpoint file {path} is unreadable: {exc}") from None


def load_checkpoint(out_dir: str | Path, *, device: str = "cpu") -> tuple[Supernet, dict[str, Any]]:
    """The supernet saved in `out_dir` (in eval mode) and its manifest."""
    out_dir = Path(out_dir)
    meta = read_checkpoint_meta(out_dir)
    try:
        space = SearchSpace.from_dict(meta["space"])
        spec = InputSpec(**meta["input_spec"])
        options = dict(meta.get("supernet", {}))  # absent in checkpoints written before per-type weights
        net = Supernet(space, spec, seed=int(meta.get("seed", 0)), **options)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint {out_dir / MANIFEST} has an invalid space, input spec or supernet "
                         f"settings: {exc}") from None
    state = _load_tensors(out_dir, meta["files"]["weights"])
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ValueError(f"checkpoint weights in {out_dir} do not fit its space: {first}") from None
    return net.to(device).eval(), meta


def load_train_state(out_dir: str | Path) -> dict[str, torch.Tensor]:
    """The resume tensors (optimizer state) saved with the checkpoint in `out_dir`."""
    out_dir = Path(out_dir)
    entry = read_checkpoint_meta(out_dir)["files"].get("train_state")
    if entry is None:
        raise ValueError(f"checkpoint in {out_dir} holds no training state to resume from")
    return _load_tensors(out_dir, entry)
