"""Score a saved latency predictor against any device profile's measurements.

The predictor and the profile must share the search space and the device kind (runtime
backend); anything else (another machine, thread count, input shape) is scored and noted.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hwprofiles import Profile

from ._latency import LatencyPredictor
from .metrics import latency_metrics


@dataclass(frozen=True)
class PredictorScore:
    """Agreement of a predictor with one profile's measured latencies (`target`, ms)."""

    n: int
    target: str
    within_5: float
    within_10: float
    mape: float  # %
    rmse_ms: float
    kendall_tau: float
    spearman: float
    predictor_device: str
    profile_device: str
    in_sample: bool  # the predictor was fitted on this profile: not a held-out score
    ceiling_within_10: float | None = None  # the profile's repeatability for `target`, when measured
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        """One line scripts read: ``n=100 within10=0.96 within5=0.80 mape=3.1% kendall=0.93 spearman=0.99``."""
        return (f"n={self.n} within10={self.within_10:.2f} within5={self.within_5:.2f} mape={self.mape:.1f}% "
                f"kendall={_fmt(self.kendall_tau)} spearman={_fmt(self.spearman)}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "notes": list(self.notes)}


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.2f}"


def _same_path(a: Any, b: Path) -> bool:
    try:
        return bool(a) and Path(a).resolve() == b.resolve()
    except (OSError, TypeError, ValueError):
        return False


def check_compatible(predictor: LatencyPredictor, profile: Profile) -> list[str]:
    """Raise ValueError where the predictor cannot score the profile; else notes on what differs."""
    pdev, mdev = predictor.device, profile.device
    if predictor.space.fingerprint() != profile.space.fingerprint():
        ours, theirs = predictor.space.to_dict(), profile.space.to_dict()
        differs = [f"{k} {ours.get(k)} vs {theirs.get(k)}" for k in sorted(set(ours) | set(theirs))
                   if ours.get(k) != theirs.get(k)]
        raise ValueError(f"predictor and profile belong to different search spaces (predictor vs profile): "
                         f"{'; '.join(differs)}")
    if pdev.backend != mdev.backend:
        raise ValueError(f"predictor and profile are for different device kinds: predictor device "
                         f"'{pdev.name}' (backend {pdev.backend}) vs profile device '{mdev.name}' "
                         f"(backend {mdev.backend})")
    notes = []
    differs = [f"{k} {getattr(pdev, k)} vs {getattr(mdev, k)}" for k in ("name", "threads", "batch", "seq_len")
               if getattr(pdev, k) != getattr(mdev, k)]
    if differs:
        notes.append(f"predictor device '{pdev.name}' differs from the profile's '{mdev.name}': {', '.join(differs)}")
    if predictor.schema.spec != profile.spec:
        notes.append(f"input spec differs: predictor {predictor.schema.spec.to_dict()} vs "
                     f"profile {profile.spec.to_dict()}")
    return notes


def score_predictor(predictor: LatencyPredictor, profile: Profile, *, target: str | None = None) -> PredictorScore:
    """Predict every subnet of `profile` and compare with its measured `target` statistic.

    `target` defaults to the statistic the predictor was fitted to (``median_ms`` where it
    records none). Raises ValueError for another search space or device kind, an unknown
    statistic or an empty profile.
    """
    notes = check_compatible(predictor, profile)
    recorded = predictor.target
    if target is None:
        target = recorded or "median_ms"
        if recorded is None:
            notes.append("the predictor does not record the statistic it was fitted to; scored on median_ms")
    elif recorded is not None and target != recorded:
        notes.append(f"scored on {target}, but the predictor was fitted to {recorded}")
    measured = profile.latency(target)  # raises for an unknown statistic
    if measured.size == 0:
        raise ValueError(f"profile {profile.path} has no measured subnets to score against")
    metrics = latency_metrics(measured, predictor.predict_archs(profile.archs()))
    in_sample = _same_path(predictor.profile.get("path"), profile.path)
    if in_sample:
        notes.append(f"the predictor was fitted on measurements of this profile ({profile.path}): the scores "
                     f"include rows it was fitted on, not held-out scores")
    ceiling = profile.repeatability_of(target)
    return PredictorScore(n=int(measured.size), target=target, within_5=metrics["within_5"],
                          within_10=metrics["within_10"], mape=metrics["mape"], rmse_ms=metrics["rmse_ms"],
                          kendall_tau=metrics["kendall_tau"], spearman=metrics["spearman"],
                          predictor_device=predictor.device.name, profile_device=profile.device.name,
                          in_sample=in_sample, ceiling_within_10=None if ceiling is None else ceiling.within_10,
                          notes=tuple(notes))
