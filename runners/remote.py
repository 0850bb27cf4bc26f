"""Profiling jobs sent to the Ray node that holds the target device.

A node that can measure device NAME is started with the custom resource
``hwnas-device:NAME`` (e.g. ``ray start --address HEAD --resources '{"hwnas-device:cpu": 1}'``).
The profiling job asks for one unit of that resource, so Ray runs it there and nowhere else;
it measures into a scratch copy of the profile folder (resuming what is already stored) and
sends the folder's files back, with that node's fingerprint inside, plus the Ray node id it
ran on (written to PROFILE/placement.json). A local Ray started here advertises the local
devices itself. `profile_devices_on_ray` sends several devices' jobs at once: each runs on
its own node, side by side.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Sequence

from ._errors import UserInputError

RESOURCE_PREFIX = "hwnas-device:"
PLACEMENT_FILE = "placement.json"


def device_resource(name: str) -> str:
    return f"{RESOURCE_PREFIX}{name}"


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _profile_job(files: dict[str, bytes], device: dict, space: dict, spec: dict, n_samples: int, seed: int,
                 config: dict) -> tuple[dict[str, bytes], str]:
    """Runs on the device's node: profile into a scratch folder; return its files and the node id."""
    import ray

    from hwprofiles import DeviceSpec, MeasureConfig, profile_device
    from supernet import InputSpec, SearchSpace

    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            Path(tmp, name).write_bytes(data)
        profile_device(DeviceSpec.from_dict(device), SearchSpace.from_dict(space), InputSpec(**spec),
                       n_samples=n_samples, out_dir=tmp, seed=seed, config=MeasureConfig(**config), progress=False)
        return _folder_bytes(Path(tmp)), ray.get_runtime_context().get_node_id()


def profile_on_ray(device: Any, space: Any, spec: Any, *, n_samples: int, out_dir: Path, seed: int, config: Any,
                   address: str | None = None, num_cpus: int = 2, timeout_s: float | None = None):
    """Profile `device` on the Ray node advertising it; write the result into `out_dir`."""
    return profile_devices_on_ray([(device, out_dir)], space, spec, n_samples=n_samples, seed=seed, config=config,
                                  address=address, num_cpus=num_cpus, timeout_s=timeout_s)[0]


def profile_devices_on_ray(jobs: Sequence[tuple[Any, Path]], space: Any, spec: Any, *, n_samples: int, seed: int,
                           config: Any, address: str | None = None, num_cpus: int = 2,
                           timeout_s: float | None = None) -> list:
    """Profile each (device, out_dir) of `jobs` on the Ray node advertising that device, all
    jobs at once; write each result into its out_dir (with placement.json naming the node)
    and return the profiles in order. Joins Ray at `address`, uses the Ray this process is
    connected to, or starts a local one advertising every device of `jobs`."""
    import ray

    from hwprofiles import Profile

    from ._io import atomic_write_bytes, atomic_write_json

    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        else:  # a local cluster: this machine holds its own devices
            kwargs.update(num_cpus=num_cpus, resources={device_resource(d.name): 1 for d, _ in jobs})
        try:
            ray.init(**kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise UserInputError(f"cannot start or join Ray at {address or 'a local cluster'}: {exc}") from None
    try:
        available = ray.cluster_resources()
        for device, _ in jobs:
            resource = device_resource(device.name)
            if available.get(resource, 0) < 1:
                raise UserInputError(
                    f"no Ray node advertises device '{device.name}': start one with "
                    f"ray start --address <head> --resources '{{\"{resource}\": 1}}'"
                )
        refs = []
        for device, out_dir in jobs:
            job = ray.remote(num_cpus=1, resources={device_resource(device.name): 1}, max_retries=2)(_profile_job)
            refs.append(job.remote(_folder_bytes(Path(out_dir)), device.to_dict(), space.to_dict(), spec.to_dict(),
                                   n_samples, seed, config.to_dict()))
        results = ray.get(refs, timeout=timeout_s)
    finally:
        if started_here:
            ray.shutdown()
    profiles = []
    for (device, out_dir), (files, node_id) in zip(jobs, results):
        for name, data in files.items():
            if name != PLACEMENT_FILE:
                atomic_write_bytes(Path(out_dir) / name, data)
        atomic_write_json(Path(out_dir) / PLACEMENT_FILE,
                          {"device": device.name, "resource": device_resource(device.name), "ray_node_id": node_id})
        profiles.append(Profile.load(out_dir))
    return profiles
