"""One measurement protocol: the file a kit ships is hwnas's own, and both give the same statistics.

Timings here come from a scripted clock (each run advances it by a scripted number of
nanoseconds), so the whole protocol, stopping rule and repeats included, is exercised
deterministically; nothing asserts how fast anything is.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import hwprofiles._protocol as hwnas_protocol
from hwprofiles import (MeasureConfig, Measurement, Profile, get_device, import_kit_results, sample_profile_archs,
                        write_kit)
from hwprofiles._profile import arch_row

QUICK = MeasureConfig(warmup=1, min_runs=3, max_runs=5, max_seconds=0.005, rounds=2, repeats=1)


@pytest.fixture(scope="module")
def kit_dir(tmp_path_factory, tiny_space, tiny_spec) -> Path:
    out = tmp_path_factory.mktemp("kit")
    kit = write_kit("cpu", tiny_space, tiny_spec, out / "kit.zip", n_samples=3, seed=4, config=QUICK,
                    progress=False, repeat_fraction=0)
    with zipfile.ZipFile(kit) as zf:
        zf.extractall(out / "target")
    return out / "target"


@pytest.fixture(scope="module")
def kit_protocol(kit_dir):
    """The kit's shipped protocol file, loaded as a module of its own (not hwprofiles')."""
    spec = importlib.util.spec_from_file_location("kit_hwnas_protocol", kit_dir / "hwnas_protocol.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


class Scripted:
    """Models that take scripted times on a shared fake nanosecond clock."""

    def __init__(self, durations_ns: list[list[int]]) -> None:
        self.now = 0
        self.scripts = [iter(d) for d in durations_ns]
        self.calls: list[int] = []

    def clock(self) -> int:
        return self.now

    def runs(self) -> list:
        def run(i: int) -> None:
            self.calls.append(i)
            self.now += next(self.scripts[i])
        return [lambda i=i: run(i) for i in range(len(self.scripts))]


def _scripts(seed: int, n_models: int, length: int = 10_000) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2e6, 2e6, n_models)  # 0.2-2 ms per run
    jitter = [0.01, 0.9, 0.05, 3.0][:n_models]  # two steady models, two wide ones
    return [list((b * (1 + j * rng.random(length))).astype(int)) for b, j in zip(base, jitter)]


def test_kit_ships_the_protocol_verbatim(kit_dir):
    assert (kit_dir / "hwnas_protocol.py").read_bytes() == Path(hwnas_protocol.__file__).read_bytes()
    assert "import hwnas_protocol" in (kit_dir / "run_kit.py").read_text()


def test_protocol_imports_only_the_standard_library_and_numpy():
    tree = ast.parse(Path(hwnas_protocol.__file__).read_text())
    top = set()
    for node in tree.body:  # module level; onnxruntime and psutil are imported inside functions
        if isinstance(node, ast.Import):
            top |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "the shipped protocol cannot use relative imports"
            top.add(node.module.split(".")[0])
    assert top - set(sys.stdlib_module_names) == {"numpy"}


@pytest.mark.parametrize("raw", [
    list(np.linspace(1.0, 2.0, 11)),
    [0.5] * 7,
    list(np.random.default_rng(0).lognormal(0.0, 0.4, 60)),
    [0.1, 0.1, 0.1, 9.0],
])
def test_kit_and_hwnas_give_the_same_statistics(kit_protocol, raw):
    ours = Measurement.from_timings(raw, attempts=2, threshold=0.2)
    theirs = kit_protocol.Measurement.from_timings(raw, attempts=2, threshold=0.2)
    assert type(theirs) is not Measurement  # really the kit's copy
    assert theirs.to_dict() == ours.to_dict()
    # ... and the JSON a kit writes comes back as the row a local profile stores
    assert json.loads(json.dumps(theirs.to_dict())) == ours.to_dict()


def test_kit_and_hwnas_run_the_same_protocol(kit_protocol):
    config = MeasureConfig(warmup=2, min_runs=4, max_runs=30, max_seconds=0.01, rounds=3,
                           spread_threshold=0.3, repeats=2)
    kit_config = kit_protocol.MeasureConfig(**config.to_dict())
    ours, theirs = Scripted(_scripts(5, 4)), Scripted(_scripts(5, 4))
    a = hwnas_protocol.measure_runs(ours.runs(), config, seed=11, clock=ours.clock)
    b = kit_protocol.measure_runs(theirs.runs(), kit_config, seed=11, clock=theirs.clock)
    assert [m.to_dict() for m in a] == [m.to_dict() for m in b]
    assert ours.calls == theirs.calls  # same interleaved order, same runs
    assert [m.flagged for m in a] == [False, True, False, True]
    assert [m.attempts for m in a] == [1, 3, 1, 3]  # wide ones measured three times in all
    for m in a:  # every visit: at least min_runs, at most max_runs or ~max_seconds of runs
        assert config.rounds * config.min_runs <= len(m.raw_ms) <= config.rounds * config.max_runs


def test_kit_results_import_as_the_local_rows(tmp_path, kit_protocol, tiny_space, tiny_spec):
    archs = sample_profile_archs(tiny_space, 3, seed=1)
    raws = [list(np.random.default_rng(i).lognormal(0.0, 0.3, 20)) for i in range(3)]
    kit_stats = [kit_protocol.Measurement.from_timings(r, attempts=1, threshold=0.2).to_dict() for r in raws]
    results = {"kind": "hwnas-kit-results", "schema_version": 1, "kit_id": "t", "device": get_device("cpu").to_dict(),
               "fingerprint": kit_protocol.fingerprint(), "space": tiny_space.to_dict(), "spec": tiny_spec.to_dict(),
               "seed": 0, "config": QUICK.to_dict(), "seconds": 1.0,
               "results": [dict(arch=a.to_json(), **s) for a, s in zip(archs, kit_stats)], "repeat": []}
    (tmp_path / "results.json").write_text(json.dumps(results))
    imported = import_kit_results(tmp_path / "results.json", tmp_path / "imported")
    local = [arch_row(a, tiny_space, Measurement.from_timings(r, attempts=1, threshold=0.2))
             for a, r in zip(archs, raws)]
    for row, want in zip(imported.table.to_dict("records"), local):
        assert {k: (list(v) if k in ("raw_ms", "genome") else v) for k, v in row.items()} == want
    assert isinstance(imported, Profile) and imported.fingerprint == kit_protocol.fingerprint()


def test_timing_loop_stopping_rule():
    config = MeasureConfig(warmup=3, min_runs=4, max_runs=10, max_seconds=0.005, rounds=1)
    fast = Scripted([[1_000] * 100])  # 1 us per run: max_runs stops it
    out: list[float] = []
    hwnas_protocol.time_runs(fast.runs()[0], config, out, clock=fast.clock)
    assert len(out) == 10 and len(fast.calls) == 13 and out == [0.001] * 10
    slow = Scripted([[2_000_000] * 100])  # 2 ms per run: the 5 ms budget stops it, after min_runs
    out = []
    hwnas_protocol.time_runs(slow.runs()[0], config, out, clock=slow.clock)
    assert len(out) == 4 and out == [2.0] * 4


class Phased:
    """Two models on a fake clock whose runs take `slowdown` times longer while `slow(call)` holds."""

    def __init__(self, slow, slowdown: float = 1.5) -> None:
        self.now, self.calls, self.slow, self.slowdown = 0, 0, slow, slowdown
        self.pauses: list[float] = []

    def clock(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)

    def runs(self) -> list:
        def run(base_ns: int) -> None:
            self.calls += 1
            self.now += int(base_ns * (self.slowdown if self.slow(self.calls) else 1.0))
        return [lambda: run(100_000), lambda: run(1_000_000)]  # 0.1 ms and 1 ms


GATED = MeasureConfig(warmup=1, min_runs=4, max_runs=4, rounds=3, repeats=0, gate=0.15, gate_retries=2,
                      gate_pause=0.5, probe_runs=3)


def test_slow_phase_rounds_are_measured_again():
    # calls 1-6: the pre-pass; each round then takes 16 calls (2 visits of 1 + 4 runs, 3 reference
    # runs after each): a slow phase over calls 7-38 covers the first two rounds, which are redone
    machine = Phased(lambda call: 7 <= call <= 38)
    results = hwnas_protocol.measure_runs(machine.runs(), GATED, seed=0, clock=machine.clock, sleep=machine.sleep)
    assert machine.pauses == [0.5]  # one pass redid both slow rounds
    assert [m.min_ms for m in results] == [0.1, 1.0]
    assert [m.median_ms for m in results] == [0.1, 1.0]  # no slow run left in the pooled timings
    assert all(len(m.raw_ms) == 3 * 4 and m.slow_rounds == 0 for m in results)


def test_a_machine_slow_for_good_is_measured_and_counted():
    machine = Phased(lambda call: call > 38)  # slow from the third round on
    results = hwnas_protocol.measure_runs(machine.runs(), GATED, seed=0, clock=machine.clock, sleep=machine.sleep)
    assert len(machine.pauses) == GATED.gate_retries  # gave up after its retries
    assert all(m.slow_rounds == 1 and len(m.raw_ms) == 3 * 4 for m in results)
    assert [m.min_ms for m in results] == [0.1, 1.0]  # the fast round still sets the fastest run


@pytest.mark.parametrize("carried", [True, False])
def test_a_remeasured_subset_is_judged_against_the_first_pass(carried):
    """Re-measuring a flagged model alone takes a few seconds: a slow phase can cover all of it.
    Judged against itself it would pass as fast; with the first pass's gate it is redone."""
    machine = Phased(lambda call: 54 < call <= 78 + (0 if carried else 3))  # the subset's whole first try
    rng = np.random.default_rng(0)
    _, _, gate = hwnas_protocol.interleaved_rounds(machine.runs(), GATED, rng, clock=machine.clock,
                                                   sleep=machine.sleep)
    assert machine.calls == 54 and gate is not None and gate.fastest == pytest.approx(0.1)
    timings, slow, _ = hwnas_protocol.interleaved_rounds(machine.runs()[1:], GATED, rng, clock=machine.clock,
                                                         sleep=machine.sleep, gate=gate if carried else None)
    if carried:  # its reference is the first pass's, probed at 0.15 ms against 0.1: every round redone
        assert machine.pauses == [0.5] and slow == 0 and min(timings[0]) == pytest.approx(1.0)
    else:  # its own reference, slow throughout, finds nothing slow
        assert machine.pauses == [] and min(timings[0]) == pytest.approx(1.5)


@pytest.mark.parametrize("shared", [True, False])
def test_chunks_sharing_a_gate_are_judged_against_each_other(shared):
    """A list measured in chunks (a profile): a chunk wholly inside a slow phase passes as fast when it
    is judged against itself; sharing the first chunk's `Gate` its rounds are redone."""
    machine = Phased(lambda call: 54 < call <= 108)  # the first chunk takes calls 1-54, the second is slow
    gate = hwnas_protocol.Gate()
    first = hwnas_protocol.measure_runs(machine.runs(), GATED, seed=0, clock=machine.clock, sleep=machine.sleep,
                                        gate=gate)
    assert machine.calls == 54 and gate.reference is not None and gate.fastest == pytest.approx(0.1)
    assert gate.probes == pytest.approx([0.1] * GATED.rounds)  # every kept round's fastest probe
    second = hwnas_protocol.measure_runs(machine.runs(), GATED, seed=1, clock=machine.clock, sleep=machine.sleep,
                                         gate=gate if shared else None)
    assert [m.min_ms for m in first] == [0.1, 1.0]
    if shared:  # no pre-pass: the first chunk's reference, probed at 0.15 ms against 0.1, so redone
        assert machine.pauses and [m.min_ms for m in second] == pytest.approx([0.1, 1.0])
        assert len(gate.probes) == 2 * GATED.rounds  # the kept rounds only, not the redone ones
    else:  # its own reference, slow throughout, finds nothing slow
        assert not machine.pauses and [m.min_ms for m in second] == pytest.approx([0.15, 1.5])


def test_a_gate_turned_off_is_left_alone():
    machine = Phased(lambda call: False)
    gate = hwnas_protocol.Gate()
    off = MeasureConfig(warmup=1, min_runs=4, max_runs=4, rounds=3, repeats=0, gate=0)
    hwnas_protocol.measure_runs(machine.runs(), off, seed=0, clock=machine.clock, sleep=machine.sleep, gate=gate)
    assert gate.reference is None and machine.calls == 2 * 3 * (1 + 4)


def test_gate_off_takes_no_reference_runs():
    machine = Phased(lambda call: False)
    off = MeasureConfig(warmup=1, min_runs=4, max_runs=4, rounds=3, repeats=0, gate=0)
    hwnas_protocol.measure_runs(machine.runs(), off, seed=0, clock=machine.clock, sleep=machine.sleep)
    assert machine.calls == 2 * 3 * (1 + 4) and not machine.pauses


@pytest.mark.parametrize("bad", [{"gate": -0.1}, {"gate_pause": -1}, {"gate_retries": -1}, {"probe_runs": 1.5},
                                 {"gate": True}])
def test_gate_settings_are_checked(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        MeasureConfig(**bad)


def test_several_threads_measure_in_passes():
    config = MeasureConfig(rounds=6)
    assert config.passes_for(1) == 1 and config.passes_for(2) == 3  # several threads: three passes
    assert MeasureConfig(passes=2).passes_for(1) == 2 and MeasureConfig(passes=1).passes_for(8) == 1  # as set
    assert config.one_pass() == MeasureConfig(rounds=6, passes=1)  # each pass runs every round
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="passes must be a positive integer or None"):
            MeasureConfig(passes=bad)
    with pytest.raises(ValueError, match="pass_gap"):
        MeasureConfig(pass_gap=-1)


def test_runs_of_every_pass_are_pooled():
    config = MeasureConfig(warmup=1, min_runs=4, max_runs=4, rounds=1, repeats=0, gate=0, pass_gap=2.0)
    machine = Phased(lambda call: call <= 10)  # the first of three passes: 2 visits of 1 + 4 runs
    results = hwnas_protocol.measure_runs(machine.runs(), config, seed=0, clock=machine.clock, sleep=machine.sleep,
                                          threads=2)
    assert machine.calls == 3 * 2 * (1 + 4) and all(len(m.raw_ms) == 3 * 4 for m in results)
    assert [m.min_ms for m in results] == [0.1, 1.0] and max(results[1].raw_ms) == pytest.approx(1.5)
    assert len(machine.pauses) == 2 and all(1.99 < p < 2.0 for p in machine.pauses)  # 2 s from start to start
    one = Phased(lambda call: call <= 10)
    single = hwnas_protocol.measure_runs(one.runs(), config, seed=0, clock=one.clock, sleep=one.sleep, threads=1)
    assert one.calls == 2 * (1 + 4) and not one.pauses and single[1].min_ms == pytest.approx(1.5)
