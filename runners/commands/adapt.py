"""`hwnas adapt`: carry a saved latency predictor to a new device with a few measurements there."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .._errors import UserInputError, user_errors
from ..config import DEFAULT_SEED, ProfileSettings, TaskSettings, cli_measure_config, load_space

_PROFILE, _TASK = ProfileSettings(), TaskSettings()


def register(app: typer.Typer) -> None:
    @app.command()
    def adapt(
        predictor: Path = typer.Option(..., help="Saved latency predictor of another device (.safetensors)."),
        device: str = typer.Option(..., help="New device: built-in (cpu, cpu-2t, torch-cpu, cuda, torch-cuda) or a .toml file."),
        task: str = typer.Option(_TASK.name, help="Task whose input spec is measured; must be the predictor's."),
        samples: int = typer.Option(20, help="Subnets to measure on the new device (picked to span the source's latency range and every component)."),
        out: Path = typer.Option(..., help="Where to write the adapted predictor (one .safetensors file)."),
        blocks: bool = typer.Option(True, "--blocks/--no-blocks", help="Also measure every distinct block on the new device (~30-60 s); what lets the adapted predictor re-rank."),
        profile_out: Optional[Path] = typer.Option(None, "--profile-out", help="Profile folder for the new device's measurements (default: OUT's name + '-profile', beside it)."),
        space: Optional[Path] = typer.Option(None, help="Search space TOML (default: the built-in space); must be the predictor's."),
        preset: str = typer.Option(_PROFILE.preset, help="Measurement protocol preset: default or fast."),
        passes: int = typer.Option(_PROFILE.passes, help="Passes over the picked subnets, pooled: 0 lets the device decide (3 for several threads, else 1)."),
        pass_gap: float = typer.Option(_PROFILE.pass_gap, help="Least seconds between the starts of two passes."),
        seed: int = typer.Option(DEFAULT_SEED, help="Seed of the picked subnets and the measurement order."),
    ) -> None:
        """Measure a few informative subnets (and the blocks) on DEVICE and adapt PREDICTOR to it."""
        from hwprofiles import backend_unavailable_reason, get_device
        from predictors import LatencyPredictor, adapt_predictor
        from supernet.tasks import get_task

        if samples < 1:
            raise UserInputError(f"--samples must be a positive integer, got {samples}")
        if out.exists() and out.is_dir():
            raise UserInputError(f"--out {out} is a folder; give a file path such as {out / 'adapted.safetensors'}")
        search_space = load_space(space)
        config = cli_measure_config(preset, passes, pass_gap)
        with user_errors():
            dev = get_device(device)
            spec = get_task(task, seed=seed).spec
            source = LatencyPredictor.load(predictor, space=search_space)
        reason = backend_unavailable_reason(dev.backend)
        if reason:
            raise UserInputError(f"device {dev.name} ({dev.backend}) cannot run here: {reason}")
        if source.schema.spec != spec:
            raise UserInputError(f"predictor {predictor} was fitted for input spec {source.schema.spec.to_dict()}, "
                                 f"task '{task}' has {spec.to_dict()}; pass the predictor's task")
        if samples > search_space.size:
            raise UserInputError(f"--samples {samples} exceeds the {search_space.size} members of the search space")
        profile_dir = profile_out or out.with_name(out.stem + "-profile")
        with user_errors():
            adapted, prof = adapt_predictor(source, dev, samples=samples, profile_dir=profile_dir, blocks=blocks,
                                            config=config, seed=seed, progress=True)
        adapted.save(out)
        info = adapted.metrics["adaptation"]
        typer.echo(f"measured {info['k']} subnets ({info['subnet_seconds']:.0f} s) and {info['blocks']} blocks "
                   f"({info['block_seconds']:.0f} s, plus {info['block_export_seconds']:.0f} s exporting them) "
                   f"of '{dev.name}' into {profile_dir}")
        loo = info["leave_one_out"]
        if loo is not None:
            typer.echo(f"leave-one-out over the {info['k']} measurements ({adapted.target}): "
                       f"{loo['within_10']:.1%} within ±10%, MAPE {loo['mape']:.1f}%, "
                       f"Kendall tau {loo['kendall_tau']:.3f}")
        typer.echo(f"adapted '{source.name}' of '{source.device.name}' to '{dev.name}' -> {out}")
