"""The estimator contract shared by every predictor, its registry, and state stored as JSON plus arrays.

Like scikit-learn: `__init__` stores keyword-only hyperparameters unchanged; `fit(X, y)`
returns self; learned state lives in attributes ending in ``_``; `predict` before `fit`
raises. Targets and predictions are latencies in ms (positive). X is any finite numeric
matrix (n_rows, n_features): features of this project's space or of any other table.
Predictions never fall below `floor_`, half the fastest latency fitted on (a model that
extrapolates below it predicts an artefact, not a latency).

State for persistence (`get_state` / `set_state`): learned numpy arrays go to an array
store (safetensors), everything else learned to JSON; a nested estimator (a
hyperparameter or a learned attribute) is stored under its own key prefix.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

_REGISTRY: dict[str, type["Estimator"]] = {}
FLOOR_FRACTION = 0.5  # predictions stay >= this fraction of the fastest fitted latency
_LEGACY_FLOOR_MS = 1e-6  # the floor of estimators saved before `floor_` was learned


class NotFittedError(ValueError, AttributeError):
    """`predict` called before `fit`."""


class Estimator(ABC):
    """Base class: subclasses implement `fit` and `predict` and set `name`."""

    name: ClassVar[str]

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray) -> "Estimator": ...

    @abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray: ...

    # ------------------------------------------------------------------ sklearn-ish
    def get_params(self) -> dict[str, Any]:
        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self"}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def _learned(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def is_fitted(self) -> bool:
        return bool(self._learned())

    def _check_fitted(self) -> None:
        if not self.is_fitted():
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X, y) first")

    @staticmethod
    def _check_xy(X: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"X must be a non-empty 2-d array, got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("X must hold finite values only")
        if y is None:
            return X, None
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
        if not np.all(np.isfinite(y)) or np.any(y <= 0):
            raise ValueError("latencies y must be positive and finite")
        return X, y

    def _check_n_features(self, X: np.ndarray) -> None:
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have {self.n_features_in_} features, got {X.shape[1]}")

    def _learn_floor(self, y: np.ndarray) -> None:
        """Store the prediction floor (ms) from the fitted latencies `y`."""
        self.floor_ = float(FLOOR_FRACTION * y.min())

    def _clip(self, predicted: np.ndarray) -> np.ndarray:
        """Predictions raised to the floor: never negative, never absurdly tiny."""
        return np.maximum(predicted, getattr(self, "floor_", _LEGACY_FLOOR_MS))

    def _check_predict(self, X: np.ndarray) -> np.ndarray:
        """`X` as a validated float array for `predict`: fitted, finite, right width."""
        self._check_fitted()
        X, _ = self._check_xy(X)
        self._check_n_features(X)
        return X

    # ------------------------------------------------------------------ persistence
    def get_state(self, prefix: str = "") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able description, arrays) of hyperparameters and learned state."""
        arrays: dict[str, np.ndarray] = {}

        def encode(key: str, value: Any) -> Any:
            if isinstance(value, Estimator):
                desc, sub = value.get_state(f"{prefix}{key}.")
                arrays.update(sub)
                return {"__estimator__": desc}
            if isinstance(value, np.ndarray):
                arrays[f"{prefix}{key}"] = np.ascontiguousarray(value)
                return {"__array__": f"{prefix}{key}"}
            if isinstance(value, list) and value and all(isinstance(v, np.ndarray) for v in value):
                return {"__arrays__": [encode(f"{key}.{i}", v)["__array__"] for i, v in enumerate(value)]}
            if isinstance(value, (np.floating, np.integer)):
                return value.item()
            return value

        desc = {"name": self.name,
                "params": {k: encode(k, v) for k, v in self.get_params().items()},
                "learned": {k: encode(k, v) for k, v in self._learned().items()}}
        return desc, arrays

    @staticmethod
    def from_state(desc: dict[str, Any], arrays: dict[str, np.ndarray]) -> "Estimator":
        def decode(value: Any) -> Any:
            if isinstance(value, dict) and "__estimator__" in value:
                return Estimator.from_state(value["__estimator__"], arrays)
            if isinstance(value, dict) and "__array__" in value:
                return arrays[value["__array__"]]
            if isinstance(value, dict) and "__arrays__" in value:
                return [arrays[k] for k in value["__arrays__"]]
            return value

        est = get_estimator(desc["name"], **{k: decode(v) for k, v in desc["params"].items()})
        for k, v in desc["learned"].items():
            setattr(est, k, decode(v))
        return est


def register_estimator(cls: type[Estimator]) -> type[Estimator]:
    """Class decorator: make an estimator available by its `name`; a name taken by another class raises."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"an estimator needs a non-empty string `name` to be registered, got {name!r}")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not cls:
        raise ValueError(f"estimator name {name!r} is already registered by {existing.__module__}."
                         f"{existing.__qualname__}; choose another name (known: {list(_REGISTRY)})")
    _REGISTRY[name] = cls
    return cls


def estimator_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get_estimator(name: str, **params: Any) -> Estimator:
    """A new (unfitted) estimator by registered name; unknown names list the known ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown predictor {name!r}; known: {list(_REGISTRY)}")
    return _REGISTRY[name](**params)

