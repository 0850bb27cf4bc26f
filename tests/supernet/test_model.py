"""Supernet forward, weight sharing, extraction equality, fake quantization."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from supernet import Arch, LayerConfig, Supernet, attention_types
from supernet.attention import get_attention
from supernet.quant import fake_quant_activation, fake_quant_weight


def uniform(space, depth, attention, quant, heads=None, ffn=None, embed=None):
    layer = LayerConfig(heads or max(space.heads), ffn or max(space.ffn_ratios), attention, quant)
    return Arch(embed or max(space.embed_dims), (layer,) * depth)


@pytest.fixture(scope="module")
def net(tiny_space, tiny_spec):
    return Supernet(tiny_space, tiny_spec, seed=0).eval()


@pytest.mark.parametrize("attention", attention_types())  # every registered type
@pytest.mark.parametrize("quant", ["fp32", "int8"])
@pytest.mark.parametrize("depth", [1, 3])
def test_extract_matches_supernet(net, tiny_space, tiny_spec, attention, quant, depth):
    arch = uniform(tiny_space, depth, attention, quant, heads=1, ffn=2, embed=16)
    x = torch.randn(5, tiny_spec.seq_len, tiny_spec.in_features)
    sub = net.extract(arch)
    with torch.no_grad():
        assert (net(x, arch) - sub(x)).abs().max().item() <= 1e-5
    assert sub(x).shape == (5, tiny_spec.num_classes)


def test_extract_mixed_layers_and_no_unused_weights(net, tiny_space, tiny_spec):
    rng = np.random.default_rng(0)
    x = torch.randn(4, tiny_spec.seq_len, tiny_spec.in_features)
    for _ in range(10):
        arch = tiny_space.sample(rng)
        sub = net.extract(arch)
        with torch.no_grad():
            assert (net(x, arch) - sub(x)).abs().max().item() <= 1e-5
        assert len(sub.blocks) == arch.depth
        for block, layer in zip(sub.blocks, arch.layers):
            assert block.q.weight.shape == (layer.heads * tiny_space.head_dim, arch.embed_dim)
            assert block.fc1.weight.shape == (layer.ffn_ratio * arch.embed_dim, arch.embed_dim)


def test_forward_holds_no_subnet_state(net, tiny_space, tiny_spec):
    x = torch.randn(3, tiny_spec.seq_len, tiny_spec.in_features)
    a, b = tiny_space.largest(), tiny_space.smallest()
    with torch.no_grad():
        first = net(x, a)
        net(x, b)
        assert torch.equal(first, net(x, a))


def test_weights_are_shared_by_leading_slices(tiny_space, tiny_spec):
    net = Supernet(tiny_space, tiny_spec, seed=0)
    small = tiny_space.smallest()
    sub = net.extract(small)
    assert torch.equal(sub.blocks[0].q.weight, net.blocks[0].q.weight[: tiny_space.head_dim, :16])
    # a gradient step on the smallest subnet only touches its slice
    loss = net(torch.randn(2, tiny_spec.seq_len, tiny_spec.in_features), small).sum()
    loss.backward()
    grad = net.blocks[0].fc1.weight.grad
    assert grad[: 16, :16].abs().sum() > 0 and grad[16:].abs().sum() == 0 and net.blocks[1].q.weight.grad is None


def test_same_seed_same_weights(tiny_space, tiny_spec):
    a = Supernet(tiny_space, tiny_spec, seed=3).state_dict()
    b = Supernet(tiny_space, tiny_spec, seed=3).state_dict()
    c = Supernet(tiny_space, tiny_spec, seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if k.endswith("weight"))


def test_unknown_attention_type_lists_known(tiny_spec):
    from supernet import SearchSpace

    space = SearchSpace(attentions=("softmax", "sparse"))
    with pytest.raises(ValueError, match=r"unknown attention type 'sparse'; known: \['linear', 'local', 'softmax'\]"):
        Supernet(space, tiny_spec)
    assert attention_types() == ["linear", "local", "softmax"]


def test_local_attention_equals_masked_full_attention():
    torch.manual_seed(0)
    for n, w in [(16, 4), (13, 4), (5, 8), (32, 3)]:
        q, k, v = (torch.randn(2, 3, n, 8) for _ in range(3))
        scores = (q @ k.transpose(-2, -1)) * 8**-0.5
        i = torch.arange(n)
        scores = scores.masked_fill((i[:, None] - i[None, :]).abs() > w, float("-inf"))
        expected = scores.softmax(-1) @ v
        got = get_attention("local")(q, k, v, window=w)
        assert (got - expected).abs().max() < 1e-5


def test_linear_attention_equals_its_quadratic_form():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 20, 8) for _ in range(3))
    fq, fk = torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1
    weights = fq @ fk.transpose(-2, -1)
    expected = (weights / weights.sum(-1, keepdim=True)) @ v
    assert (get_attention("linear")(q, k, v, window=4) - expected).abs().max() < 1e-5


def test_fake_quant_follows_onnxruntime_rules():
    w = torch.tensor([[0.5, -1.27, 0.0], [2.0, 1.0, -0.25]])
    q = fake_quant_weight(w)
    scale = w.abs().amax(1, keepdim=True) / 64  # onnxruntime's reduced int8 range, exact without VNNI
    assert torch.allclose(q, torch.round(w / scale) * scale)
    assert (q / scale).round().abs().max() <= 64
    x = torch.tensor([0.3, 1.2, 2.55])  # min(0, x) = 0 -> zero point 0, scale 2.55 / 255
    assert torch.allclose(fake_quant_activation(x), torch.round(x / 0.01) * 0.01)
    # straight-through gradient
    x = torch.randn(10, requires_grad=True)
    fake_quant_activation(x).sum().backward()
    assert torch.equal(x.grad, torch.ones(10))


def test_activation_ranges_are_per_example():
    """Batched fake quant equals one-example-at-a-time fake quant (deployment is batch 1)."""
    x = torch.randn(6, 5, 7) * torch.arange(1, 7).reshape(6, 1, 1)
    batched = fake_quant_activation(x)
    single = torch.cat([fake_quant_activation(x[i : i + 1]) for i in range(6)])
    assert torch.equal(batched, single)
