"""`hwnas fit-predictor`: fit every latency predictor on a profile and keep the best."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .._errors import UserInputError, user_errors
from ..config import DEFAULT_SEED, ProfileSettings

_PROFILE = ProfileSettings()


def register(app: typer.Typer) -> None:
    @app.command("fit-predictor")
    def fit_predictor(
        profile: Path = typer.Option(..., help="Profile folder written by `hwnas profile`."),
        out: Path = typer.Option(..., help="Where to write the kept predictor (one .safetensors file)."),
        seed: int = typer.Option(DEFAULT_SEED, help="Seed of the held-out split and the estimators."),
        test_fraction: Optional[float] = typer.Option(None, help="Share of the profile held out for the comparison "
                                                      "(default: predictors.fit_and_select's, a quarter)."),
        target: str = typer.Option(_PROFILE.target, help="Statistic to predict: min_ms (fastest timed run; repeats "
                                   "on shared or virtual machines) or median_ms."),
    ) -> None:
        """Fit all predictors, compare them on a held-out split next to the repeatability ceiling."""
        from hwprofiles import Profile
        from predictors import fit_and_select

        if out.exists() and out.is_dir():
            raise UserInputError(f"--out {out} is a folder; give a file path such as {out / 'predictor.safetensors'}")
        split = {} if test_fraction is None else {"test_fraction": test_fraction}
        with user_errors():
            prof = Profile.load(profile)
            best, table = fit_and_select(prof, seed=seed, target=target, **split)
        shown = table.drop(columns=["fit_seconds"]).copy()
        for col in ("within_5", "within_10"):
            shown[col] = shown[col].map(lambda v: f"{v:.1%}")
        typer.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"))
        best.save(out)
        typer.echo(f"kept '{best.name}' (held-out ±10% share {best.metrics['held_out']['within_10']:.1%}, "
                   f"MAPE {best.metrics['held_out']['mape']:.1f}%) -> {out}")
