"""Settings of supernet and standalone training (torch-free, so configs can read them)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

ATTENTION_WEIGHTS = ("shared", "per_type")

SANDWICH_CHOICES = ("random", "first", "both")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one supernet (or standalone subnet) training run."""

    epochs: int = 5  # the default task (mnist1d, 6,000 training examples): 940 updates of batch 32
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off
    k_random: int = 2  # random subnets per step besides the largest and smallest
    sandwich: bool = True  # False: only the k_random sampled subnets each step
    distill: bool = True  # non-largest subnets also learn the largest's soft predictions
    # Attention and quantization of the sandwich's largest and smallest subnets: "random" draws
    # them per layer at every step, so every type and policy trains at the extremes (and the
    # teacher is not always all-softmax fp32); "first" keeps the space's first choices; "both"
    # keeps the first-choice largest as the teacher and adds a random-choice largest beside it.
    sandwich_choices: str = "random"
    attention_weights: str = "shared"  # "shared": one Q/K/V/O set for every attention type; "per_type"
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if isinstance(self.k_random, bool) or not isinstance(self.k_random, int) or self.k_random < 0:
            raise ValueError(f"k_random must be a non-negative integer, got {self.k_random!r}")
        if not self.sandwich and self.k_random == 0:
            raise ValueError("k_random must be at least 1 without the sandwich rule, got 0")
        if self.distill and not self.sandwich:
            raise ValueError("distill needs the sandwich rule (the largest subnet is the teacher); turn distill off too")
        for name, lo in (("lr", 0.0), ("weight_decay", -1e-300), ("warmup_epochs", -1e-300), ("grad_clip", -1e-300)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= lo:
                rule = "positive" if lo == 0.0 else "non-negative"
                raise ValueError(f"{name} must be a finite {rule} number, got {v!r}")
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs must not exceed epochs ({self.epochs}), got {self.warmup_epochs}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.sandwich_choices not in SANDWICH_CHOICES:
            raise ValueError(f"sandwich_choices must be one of {SANDWICH_CHOICES}, got {self.sandwich_choices!r}")
        if self.attention_weights not in ATTENTION_WEIGHTS:
            raise ValueError(f"attention_weights must be one of {ATTENTION_WEIGHTS}, got {self.attention_weights!r}")
        if not isinstance(self.device, str) or not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training setting(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)


__all__ = ["ATTENTION_WEIGHTS", "SANDWICH_CHOICES", "TrainConfig"]
