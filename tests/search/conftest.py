"""Fixtures of the search tests: small spaces and synthetic problems with an analytic
"accuracy", so every algorithm can be checked quickly, and an enumerable space whose exact
Pareto front is known. Helpers reach the tests as fixtures."""

from __future__ import annotations

import numpy as np
import pytest

from search import SearchProblem, accuracy_objective, flops_objective, size_objective
from supernet import Arch, InputSpec, SearchSpace, arch_cost

ATTENTION_GAIN = {"softmax": 0.04, "linear": 0.0, "local": 0.02}


def synthetic_accuracy(space: SearchSpace, spec: InputSpec):
    """A smooth, saturating accuracy in [0, 1]: more parameters help, softmax attention
    helps, int8 costs a little; so size and accuracy trade off like the real problem."""

    def fn(archs: list[Arch]) -> np.ndarray:
        out = []
        for a in archs:
            params = arch_cost(a, space, spec).params
            layer = np.mean([ATTENTION_GAIN.get(x.attention, 0.0) - (0.03 if x.quant == "int8" else 0.0)
                             for x in a.layers])
            out.append(0.45 + 0.45 * (1 - np.exp(-params / 15000)) + layer + 0.01 * a.depth)
        return np.clip(out, 0.0, 1.0)

    return fn


class CountingFn:
    """Wraps a batch fn and counts the architectures it was called on (the real cost)."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.archs: list[Arch] = []

    def __call__(self, archs):
        self.archs += list(archs)
        return self.fn(archs)


def make_problem(space: SearchSpace, spec: InputSpec, *, constraints=(), three=False, fn=None) -> SearchProblem:
    objectives = [accuracy_objective(fn or synthetic_accuracy(space, spec)), size_objective(space, spec)]
    if three:
        objectives.append(flops_objective(space, spec))
    return SearchProblem(space, tuple(objectives), tuple(constraints))


@pytest.fixture(scope="session")
def problem_factory():
    """`make_problem(space, spec, *, constraints=(), three=False, fn=None)`."""
    return make_problem


@pytest.fixture(scope="session")
def counting():
    """`CountingFn(fn)`: a batch fn that records the architectures it was called on."""
    return CountingFn


@pytest.fixture(scope="session")
def enum_space() -> SearchSpace:
    """544 architectures: small enough to enumerate the exact front."""
    return SearchSpace(embed_dims=(16, 32), depths=(1, 2), heads=(1, 2), ffn_ratios=(1, 2),
                       attentions=("softmax", "linear"), quants=("fp32", "int8"), head_dim=8, local_window=4)


@pytest.fixture(scope="session")
def tiny_problem(tiny_space, tiny_spec) -> SearchProblem:
    return make_problem(tiny_space, tiny_spec, three=True)
