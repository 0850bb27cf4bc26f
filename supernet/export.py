"""ONNX export of extracted subnets and their parts, int8 exactly where the policy says, checked against torch.

One exporter for every standalone module of the supernet (`Exportable`): a `Subnet` from
`Supernet.extract`, or a part from `Supernet.extract_embedding`, `extract_layer` or
`extract_head` (what profiling measures as blocks). Export runs the module's fp32 twin
through torch's TorchScript ONNX exporter (its node names carry the module path, e.g.
``/blocks.2/fc1/MatMul``, which is how the MatMuls of the module's `int8_linears()` are
picked), then `onnxruntime.quantization.quantize_dynamic` quantizes those weight MatMuls and
nothing else. The input is named ``x``, the output the module's `output_name`; the batch
axis is dynamic, the token axis fixed.

Parity tolerances (`check_export`):
- fp32 only: relative error <= 1e-4 (max |ort - torch| / max |torch|). Both run the same fp32
  arithmetic; only summation order differs, which costs ~1e-6 relative at these widths.
- with int8 layers, against the fake-quant torch model: top-1 agreement >= 99% on 512
  random inputs (for modules that output logits) and relative error <= 5e-2. The integer products are exact in both; what
  differs is float32 rounding of x / scale before `round`, which can move an activation
  sitting on a rounding boundary by one quantization step (1/255 of its range) and that
  shift propagates through later layers. One step of an activation range is ~0.4% of it;
  a few such flips through several layers stay well inside 5%.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import torch
import torch.nn as nn

__all__ = ["ExportCheck", "Exportable", "check_export", "export_onnx", "int8_node_names"]

OPSET = 17
FP32_RTOL = 1e-4
INT8_RTOL = 5e-2
INT8_MIN_AGREEMENT = 0.99


@runtime_checkable
class Exportable(Protocol):
    """What `export_onnx` needs from a module (`Subnet` and the `SubnetPart`s have it)."""

    output_name: str  # the ONNX output's name

    def input_shape(self) -> tuple[int, int]:
        """(tokens, features) of one input example."""

    def int8_linears(self) -> list[str]:
        """Module paths (``blocks.1.q``) of the linear layers to quantize to int8."""

    def without_fake_quant(self) -> nn.Module:
        """A copy running every layer in fp32 (what is exported before quantizing)."""


@dataclass(frozen=True)
class ExportCheck:
    """How an exported file compares with the torch model it came from."""

    n_inputs: int
    max_abs_err: float
    rel_err: float
    top1_agreement: float  # NaN for modules whose output is not logits (B, C)
    tolerance: float
    passed: bool


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError("ONNX export checks need onnxruntime: pip install onnxruntime") from exc
    return onnxruntime


def _matmul_node_name(linear: str) -> str:
    """The TorchScript exporter's name for a linear layer's weight MatMul: ``blocks.1.q`` ->
    ``/blocks.1/q/MatMul`` (a ModuleList index stays joined to the list's name)."""
    scopes: list[str] = []
    for part in linear.split("."):
        if part.isdigit() and scopes:
            scopes[-1] += f".{part}"
        else:
            scopes.append(part)
    return "/" + "/".join(scopes) + "/MatMul"


def int8_node_names(model_path: str | Path, linears: Sequence[str]) -> list[str]:
    """Names of the weight MatMuls of the linear layers `linears` (module paths) in an exported file."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    wanted = {_matmul_node_name(name) for name in linears}
    names = [n.name for n in graph.node if n.op_type == "MatMul" and n.name in wanted]
    if len(names) != len(wanted):
        missing = sorted(wanted - set(names))
        raise RuntimeError(f"exported graph lacks the expected MatMul nodes {missing[:4]}...")
    return names


def _export_fp32(module: Exportable, path: Path, opset: int) -> None:
    twin = module.without_fake_quant().eval()
    dummy = torch.zeros(1, *module.input_shape())
    output = module.output_name
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tracing runs tiny ops, where a second thread only adds hand-offs (block export 10% slower)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript-exporter deprecation notice
            torch.onnx.export(
                twin, (dummy,), str(path), input_names=["x"], output_names=[output],
                dynamic_axes={"x": {0: "batch"}, output: {0: "batch"}}, opset_version=opset, dynamo=False,
            )
    finally:
        torch.set_num_threads(threads)


def export_onnx(module: Exportable, path: str | Path, *, opset: int = OPSET, check: bool = True,
                seed: int = 0) -> ExportCheck | None:
    """Write `module` (a subnet or a part of one) to `path` as ONNX (int8 layers quantized);
    return the parity check.

    The file appears atomically: it is written beside `path` and renamed into place only
    once the parity check (when `check`) has passed.
    """
    if not isinstance(module, Exportable):
        raise TypeError(f"export_onnx takes a Subnet or a SubnetPart (output_name, input_shape(), int8_linears(), "
                        f"without_fake_quant()), got {type(module).__name__}")
    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    int8_linears = module.int8_linears()
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
        fp32_path = Path(tmp) / "fp32.onnx"
        _export_fp32(module, fp32_path, opset)
        final = fp32_path
        if int8_linears:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            final = Path(tmp) / "int8.onnx"
            logging.getLogger().disabled, was = True, logging.getLogger().disabled
            try:  # the quantizer logs a pre-processing hint on every call
                quantize_dynamic(
                    fp32_path, final, per_channel=True, reduce_range=True, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["MatMul"], nodes_to_quantize=int8_node_names(fp32_path, int8_linears),
                )
            finally:
                logging.getLogger().disabled = was
        result = check_export(module, final, seed=seed) if check else None
        if result is not None and not result.passed:
            raise RuntimeError(
                f"exported model disagrees with torch: rel err {result.rel_err:.2e} (tolerance "
                f"{result.tolerance:.0e}), top-1 agreement {result.top1_agreement:.3f}"
            )
        os.replace(final, path)
    return result


def check_export(module: Exportable, path: str | Path, *, n_inputs: int = 512, seed: int = 0) -> ExportCheck:
    """Compare onnxruntime's output on `n_inputs` random inputs with the torch module's.

    fp32 modules are compared with their torch output; modules with int8 layers with the
    fake-quant torch model, whose arithmetic the quantized graph reproduces. Top-1
    agreement counts for modules that output logits (B, C).
    """
    ort = _onnxruntime()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_inputs, *module.input_shape())).astype(np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    module = module.eval()
    int8 = bool(module.int8_linears())
    # onnxruntime takes the dynamic activation range over the whole input tensor, the torch
    # fake quant per example: feed onnxruntime one example per call, as a deployed model
    # sees them; torch gives the same per-example arithmetic in one batch.
    step = 1 if int8 else n_inputs
    ort_out = [session.run(None, {"x": x[i : i + step]})[0] for i in range(0, n_inputs, step)]
    with torch.no_grad():
        torch_out = [module(torch.from_numpy(x)).numpy()]
    a, b = np.concatenate(ort_out), np.concatenate(torch_out)
    max_abs = float(np.abs(a - b).max())
    rel = max_abs / max(float(np.abs(b).max()), 1e-12)
    logits = b.ndim == 2
    agreement = float((a.argmax(1) == b.argmax(1)).mean()) if logits else float("nan")
    if int8:
        tolerance = INT8_RTOL
        passed = rel <= INT8_RTOL and (not logits or agreement >= INT8_MIN_AGREEMENT)
    else:
        tolerance, passed = FP32_RTOL, rel <= FP32_RTOL
    return ExportCheck(n_inputs, max_abs, rel, agreement, tolerance, passed)
