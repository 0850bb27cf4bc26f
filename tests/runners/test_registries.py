"""Contract suites over the registries the main job draws from: every registered task loads
and yields consistent splits; every registered device backend that can run here measures a
tiny model (the others are skipped with the backend's own reason)."""

from __future__ import annotations

import numpy as np
import pytest

from hwprofiles import DeviceSpec, MeasureConfig, backend_names, backend_unavailable_reason, measure_models
from supernet import InputSpec, SearchSpace, get_task, task_names

# Generated tasks at a small size; the others have a fixed size.
SMALL = {"recall": {"n_train": 100, "n_val": 100, "n_test": 100}, "mnist1d": {"samples": 500}}


def _task_cases():
    for name in task_names():
        yield name if name != "npz:PATH" else "npz"


@pytest.fixture
def npz_path(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "user.npz"
    np.savez(path, x=rng.normal(size=(60, 8, 3)), y=np.arange(60) % 3)
    return path


@pytest.mark.parametrize("name", list(_task_cases()))
def test_every_registered_task_loads_with_consistent_splits(name, npz_path):
    full = f"npz:{npz_path}" if name == "npz" else name
    task = get_task(full, seed=0, **SMALL.get(name, {}))
    spec = task.spec
    assert isinstance(spec, InputSpec) and spec.num_classes >= 2
    sizes = {}
    for split in ("train", "val", "test"):
        x, y = task.split(split)
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape == (len(y), spec.seq_len, spec.in_features) and len(y) > 0, split
        assert np.isfinite(x).all(), split
        assert y.min() >= 0 and y.max() < spec.num_classes, split
        sizes[split] = len(y)
    assert len(np.unique(task.y_train)) >= 2
    record = task.record()
    assert (record["n_train"], record["n_val"], record["n_test"]) == (sizes["train"], sizes["val"], sizes["test"])
    if name == "recall":
        assert sizes == {"train": 100, "val": 100, "test": 100}
    # the same seed gives the same splits, and the splits hold different examples
    again = get_task(full, seed=0, **SMALL.get(name, {}))
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(task.split(split)[0], again.split(split)[0])
        np.testing.assert_array_equal(task.split(split)[1], again.split(split)[1])
    train_rows = {row.tobytes() for row in task.x_train}
    for split in ("val", "test"):
        shared = sum(row.tobytes() in train_rows for row in task.split(split)[0])
        assert shared <= 0.05 * sizes[split], (split, shared)


@pytest.fixture(scope="module")
def tiny_model_parts():
    from supernet import Supernet

    space = SearchSpace(embed_dims=(16,), depths=(1,), heads=(1,), ffn_ratios=(1,), head_dim=8, local_window=4)
    spec = InputSpec(seq_len=8, in_features=4, num_classes=3)
    net = Supernet(space, spec, seed=0)
    return net, space.smallest(), spec


BUILT_IN_BACKENDS = ("ort-cpu", "ort-cuda", "torch-cpu", "torch-cuda")


def test_built_in_backends_are_registered():
    assert set(BUILT_IN_BACKENDS) <= set(backend_names())


# The built-in backends only: other test modules register throwaway ones (e.g. a sleeping
# backend) in the same process, and their meaning is theirs to test.
@pytest.mark.parametrize("backend", BUILT_IN_BACKENDS)
def test_every_backend_that_runs_here_measures_a_tiny_model(backend, tiny_model_parts, tmp_path):
    reason = backend_unavailable_reason(backend)
    if reason:
        pytest.skip(f"{backend}: {reason}")
    from supernet import export_onnx

    net, arch, spec = tiny_model_parts
    device = DeviceSpec(name=f"contract-{backend}", backend=backend)
    model = net.extract(arch)
    if not device.is_torch:
        path = tmp_path / "tiny.onnx"
        export_onnx(model, path, check=False)
        model = str(path)
    config = MeasureConfig(warmup=2, min_runs=5, max_runs=20, max_seconds=0.02, rounds=2, repeats=0)
    [m] = measure_models([model], device, spec, config, seed=0)
    assert 0 < m.min_ms <= m.p10_ms <= m.median_ms <= m.p90_ms
    assert len(m.raw_ms) >= config.min_runs and np.isfinite(m.raw_ms).all()
