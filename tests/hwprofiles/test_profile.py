"""Profiling: coverage sampling, the profile folder, resume, blocks, bad folders, backends."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from hwprofiles import (DeviceSpec, MeasureConfig, Profile, Runner, backend_unavailable_reason, block_keys,
                        coverage_archs, get_device, profile_device, register_backend, sample_profile_archs)
from supernet import LAYER_FIELDS, InputSpec, SearchSpace

QUICK = MeasureConfig(warmup=1, min_runs=3, max_runs=5, max_seconds=0.005, rounds=2, repeats=0)

LOADED: list[object] = []  # the models the test-first-chunk-slow backend has loaded


def _first_chunk_slow(model, threads, shape, seed):
    """A real workload (a busy wait of 0.2 ms per run) on a machine in a slow phase (3x) while the
    first two models are all that has been loaded: the whole first chunk of two falls inside it."""
    LOADED.append(model)

    def run() -> None:
        t0, length = time.perf_counter(), 0.0002 * (3 if len(LOADED) <= 2 else 1)
        while time.perf_counter() - t0 < length:
            pass
    return Runner(run=run)


register_backend("test-first-chunk-slow", _first_chunk_slow)


def test_sampling_covers_every_choice(tiny_space):
    archs = sample_profile_archs(tiny_space, 20, seed=1)
    assert len(set(archs)) == 20
    assert tiny_space.smallest() in archs and tiny_space.largest() in archs
    cover = coverage_archs(tiny_space, 1)
    assert archs[: len(cover)] == cover
    assert {a.embed_dim for a in cover} == set(tiny_space.embed_dims)
    assert {a.depth for a in cover} == set(tiny_space.depths)
    for f in LAYER_FIELDS:
        assert {getattr(layer, f) for a in cover for layer in a.layers} == set(tiny_space.layer_choices(f))
    assert sample_profile_archs(tiny_space, 25, seed=1)[:20] == archs  # growing keeps the prefix
    with pytest.raises(ValueError, match="positive integer"):
        sample_profile_archs(tiny_space, 0)


def test_profile_folder_and_resume(tmp_path, tiny_space, tiny_spec):
    out = tmp_path / "prof"
    first = profile_device("cpu", tiny_space, tiny_spec, n_samples=6, out_dir=out, seed=0, config=QUICK,
                           progress=False, chunk_size=3, repeat_fraction=0.5)
    assert sorted(p.name for p in out.iterdir()) == ["measurements.parquet", "profile.json", "repeat.parquet"]
    table = first.table
    assert len(table) == 6 and set(table["arch"]) == {a.to_json() for a in sample_profile_archs(tiny_space, 6, 0)}
    assert {"arch", "genome", "median_ms", "p10_ms", "p90_ms", "raw_ms", "flagged"} <= set(table.columns)
    assert (table["median_ms"] > 0).all() and all(len(r) >= 6 for r in table["raw_ms"])
    rep = first.repeatability
    assert rep is not None and rep.n == 6 and 0.0 <= rep.within_10 <= 1.0
    assert first.repeatability_of("min_ms").n == 6
    fastest = first.latency("min_ms")
    assert np.all(fastest <= first.latency_ms) and np.all(fastest == [min(r) for r in table["raw_ms"]])
    with pytest.raises(ValueError, match="latency statistic must be one of"):
        first.latency("mean_ms")
    loaded = Profile.load(out)
    assert loaded.device == get_device("cpu") and loaded.space == tiny_space and loaded.spec == tiny_spec
    assert loaded.fingerprint["cpu_model"] and loaded.environment_differences() == []

    # A kill after the first chunk leaves three stored rows: resuming measures only the rest.
    stored = table.iloc[:3].copy()
    stored.to_parquet(out / "measurements.parquet", index=False)
    resumed = profile_device("cpu", tiny_space, tiny_spec, n_samples=8, out_dir=out, seed=0, config=QUICK,
                             progress=False, chunk_size=3, repeat_fraction=0.5)
    assert len(resumed.table) == 8
    head = resumed.table.iloc[:3]
    assert list(head["arch"]) == list(stored["arch"])
    assert [list(r) for r in head["raw_ms"]] == [list(r) for r in stored["raw_ms"]]  # not re-measured
    assert set(resumed.table["arch"]) == {a.to_json() for a in sample_profile_archs(tiny_space, 8, 0)}


def test_profile_refuses_other_folders(tmp_path, tiny_space, tiny_spec):
    out = tmp_path / "prof"
    profile_device("cpu", tiny_space, tiny_spec, n_samples=2, out_dir=out, config=QUICK, progress=False,
                   repeat_fraction=0)
    before = (out / "profile.json").read_text()
    with pytest.raises(ValueError, match="another device"):
        profile_device("cpu-2t", tiny_space, tiny_spec, n_samples=2, out_dir=out, config=QUICK, progress=False)
    other_space = SearchSpace(embed_dims=(16,), depths=(1,), heads=(1,), ffn_ratios=(1,), head_dim=8)
    with pytest.raises(ValueError, match="another search space"):
        profile_device("cpu", other_space, tiny_spec, n_samples=1, out_dir=out, config=QUICK, progress=False)
    assert (out / "profile.json").read_text() == before
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a device profile"):
        profile_device("cpu", tiny_space, tiny_spec, n_samples=2, out_dir=busy, config=QUICK, progress=False)
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]


def test_load_missing_or_corrupt_profile(tmp_path, tiny_space, tiny_spec):
    with pytest.raises(ValueError, match="no device profile"):
        Profile.load(tmp_path / "nothing")
    out = tmp_path / "prof"
    profile_device("cpu", tiny_space, tiny_spec, n_samples=2, out_dir=out, config=QUICK, progress=False,
                   repeat_fraction=0)
    (out / "measurements.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="corrupt device profile.*measurements.parquet"):
        Profile.load(out)
    (out / "profile.json").write_text("{ broken")
    with pytest.raises(ValueError, match="corrupt device profile"):
        Profile.load(out)
    (out / "profile.json").write_text(json.dumps({"kind": "something-else"}))
    with pytest.raises(ValueError, match="not an hwnas device profile"):
        Profile.load(out)


def test_blocks_lookup_table(tmp_path, tiny_spec):
    space = SearchSpace(embed_dims=(16,), depths=(1, 2), heads=(1, 2), ffn_ratios=(1,), attentions=("softmax",),
                        quants=("fp32", "int8"), head_dim=8)
    prof = profile_device("cpu", space, tiny_spec, n_samples=3, out_dir=tmp_path / "p", blocks=True, config=QUICK,
                          progress=False, repeat_fraction=0)
    costs = prof.block_costs()
    assert set(costs) == {k.name for k in block_keys(space)} and len(costs) == 2 + 4
    assert all(v > 0 for v in costs.values())
    assert isinstance(prof.blocks, pd.DataFrame) and prof.blocks["flagged"].dtype == bool


def test_torch_cpu_profile(tmp_path, tiny_space, tiny_spec):
    prof = profile_device("torch-cpu", tiny_space, tiny_spec, n_samples=3, out_dir=tmp_path / "t", config=QUICK,
                          progress=False, repeat_fraction=0)
    assert len(prof.table) == 3 and prof.device.backend == "torch-cpu"


def test_device_sequence_length_overrides_task(tmp_path, tiny_space, tiny_spec):
    import dataclasses

    dev = dataclasses.replace(get_device("cpu"), name="cpu-n8", seq_len=8)
    prof = profile_device(dev, tiny_space, tiny_spec, n_samples=2, out_dir=tmp_path / "n8", config=QUICK,
                          progress=False, repeat_fraction=0)
    assert prof.device.seq_len == 8 and len(prof.table) == 2


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["cuda", "torch-cuda"])
def test_cuda_devices(tmp_path, tiny_space, tiny_spec, name):
    reason = backend_unavailable_reason(get_device(name).backend)
    if reason:
        with pytest.raises(ValueError, match="cannot run here"):
            profile_device(name, tiny_space, tiny_spec, n_samples=2, out_dir=tmp_path / name, progress=False)
        pytest.skip(f"no CUDA here: {reason}")
    prof = profile_device(name, tiny_space, tiny_spec, n_samples=3, out_dir=tmp_path / name, config=QUICK,
                          progress=False, repeat_fraction=0)
    assert len(prof.table) == 3 and (prof.table["median_ms"] > 0).all()


def test_block_files_keep_their_cached_names(tmp_path):
    from hwprofiles import BlockKey

    space = SearchSpace(embed_dims=(16,), depths=(2,), heads=(2,), ffn_ratios=(1,), attentions=("softmax",),
                        quants=("int8",), head_dim=8)
    spec = InputSpec(seq_len=12, in_features=4, num_classes=10, readout="cls")
    profile_device("cpu", space, spec, n_samples=1, out_dir=tmp_path / "p", blocks=True, config=QUICK,
                   progress=False, repeat_fraction=0, onnx_cache=tmp_path / "cache")
    blocks = sorted(p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith("block-"))
    # the embedding reads the 12 raw tokens; layers and head read them with the class token
    assert blocks == ["block-embed.E16-n12.onnx", "block-head.E16-n13.onnx",
                      "block-layer.E16.h2.r1.softmax.int8-n13.onnx"]
    with pytest.raises(ValueError, match="block kind must be one of \\('embed', 'layer', 'head'\\), got 'tail'"):
        BlockKey("tail", 16)


def test_export_helper_writes_what_model_for_writes(tmp_path, tiny_space, tiny_spec):
    from hwprofiles._models import ExportHelper, block_model_for, model_for
    from supernet import Supernet

    net, device = Supernet(tiny_space, tiny_spec, seed=3), get_device("cpu")
    archs = sample_profile_archs(tiny_space, 5, seed=2)
    keys = block_keys(tiny_space)[:5]
    helper = ExportHelper(tiny_space, tiny_spec, 3)
    try:
        shared = helper.models(net, archs, device, tmp_path / "a")
        shared_blocks = helper.blocks(net, keys, tmp_path / "a")
        with pytest.raises(RuntimeError, match="export helper process failed: .*Error"):
            helper.process.stdin.write(json.dumps({**helper.args, "archs": ["not an arch"], "folder": "x"}) + "\n")
            helper.process.stdin.flush()
            helper.models(net, [], device, tmp_path / "b")
    finally:
        helper.close()
    alone = [model_for(net, a, device, tmp_path / "c") for a in archs]
    assert [p.read_bytes() for p in shared] == [p.read_bytes() for p in alone]  # half came from the helper
    alone_blocks = [block_model_for(net, k, device, tmp_path / "c") for k in keys]
    assert [s for _, s in shared_blocks] == [s for _, s in alone_blocks]
    assert [p.read_bytes() for p, _ in shared_blocks] == [p.read_bytes() for p, _ in alone_blocks]


def test_profile_with_an_export_helper(tmp_path, tiny_space, tiny_spec):
    profile = profile_device("cpu", tiny_space, tiny_spec, n_samples=6, out_dir=tmp_path / "p", seed=0, config=QUICK,
                             progress=False, chunk_size=4, export_workers=2, blocks=True)
    assert set(profile.table["arch"]) == {a.to_json() for a in sample_profile_archs(tiny_space, 6, 0)}
    assert sorted(profile.blocks["block"]) == sorted(k.name for k in block_keys(tiny_space))
    with pytest.raises(ValueError, match="export_workers must be 1 or 2"):
        profile_device("cpu", tiny_space, tiny_spec, n_samples=2, out_dir=tmp_path / "q", export_workers=3)


def test_a_multi_thread_device_is_profiled_in_passes(tmp_path, tiny_space, tiny_spec, monkeypatch):
    """Every chunk is measured once per pass, all chunks of a pass before the next pass, each pass with
    every round; each stored row holds the timed runs of all its passes. Blocks: four passes of a third
    of the rounds, without the spread re-measurement; their export timed apart from their measuring."""
    import hwprofiles._profile as profile_module

    calls, real = [], profile_module.measure_shaped

    def spy(models, device, shapes, config, *, seed, gate=None):
        results = real(models, device, shapes, config, seed=seed, gate=gate)
        calls.append(([str(m) for m in models], config.rounds, config.passes, results, config.repeats))
        return results

    monkeypatch.setattr(profile_module, "measure_shaped", spy)
    config = replace(QUICK, rounds=6, pass_gap=0, repeats=1)
    prof = profile_device("cpu-2t", tiny_space, tiny_spec, n_samples=6, out_dir=tmp_path / "p", seed=0, config=config,
                          progress=False, chunk_size=3, repeat_fraction=0, onnx_cache=tmp_path / "onnx", blocks=True)
    subnets, blocks = calls[:6], calls[6:]
    assert config.passes_for(2) == 3
    assert [(len(c[0]), c[1], c[2], c[4]) for c in subnets] == [(3, 6, 1, 1)] * 6
    assert [c[0] for c in subnets[2:4]] == [c[0] for c in subnets[:2]] == [c[0] for c in subnets[4:]]
    assert subnets[0][0] != subnets[1][0]
    by_pass = [subnets[0][3] + subnets[1][3], subnets[2][3] + subnets[3][3], subnets[4][3] + subnets[5][3]]
    stored = [list(r) for r in prof.table["raw_ms"]]
    assert stored == [[t for m in ms for t in m.raw_ms] for ms in zip(*by_pass)]
    assert np.allclose(prof.latency("min_ms"), [min(m.min_ms for m in ms) for ms in zip(*by_pass)])
    n_blocks = len(block_keys(tiny_space))
    assert len(prof.blocks) == n_blocks and sum(len(c[0]) for c in blocks) == 4 * n_blocks
    assert {(c[1], c[2], c[4]) for c in blocks} == {(2, 1, 0)}  # a third of the 6 rounds, no re-measurement
    n = len(blocks) // 4  # calls per pass
    per_pass = [[m for c in blocks[p * n : (p + 1) * n] for m in c[3]] for p in range(4)]
    assert np.allclose([min(r) for r in prof.blocks["raw_ms"]], [min(m.min_ms for m in ms) for ms in zip(*per_pass)])
    assert prof.meta["seconds"]["block_export"] > 0 and prof.meta["seconds"]["blocks"] > 0


def test_blocks_of_a_single_thread_device_are_measured_in_one_pass(tmp_path, tiny_space, tiny_spec, monkeypatch):
    """One pass over all blocks at once: four times the rounds, visits of a quarter of the runs and
    seconds, no spread re-measurement, no gate."""
    import hwprofiles._profile as profile_module

    calls, real = [], profile_module.measure_shaped

    def spy(models, device, shapes, config, *, seed, gate=None):
        calls.append((len(models), config.rounds, config.passes, config.repeats, config.gate, config.max_runs,
                      config.max_seconds))
        return real(models, device, shapes, config, seed=seed, gate=gate)

    monkeypatch.setattr(profile_module, "measure_shaped", spy)
    config = replace(QUICK, rounds=2, repeats=1, gate=0.15, min_runs=3, max_runs=20, max_seconds=0.004)
    prof = profile_device("cpu", tiny_space, tiny_spec, n_samples=3, out_dir=tmp_path / "p", seed=0, config=config,
                          progress=False, chunk_size=2, repeat_fraction=0, blocks=True)
    n_blocks = len(block_keys(tiny_space))
    subnets, blocks = calls[:-1], calls[-1]  # subnets in chunks (a slow one measured again), the blocks in one list
    assert [c[0] for c in subnets[:2]] == [2, 1] and len(subnets) <= 4 and all(c[0] in (1, 2) for c in subnets)
    assert {c[1:5] for c in subnets} == {(2, 1, 1, 0.15)}
    assert blocks[:5] == (n_blocks, 8, 1, 0, 0) and blocks[5:] == (5, pytest.approx(0.001))
    assert len(prof.blocks) == n_blocks and all(len(r) >= 8 * 3 for r in prof.blocks["raw_ms"])


def test_every_chunk_of_subnets_is_judged_by_one_gate(tmp_path, tiny_space, tiny_spec, monkeypatch):
    """The first chunk chooses the gate's reference and keeps it loaded; every later chunk (the
    repeatability measurement too) is probed against it and its fastest probe, and the profile
    unloads it at the end. Blocks measure without a gate."""
    import hwprofiles._measure as measure_module
    import hwprofiles._profile as profile_module

    gates, closed, real, real_load = [], [], profile_module.measure_shaped, measure_module.load_runner

    def spy(models, device, shapes, config, *, seed, gate=None):
        results = real(models, device, shapes, config, seed=seed, gate=gate)
        gates.append((gate, gate.reference if gate else None, gate.fastest if gate else None))
        return results

    def load(*args, **kwargs):
        runner = real_load(*args, **kwargs)
        close = runner.close
        runner.close = lambda: (closed.append(runner.run), close())
        return runner

    monkeypatch.setattr(profile_module, "measure_shaped", spy)
    monkeypatch.setattr(measure_module, "load_runner", load)
    config = replace(QUICK, rounds=2, repeats=0, gate=0.15, gate_retries=0)
    profile_device("cpu", tiny_space, tiny_spec, n_samples=3, out_dir=tmp_path / "p", seed=0, config=config,
                   progress=False, chunk_size=2, repeat_fraction=1.0, blocks=True)
    subnets = [g for g in gates if g[0] is not None]  # two chunks (a slow one measured again), the repeat's two
    gate, reference = subnets[0][0], subnets[0][1]
    assert reference is not None and all(g is gate and r is reference for g, r, _ in subnets)
    assert 4 <= len(subnets) <= 6 and len(gates) == len(subnets) + 1  # and the blocks, without a gate
    assert [f for _, _, f in subnets] == sorted((f for _, _, f in subnets), reverse=True)  # fastest of all so far
    assert closed.count(reference) == 1 and closed[-1] is reference  # unloaded once, when the profile is done


def test_a_chunk_measured_wholly_in_a_slow_phase_is_measured_again(tmp_path, tiny_space, tiny_spec):
    """The first chunk is judged by no earlier one: once the profile's later chunks show how fast the
    gate's reference runs, a chunk whose every round probed slower is measured once more, and its
    faster runs replace the slow ones."""
    LOADED.clear()
    device = DeviceSpec("slow-start", "test-first-chunk-slow", threads=1)
    config = replace(QUICK, rounds=3, gate=0.5, gate_retries=0)
    prof = profile_device(device, tiny_space, tiny_spec, n_samples=4, out_dir=tmp_path / "p", seed=0, config=config,
                          progress=False, chunk_size=2, repeat_fraction=0)
    assert len(LOADED) == 6 and prof.meta["slow_chunks"] == 1  # two chunks, then the first one again
    assert prof.latency("min_ms").max() < 0.4  # 0.2 ms runs everywhere; none of the 0.6 ms kept
