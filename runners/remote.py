"""Profiling jobs sent to the Ray node that holds the target device.

A node that can measure device NAME is started with the custom resource
``hwnas-device:NAME`` (e.g. ``ray start --address HEAD --resources '{"hwnas-device:cpu": 1}'``).
The profiling job asks for one unit of that resource, so Ray runs it there and nowhere else;
it measures into a scratch copy of the profile folder (resuming what is already stored) and
sends the folder's files back, with that node's fingerprint inside, plus the Ray node id it
ran on (written to PROFILE/placement.json). A local Ray started here advertises the local
devices itself. `profile_devices_on_ray` sends several devices' jobs: those on different
nodes run side by side, those one node holds one after another (timings stay undisturbed).
`measure_on_ray` does the same for measurements of given models (the cross-device matrix, and
the export's re-measurement with the Ray executor):
ONNX files travel as bytes, torch devices get the checkpoint and extract the modules there.
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


def _waves(names: Sequence[str]) -> list[list[int]]:
    """Indices of `names` (devices) in waves that share no Ray node: jobs of devices one node
    holds run one after another, never side by side, so they do not disturb each other's
    timings (a local Ray advertises every device on this one machine)."""
    import ray

    nodes = {name: {n["NodeID"] for n in ray.nodes() if n.get("Alive")
                    and n.get("Resources", {}).get(device_resource(name), 0) >= 1} for name in names}
    waves: list[tuple[list[int], set[str]]] = []
    for i, name in enumerate(names):
        for members, used in waves:
            if not used & nodes[name]:
                members.append(i)
                used |= nodes[name]
                break
        else:
            waves.append(([i], set(nodes[name])))
    return [members for members, _ in waves]


def _run_in_waves(names: Sequence[str], submit, timeout_s: float | None = None) -> list:
    """`submit(i) -> ObjectRef` for each device, wave by wave (see `_waves`); results in order."""
    import ray

    out: list = [None] * len(names)
    for wave in _waves(names):
        for i, result in zip(wave, ray.get([submit(i) for i in wave], timeout=timeout_s)):
            out[i] = result
    return out


def _on_device_nodes(devices: Sequence[Any], job_fn: Any, args_of: Any, *, shared: tuple = (),
                     address: str | None, num_cpus: int, timeout_s: float | None = None) -> list:
    """`job_fn(*args_of(i), *shared)` for each of `devices` on the Ray node advertising it, in
    waves (`_waves`); results in order. Joins Ray at `address`, uses the Ray this process is
    connected to, or starts a local one advertising every device (`start_ray`). `shared`
    goes into Ray's object store once, for every job."""
    from .executors import ray_session

    with ray_session(address, num_cpus, {device_resource(d.name): 1 for d in devices}) as ray:
        available = ray.cluster_resources()
        for device in devices:
            resource = device_resource(device.name)
            if available.get(resource, 0) < 1:
                raise UserInputError(
                    f"no Ray node advertises device '{device.name}': start one with "
                    f"ray start --address <head> --resources '{{\"{resource}\": 1}}'"
                )
        refs = [ray.put(value) for value in shared]

        def submit(i: int):
            job = ray.remote(num_cpus=1, resources={device_resource(devices[i].name): 1}, max_retries=2)(job_fn)
            return job.remote(*args_of(i), *refs)

        return _run_in_waves([d.name for d in devices], submit, timeout_s)


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
    """Profile each (device, out_dir) of `jobs` on the Ray node advertising that device, jobs
    on different nodes at once (see `_waves`); write each result into its out_dir (with placement.json naming the node)
    and return the profiles in order. Joins Ray at `address`, uses the Ray this process is
    connected to, or starts a local one advertising every device of `jobs`."""
    from hwprofiles import Profile

    from ._io import atomic_write_bytes, atomic_write_json

    def args_of(i: int) -> tuple:
        device, out_dir = jobs[i]
        return (_folder_bytes(Path(out_dir)), device.to_dict(), space.to_dict(), spec.to_dict(), n_samples, seed,
                config.to_dict())

    results = _on_device_nodes([d for d, _ in jobs], _profile_job, args_of, address=address, num_cpus=num_cpus,
                               timeout_s=timeout_s)
    profiles = []
    for (device, out_dir), (files, node_id) in zip(jobs, results):
        for name, data in files.items():
            if name != PLACEMENT_FILE:
                atomic_write_bytes(Path(out_dir) / name, data)
        atomic_write_json(Path(out_dir) / PLACEMENT_FILE,
                          {"device": device.name, "resource": device_resource(device.name), "ray_node_id": node_id})
        profiles.append(Profile.load(out_dir))
    return profiles


def _measure_job(device: dict, spec: dict, config: dict, seed: int, onnx: list[bytes],
                 checkpoint: dict[str, bytes], archs: list[str]) -> tuple[list, str, dict]:
    """Runs on the device's node: measure the models; return the measurements, the node id and
    the node's machine fingerprint."""
    import ray

    from hwprofiles import DeviceSpec, MeasureConfig, fingerprint, measure_models
    from supernet import Arch, InputSpec

    device_spec = DeviceSpec.from_dict(device)
    with tempfile.TemporaryDirectory() as tmp:
        if device_spec.backend.startswith("torch"):
            from supernet.checkpoint import load_checkpoint

            for name, data in checkpoint.items():
                Path(tmp, name).write_bytes(data)
            supernet, _ = load_checkpoint(tmp)
            models: list[Any] = [supernet.extract(Arch.from_json(a)) for a in archs]
        else:
            models = []
            for i, data in enumerate(onnx):
                Path(tmp, f"{i:04d}.onnx").write_bytes(data)
                models.append(str(Path(tmp, f"{i:04d}.onnx")))
        measured = measure_models(models, device_spec, InputSpec(**spec), MeasureConfig(**config), seed=seed)
    return measured, ray.get_runtime_context().get_node_id(), fingerprint()


def measure_on_ray(devices: Sequence[Any], onnx_paths: Sequence[Path], archs: Sequence[Any], checkpoint_dir: Path,
                   spec: Any, *, config: Any, seed: int, address: str | None = None,
                   num_cpus: int = 2) -> list[tuple[list, str, dict]]:
    """Measure the same models (ONNX files, or for torch devices the `archs` extracted from the
    checkpoint) on each device's node, devices on different nodes at once; [(measurements,
    node id, the node's machine fingerprint)] in order."""
    shared = (spec.to_dict(), config.to_dict(), seed, [Path(p).read_bytes() for p in onnx_paths],
              _folder_bytes(Path(checkpoint_dir)), [a.to_json() for a in archs])
    return _on_device_nodes(list(devices), _measure_job, lambda i: (devices[i].to_dict(),), shared=shared,
                            address=address, num_cpus=num_cpus)
