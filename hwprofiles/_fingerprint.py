"""The environment a measurement was taken in, and how two environments differ."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from typing import Any

# Keys whose difference makes latencies incomparable (memory size and hostname do not).
_COMPARED = ("cpu_model", "cpu_count", "physical_cores", "gpu_name", "gpu_driver", "os", "machine",
             "python", "torch", "onnxruntime", "numpy")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _gpu() -> tuple[str | None, str | None]:
    """(GPU name, driver version) from nvidia-smi when present; no torch import needed."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None, None
    try:
        out = subprocess.run([exe, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None, None
    if not out:
        return None, None
    name, _, driver = out.splitlines()[0].partition(",")
    return name.strip(), driver.strip()


def fingerprint() -> dict[str, Any]:
    """CPU model, cores, memory, GPU and driver, OS and library versions of this machine."""
    try:
        import psutil

        memory = int(psutil.virtual_memory().total)
        physical = psutil.cpu_count(logical=False)
    except ImportError:  # pragma: no cover - a declared dependency
        memory, physical = None, None
    gpu_name, gpu_driver = _gpu()
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "physical_cores": physical,
        "memory_bytes": memory,
        "gpu_name": gpu_name,
        "gpu_driver": gpu_driver,
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "hostname": platform.node(),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "onnxruntime": _version("onnxruntime") or _version("onnxruntime-gpu"),
        "numpy": _version("numpy"),
    }


def compare_fingerprints(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Differences that matter for latency, one line each ("cpu_model: 'X' != 'Y'")."""
    return [f"{key}: {a.get(key)!r} != {b.get(key)!r}" for key in _COMPARED if a.get(key) != b.get(key)]
