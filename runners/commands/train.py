"""`hwnas train`: train the supernet on a task and write a resumable checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from runners._errors import UserInputError
from runners.config import DEFAULT_TASK
from supernet.train_config import TrainConfig

_TRAIN = TrainConfig()


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        task: str = typer.Option(DEFAULT_TASK, help="mnist1d, recall, digits, mnist or npz:PATH."),
        task_option: Optional[list[str]] = typer.Option(None, "--task-option",
                                                        help="Task option KEY=VALUE (repeatable), e.g. samples=10000."),
        epochs: int = typer.Option(_TRAIN.epochs, help="Training epochs."),
        seed: int = typer.Option(0, help="Seed for the data splits, weights, batch order and sampled subnets."),
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
        no_sandwich: bool = typer.Option(False, "--no-sandwich", help="Train only the k random subnets each step."),
        no_distill: bool = typer.Option(False, "--no-distill", help="No distillation from the largest subnet."),
        device: str = typer.Option("cpu", help="cpu or cuda[:N]."),
        space: Path | None = typer.Option(None, help="Search space TOML file (default: the built-in space)."),
    ) -> None:
        """Train the weight-sharing supernet (sandwich rule, in-place distillation), with progress."""
        from supernet import DEFAULT_SPACE, SearchSpace, get_task
        from supernet.train import train_supernet

        from ..config import parse_task_options

        try:
            data = get_task(task, seed=seed, **(parse_task_options(task_option) or {}))
            search_space = DEFAULT_SPACE if space is None else SearchSpace.from_toml(space)
            config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, k_random=k_random,
                                 sandwich=not no_sandwich, distill=not no_distill, seed=seed, device=device,
                                 sandwich_choices=sandwich_choices, attention_weights=attention_weights)
        except ValueError as exc:
            raise UserInputError(str(exc)) from None
        typer.echo(data.describe())
        from runners.pipeline import pin_torch_threads

        pin_torch_threads(1)
        try:
            result = train_supernet(data, search_space, config, out / "supernet")
        except ValueError as exc:  # an incompatible or corrupt checkpoint in `out`
            raise UserInputError(str(exc)) from None
        last = result.history[-1]
        resumed = f" (resumed after epoch {result.resumed_from_epoch})" if result.resumed_from_epoch else ""
        typer.echo(f"trained {len(result.history)} epochs, {result.steps} steps in {result.train_seconds:.1f} s"
                   f"{resumed}; val acc largest {last['val_acc_largest']:.3f}, smallest {last['val_acc_smallest']:.3f}"
                   f"\ncheckpoint: {out / 'supernet' / 'checkpoint.json'}")
