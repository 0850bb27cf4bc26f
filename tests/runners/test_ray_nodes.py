"""Two local Ray nodes, each advertising one device: each device's profiling job lands on
the node that advertises it, both jobs sent at once."""

from __future__ import annotations

import json

import pytest

from ._tiny import TINY

pytestmark = pytest.mark.slow


@pytest.fixture
def two_nodes():
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "resources": {"hwnas-device:cpu": 1}, "include_dashboard": False})
    cluster.add_node(num_cpus=1, resources={"hwnas-device:torch-cpu": 1})
    try:
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()  # stops both nodes' Ray processes


def _node_advertising(resource: str) -> str:
    import ray

    nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get(resource, 0) >= 1]
    assert len(nodes) == 1, (resource, nodes)
    return nodes[0]


def test_each_device_is_profiled_on_its_node(two_nodes, tmp_path, tiny_space, tiny_spec):
    from hwprofiles import MeasureConfig, get_device

    from runners.remote import PLACEMENT_FILE, device_resource, profile_devices_on_ray

    expected = {name: _node_advertising(device_resource(name)) for name in ("cpu", "torch-cpu")}
    assert expected["cpu"] != expected["torch-cpu"]  # two nodes
    config = MeasureConfig(warmup=1, min_runs=3, max_runs=5, max_seconds=0.01, rounds=1, repeats=0)
    jobs = [(get_device(name), tmp_path / name) for name in ("cpu", "torch-cpu")]
    profiles = profile_devices_on_ray(jobs, tiny_space, tiny_spec, n_samples=8, seed=0, config=config)
    for (device, out), profile in zip(jobs, profiles):
        placement = json.loads((out / PLACEMENT_FILE).read_text())
        assert placement["ray_node_id"] == expected[device.name], device.name
        assert profile.device.name == device.name
        assert len(profile.table) >= 8 and (profile.table["median_ms"] > 0).all()


def test_a_device_no_node_advertises_is_refused(two_nodes, tmp_path, tiny_space, tiny_spec):
    from hwprofiles import MeasureConfig, get_device

    from runners._errors import UserInputError
    from runners.remote import profile_devices_on_ray

    with pytest.raises(UserInputError, match="no Ray node advertises device 'cpu-2t'"):
        profile_devices_on_ray([(get_device("cpu-2t"), tmp_path / "p")], tiny_space, tiny_spec, n_samples=8,
                               seed=0, config=MeasureConfig.fast())
    assert not (tmp_path / "p").exists()


TINY_RAY = TINY.replace('preset = "fast"\n', 'preset = "fast"\ndevices = ["cpu", "torch-cpu"]\n') + """
[executor]
kind = "ray"
num_cpus = 2
"""


def test_run_on_two_nodes_places_every_device_job_and_searches_side_by_side(two_nodes, tmp_path, capsys):
    """`hwnas run` on the two-node cluster with two devices: each device's profiling, export
    re-measurement and matrix measurement on its node, the two searches side by side (one
    worker each), one accuracy cache."""
    import sqlite3

    import pandas as pd

    from runners.cli import main
    from runners.remote import device_resource

    (tmp_path / "tiny.toml").write_text(TINY_RAY)
    run = tmp_path / "run"
    try:
        main(["run", "--config", str(tmp_path / "tiny.toml"), "--run", str(run), "--ray-address", two_nodes.address])
    except SystemExit as exc:
        assert not exc.code
    out = capsys.readouterr().out
    assert "searching 2 devices side by side on Ray, 1 evaluation worker(s) each" in out
    nodes = {name: _node_advertising(device_resource(name)) for name in ("cpu", "torch-cpu")}
    assert json.loads((run / "matrix.json").read_text())["ray_nodes"] == nodes
    archs = set()
    for name in ("cpu", "torch-cpu"):
        unit = run / "devices" / name
        placement = json.loads((unit / "profile/placement.json").read_text())
        assert placement["device"] == name and placement["ray_node_id"] == nodes[name]
        record = json.loads((unit / "search/search.json").read_text())
        assert record["executor"] == "ray" and record["accuracy_cache"]["hits"] + \
            record["accuracy_cache"]["new_evaluations"] == 6
        archs |= set(pd.read_parquet(unit / "search/candidates.parquet")["arch"])
        assert json.loads((unit / "export/manifest.json").read_text())["ray_node_id"] == nodes[name]  # re-measured there
    with sqlite3.connect(run / "accuracy_cache.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM accuracy").fetchone()[0] == len(archs)
