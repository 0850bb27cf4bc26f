"""The `hwnas` command line. Commands are thin: parse, build config objects, call one
library function, print. Each command module registers itself on `app`."""

from __future__ import annotations

import os
import sys

# Latency is measured single-threaded while numerical libraries have run in the same process
# (scikit-learn, numpy's BLAS, OpenMP). Their idle worker threads busy-wait, and on a 2-core
# machine that slowed the export stage's measurements by 30-60%. One thread each, set before
# any of them loads; `runners.pipeline` also caps them with threadpoolctl.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
from importlib import import_module

import typer

from . import __version__
from ._errors import UserInputError

app = typer.Typer(
    name="hwnas",
    help="Hardware-aware NAS for transformers: train a supernet, profile devices, search, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules, each with `register(app)`; later stages append theirs here.
COMMAND_MODULES = ["runners.commands.demo", "runners.commands.pipeline", "runners.commands.profile",
                   "runners.commands.predictor", "runners.commands.score", "runners.commands.train",
                   "runners.commands.finetune", "runners.commands.adapt"]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hwnas {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Hardware-aware NAS for transformers."""


for _name in COMMAND_MODULES:
    import_module(_name).register(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: bad input ends with one line on stderr and exit code 2."""
    try:
        app(args=argv, standalone_mode=False)
    except UserInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:
        # Usage errors (unknown option, bad value) come from typer's click; its class may be
        # vendored, so match on the interface rather than the type.
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            typer.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(2)
        raise

if __name__ == "__main__":
    main()
