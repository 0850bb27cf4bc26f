"""`hwnas demo`: build a supernet, extract one subnet, export it and check the export."""

from __future__ import annotations

from pathlib import Path

import typer

from ..config import DEFAULT_SEED


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Path = typer.Option(Path("results/demo"), help="Folder for the exported ONNX files."),
        seed: int = typer.Option(DEFAULT_SEED, help="Seed for weights and the sampled architecture."),
    ) -> None:
        """Smoke demo: supernet -> extract -> ONNX (fp32 and int8 layers) -> parity check."""
        from supernet import DEFAULT_SPACE, InputSpec, Supernet, arch_cost, export_onnx

        spec = InputSpec(seq_len=16, in_features=4, num_classes=10)
        net = Supernet(DEFAULT_SPACE, spec, seed=seed)
        typer.echo(f"space: {DEFAULT_SPACE.size:,} architectures, genome length {DEFAULT_SPACE.genome_length}")
        for label, arch in [("largest", DEFAULT_SPACE.largest()), ("sampled", DEFAULT_SPACE.sample(seed))]:
            path = out / f"{label}.onnx"
            check = export_onnx(net.extract(arch), path, seed=seed)
            cost = arch_cost(arch, DEFAULT_SPACE, spec)
            typer.echo(
                f"{label:8s} {arch.describe()}\n         -> {path} ({path.stat().st_size:,} bytes, "
                f"{cost.params:,} params, {cost.flops:,} FLOPs); onnxruntime vs torch rel err "
                f"{check.rel_err:.1e}, top-1 agreement {check.top1_agreement:.3f}"
            )
