"""Device specs: which runtime runs the model, with how many threads, on what input shape.

Latency belongs to a (device, input shape) pair, so the spec carries the deployment shape.
Built-in devices cover this machine; users add their own as TOML files::

    [device]
    name = "pi4"
    backend = "ort-cpu"
    threads = 4
    batch = 1
    seq_len = 30      # optional; omitted = the task's sequence length
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ._backends import backend_names

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class DeviceSpec:
    """A measurement target: `backend` (see `backend_names()`), thread count, input shape."""

    name: str
    backend: str = "ort-cpu"
    threads: int = 1
    batch: int = 1
    seq_len: int | None = None  # None: the task's sequence length

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or any(c in self.name for c in "/\\ "):
            raise ValueError(f"device name must be a non-empty string without spaces or slashes, got {self.name!r}")
        if self.backend not in backend_names():
            raise ValueError(f"backend must be one of {backend_names()}, got {self.backend!r}")
        for key in ("threads", "batch"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if self.seq_len is not None and (isinstance(self.seq_len, bool) or not isinstance(self.seq_len, int)
                                         or self.seq_len <= 0):
            raise ValueError(f"seq_len must be a positive integer or omitted, got {self.seq_len!r}")

    @property
    def is_cuda(self) -> bool:
        return self.backend.endswith("cuda")

    @property
    def is_torch(self) -> bool:
        return self.backend.startswith("torch")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DeviceSpec":
        if not isinstance(data, dict):
            raise ValueError(f"a device spec must be a table of settings, got {data!r}")
        known = {"name", "backend", "threads", "batch", "seq_len"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown device setting(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_toml(cls, path: str | Path) -> "DeviceSpec":
        """Read a device from a TOML file: top-level keys or a ``[device]`` table."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read device spec from {path}: {exc}") from exc
        return cls.from_dict(data.get("device", data))

    def with_seq_len(self, seq_len: int) -> "DeviceSpec":
        return replace(self, seq_len=seq_len)


_BUILTIN = {
    "cpu": DeviceSpec("cpu", "ort-cpu", threads=1),
    "cpu-2t": DeviceSpec("cpu-2t", "ort-cpu", threads=2),
    "torch-cpu": DeviceSpec("torch-cpu", "torch-cpu", threads=1),
    "cuda": DeviceSpec("cuda", "ort-cuda", threads=1),
    "torch-cuda": DeviceSpec("torch-cuda", "torch-cuda", threads=1),
}


def device_names() -> tuple[str, ...]:
    return tuple(_BUILTIN)


def get_device(name_or_path: str | Path | DeviceSpec) -> DeviceSpec:
    """A built-in device by name, or a device read from a TOML file path."""
    if isinstance(name_or_path, DeviceSpec):
        return name_or_path
    text = str(name_or_path)
    if text in _BUILTIN:
        return _BUILTIN[text]
    if text.endswith(".toml") or Path(text).is_file():
        return DeviceSpec.from_toml(text)
    raise ValueError(f"unknown device {text!r}; built-in devices: {list(_BUILTIN)} (or a path to a .toml file)")
