"""Where expensive evaluations run when they are spread over a Ray cluster.

Without an executor, the search evaluates accuracies in its own process. An executor
evaluates the accuracy of a batch of architectures with the supernet's inherited weights.
The Ray executor ships the checkpoint and the evaluation split to a
pool of actors through the object store (so it works on any cluster, not only on this
machine), and Ray restarts an actor that dies and re-runs its call: a search still spends
its full budget. Ray is imported here and in `runners.remote` only.
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from supernet import Arch

from ._errors import UserInputError


class Executor(ABC):
    """Evaluates accuracies of architecture batches."""

    name: str

    @abstractmethod
    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray:
        """Accuracy in [0, 1] of each architecture, in order."""

    def close(self) -> None:
        """Release workers."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _ray():
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise UserInputError("--executor ray needs Ray: pip install 'ray[default]'") from exc
    return ray


def start_ray(address: str | None, num_cpus: int, resources: dict[str, float] | None = None) -> bool:
    """Join the Ray at `address`, or start a local Ray of our own (even beside another Ray on
    this machine) with `num_cpus` and custom `resources`; nothing when this process is
    connected already. True when this call started or joined it: the caller shuts it down."""
    ray = _ray()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address:
        kwargs["address"] = address
    else:  # "local": a new Ray of our own, even when another one runs on this machine
        kwargs.update(address="local", num_cpus=num_cpus)
        if resources:
            kwargs["resources"] = resources
    try:
        ray.init(**kwargs)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise UserInputError(f"cannot start or join Ray at {address or 'a local cluster'}: {exc}") from None
    return True


@contextmanager
def ray_session(address: str | None, num_cpus: int, resources: dict[str, float] | None = None) -> Iterator[Any]:
    """`start_ray` for the length of a block: the ray module, shut down afterwards if started here."""
    started_here = start_ray(address, num_cpus, resources)
    try:
        yield _ray()
    finally:
        if started_here:
            _ray().shutdown()


def _checkpoint_bytes(checkpoint_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in Path(checkpoint_dir).iterdir() if p.is_file()}


class _EvalWorker:
    """A Ray actor holding one copy of the supernet and the evaluation split (and, when each
    subnet is fine-tuned before scoring, the training split and the tune settings)."""

    def __init__(self, files: dict[str, bytes], x: np.ndarray, y: np.ndarray, threads: int,
                 tune: dict[str, Any] | None = None, train: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        import torch

        from supernet.checkpoint import load_checkpoint

        torch.set_num_threads(threads)
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                Path(tmp, name).write_bytes(data)
            self.supernet, _ = load_checkpoint(tmp)
        self.x, self.y = x, y
        self.tune, self.train = tune, train

    def pid(self) -> int:
        return os.getpid()

    def evaluate(self, arch_jsons: list[str]) -> list[float]:
        from supernet.evaluate import evaluate_archs
        from supernet.train import tuned_accuracies

        archs = [Arch.from_json(a) for a in arch_jsons]
        if self.tune is None:
            return [float(v) for v in evaluate_archs(self.supernet, archs, self.x, self.y)]
        return [float(v) for v in tuned_accuracies(self.supernet, archs, *self.train, self.x, self.y, **self.tune)]


class RayExecutor(Executor):
    """Accuracy evaluation on a pool of Ray actors, one supernet copy each.

    Starts a local Ray with `num_cpus` CPUs unless `address` names a cluster to join.
    """

    name = "ray"

    def __init__(self, checkpoint_dir: Path, x: np.ndarray, y: np.ndarray, *, address: str | None = None,
                 num_workers: int = 2, num_cpus: int = 2, max_restarts: int = 3, tune: dict[str, Any] | None = None,
                 train: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """`tune` (keyword arguments of `supernet.tuned_accuracies`: steps, lr, seed) fine-tunes
        each subnet on `train` (x, y) before it is scored."""
        if tune is not None and train is None:
            raise ValueError("tune needs the training split (train=(x, y))")
        ray = _ray()
        self._started_here = start_ray(address, num_cpus)
        # Held for the executor's lifetime: a restarted actor is built again from these refs.
        self._refs = (ray.put(_checkpoint_bytes(checkpoint_dir)), ray.put(np.ascontiguousarray(x)),
                      ray.put(np.ascontiguousarray(y)), 1, tune,
                      None if train is None else ray.put(tuple(np.ascontiguousarray(a) for a in train)))
        actor = ray.remote(num_cpus=1, max_restarts=max_restarts, max_task_retries=max_restarts)(_EvalWorker)
        self.workers = [actor.remote(*self._refs) for _ in range(num_workers)]
        self._ray = ray

    def worker_pids(self) -> list[int]:
        return self._ray.get([w.pid.remote() for w in self.workers])

    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray:
        if not archs:
            return np.zeros(0)
        jsons = [a.to_json() for a in archs]
        chunks = np.array_split(np.arange(len(jsons)), min(len(self.workers), len(jsons)))
        refs = [w.evaluate.remote([jsons[i] for i in idx]) for w, idx in zip(self.workers, chunks)]
        out = np.empty(len(jsons))
        for idx, values in zip(chunks, self._ray.get(refs)):
            out[idx] = values
        return out

    def close(self) -> None:
        for w in getattr(self, "workers", []):
            self._ray.kill(w)
        self.workers = []
        if getattr(self, "_started_here", False) and self._ray.is_initialized():
            self._ray.shutdown()
