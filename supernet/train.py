"""Supernet training with the sandwich rule and in-place distillation, resumable per epoch.

Each step trains on one batch: the largest subnet learns from the labels; the smallest
and `k_random` sampled subnets learn from the labels and, with `distill`, from the
largest's soft predictions. Gradients of all of them accumulate into one AdamW step
(warm-up then cosine learning rate, gradient-norm clipping). Sampled subnets draw each
layer's attention type and quantization policy, so every choice gets trained; int8 layers
train through their fake-quant (straight-through gradients).

Randomness comes from two numpy generators spawned from the seed (batch order, sampled
subnets); their states are checkpointed after every epoch together with the weights and
the optimizer state, so a resumed run ends with the same weights as an uninterrupted one.
Nothing in a step draws torch random numbers (no dropout), so no torch RNG state is kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import has_checkpoint, load_checkpoint, load_train_state, read_checkpoint_meta, save_checkpoint
from .evaluate import as_tensor, evaluate_archs, evaluate_module
from .model import Supernet
from .space import Arch, SearchSpace
from .tasks import Task
from .train_config import TrainConfig


@dataclass
class TrainResult:
    """A finished run: the trained supernet (eval mode), its per-epoch history and files."""

    supernet: Supernet
    history: list[dict[str, Any]]
    out_dir: Path
    resumed_from_epoch: int  # epochs already done when this call started (0 = fresh run)
    steps: int  # optimizer updates in the whole run
    train_seconds: float  # summed over every epoch, including those of earlier, interrupted calls


# --------------------------------------------------------------------- shared pieces
def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but torch sees no CUDA device")
    return torch.device(name)


def lr_at(step: int, total_steps: int, warmup_steps: int, peak: float) -> float:
    """Linear warm-up to `peak` over `warmup_steps`, then cosine decay to 0 at `total_steps`."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(module: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not on biases, norms or positional embeddings)."""
    decay = [p for n, p in module.named_parameters() if p.ndim >= 2 and n != "pos"]
    rest = [p for n, p in module.named_parameters() if not (p.ndim >= 2 and n != "pos")]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr)


def _generators(seed: int) -> dict[str, np.random.Generator]:
    data_seq, arch_seq = np.random.SeedSequence(seed).spawn(2)
    return {"data": np.random.default_rng(data_seq), "arch": np.random.default_rng(arch_seq)}


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    return {f"state.{i}.{key}": value for i, state in optimizer.state_dict()["state"].items()
            for key, value in state.items()}


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})


def _progress(enabled: bool):
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[stats]}"), TimeElapsedColumn())


# --------------------------------------------------------------------- supernet training
def _subnets_for_step(space: SearchSpace, config: TrainConfig, rng: np.random.Generator) -> list[Arch]:
    if not config.sandwich:
        return [space.sample(rng) for _ in range(config.k_random)]
    extremes = [space.largest(), space.smallest()]
    if config.sandwich_choices == "random":
        extremes = [space.redraw(a, ("attention", "quant"), rng) for a in extremes]
    elif config.sandwich_choices == "both":  # the first-choice largest stays the teacher
        extremes = [extremes[0], *(space.redraw(a, ("attention", "quant"), rng) for a in extremes)]
    return [*extremes, *(space.sample(rng) for _ in range(config.k_random))]


def _sandwich_step(net: Supernet, x: torch.Tensor, y: torch.Tensor, archs: list[Arch], distill: bool) -> float:
    """Accumulate the gradients of every subnet in `archs` (the first is the teacher); mean loss."""
    teacher = None
    losses = []
    for i, arch in enumerate(archs):
        logits = net(x, arch)  # (B, C)
        loss = F.cross_entropy(logits, y)
        if i == 0 and distill:
            teacher = logits.detach().softmax(dim=-1)
        elif teacher is not None:
            soft = F.kl_div(logits.log_softmax(dim=-1), teacher, reduction="batchmean")
            loss = 0.5 * (loss + soft)
        loss.backward()
        losses.append(loss.item())
    return float(np.mean(losses))


def _run_identity(task: Task, space: SearchSpace, config: TrainConfig) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed by this call (device may differ)."""
    settings = {k: v for k, v in config.to_dict().items() if k != "device"}
    return {"task": task.record(), "space": space.to_dict(), "input_spec": task.spec.to_dict(), "train_config": settings}


def _check_resumable(out_dir: Path, meta: dict[str, Any], identity: dict[str, Any]) -> None:
    saved = {"task": meta.get("task"), "space": meta.get("space"), "input_spec": meta.get("input_spec"),
             "train_config": {k: v for k, v in (meta.get("train_config") or {}).items() if k != "device"}}
    for key, want in identity.items():
        if saved[key] != want:
            raise ValueError(f"{out_dir} holds a checkpoint of another run ({key} differs: "
                             f"{saved[key]} there, {want} here); use a new output folder")
    if "rng_state" not in meta or "history" not in meta:
        raise ValueError(f"checkpoint in {out_dir} is not a resumable training checkpoint")


def train_supernet(task: Task, space: SearchSpace, config: TrainConfig, out_dir: str | Path, *,
                   progress: bool = True,
                   on_epoch_end: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Train a supernet on `task`, checkpointing each epoch to `out_dir`; resume if one is there.

    `on_epoch_end(metrics)` runs after each epoch's checkpoint is written.
    """
    out_dir = Path(out_dir)
    device = resolve_device(config.device)
    identity = _run_identity(task, space, config)
    net = Supernet(space, task.spec, seed=config.seed, attention_weights=config.attention_weights)
    optimizer = make_optimizer(net, config)
    rngs = _generators(config.seed)
    history: list[dict[str, Any]] = []
    if has_checkpoint(out_dir):
        meta = read_checkpoint_meta(out_dir)
        _check_resumable(out_dir, meta, identity)
        saved, meta = load_checkpoint(out_dir)
        net.load_state_dict(saved.state_dict())
        _restore_optimizer(optimizer, load_train_state(out_dir))
        for name, rng in rngs.items():
            rng.bit_generator.state = meta["rng_state"][name]
        history = list(meta["history"])
    net.to(device).train()
    optimizer.load_state_dict(optimizer.state_dict())  # moves restored state onto the device

    x_train = as_tensor(task.x_train, torch.float32, device)
    y_train = as_tensor(task.y_train, torch.int64, device)
    n = len(x_train)
    steps_per_epoch = math.ceil(n / config.batch_size)
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)
    start_epoch = len(history)
    largest, smallest = space.largest(), space.smallest()

    bar = _progress(progress)
    if bar is not None:
        bar.start()
        job = bar.add_task(f"epoch {start_epoch}/{config.epochs}", total=total,
                           completed=start_epoch * steps_per_epoch, stats="")
    try:
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            order = torch.as_tensor(rngs["data"].permutation(n), device=device)
            losses = []
            for b in range(steps_per_epoch):
                step = epoch * steps_per_epoch + b
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, total, warmup, config.lr)
                idx = order[b * config.batch_size:(b + 1) * config.batch_size]
                optimizer.zero_grad(set_to_none=True)
                archs = _subnets_for_step(space, config, rngs["arch"])
                losses.append(_sandwich_step(net, x_train[idx], y_train[idx], archs, config.distill))
                if config.grad_clip > 0:
                    nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
                optimizer.step()
                if bar is not None:
                    bar.update(job, advance=1, description=f"epoch {epoch + 1}/{config.epochs}")
            train_seconds = time.perf_counter() - t0
            acc_l, acc_s = evaluate_archs(net, [largest, smallest], task.x_val, task.y_val)
            net.train()
            metrics = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_acc_largest": float(acc_l),
                       "val_acc_smallest": float(acc_s), "lr_end": optimizer.param_groups[0]["lr"],
                       "steps": (epoch + 1) * steps_per_epoch, "seconds": train_seconds}
            history.append(metrics)
            meta = {**identity, "seed": config.seed, "train_config": config.to_dict(), "epochs_done": epoch + 1,
                    "history": history, "rng_state": {k: r.bit_generator.state for k, r in rngs.items()}}
            save_checkpoint(out_dir, net, meta, train_state=_optimizer_tensors(optimizer))
            if bar is not None:
                bar.update(job, stats=f"loss {metrics['loss']:.3f}  val acc largest {acc_l:.3f} "
                                      f"smallest {acc_s:.3f}  ({train_seconds:.1f} s/epoch)")
            if on_epoch_end is not None:
                on_epoch_end(metrics)
    finally:
        if bar is not None:
            bar.stop()
    net.eval()
    return TrainResult(supernet=net, history=history, out_dir=out_dir, resumed_from_epoch=start_epoch,
                       steps=config.epochs * steps_per_epoch,
                       train_seconds=float(sum(m["seconds"] for m in history)))


# --------------------------------------------------------------------- standalone subnets
def train_standalone(module: nn.Module, task: Task, config: TrainConfig) -> list[dict[str, Any]]:
    """Train a static module (e.g. a freshly initialised `Subnet`) on labels alone.

    Same optimizer, schedule, batch order and number of updates as `train_supernet` with
    the same config; the sandwich and distillation settings do not apply. Returns per-epoch
    training loss. The module is left in eval mode.
    """
    device = resolve_device(config.device)
    module.to(device).train()
    optimizer = make_optimizer(module, config)
    data_rng = _generators(config.seed)["data"]
    x_train = as_tensor(task.x_train, torch.float32, device)
    y_train = as_tensor(task.y_train, torch.int64, device)
    n = len(x_train)
    steps_per_epoch = math.ceil(n / config.batch_size)
    total, warmup = config.epochs * steps_per_epoch, round(config.warmup_epochs * steps_per_epoch)
    history = []
    for epoch in range(config.epochs):
        order = torch.as_tensor(data_rng.permutation(n), device=device)
        losses = []
        for b in range(steps_per_epoch):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(epoch * steps_per_epoch + b, total, warmup, config.lr)
            idx = order[b * config.batch_size:(b + 1) * config.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(module(x_train[idx]), y_train[idx])
            loss.backward()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(module.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(loss.item())
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses))})
    module.eval()
    return history


# --------------------------------------------------------------------- short fine-tune before scoring
def tune_briefly(module: nn.Module, task: Task, *, steps: int, lr: float = 1e-3, batch_size: int = 32,
                 seed: int = 0, warmup_steps: int = 0) -> nn.Module:
    """Train a static module (e.g. a subnet with inherited weights) for `steps` updates on the
    training split, labels only, AdamW with a cosine decay from `lr` (after a linear warm-up
    of `warmup_steps`); returns it in eval mode.

    A few hundred updates let an inherited subnet settle into weights of its own before it is
    scored, which brings its accuracy nearer to what the architecture reaches trained alone
    (benchmarks/results/supernet_quality_*: 360 updates at lr 2e-3 rank the default task's
    subnets about as well as a second standalone seed does).
    """
    return _tune(module, task.x_train, task.y_train, steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                 warmup_steps=warmup_steps)


def tuned_accuracies(supernet: nn.Module, archs: Sequence[Arch], x_train: Any, y_train: Any, x: Any, y: Any, *,
                     steps: int, lr: float, seed: int = 0, batch_size: int = 32) -> np.ndarray:
    """Accuracy on (x, y) of each architecture after `steps` updates from its inherited weights
    (`tune_briefly`'s recipe, the same batch order for every architecture); the supernet is
    not changed (each subnet is an extracted copy)."""
    device = next(supernet.parameters()).device
    x_train, y_train = as_tensor(x_train, torch.float32, device), as_tensor(y_train, torch.int64, device)
    out = np.empty(len(archs))
    for i, arch in enumerate(archs):  # the training split is on the device once, for every subnet
        module = _tune(supernet.extract(arch), x_train, y_train, steps=steps, lr=lr, batch_size=batch_size,
                       seed=seed)
        out[i] = evaluate_module(module, x, y)
    return out


def _tune(module: nn.Module, x_train: Any, y_train: Any, *, steps: int, lr: float, batch_size: int,
          seed: int, warmup_steps: int = 0) -> nn.Module:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or not 0 <= warmup_steps <= steps:
        raise ValueError(f"warmup_steps must be an integer in 0..steps ({steps}), got {warmup_steps!r}")
    if steps == 0:
        return module.eval()
    device = next(module.parameters()).device
    module.train()
    optimizer = make_optimizer(module, TrainConfig(epochs=1, lr=lr, batch_size=batch_size))
    rng = np.random.default_rng(seed)
    x_train = as_tensor(x_train, torch.float32, device)
    y_train = as_tensor(y_train, torch.int64, device)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, warmup_steps, lr)
        idx = torch.as_tensor(rng.choice(len(x_train), size=min(batch_size, len(x_train)), replace=False),
                              device=device)
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(module(x_train[idx]), y_train[idx]).backward()
        nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
    return module.eval()
