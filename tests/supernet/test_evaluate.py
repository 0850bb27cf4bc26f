"""Subnet evaluation with inherited weights: batched equals one by one, no autograd, eval mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from supernet.evaluate import evaluate_archs, evaluate_module
from supernet.model import Supernet
from supernet.tasks import get_task


@pytest.fixture(scope="module")
def digits():
    return get_task("digits")


@pytest.fixture(scope="module")
def net(tiny_space, digits):
    net = Supernet(tiny_space, digits.spec, seed=0)
    # random weights of a useful scale, so subnets disagree and accuracies differ
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return net


def test_batch_equals_one_by_one(tiny_space, net, digits):
    archs = [tiny_space.largest(), tiny_space.smallest(), *tiny_space.sample_many(10, 1)]
    batch = evaluate_archs(net, archs, digits.x_val, digits.y_val, batch_size=100)
    single = np.array([evaluate_archs(net, [a], digits.x_val, digits.y_val, batch_size=100)[0] for a in archs])
    assert batch.shape == (12,) and np.array_equal(batch, single)
    assert ((batch >= 0) & (batch <= 1)).all() and len(set(batch.tolist())) > 1
    # the data batch size does not change the figures either
    assert np.array_equal(batch, evaluate_archs(net, archs, digits.x_val, digits.y_val, batch_size=512))


def test_accuracy_matches_extracted_subnet(tiny_space, net, digits):
    arch = tiny_space.sample(7)
    inherited = evaluate_archs(net, [arch], digits.x_test, digits.y_test)[0]
    with torch.no_grad():
        pred = net.extract(arch)(torch.from_numpy(np.array(digits.x_test))).argmax(dim=1).numpy()
    assert inherited == pytest.approx(float((pred == digits.y_test).mean()))
    assert evaluate_module(net.extract(arch), digits.x_test, digits.y_test) == pytest.approx(inherited)


def test_runs_without_autograd_and_restores_mode(tiny_space, net, digits):
    net.train()
    seen = []
    hook = net.register_forward_hook(lambda m, i, o: seen.append((torch.is_grad_enabled(), m.training)))
    try:
        evaluate_archs(net, [tiny_space.smallest()], digits.x_val[:50], digits.y_val[:50])
    finally:
        hook.remove()
    assert seen == [(False, False)]
    assert net.training  # the caller's mode is back
    assert all(p.grad is None for p in net.parameters())


def test_bad_inputs_raise(tiny_space, net, digits):
    with pytest.raises(ValueError, match="x must be"):
        evaluate_archs(net, [tiny_space.smallest()], digits.x_val[:, :8], digits.y_val)
    with pytest.raises(ValueError, match="need x"):
        evaluate_archs(net, [tiny_space.smallest()], digits.x_val, digits.y_val[:-1])
    with pytest.raises(ValueError, match="embed_dim must be one of"):
        from supernet import DEFAULT_SPACE

        evaluate_archs(net, [DEFAULT_SPACE.largest()], digits.x_val, digits.y_val)
    with pytest.raises(ValueError, match="batch_size must be positive"):
        evaluate_archs(net, [tiny_space.smallest()], digits.x_val, digits.y_val, batch_size=0)
