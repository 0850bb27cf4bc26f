"""Runtime backends: turn a model into a zero-argument callable that runs one inference.

A backend factory takes ``(model, threads, input_shape, seed)`` and returns a `Runner`.
``model`` is an ONNX file path for onnxruntime backends and a torch ``nn.Module`` (or an
ONNX path is rejected) for torch backends. Registered backends: ``ort-cpu``, ``ort-cuda``,
``torch-cpu``, ``torch-cuda``; `register_backend` adds more (tests use it for a
deliberately noisy one). onnxruntime and torch are imported only when a backend is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ._protocol import example_input, ort_runner


@dataclass
class Runner:
    """One loaded model: `run()` executes one inference (outputs ready when it returns)."""

    run: Callable[[], Any]
    close: Callable[[], None] = lambda: None


BackendFactory = Callable[[Any, int, tuple[int, int, int], int], Runner]
_BACKENDS: dict[str, BackendFactory] = {}
_AVAILABLE: dict[str, Callable[[], str | None]] = {}


def register_backend(name: str, factory: BackendFactory, *,
                     unavailable_reason: Callable[[], str | None] = lambda: None) -> None:
    """Add a backend; `unavailable_reason()` returns why it cannot run here, or None.

    A name is registered once: registering another factory under a taken name raises
    ValueError (registering the very same factory and reason again is a no-op).
    """
    if name in _BACKENDS:
        if _BACKENDS[name] is factory and _AVAILABLE[name] is unavailable_reason:
            return
        raise ValueError(f"backend names must be unique; {name!r} is already registered "
                         f"(registered: {list(_BACKENDS)})")
    _BACKENDS[name] = factory
    _AVAILABLE[name] = unavailable_reason


def backend_names() -> tuple[str, ...]:
    return tuple(_BACKENDS)


def backend_unavailable_reason(name: str) -> str | None:
    """Why `name` cannot run on this machine (None when it can)."""
    if name not in _BACKENDS:
        return f"unknown backend {name!r}; known: {list(_BACKENDS)}"
    return _AVAILABLE[name]()


def load_runner(backend: str, model: Any, *, threads: int, input_shape: tuple[int, int, int],
                seed: int = 0) -> Runner:
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {backend_names()}, got {backend!r}")
    reason = backend_unavailable_reason(backend)
    if reason:
        raise RuntimeError(f"backend {backend} cannot run here: {reason}")
    return _BACKENDS[backend](model, threads, input_shape, seed)


# ------------------------------------------------------------------ onnxruntime
def _ort_factory(provider: str) -> BackendFactory:
    def factory(model: Any, threads: int, input_shape: tuple[int, int, int], seed: int) -> Runner:
        if not isinstance(model, (str, Path)):
            raise ValueError(f"onnxruntime backends measure ONNX file paths, got {type(model).__name__}")
        return Runner(run=ort_runner(str(model), threads=threads, provider=provider, input_shape=input_shape,
                                     seed=seed))
    return factory


def _ort_cuda_reason() -> str | None:
    try:
        import onnxruntime
    except ImportError:  # pragma: no cover - a declared dependency
        return "onnxruntime backends need onnxruntime: pip install onnxruntime"
    providers = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        return "onnxruntime has no CUDAExecutionProvider here (install onnxruntime-gpu on a CUDA machine)"
    return None


# ------------------------------------------------------------------ torch
def _torch_factory(cuda: bool) -> BackendFactory:
    def factory(model: Any, threads: int, input_shape: tuple[int, int, int], seed: int) -> Runner:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"torch backends measure torch modules, got {type(model).__name__}")
        torch.set_num_threads(threads)  # process-wide; every model of one device uses the same count
        x = torch.from_numpy(example_input(input_shape, seed))
        model = model.eval()
        if cuda:
            model, x = model.cuda(), x.cuda()

        def run() -> Any:
            with torch.inference_mode():
                out = model(x)
            if cuda:
                torch.cuda.synchronize()
            return out
        return Runner(run=run)
    return factory


def _torch_cuda_reason() -> str | None:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return "torch is not installed"
    return None if torch.cuda.is_available() else "torch sees no CUDA device"


register_backend("ort-cpu", _ort_factory("CPUExecutionProvider"))
register_backend("ort-cuda", _ort_factory("CUDAExecutionProvider"), unavailable_reason=_ort_cuda_reason)
register_backend("torch-cpu", _torch_factory(False))
register_backend("torch-cuda", _torch_factory(True), unavailable_reason=_torch_cuda_reason)
