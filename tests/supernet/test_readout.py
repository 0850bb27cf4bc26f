"""Readouts (mean / last / class token) and per-attention-type projections: the supernet,
its extracted subnets and their ONNX exports compute the same function."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from supernet import InputSpec, arch_cost, export_onnx
from supernet.model import Subnet, Supernet


@pytest.mark.parametrize("readout", ["mean", "last", "cls"])
@pytest.mark.parametrize("attention_weights", ["shared", "per_type"])
def test_extracted_subnet_matches_the_supernet(tiny_space, readout, attention_weights):
    spec = InputSpec(12, 3, 5, readout)
    net = Supernet(tiny_space, spec, seed=1, attention_weights=attention_weights).eval()
    x = torch.randn(6, 12, 3, generator=torch.Generator().manual_seed(0))
    for arch in tiny_space.sample_many(4, 0):
        with torch.no_grad():
            assert torch.allclose(net(x, arch), net.extract(arch)(x), atol=1e-5)


def test_readout_decides_what_the_classifier_sees(tiny_space):
    arch = tiny_space.largest()
    x = torch.randn(2, 12, 3)
    last = Supernet(tiny_space, InputSpec(12, 3, 5, "last"), seed=0).eval()
    mean = Supernet(tiny_space, InputSpec(12, 3, 5, "mean"), seed=0).eval()
    mean.load_state_dict(last.state_dict())
    with torch.no_grad():  # same weights, another readout: other logits
        assert not torch.allclose(last(x, arch), mean(x, arch))
        # the last-token readout is the head applied to the final normalised last token
        h = last.extract(arch)
        tokens = h.embed_tokens(x)
        for block in h.blocks:
            tokens = block(tokens)
        assert torch.allclose(last(x, arch), h.head(h.norm(tokens)[:, -1]), atol=1e-6)
    cls = Supernet(tiny_space, InputSpec(12, 3, 5, "cls"), seed=0)
    assert cls.pos.shape[0] == 13 and cls.cls is not None
    assert arch_cost(arch, tiny_space, InputSpec(12, 3, 5, "cls")).params == \
        arch_cost(arch, tiny_space, InputSpec(12, 3, 5, "mean")).params + 13 * arch.embed_dim - 12 * arch.embed_dim \
        + arch.embed_dim


def test_per_type_projections_are_separate_weights(tiny_space):
    net = Supernet(tiny_space, InputSpec(12, 3, 5), seed=0, attention_weights="per_type")
    block = net.blocks[0]
    assert set(block.attn) == set(tiny_space.attentions)
    a, b = tiny_space.attentions[:2]
    assert block.projections(a).q.weight.data_ptr() != block.projections(b).q.weight.data_ptr()
    with pytest.raises(ValueError, match="attention_weights must be one of"):
        Supernet(tiny_space, InputSpec(12, 3, 5), attention_weights="split")


@pytest.mark.parametrize("readout", ["last", "cls"])
def test_onnx_export_checks_itself_with_every_readout(tiny_space, tmp_path, readout):
    spec = InputSpec(12, 3, 5, readout)
    sub = Subnet.initialised(tiny_space, spec, tiny_space.largest(), seed=3)
    check = export_onnx(sub, tmp_path / "m.onnx")
    assert check.rel_err < 1e-4


def test_initialised_subnets_are_seeded():
    from supernet import DEFAULT_SPACE

    spec = InputSpec(8, 2, 3)
    arch = DEFAULT_SPACE.smallest()
    a, b = (Subnet.initialised(DEFAULT_SPACE, spec, arch, seed=s) for s in (1, 1))
    c = Subnet.initialised(DEFAULT_SPACE, spec, arch, seed=2)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.blocks[0].q.weight, c.blocks[0].q.weight)
    # fan-in scaled to its own width (64), not the supernet's largest
    assert abs(float(a.blocks[0].fc1.weight.detach().std()) * np.sqrt(64) - 0.88) < 0.2


@pytest.mark.parametrize("seq_len, readout", [(15, "last"), (16, "cls"), (13, "mean")])
def test_local_attention_exports_when_tokens_are_not_a_multiple_of_the_window(seq_len, readout, tmp_path):
    from supernet import Arch, LayerConfig, SearchSpace

    space = SearchSpace(embed_dims=(16,), depths=(2,), heads=(1,), ffn_ratios=(1,), attentions=("local",),
                        head_dim=8, local_window=4)
    arch = Arch(16, (LayerConfig(1, 1, "local", "fp32"),) * 2)
    sub = Subnet.initialised(space, InputSpec(seq_len, 3, 4, readout), arch, seed=0)
    assert export_onnx(sub, tmp_path / "m.onnx").rel_err < 1e-4
