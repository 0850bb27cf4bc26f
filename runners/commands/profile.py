"""`hwnas profile`: measure a device (here, or through a profiling kit) into a profile folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .._errors import UserInputError


def _space(path: Optional[Path]):
    from supernet import DEFAULT_SPACE, SearchSpace

    if path is None:
        return DEFAULT_SPACE
    try:
        return SearchSpace.from_toml(path)
    except ValueError as exc:
        raise UserInputError(str(exc)) from None


def register(app: typer.Typer) -> None:
    @app.command()
    def profile(
        device: str = typer.Option("cpu", help="Built-in device (cpu, cpu-2t, torch-cpu, cuda, torch-cuda) or a .toml file."),
        task: str = typer.Option("digits", help="Task whose input spec is measured: digits, mnist, mnist1d, npz:PATH."),
        samples: int = typer.Option(100, help="Subnets to measure (extremes and every choice first)."),
        out: Optional[Path] = typer.Option(None, help="Profile folder (resumed when it holds a profile)."),
        blocks: bool = typer.Option(False, "--blocks", help="Also measure every distinct block (lookup table)."),
        space: Optional[Path] = typer.Option(None, help="Search space TOML (default: the built-in space)."),
        preset: str = typer.Option("default", help="Measurement protocol preset: default or fast."),
        kit_out: Optional[Path] = typer.Option(None, "--kit-out", help="Write a profiling kit zip instead of measuring here."),
        kit_in: Optional[Path] = typer.Option(None, "--kit-in", help="Import a kit's results.json into --out."),
        seed: int = typer.Option(0, help="Seed of the sampled subnets and the measurement order."),
    ) -> None:
        """Profile a device: sample subnets covering the space, export and measure each."""
        from hwprofiles import MeasureConfig, get_device, import_kit_results, profile_device, write_kit

        if kit_in is not None:
            if out is None:
                raise UserInputError("--kit-in needs --out PROFILE_DIR for the imported profile")
            try:
                prof = import_kit_results(kit_in, out)
            except ValueError as exc:
                raise UserInputError(str(exc)) from None
            typer.echo(f"imported {len(prof.table)} measurements of '{prof.device.name}' "
                       f"({prof.fingerprint.get('cpu_model')}) into {out}")
            return
        if samples <= 0:
            raise UserInputError(f"--samples must be a positive integer, got {samples}")
        try:
            dev = get_device(device)
            config = MeasureConfig.preset(preset)
        except ValueError as exc:
            raise UserInputError(str(exc)) from None
        search_space = _space(space)
        from supernet.tasks import get_task

        try:
            spec = get_task(task, seed=seed).spec
        except ValueError as exc:
            raise UserInputError(str(exc)) from None
        if kit_out is not None:
            try:
                path = write_kit(dev, search_space, spec, kit_out, n_samples=samples, seed=seed, config=config)
            except ValueError as exc:
                raise UserInputError(str(exc)) from None
            typer.echo(f"wrote {path}: unzip on the target, run `python run_kit.py --out results.json`, then "
                       f"`hwnas profile --kit-in results.json --out PROFILE_DIR`")
            return
        if out is None:
            raise UserInputError("--out PROFILE_DIR is required (or --kit-out KIT.zip)")
        try:
            prof = profile_device(dev, search_space, spec, n_samples=samples, out_dir=out, seed=seed,
                                  blocks=blocks, config=config, progress=True)
        except ValueError as exc:
            raise UserInputError(str(exc)) from None
        rep = prof.repeatability
        per = prof.meta.get("seconds", {}).get("subnets", 0.0) / max(len(prof.table), 1)
        typer.echo(f"{len(prof.table)} subnets of '{dev.name}' in {out} ({prof.profiling_seconds:.0f} s of "
                   f"profiling, {per:.2f} s per subnet); flagged {int(prof.table['flagged'].sum())}")
        if rep is not None:
            typer.echo(f"repeatability (ceiling for predictors): {rep.within_10:.1%} within ±10%, "
                       f"{rep.within_5:.1%} within ±5% over {rep.n} re-measured subnets")
