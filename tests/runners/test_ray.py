"""A real local Ray: parallel accuracy evaluation that survives a killed worker, and
profiling jobs routed to the node that advertises the device."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_space):
    from supernet.tasks import get_task
    from supernet.train import TrainConfig, train_supernet

    out = tmp_path_factory.mktemp("ray_run") / "supernet"
    task = get_task("digits")
    result = train_supernet(task, tiny_space, TrainConfig(epochs=1, seed=0), out, progress=False)
    return out, task, result.supernet


def test_search_finishes_its_budget_when_a_worker_is_killed(trained, tiny_space):
    import search
    from supernet.evaluate import evaluate_archs

    from runners.executors import RayExecutor

    ckpt, task, supernet = trained
    killed: list[int] = []
    with RayExecutor(ckpt, task.x_val, task.y_val, num_workers=2, num_cpus=2) as executor:
        problem = search.SearchProblem(tiny_space, [search.accuracy_objective(executor.evaluate),
                                                    search.size_objective(tiny_space, task.spec)])

        def progress(done: int, budget: int, hv: float) -> None:
            if done == 4 and not killed:  # mid-search: later batches need the dead worker
                pid = executor.worker_pids()[0]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        result = search.run_search(problem, search.get_algorithm("random"), budget=12, seed=0, progress=progress)
        pids_after = executor.worker_pids()
    assert killed and killed[0] not in pids_after  # the worker really died and was replaced
    cands = result.candidates
    assert len(cands) == 12 and cands["arch"].nunique() == 12
    from supernet import Arch

    archs = [Arch.from_json(a) for a in cands["arch"]]
    expected = evaluate_archs(supernet, archs, task.x_val, task.y_val)
    assert np.allclose(cands["accuracy"].to_numpy(), expected)


def test_workers_fine_tune_each_subnet_before_scoring_as_the_driver_does(trained, tiny_space):
    import torch

    from supernet.train import tuned_accuracies

    from runners.executors import RayExecutor

    ckpt, task, supernet = trained
    archs = [tiny_space.largest(), tiny_space.smallest(), tiny_space.sample(np.random.default_rng(3))]
    tune = {"steps": 4, "lr": 2e-3, "seed": 0}
    with RayExecutor(ckpt, task.x_val, task.y_val, num_workers=2, num_cpus=2, tune=tune,
                     train=(task.x_train, task.y_train)) as executor:
        remote = executor.evaluate(archs)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker
    try:
        here = tuned_accuracies(supernet, archs, task.x_train, task.y_train, task.x_val, task.y_val, **tune)
    finally:
        torch.set_num_threads(threads)
    assert np.allclose(remote, here)


def test_profiling_job_runs_on_the_device_node(tmp_path, tiny_space, tiny_spec):
    from hwprofiles import MeasureConfig, fingerprint, get_device

    from runners.remote import profile_on_ray

    config = MeasureConfig(warmup=1, min_runs=3, max_runs=5, max_seconds=0.01, rounds=1, repeats=0)
    profile = profile_on_ray(get_device("cpu"), tiny_space, tiny_spec, n_samples=10, out_dir=tmp_path / "p",
                             seed=0, config=config, num_cpus=2)
    assert len(profile.table) >= 10
    assert (profile.table["median_ms"] > 0).all()
    assert profile.fingerprint["cpu_model"] == fingerprint()["cpu_model"]
