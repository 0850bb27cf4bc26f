"""How latency grows with sequence length for each attention type (exported ONNX, onnxruntime CPU).

Single-layer and 4-layer subnets (embed 128, 4 heads of 32, FFN ratio 4) of each attention
type, fp32 and all-int8, exported and measured with the hwnas protocol (1 thread, warm-up,
interleaved random order over rounds, median) at sequence lengths 64..2048. Writes the
table and the growth factor 256 -> 1024 per type to benchmarks/results/.

    .venv/bin/python benchmarks/attention_scaling.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd

from hwprofiles import MeasureConfig, fingerprint, get_device
from hwprofiles._measure import measure_shaped
from supernet import Arch, InputSpec, LayerConfig, SearchSpace, Supernet, export_onnx

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="64,128,256,512,1024,2048")
    parser.add_argument("--depths", default="1,4")
    parser.add_argument("--window", type=int, default=16, help="local attention radius (tokens)")
    args = parser.parse_args()
    lengths = [int(v) for v in args.lengths.split(",")]
    depths = [int(v) for v in args.depths.split(",")]
    space = SearchSpace(embed_dims=(128,), depths=tuple(sorted(set(depths))), heads=(4,), ffn_ratios=(4,),
                        head_dim=32, local_window=args.window)
    device = get_device("cpu")
    config = MeasureConfig(warmup=3, min_runs=5, max_runs=100, max_seconds=0.3, rounds=3, repeats=1)
    rows, models, shapes = [], [], []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for n in lengths:
            spec = InputSpec(seq_len=n, in_features=4, num_classes=10)
            net = Supernet(space, spec, seed=0)
            for attention in ("softmax", "linear", "local"):
                for quant in ("fp32", "int8"):
                    for depth in depths:
                        arch = Arch(128, (LayerConfig(4, 4, attention, quant),) * depth)
                        path = Path(tmp) / f"{attention}-{quant}-{depth}-{n}.onnx"
                        export_onnx(net.extract(arch), path, check=False)
                        rows.append({"attention": attention, "quant": quant, "depth": depth, "seq_len": n,
                                     "file_bytes": path.stat().st_size})
                        models.append(str(path))
                        shapes.append((1, n, 4))
        export_seconds = time.perf_counter() - started
        measured = measure_shaped(models, device, shapes, config, seed=0)
    for row, m in zip(rows, measured):
        row.update(median_ms=m.median_ms, p10_ms=m.p10_ms, p90_ms=m.p90_ms, runs=len(m.raw_ms), flagged=m.flagged)
    table = pd.DataFrame(rows)
    growth = (
        table.pivot_table(index=["attention", "quant", "depth"], columns="seq_len", values="median_ms")
        .assign(growth_256_to_1024=lambda t: t[1024] / t[256] if 1024 in t and 256 in t else float("nan"))
        .reset_index()
    )
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(RESULTS / "attention_scaling.csv", index=False)
    fp = fingerprint()
    meta = {
        "command": "python benchmarks/attention_scaling.py",
        "machine": {k: fp.get(k) for k in ("cpu_model", "cpu_count", "memory_gb", "os", "python", "onnxruntime", "torch")},
        "load_average_at_end": os.getloadavg(),
        "device": device.to_dict(),
        "measure_config": config.to_dict(),
        "local_window": args.window,
        "export_seconds": round(export_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "platform": platform.platform(),
    }
    (RESULTS / "attention_scaling.json").write_text(json.dumps(meta, indent=2) + "\n")
    lines = [
        "# Attention scaling: median latency (ms) vs sequence length",
        "",
        f"Machine: {meta['machine']['cpu_model']}, {meta['machine']['cpu_count']} cores; onnxruntime "
        f"{meta['machine']['onnxruntime']}, 1 thread, batch 1. Embed 128, 4 heads x 32, FFN ratio 4, "
        f"local window radius {args.window}. Load average at the end: "
        f"{', '.join(f'{v:.2f}' for v in meta['load_average_at_end'])}. Command: `{meta['command']}`.",
        "",
        growth.round(4).to_markdown(index=False),
        "",
        "growth_256_to_1024: latency at 1024 tokens / latency at 256 tokens (4x more tokens: linear cost "
        "gives ~4, quadratic ~16).",
        "",
    ]
    (RESULTS / "attention_scaling.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
