"""Adapting a latency predictor to a new device: which subnets to measure, the source's costs.

`adaptation_archs` picks the k subnets to measure on the new device: the smallest and the
largest member, then greedily the candidate farthest from those already picked in
(log predicted source latency, per-component shares), so the few measurements span the
latency range and every component. `source_component_costs` reads the source
predictor's implied per-component costs (ms), the prior of the ``transfer`` residual.
`adapt_predictor` measures the picked subnets (and the blocks) on the new device and
returns the adapted predictor: what `hwnas adapt` runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import nnls

from hwprofiles import DeviceSpec, MeasureConfig, Profile, coverage_archs, get_device, profile_device
from supernet import Arch

from .metrics import latency_metrics

if TYPE_CHECKING:
    from ._latency import LatencyPredictor

_POOL = 600  # random candidates (besides the coverage subnets) of the selection and the cost read-out


def _pool(predictor: "LatencyPredictor", seed: int) -> list[Arch]:
    space = predictor.space
    rng = np.random.default_rng([seed, 17])
    out = list(coverage_archs(space, seed))
    seen = set(out)
    draws = _POOL if space.size > _POOL else 20 * space.size  # a small space: (almost) every member
    for _ in range(draws):
        arch = space.sample(rng)
        if arch not in seen:
            seen.add(arch)
            out.append(arch)
    return out


def source_component_costs(predictor: "LatencyPredictor", *, seed: int = 0, ridge: float = 1e-2) -> np.ndarray:
    """Per-component costs (ms, `FeatureSchema` "components" order) that best explain the predictor.

    Non-negative least squares, on relative error, of its predictions for the coverage
    subnets and random members of its space: a lookup table distilled from any estimator.
    Every layer adds one projection, one attention core and one FFN, so only their sum is
    determined; a small ridge penalty (`ridge`, relative to the median latency) splits it
    evenly instead of leaving some components at zero (which the residual could not move).
    """
    archs = _pool(predictor, seed)
    p = predictor.predict_archs(archs)
    C = predictor.schema.transform(archs, ["components"])
    scale = float(np.median(p))
    A = np.column_stack([C, np.ones(len(p))]) * scale / p[:, None]  # unknowns in units of the median latency
    penalty = np.sqrt(ridge * len(p)) * np.eye(A.shape[1])[:-1]  # the overhead is not penalised
    sol, _ = nnls(np.vstack([A, penalty]), np.concatenate([np.ones(len(p)), np.zeros(A.shape[1] - 1)]))
    return sol[:-1] * scale


def adaptation_archs(predictor: "LatencyPredictor", k: int, *, seed: int = 0) -> list[Arch]:
    """`k` distinct subnets worth measuring on a new device (see the module docstring)."""
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ValueError(f"number of subnets must be a positive integer, got {k!r}")
    space = predictor.space
    if k > space.size:
        raise ValueError(f"cannot pick {k} distinct subnets from a space of {space.size}")
    pool = list(dict.fromkeys([space.smallest(), space.largest(), *_pool(predictor, seed)]))
    logp = np.log(predictor.predict_archs(pool))
    C = predictor.schema.transform(pool, ["components"])
    shares = C / C.sum(axis=1, keepdims=True)
    Z = np.column_stack([(logp - logp.mean()) / (logp.std() or 1.0),
                         (shares - shares.mean(axis=0)) / np.where(shares.std(axis=0) > 0, shares.std(axis=0), 1.0)
                         / np.sqrt(shares.shape[1])])
    picked = list(range(min(k, 2)))
    dist = np.min([np.linalg.norm(Z - Z[i], axis=1) for i in picked], axis=0)
    while len(picked) < k:
        i = int(np.argmax(dist))
        if dist[i] <= 0:
            break
        picked.append(i)
        dist = np.minimum(dist, np.linalg.norm(Z - Z[i], axis=1))
    return [pool[i] for i in picked]


def block_costs_of(profile: Profile, target: str) -> dict[str, float]:
    """Measured cost (ms) of each block of `profile` for the statistic `target` (empty without blocks)."""
    if profile.blocks is None or profile.blocks.empty:
        return {}
    if target == "min_ms":
        return {b: float(min(raw)) for b, raw in zip(profile.blocks["block"], profile.blocks["raw_ms"])}
    return profile.block_costs()


def adapt_predictor(source: "LatencyPredictor", device: DeviceSpec | str, *, samples: int = 20,
                    profile_dir: str | Path, blocks: bool = True, config: MeasureConfig | None = None,
                    seed: int = 0, progress: bool = False) -> tuple["LatencyPredictor", Profile]:
    """Measure `samples` informative subnets (and, with `blocks`, every block) on `device`; adapt `source`.

    The measurements go to the profile folder `profile_dir` (resumed when it holds one of
    this device); no subnet is measured twice (no repeatability subset). The adapted
    predictor records its leave-one-out agreement with the k measurements in
    ``metrics["adaptation"]``: the only held-out figure k measurements allow.
    """
    from ._base import get_estimator

    device = get_device(device)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    target = source.target or "min_ms"
    archs = adaptation_archs(source, samples, seed=seed)
    profile = profile_device(device, source.space, source.schema.spec, n_samples=len(archs), archs=archs,
                             out_dir=profile_dir, seed=seed, blocks=blocks, config=config, progress=progress,
                             repeat_fraction=0.0, export_workers=2)
    measured = dict(zip(profile.table["arch"], profile.latency(target)))
    y = np.array([measured[a.to_json()] for a in archs])
    reference = {**profile.reference(), "target": target,
                 "adapted_from": {"device": source.device.to_dict(), "profile": source.profile}}
    adapted = source.adapt(archs, y, device, block_costs=block_costs_of(profile, target) if blocks else None,
                           seed=seed, profile=reference)
    X = adapted.features(archs)
    loo = np.empty(len(y))
    if len(y) >= 3:
        params = adapted.estimator.get_params()
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            loo[i] = get_estimator("transfer", **params).fit(X[keep], y[keep]).predict(X[i:i + 1])[0]
    seconds = profile.meta.get("seconds", {})
    adapted.metrics = {"target": target, "selected_by": "adaptation (transfer)",
                       "adaptation": {"k": len(y), "blocks": len(block_costs_of(profile, target)) if blocks else 0,
                                      "subnet_seconds": float(seconds.get("subnets", 0.0)),
                                      "block_seconds": float(seconds.get("blocks", 0.0)),
                                      "block_export_seconds": float(seconds.get("block_export", 0.0)),
                                      "leave_one_out": latency_metrics(y, loo) if len(y) >= 3 else None,
                                      "shrinkage": adapted.estimator.shrinkage,
                                      "residual_alpha": getattr(adapted.estimator, "alpha_", None)}}
    return adapted, profile
