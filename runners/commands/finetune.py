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
        device: Optional[str] = typer.Option(None, help="One device of a run with several devices (its export "
                                             "in RUN/devices/NAME); default: every device."),
        train_device: Optional[str] = typer.Option(None, "--train-device",
                                                   help="cpu or cuda[:N]: where the models train (default: the "
                                                        "run's train.device). Not part of the recipe, so a run "
                                                        "trained on a GPU machine can be finished on another."),
        threads: Optional[int] = typer.Option(None, min=1, help="Torch threads (default: the run's "
                                              "train.threads)."),
    ) -> None:
        """Fine-tune the exported front from its inherited weights and train the baselines from scratch,
        one recipe for all; export, measure and evaluate again; write RUN/finetune/manifest.json
        (RUN/devices/NAME/finetune/manifest.json for each device of a run with several)."""
        from ..config import RunConfig
        from ..finetune import comparison_lines, finetune_run, summary
        from ..layout import device_units, resolve_unit
        from ..pipeline import read_run

        state = read_run(run_dir)  # runs made stage by stage have no run.json: the defaults apply
        config = state.config if state is not None else RunConfig()
        flags = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "warmup_epochs": warmup_epochs,
                 "baselines": baselines}
        settings = replace(config.finetune, **{k: v for k, v in flags.items() if v is not None})
        several = len(config.profile.device_names()) > 1
        units = device_units(run_dir, config) if several and device is None else \
            {device: resolve_unit(run_dir, device=device)}
        for name, unit in units.items():
            if len(units) > 1:
                typer.echo(f"device '{name}':")
            manifest = finetune_run(run_dir, settings, typer.echo, threads=threads or config.train.threads,
                                    unit=unit, train_device=train_device or config.train.device)
            for line in comparison_lines(manifest):
                typer.echo(line)
            typer.echo(summary(manifest))
            report = f"`hwnas report --run {run_dir}" + (f" --device {name}`" if name else "`")
            typer.echo(f"manifest: {unit / 'finetune' / 'manifest.json'}; {report} adds it to the report")
