"""`LatencyPredictor`: an estimator bound to its features, space, device and profile.

Saved as one safetensors file: the learned arrays as tensors and a JSON header (in the
file's metadata under ``hwnas``) with the schema version, estimator description, feature
groups and schema, space fingerprint, device, profile reference, held-out metrics and
library versions. No Python object serialisation. Loading against another space or device fails clearly.
"""

from __future__ import annotations

import json
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hwprofiles import DeviceSpec, compare_fingerprints, fingerprint, get_device
from supernet import Arch, SearchSpace, atomic_write

from ._base import Estimator
from .features import FeatureSchema

SCHEMA_VERSION = 1
KIND = "hwnas-latency-predictor"
_BETWEEN_GROUPS = ("quant", "quant_changes")  # the transfer residual's between-layer counts (with blocks)


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for package in ("hwnas", "numpy", "scipy", "scikit-learn", "safetensors"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


class LatencyPredictor:
    """Predicts latency (ms) of architectures of one space on one device."""

    def __init__(self, estimator: Estimator, schema: FeatureSchema, groups: Sequence[str], device: DeviceSpec | str, *,
                 profile: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
                 versions: dict[str, Any] | None = None,
                 latency_range: Sequence[float] | None = None) -> None:
        self.estimator, self.schema = estimator, schema
        # (fastest, slowest) latency it was fitted on; predictions stay within half the
        # fastest and twice the slowest. Profiles include the space's extremes, so a
        # prediction outside that band is an extrapolation artefact (e.g. a lookup table
        # whose fitted costs are all zero for some rare component), not a latency.
        self.latency_range = None if latency_range is None else (float(latency_range[0]), float(latency_range[1]))
        self.groups = FeatureSchema.check_groups(groups)
        self.device, self.profile = get_device(device), profile or {}
        self.metrics = metrics or {}
        self.versions = versions or library_versions()

    @property
    def name(self) -> str:
        return self.estimator.name

    @property
    def space(self) -> SearchSpace:
        return self.schema.space

    @property
    def target(self) -> str | None:
        """The latency statistic it was fitted to (``median_ms`` / ``min_ms``), None where not recorded.

        An adapted predictor reports its source's statistic unless it records its own.
        """
        if isinstance(self.metrics.get("target"), str):
            return self.metrics["target"]
        profile = self.profile
        while isinstance(profile, dict):
            if isinstance(profile.get("target"), str):
                return profile["target"]
            profile = (profile.get("adapted_from") or {}).get("profile")
        return None

    def features(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.schema.transform(archs, self.groups)

    def fit_archs(self, archs: Sequence[Arch], latency_ms: np.ndarray) -> "LatencyPredictor":
        y = np.asarray(latency_ms, dtype=np.float64)
        self.estimator.fit(self.features(archs), y)
        self.latency_range = (float(y.min()), float(y.max()))
        return self

    def predict_archs(self, archs: Sequence[Arch]) -> np.ndarray:
        """Predicted latency in ms, one per architecture."""
        if len(archs) == 0:
            return np.zeros(0)
        predicted = self.estimator.predict(self.features(archs))
        if self.latency_range is not None:
            predicted = np.clip(predicted, 0.5 * self.latency_range[0], 2.0 * self.latency_range[1])
        return predicted

    # ------------------------------------------------------------------ adaptation
    def adapt(self, archs: Sequence[Arch], latency_ms: np.ndarray, device: DeviceSpec | str, *,
              method: str = "transfer", block_costs: dict[str, float] | None = None, shrinkage: float | None = None,
              residual: bool = True, seed: int = 0, profile: dict[str, Any] | None = None) -> "LatencyPredictor":
        """A predictor for `device` from this one and a few (k <= ~20) measurements there.

        ``method="transfer"`` (default, see `predictors._transfer`): this predictor as the
        prior, moved by the measurements, by `block_costs` (ms per block name, measured on
        `device`; used when they cover every block of the space) and, with `residual`, by a
        per-component residual shrunk towards this device's cost ratios (with blocks, also
        by what a model pays between its layers: int8 present, precision changes); it can
        re-rank.
        ``method="calibrated"``: one monotone map log y = a log p + b (never re-ranks).
        """
        from ._adapt import source_component_costs
        from ._estimators import CalibratedPredictor
        from ._transfer import TransferPredictor

        y = np.asarray(latency_ms, dtype=np.float64)
        source = {"device": self.device.to_dict(), "profile": self.profile}
        if self.target is not None:
            source["target"] = self.target
        meta = profile or {"adapted_from": source, "n_rows": len(archs)}
        if method == "calibrated":
            base = self.estimator.base if isinstance(self.estimator, CalibratedPredictor) else self.estimator
            calibrated = CalibratedPredictor(base=base, shrinkage=1.0 if shrinkage is None else shrinkage).fit(self.features(archs), y)
            return LatencyPredictor(calibrated, self.schema, self.groups, get_device(device), profile=meta)
        if method != "transfer":
            raise ValueError(f"adaptation method must be one of ('transfer', 'calibrated'), got {method!r}")
        groups: tuple[str, ...] = self.groups
        prior = costs = None
        if residual:
            prior, groups = source_component_costs(self, seed=seed), (*groups, "components")
        names = self.schema.names(["blocks"])
        between = 0
        if block_costs and all(n in block_costs for n in names):
            costs, groups = np.array([float(block_costs[n]) for n in names]), (*groups, "blocks")
            if residual:  # what a model pays between its layers, which blocks measured alone miss
                groups = (*groups, *_BETWEEN_GROUPS)
                between = len(self.schema.names(_BETWEEN_GROUPS))
        estimator = TransferPredictor(base=self.estimator, n_base_columns=len(self.schema.names(self.groups)),
                                      prior_costs=prior, block_costs=costs, n_between_columns=between,
                                      shrinkage=0.01 if shrinkage is None else shrinkage)
        adapted = LatencyPredictor(estimator, self.schema, groups, get_device(device), profile=meta)
        estimator.fit(adapted.features(archs), y)
        return adapted

    # ------------------------------------------------------------------ persistence
    def to_header(self) -> dict[str, Any]:
        desc, _ = self.estimator.get_state()
        return {"kind": KIND, "schema_version": SCHEMA_VERSION, "estimator": desc, "groups": list(self.groups),
                "feature_names": self.schema.names(self.groups), "schema": self.schema.to_dict(),
                "space_fingerprint": self.space.fingerprint(), "device": self.device.to_dict(),
                "profile": self.profile, "metrics": self.metrics, "versions": self.versions,
                "latency_range": None if self.latency_range is None else list(self.latency_range),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def save(self, path: str | Path) -> Path:
        """Write the predictor to `path` (one safetensors file), atomically."""
        from safetensors.numpy import save_file

        self.estimator._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _, arrays = self.estimator.get_state()
        header = json.dumps(self.to_header(), sort_keys=True, default=_json_default)
        tensors = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={"hwnas": header}))

    @classmethod
    def load(cls, path: str | Path, *, space: SearchSpace | None = None,
             device: DeviceSpec | str | None = None) -> "LatencyPredictor":
        """Read a saved predictor; `space` / `device`, when given, must be the ones it was fitted for."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no latency predictor at {path}")
        try:
            with safe_open(str(path), framework="np") as fh:
                header = json.loads((fh.metadata() or {})["hwnas"])
                arrays = {k: fh.get_tensor(k) for k in fh.keys()}
        except (SafetensorError, OSError, KeyError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not a readable hwnas latency predictor ({type(exc).__name__}: {exc})") \
                from None
        if not isinstance(header, dict) or header.get("kind") != KIND:
            raise ValueError(f"{path} is not an hwnas latency predictor")
        if header.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"predictor schema version must be {SCHEMA_VERSION}, got {header.get('schema_version')!r}")
        if space is not None and space.fingerprint() != header["space_fingerprint"]:
            raise ValueError(f"predictor {path} was fitted for another search space: {header['space_fingerprint']} "
                             f"!= {space.fingerprint()}")
        stored_device = DeviceSpec.from_dict(header["device"])
        if device is not None:
            wanted = get_device(device)
            if wanted != stored_device:
                raise ValueError(f"predictor {path} was fitted for device {stored_device}, not {wanted}")
        try:
            estimator = Estimator.from_state(header["estimator"], arrays)
            schema = FeatureSchema.from_dict(header["schema"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"corrupt latency predictor {path}: {exc}") from None
        if schema.names(header["groups"]) != header["feature_names"]:
            raise ValueError(f"predictor {path} has a feature schema this version cannot rebuild")
        profile = header.get("profile") or {}
        if profile.get("fingerprint") and not profile.get("remote"):
            differences = compare_fingerprints(profile["fingerprint"], fingerprint())
            if differences:
                warnings.warn(f"predictor {path} was profiled on a different machine: {'; '.join(differences)}",
                              stacklevel=2)
        return cls(estimator, schema, header["groups"], stored_device, profile=profile,
                   metrics=header.get("metrics"), versions=header.get("versions"),
                   latency_range=header.get("latency_range"))

    def __repr__(self) -> str:
        return f"LatencyPredictor({self.estimator!r}, device={self.device.name!r}, groups={self.groups})"


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a predictor header")
