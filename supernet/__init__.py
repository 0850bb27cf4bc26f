"""Search space, elastic transformer supernet, extraction and ONNX export.

The search space and analytic costs import no torch; the torch parts load on first use,
so `search/` and `predictors/` can use the space without pulling in torch.
"""

from importlib import import_module
from typing import Any

from ._atomic import atomic_write
from .accuracy import binomial_se, format_accuracy, within_noise
from .cost import Cost, InputSpec, arch_cost
from .space import DEFAULT_SPACE, LAYER_FIELDS, QUANT_POLICIES, Arch, Gene, LayerConfig, SearchSpace
from .tasks import Task, get_task, register_task, task_names

_LAZY = {
    "Supernet": "model",
    "Subnet": "model",
    "SubnetPart": "model",
    "TokenEmbedding": "model",
    "LayerStack": "model",
    "ClassifierHead": "model",
    "Exportable": "export",
    "register_attention": "attention",
    "get_attention": "attention",
    "attention_types": "attention",
    "export_onnx": "export",
    "check_export": "export",
    "ExportCheck": "export",
    "TrainConfig": "train",
    "TrainResult": "train",
    "train_supernet": "train",
    "train_standalone": "train",
    "tune_briefly": "train",
    "tuned_accuracies": "train",
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "read_checkpoint_meta": "checkpoint",
    "evaluate_archs": "evaluate",
    "evaluate_module": "evaluate",
}

__all__ = [
    "Arch", "Cost", "DEFAULT_SPACE", "Gene", "InputSpec", "LAYER_FIELDS", "LayerConfig",
    "QUANT_POLICIES", "SearchSpace", "Task", "arch_cost", "atomic_write", "binomial_se", "format_accuracy",
    "get_task", "within_noise", "register_task", "task_names", *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'supernet' has no attribute {name!r}")
