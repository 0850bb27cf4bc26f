"""Command line, pipelines and executors (local, Ray).

The Python API of the main job: `RunConfig` / `load_config` (settings), `run_pipeline`
(every stage of a run folder), the stages on their own (`search_run`, `export_run`,
`export_front`, `write_report`, `finetune_run`, `measure_matrix`), the accuracy cache every
search on a supernet shares (`AccuracyCache`), and `UserInputError` / `user_errors` (bad
input). Names load on first use, so `hwnas --help` stays quick.
"""

from importlib import import_module as _import_module
from typing import Any as _Any

__version__ = "0.1.0"

_LAZY = {
    "UserInputError": "_errors",
    "user_errors": "_errors",
    "RunConfig": "config",
    "TaskSettings": "config",
    "TrainSettings": "config",
    "ProfileSettings": "config",
    "SearchSettings": "config",
    "ExportSettings": "config",
    "FinetuneSettings": "config",
    "ExecutorSettings": "config",
    "load_config": "config",
    "config_from_dict": "config",
    "load_space": "config",
    "RunState": "pipeline",
    "STAGES": "pipeline",
    "build_problem": "pipeline",
    "export_front": "pipeline",
    "export_run": "pipeline",
    "open_run": "pipeline",
    "read_run": "pipeline",
    "run_pipeline": "pipeline",
    "search_run": "pipeline",
    "write_report": "report",
    "AccuracyCache": "_cache",
    "measure_matrix": "matrix",
    "write_cross_device_report": "matrix",
    "finetune_run": "finetune",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        return getattr(_import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'runners' has no attribute {name!r}")
