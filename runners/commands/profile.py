"""`hwnas profile`: measure a device (here, or through a profiling kit) into a profile folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .._errors import UserInputError, user_errors
from ..config import DEFAULT_SEED, ProfileSettings, TaskSettings, cli_measure_config

_PROFILE, _TASK = ProfileSettings(), TaskSettings()


def _space(path: Optional[Path]):
    """The space of a TOML file (default: the built-in one); kept for `hwnas adapt`, which
    imports it: `runners.config.load_space` is the one implementation."""
    from ..config import load_space

    return load_space(path)


def register(app: typer.Typer) -> None:
    @app.command()
    def profile(
        device: str = typer.Option(_PROFILE.device, help="Built-in device (cpu, cpu-2t, torch-cpu, cuda, "
                                   "torch-cuda) or a .toml file."),
        task: str = typer.Option(_TASK.name, help="Task whose input spec is measured: mnist1d, recall, digits, "
                                 "mnist or npz:PATH."),
        samples: int = typer.Option(_PROFILE.samples, help="Subnets to measure (extremes and every choice first)."),
        out: Optional[Path] = typer.Option(None, help="Profile folder (resumed when it holds a profile)."),
        blocks: bool = typer.Option(False, "--blocks", help="Also measure every distinct block (lookup table)."),
        space: Optional[Path] = typer.Option(None, help="Search space TOML (default: the built-in space)."),
        preset: str = typer.Option(_PROFILE.preset, help="Measurement protocol preset: default or fast."),
        passes: int = typer.Option(_PROFILE.passes, help="Passes over all the subnets, pooled: 0 lets the device decide (3 for several threads, else 1)."),
        pass_gap: float = typer.Option(_PROFILE.pass_gap, help="Least seconds between the starts of two passes."),
        kit_out: Optional[Path] = typer.Option(None, "--kit-out", help="Write a profiling kit zip instead of measuring here."),
        kit_in: Optional[Path] = typer.Option(None, "--kit-in", help="Import a kit's results.json into --out."),
        seed: int = typer.Option(DEFAULT_SEED, help="Seed of the sampled subnets and the measurement order."),
    ) -> None:
        """Profile a device: sample subnets covering the space, export and measure each."""
        from hwprofiles import get_device, import_kit_results, profile_device, write_kit

        from ..config import load_space

        if kit_in is not None:
            if out is None:
                raise UserInputError("--kit-in needs --out PROFILE_DIR for the imported profile")
            with user_errors():
                prof = import_kit_results(kit_in, out)
            typer.echo(f"imported {len(prof.table)} measurements of '{prof.device.name}' "
                       f"({prof.fingerprint.get('cpu_model')}) into {out}")
            return
        if samples <= 0:
            raise UserInputError(f"--samples must be a positive integer, got {samples}")
        with user_errors():
            dev = get_device(device)
        config = cli_measure_config(preset, passes, pass_gap)
        search_space = load_space(space)
        from supernet.tasks import get_task

        with user_errors():
            spec = get_task(task, seed=seed).spec
        if kit_out is not None:
            with user_errors():
                path = write_kit(dev, search_space, spec, kit_out, n_samples=samples, seed=seed, config=config)
            typer.echo(f"wrote {path}: unzip on the target, run `python run_kit.py --out results.json`, then "
                       f"`hwnas profile --kit-in results.json --out PROFILE_DIR`")
            return
        if out is None:
            raise UserInputError("--out PROFILE_DIR is required (or --kit-out KIT.zip)")
        with user_errors():
            prof = profile_device(dev, search_space, spec, n_samples=samples, out_dir=out, seed=seed,
                                  blocks=blocks, config=config, progress=True, export_workers=2)
        rep = prof.repeatability
        per = prof.meta.get("seconds", {}).get("subnets", 0.0) / max(len(prof.table), 1)
        typer.echo(f"{len(prof.table)} subnets of '{dev.name}' in {out} ({prof.profiling_seconds:.0f} s of "
                   f"profiling, {per:.2f} s per subnet); flagged {int(prof.table['flagged'].sum())}")
        if rep is not None:
            typer.echo(f"repeatability (ceiling for predictors): {rep.within_10:.1%} within ±10%, "
                       f"{rep.within_5:.1%} within ±5% over {rep.n} re-measured subnets")
