"""`hwnas score-predictor`: score a saved latency predictor against any device profile."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import typer

from .._errors import user_errors


def register(app: typer.Typer) -> None:
    @app.command("score-predictor")
    def score_predictor_cmd(
        predictor: Path = typer.Option(..., help="Saved latency predictor (.safetensors from `hwnas fit-predictor`)."),
        profile: Path = typer.Option(..., help="Profile folder whose measurements it is scored against."),
        target: Optional[str] = typer.Option(
            None, help="Statistic to score against: min_ms or median_ms (default: the one the predictor was fitted to)."),
    ) -> None:
        """Print the share within ±5% / ±10%, MAPE, Kendall tau and Spearman; the last line is a summary."""
        from hwprofiles import Profile
        from predictors import LatencyPredictor, score_predictor

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with user_errors():
                pred = LatencyPredictor.load(predictor)
                prof = Profile.load(profile)
                score = score_predictor(pred, prof, target=target)
        typer.echo(f"predictor {predictor}: '{pred.name}' for device '{pred.device.name}' ({pred.device.backend}), "
                   f"fitted to {pred.target or 'an unrecorded statistic'}")
        typer.echo(f"profile {profile}: device '{prof.device.name}' ({prof.device.backend}), {score.n} subnets")
        for note in [str(w.message) for w in caught] + list(score.notes):
            typer.echo(f"note: {note}")
        typer.echo(f"{score.target}: {score.within_10:.1%} within ±10%, {score.within_5:.1%} within ±5%, "
                   f"MAPE {score.mape:.1f}%, RMSE {score.rmse_ms:.4g} ms, Kendall tau {score.kendall_tau:.3f}, "
                   f"Spearman {score.spearman:.3f}")
        if score.ceiling_within_10 is not None:
            typer.echo(f"measurement ceiling (repeatability of {score.target}): "
                       f"{score.ceiling_within_10:.1%} within ±10%")
        typer.echo(score.summary())
