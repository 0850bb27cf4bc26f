"""The Python API a user sees: each package names its public API, and the README's Python
example runs as written (tiny space, digits, 1 epoch, 10 profiled subnets, 6 evaluations)."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
PACKAGES = ["supernet", "hwprofiles", "predictors", "search", "runners"]


def readme_snippet() -> str:
    text = README.read_text()
    found = re.search(r"<!-- python-api:begin -->\s*```python\n(.*?)```\s*<!-- python-api:end -->", text, re.S)
    assert found, "README.md lost its Python API example (between the python-api markers)"
    return found.group(1)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_is_listed_and_importable(name):
    package = importlib.import_module(name)
    assert isinstance(package.__all__, (list, tuple)) and len(set(package.__all__)) == len(package.__all__)
    for public in package.__all__:
        assert getattr(package, public) is not None, public
    listed = set(package.__all__)
    stray = [n for n in vars(package) if not n.startswith("_") and n not in listed
             and not isinstance(getattr(package, n), ModuleType)]
    if name == "runners":  # owned here; the other packages' stray names are reported, not enforced
        assert not stray, stray


def test_readme_example_imports_only_public_names():
    for module, names in re.findall(r"^from (\w+) import (.+)$", readme_snippet(), re.M):
        if module in PACKAGES:
            listed = set(importlib.import_module(module).__all__)
            assert {n.strip() for n in names.split(",")} <= listed, (module, names)


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(readme_snippet(), str(README), "exec"), namespace)

    out = tmp_path / "results" / "api"
    result, manifest, front = namespace["result"], namespace["manifest"], namespace["front"]
    assert len(pd.read_parquet(out / "search" / "candidates.parquet")) == len(result.candidates) == 6
    assert len(namespace["profile"].table) == 10 and (out / "profile" / "profile.json").exists()
    assert (out / "supernet" / "checkpoint.json").exists()
    assert json.loads((out / "export" / "manifest.json").read_text()) == json.loads(json.dumps(manifest))
    models = manifest["models"]
    assert [m["kind"] for m in models].count("front") == len(front) >= 1
    assert manifest["latency_statistic"] == "min_ms" and manifest["task"]["name"] == "digits"
    for m in models:
        assert (out / m["onnx_path"]).stat().st_size == m["size_bytes"]
        assert m["measured_latency_min_ms"] > 0 and 0 <= m["onnx_test_accuracy"] <= 1
