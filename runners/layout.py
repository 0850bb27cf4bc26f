"""Where a run's per-device and per-search files live.

A run folder holds one supernet and its accuracy cache; the files of each target device
and of each named search sit in a *unit* folder with the same inner layout:

    RUN/supernet/                 one checkpoint, trained once
    RUN/accuracy_cache.sqlite     every accuracy evaluated on it (runners._cache)
    UNIT/profile/  UNIT/predictor  UNIT/search/  UNIT/export/  UNIT/report/

Which folder is the unit:

- a run with one device keeps the layout runs have always had: the unit is RUN itself
  (RUN/profile, RUN/predictor, RUN/search, RUN/export), so every run folder written
  before several devices existed resumes, exports and reports unchanged;
- a run with several devices (`[profile] devices = [...]`, `hwnas run --devices a,b`)
  gives each its own unit RUN/devices/<name>/, plus RUN/matrix.json and RUN/matrix.csv
  (every device's front measured on every device) and RUN/report/ (the cross-device report);
- a named search (`hwnas search --name NAME`) writes RUN/searches/<name>/search/, is
  exported to RUN/searches/<name>/export/ and reported in RUN/searches/<name>/report/.
"""

from __future__ import annotations

import re
from pathlib import Path

from ._errors import UserInputError, user_errors

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def device_units(run_dir: Path, config) -> dict[str, Path]:
    """Device name -> its unit folder, in the config's order."""
    names = config.profile.device_names()
    if len(names) == 1:
        return {names[0]: Path(run_dir)}
    return {name: Path(run_dir) / "devices" / unit_name(name) for name in names}


def unit_name(device: str) -> str:
    """A device's folder name: its name, or a TOML file's stem."""
    return Path(device).stem if device.endswith(".toml") else device


def search_unit(run_dir: Path, name: str) -> Path:
    """The unit folder of the named search `name` (refused unless a plain file name)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserInputError(f"search name must be letters, digits, '.', '_' or '-' (at most 64, "
                             f"starting with a letter or digit), got {name!r}")
    return Path(run_dir) / "searches" / name


def resolve_unit(run_dir: Path, *, search: str | None = None, device: str | None = None, config=None) -> Path:
    """The unit a command works on: a named search, a device of a multi-device run, or the run."""
    run_dir = Path(run_dir)
    if search is not None and device is not None:
        raise UserInputError("give --search or --device, not both")
    if search is not None:
        unit = search_unit(run_dir, search)
        if not unit.is_dir():
            known = sorted(p.name for p in (run_dir / "searches").glob("*") if p.is_dir())
            raise UserInputError(f"run {run_dir} has no search named {search!r}; known: {known}")
        return unit
    devices = sorted(p.name for p in (run_dir / "devices").glob("*") if p.is_dir())
    if device is not None:
        if device not in devices:
            if config is not None and device in config.profile.device_names() and len(devices) == 0:
                return run_dir  # a single-device run: its device's files are the run's
            raise UserInputError(f"run {run_dir} has no device {device!r}; known: {devices}")
        return run_dir / "devices" / device
    if devices and not (run_dir / "search").exists():
        raise UserInputError(f"run {run_dir} searched several devices {devices}: pick one with --device")
    return run_dir


def check_devices(names) -> None:
    """Each name a known device that this machine can run, none repeated; else UserInputError."""
    from hwprofiles import backend_unavailable_reason, get_device

    names = list(names)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserInputError(f"device(s) {repeated} given more than once in {names}")
    for name in names:
        with user_errors():
            device = get_device(name)
        reason = backend_unavailable_reason(device.backend)
        if reason:
            raise UserInputError(f"device {device.name} ({device.backend}) cannot run on this machine: {reason}")


__all__ = ["check_devices", "device_units", "resolve_unit", "search_unit", "unit_name"]
