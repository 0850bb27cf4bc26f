"""Exported models are measured in at least two passes, the accuracy evaluation between them,
each model's runs pooled; the manifest keeps each pass's fastest run beside the pooled figure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwprofiles import MeasureConfig, fingerprint, get_device
from runners._errors import UserInputError
from runners.config import ExportSettings
from runners.exporting import ExportItem, export_models, export_protocol
from supernet import SearchSpace, Supernet

QUICK = MeasureConfig(warmup=1, min_runs=3, max_runs=5, max_seconds=0.005, rounds=2, repeats=0)
SPACE = SearchSpace(embed_dims=(16,), depths=(1, 2), heads=(1,), ffn_ratios=(1,), head_dim=8, local_window=4)


def test_export_protocol_adds_a_pass_and_keeps_a_multi_pass_device_as_it_is():
    assert ExportSettings().passes == 2
    one = export_protocol(QUICK, threads=1, passes=2)
    assert one.passes_for(1) == 2 and one.pass_gap == 0  # the accuracy evaluation is the gap
    assert export_protocol(one, threads=1, passes=2) == one  # applying it twice changes nothing
    several = export_protocol(QUICK, threads=2, passes=2)
    assert several.passes_for(2) == 3 and several.pass_gap == QUICK.pass_gap  # its own three passes, own gap
    assert export_protocol(QUICK, threads=1, passes=1).passes_for(1) == 1
    for bad in (0, -1, True, 1.5):
        with pytest.raises(UserInputError, match="passes over the exported models must be a positive integer"):
            export_protocol(QUICK, threads=1, passes=bad)


def test_manifest_keeps_each_pass_and_pools_them(tmp_path):
    from supernet.tasks import get_task

    task = get_task("digits", seed=0)
    supernet = Supernet(SPACE, task.spec, seed=0)
    items = [ExportItem("front-00", "front", SPACE.smallest()), ExportItem("front-01", "front", SPACE.largest())]
    manifest = export_models(supernet=supernet, space=SPACE, task=task, items=items,
                             predict_ms=lambda archs: np.full(len(archs), 0.05), device=get_device("cpu"),
                             measure_config=export_protocol(QUICK, threads=1, passes=2), out_dir=tmp_path / "export",
                             fingerprint=fingerprint(), seed=0)
    assert manifest["measure_config"]["passes"] == 2
    for m in manifest["models"]:
        by_pass = m["measured_latency_min_ms_by_pass"]
        assert len(by_pass) == 2 and m["measured_latency_min_ms"] == min(by_pass)
        assert 0 <= m["onnx_test_accuracy"] <= 1  # evaluated between the passes
    stored = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert stored["models"][0]["measured_latency_min_ms_by_pass"] == manifest["models"][0]["measured_latency_min_ms_by_pass"]
