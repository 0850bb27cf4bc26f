"""`hwnas train`: train the supernet on a task and write a resumable checkpoint."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from runners._errors import UserInputError, user_errors
from runners.config import DEFAULT_SEED, TaskSettings, TrainSettings
from supernet.train_config import TrainConfig

_TRAIN, _TASK = TrainSettings(), TaskSettings()
# What a folder made by `hwnas run` or `hwnas train` holds; --out may be one of those.
_RUN_MARKERS = ("run.json", "supernet")


def _check_out(out: Path) -> None:
    """--out must be new, empty, or a run/train folder (resumed): never another stage's folder."""
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--out {out} is a file; give a run folder")
    if out.is_dir() and any(out.iterdir()) and not any((out / name).exists() for name in _RUN_MARKERS):
        raise UserInputError(f"--out {out} is not empty and is not an hwnas run folder (no run.json or supernet/); "
                             "choose a new or empty folder")


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        task: str = typer.Option(_TASK.name, help="mnist1d, recall, digits, mnist or npz:PATH."),
        task_option: Optional[list[str]] = typer.Option(None, "--task-option",
                                                        help="Task option KEY=VALUE (repeatable), e.g. samples=10000."),
        epochs: int = typer.Option(_TRAIN.epochs, help="Training epochs."),
        seed: int = typer.Option(DEFAULT_SEED, help="Seed for the data splits, weights, batch order and sampled subnets."),
        out: Path = typer.Option(Path("results/train"), help="Run folder: the checkpoint goes to OUT/supernet/ "
                                 "(resumed when there), where `hwnas search --run OUT` reads it."),
        batch_size: int = typer.Option(_TRAIN.batch_size, help="Examples per step."),
        lr: float = typer.Option(_TRAIN.lr, help="Peak learning rate (AdamW, warm-up then cosine)."),
        k_random: int = typer.Option(_TRAIN.k_random, help="Random subnets per step besides the largest and smallest."),
        sandwich_choices: str = typer.Option(_TRAIN.sandwich_choices,
                                             help="Attention and quant of the sandwich's largest and smallest: "
                                                  "random (drawn per layer each step) or first."),
        attention_weights: str = typer.Option(_TRAIN.attention_weights,
                                              help="per_type (Q/K/V/O per attention type) or shared."),
        sandwich: bool = typer.Option(_TRAIN.sandwich, "--sandwich/--no-sandwich",
                                      help="Train the largest and smallest subnets each step besides the k random."),
        distill: bool = typer.Option(_TRAIN.distill, "--distill/--no-distill",
                                     help="Distil the other subnets from the largest one."),
        device: str = typer.Option(TrainConfig().device, help="cpu or cuda[:N]."),
        threads: int = typer.Option(_TRAIN.threads, help="Torch threads."),
        space: Optional[Path] = typer.Option(None, help="Search space TOML file (default: the built-in space)."),
    ) -> None:
        """Train the weight-sharing supernet (sandwich rule, in-place distillation), with progress."""
        from supernet import get_task
        from supernet.train import train_supernet

        from ..config import load_space, parse_task_options
        from ..pipeline import pin_torch_threads

        _check_out(out)
        settings = replace(_TRAIN, epochs=epochs, batch_size=batch_size, lr=lr, k_random=k_random, sandwich=sandwich,
                           distill=distill, sandwich_choices=sandwich_choices, attention_weights=attention_weights,
                           threads=threads)
        if threads <= 0:
            raise UserInputError(f"--threads must be a positive integer, got {threads}")
        with user_errors():
            config = replace(settings.train_config(seed), device=device)
            data = get_task(task, seed=seed, **(parse_task_options(task_option) or {}))
        search_space = load_space(space)
        typer.echo(data.describe())
        pin_torch_threads(threads)
        with user_errors():  # an incompatible or corrupt checkpoint in `out`
            result = train_supernet(data, search_space, config, out / "supernet")
        last = result.history[-1]
        resumed = f" (resumed after epoch {result.resumed_from_epoch})" if result.resumed_from_epoch else ""
        typer.echo(f"trained {len(result.history)} epochs, {result.steps} steps in {result.train_seconds:.1f} s"
                   f"{resumed}; val acc largest {last['val_acc_largest']:.3f}, smallest {last['val_acc_smallest']:.3f}"
                   f"\ncheckpoint: {out / 'supernet' / 'checkpoint.json'}")
