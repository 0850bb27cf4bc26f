"""`hwnas finetune`: train the exported models on (front fine-tuned, baselines from scratch)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def finetune(
        run_dir: Path = typer.Option(..., "--run", help="Run folder with an export (from `hwnas export`)."),
        epochs: Optional[int] = typer.Option(None, help="Epochs of every model (default: the run's finetune "
                                             "setting, else the supernet's training epochs)."),
        lr: Optional[float] = typer.Option(None, help="Peak learning rate (default: as epochs)."),
        batch_size: Optional[int] = typer.Option(None, help="Examples per step (default: as epochs)."),
        warmup_epochs: Optional[float] = typer.Option(None, help="Warm-up epochs (default: as epochs)."),
        baselines: Optional[bool] = typer.Option(None, "--baselines/--no-baselines",
                                                 help="Also train the uniform baselines from scratch "
                                                      "(default: the run's setting, else yes)."),
    ) -> None:
        """Fine-tune the exported front from its inherited weights and train the baselines from scratch,
        one recipe for all; export, measure and evaluate again; write RUN/finetune/manifest.json."""
        from ..finetune import comparison_lines, finetune_run, run_settings, summary

        stored, threads = run_settings(run_dir)
        flags = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "warmup_epochs": warmup_epochs,
                 "baselines": baselines}
        settings = replace(stored, **{k: v for k, v in flags.items() if v is not None})
        manifest = finetune_run(run_dir, settings, typer.echo, threads=threads)
        for line in comparison_lines(manifest):
            typer.echo(line)
        typer.echo(summary(manifest))
        typer.echo(f"manifest: {run_dir / 'finetune' / 'manifest.json'}; `hwnas report --run {run_dir}` "
                   "adds it to the report")
