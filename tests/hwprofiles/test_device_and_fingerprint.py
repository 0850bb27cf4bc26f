"""Device specs, the device registry and TOML files, environment fingerprints."""

from __future__ import annotations

import pytest

from hwprofiles import DeviceSpec, backend_names, compare_fingerprints, device_names, fingerprint, get_device


def test_builtin_devices():
    cpu = get_device("cpu")
    assert (cpu.backend, cpu.threads, cpu.batch, cpu.seq_len) == ("ort-cpu", 1, 1, None)
    assert {"cpu", "cpu-2t", "torch-cpu", "cuda", "torch-cuda"} <= set(device_names())
    assert set(backend_names()) >= {"ort-cpu", "ort-cuda", "torch-cpu", "torch-cuda"}
    assert get_device(cpu) is cpu


def test_unknown_device_lists_known_ones():
    with pytest.raises(ValueError, match="unknown device 'tpu'.*cpu-2t"):
        get_device("tpu")


def test_device_from_toml(tmp_path):
    path = tmp_path / "pi.toml"
    path.write_text('[device]\nname = "pi4"\nbackend = "ort-cpu"\nthreads = 4\nseq_len = 30\n')
    dev = get_device(str(path))
    assert dev == DeviceSpec("pi4", "ort-cpu", threads=4, batch=1, seq_len=30)
    assert DeviceSpec.from_dict(dev.to_dict()) == dev


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "x", "backend": "tpu"}, "backend must be one of"),
    ({"name": "x", "threads": 0}, "threads must be a positive integer"),
    ({"name": "x", "batch": True}, "batch must be a positive integer"),
    ({"name": "has space"}, "device name"),
    ({"name": "x", "seq_len": -3}, "seq_len"),
])
def test_bad_device_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DeviceSpec(**kwargs)


def test_bad_toml(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\ncolour = "red"\n')
    with pytest.raises(ValueError, match="unknown device setting"):
        get_device(str(bad))
    broken = tmp_path / "broken.toml"
    broken.write_text("name = [\n")
    with pytest.raises(ValueError, match="cannot read device spec"):
        get_device(str(broken))


def test_fingerprint_and_comparison():
    fp = fingerprint()
    for key in ("cpu_model", "cpu_count", "memory_bytes", "gpu_name", "gpu_driver", "os", "python", "torch",
                "onnxruntime"):
        assert key in fp
    assert fp["cpu_count"] >= 1 and fp["onnxruntime"]
    assert compare_fingerprints(fp, dict(fp)) == []
    other = dict(fp, cpu_model="Some Other CPU", hostname="elsewhere", memory_bytes=1)
    diffs = compare_fingerprints(fp, other)
    assert len(diffs) == 1 and diffs[0].startswith("cpu_model")


def test_backend_registry_refuses_duplicates():
    from hwprofiles import Runner, register_backend

    def factory(model, threads, shape, seed):
        return Runner(run=lambda: None)

    register_backend("test-dup", factory)
    register_backend("test-dup", factory)  # the very same factory again: allowed, nothing changes
    with pytest.raises(ValueError, match="'test-dup' is already registered"):
        register_backend("test-dup", lambda model, threads, shape, seed: Runner(run=lambda: None))
    with pytest.raises(ValueError, match="'ort-cpu' is already registered"):
        register_backend("ort-cpu", factory)
    assert backend_names().count("test-dup") == 1
