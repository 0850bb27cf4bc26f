"""Shared fixtures: a tiny search space and input spec keep the default run fast on 2 cores."""

from __future__ import annotations

import os

import pytest

# Tests measure with one thread each so two xdist workers do not fight over the two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def tiny_space():
    from supernet import SearchSpace

    return SearchSpace(embed_dims=(16, 32), depths=(1, 2, 3), heads=(1, 2), ffn_ratios=(1, 2),
                       head_dim=8, local_window=4)


@pytest.fixture(scope="session")
def tiny_spec():
    from supernet import InputSpec

    return InputSpec(seq_len=16, in_features=4, num_classes=10)
