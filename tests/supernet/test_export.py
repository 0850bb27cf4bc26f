"""ONNX export: parity with torch, int8 exactly where the policy says, file sizes, cost shape."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from supernet import Arch, InputSpec, LayerConfig, SearchSpace, Supernet, arch_cost, attention_types, export_onnx


def _arch(space, quants, attention="softmax", embed=32):
    return Arch(embed, tuple(LayerConfig(2, 2, attention, q) for q in quants))


@pytest.fixture(scope="module")
def net(tiny_space, tiny_spec):
    return Supernet(tiny_space, tiny_spec, seed=1).eval()


@pytest.mark.parametrize("attention", attention_types())  # every registered type
@pytest.mark.parametrize("quants", [("fp32",), ("int8",), ("fp32", "int8", "fp32")])
def test_onnx_parity(net, tiny_space, tmp_path, attention, quants):
    sub = net.extract(_arch(tiny_space, quants, attention))
    check = export_onnx(sub, tmp_path / "m.onnx")
    assert check.passed and check.n_inputs == 512
    if "int8" in quants:
        assert check.rel_err <= 5e-2 and check.top1_agreement >= 0.99
    else:
        assert check.rel_err <= 1e-4 and check.top1_agreement == 1.0


def test_only_int8_layers_are_quantized(net, tiny_space, tmp_path):
    sub = net.extract(_arch(tiny_space, ("fp32", "int8", "fp32")))
    export_onnx(sub, tmp_path / "m.onnx")
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    integer = [n.name for n in graph.node if n.op_type == "MatMulInteger"]
    assert len(integer) == 6  # q, k, v, o, fc1, fc2 of layer 1
    assert all(name.startswith("/blocks.1/") for name in integer)
    float_matmuls = [n.name for n in graph.node if n.op_type == "MatMul"]
    assert any(n.startswith("/blocks.0/q/") for n in float_matmuls)
    assert any(n.startswith("/blocks.2/fc2/") for n in float_matmuls)
    assert not any(n.startswith("/blocks.1/q/") for n in float_matmuls)


def test_dynamic_batch_axis(net, tiny_space, tiny_spec, tmp_path):
    sub = net.extract(_arch(tiny_space, ("fp32", "fp32"), "local"))
    export_onnx(sub, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 7):
        x = np.random.default_rng(0).standard_normal((batch, tiny_spec.seq_len, tiny_spec.in_features), dtype=np.float32)
        out = session.run(None, {"x": x})[0]
        with torch.no_grad():
            assert np.allclose(out, sub(torch.from_numpy(x)).numpy(), atol=1e-5)


def test_file_size_reflects_policy(tmp_path):
    space = SearchSpace()
    spec = InputSpec(seq_len=16, in_features=4, num_classes=10)
    net = Supernet(space, spec, seed=0)
    sizes = {}
    for name, quants in {"fp32": ("fp32",) * 4, "mixed": ("int8", "fp32") * 2, "int8": ("int8",) * 4}.items():
        arch = Arch(128, tuple(LayerConfig(4, 4, "softmax", q) for q in quants))
        export_onnx(net.extract(arch), tmp_path / f"{name}.onnx", check=False)
        sizes[name] = (tmp_path / f"{name}.onnx").stat().st_size
        # the analytic size (used as a search objective) tracks the real file within 10%
        assert abs(arch_cost(arch, space, spec).size_bytes - sizes[name]) / sizes[name] < 0.10
    assert sizes["int8"] < 0.4 * sizes["fp32"]
    assert sizes["int8"] < sizes["mixed"] < sizes["fp32"]


def test_failed_check_leaves_no_file(net, tiny_space, tmp_path):
    from supernet.export import check_export

    sub = net.extract(_arch(tiny_space, ("fp32",)))
    path = tmp_path / "m.onnx"
    export_onnx(sub, path)
    other = net.extract(_arch(tiny_space, ("fp32",), embed=16))  # a different model
    assert not check_export(other, path, n_inputs=16).passed
    with pytest.raises(ValueError, match="opset must be >= 17"):
        export_onnx(sub, tmp_path / "x.onnx", opset=13)
    assert not (tmp_path / "x.onnx").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temp files left behind


def _largest_square(model: onnx.ModelProto, n: int) -> int:
    """How many inferred tensors have two axes of length >= n (an N x N matrix)."""
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)  # resolves Reshape targets
    count = 0
    for value in list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim if d.dim_value]
        if sum(d >= n for d in dims) >= 2:
            count += 1
    return count


@pytest.mark.parametrize("attention, quadratic", [("softmax", True), ("linear", False), ("local", False)])
def test_no_n_by_n_tensor_for_linear_and_local(tmp_path, attention, quadratic):
    n = 1024
    space = SearchSpace(embed_dims=(32,), depths=(1, 2), heads=(2,), ffn_ratios=(2,), head_dim=16, local_window=8)
    spec = InputSpec(seq_len=n, in_features=4, num_classes=10)
    net = Supernet(space, spec, seed=0)
    arch = Arch(32, (LayerConfig(2, 2, attention, "fp32"),) * 2)
    export_onnx(net.extract(arch), tmp_path / "m.onnx", check=False)
    assert (_largest_square(onnx.load(str(tmp_path / "m.onnx")), n) > 0) is quadratic


def test_shape_inference_resolves_every_intermediate(tmp_path):
    """Guard for the test above: it only means something if shapes are actually inferred."""
    space = SearchSpace(embed_dims=(32,), depths=(1,), heads=(2,), ffn_ratios=(2,), head_dim=16, local_window=8)
    spec = InputSpec(seq_len=256, in_features=4, num_classes=10)
    net = Supernet(space, spec, seed=0)
    for attention in ("linear", "local"):
        export_onnx(net.extract(Arch(32, (LayerConfig(2, 2, attention, "fp32"),))), tmp_path / "m.onnx", check=False)
        inferred = onnx.shape_inference.infer_shapes(onnx.load(str(tmp_path / "m.onnx")), data_prop=True)
        ranked = [v for v in inferred.graph.value_info if v.type.tensor_type.shape.dim]
        assert len(ranked) > 50 and any(256 in [d.dim_value for d in v.type.tensor_type.shape.dim] for v in ranked)


# ------------------------------------------------------------------ parts of subnets (profiled blocks)
@pytest.mark.parametrize("attention", attention_types())  # every registered type
@pytest.mark.parametrize("quant", ["fp32", "int8"])
def test_layer_part_exports_through_the_one_exporter(net, tmp_path, attention, quant):
    part = net.extract_layer(32, LayerConfig(2, 2, attention, quant))
    assert part.input_shape() == (16, 32) and part.output_name == "y"
    check = export_onnx(part, tmp_path / "layer.onnx")
    assert check.passed and check.rel_err <= (5e-2 if quant == "int8" else 1e-4)
    assert np.isnan(check.top1_agreement)  # tokens out, not logits
    graph = onnx.load(str(tmp_path / "layer.onnx")).graph
    integer = sorted(n.name for n in graph.node if n.op_type == "MatMulInteger")
    if quant == "int8":  # the same node names a subnet's first layer has
        assert part.int8_linears() == [f"blocks.0.{m}" for m in ("q", "k", "v", "o", "fc1", "fc2")]
        assert integer == sorted(f"/blocks.0/{m}/MatMul_quant" for m in ("q", "k", "v", "o", "fc1", "fc2"))
    else:
        assert integer == [] and part.int8_linears() == []


@pytest.mark.parametrize("readout", ["mean", "cls"])
def test_embedding_and_head_parts(tmp_path, tiny_space, readout):
    spec = InputSpec(seq_len=16, in_features=4, num_classes=10, readout=readout)
    net = Supernet(tiny_space, spec, seed=2).eval()
    embed, head = net.extract_embedding(16), net.extract_head(16)
    assert embed.input_shape() == (16, 4) and head.input_shape() == (spec.tokens, 16)
    assert export_onnx(embed, tmp_path / "embed.onnx").passed
    check = export_onnx(head, tmp_path / "head.onnx")
    assert check.passed and check.top1_agreement == 1.0
    # The parts are the subnet's own pieces: chained, they compute the subnet.
    layer = LayerConfig(2, 2, "softmax", "int8")
    sub = net.extract(Arch(16, (layer,)))
    x = torch.randn(3, spec.seq_len, spec.in_features)
    with torch.no_grad():
        chained = head(net.extract_layer(16, layer)(embed(x)))
        assert torch.equal(chained, sub(x))


def test_export_takes_only_exportable_modules(net, tiny_space, tmp_path):
    with pytest.raises(TypeError, match="export_onnx takes a Subnet or a SubnetPart.*got Linear"):
        export_onnx(torch.nn.Linear(4, 4), tmp_path / "m.onnx")
    sub = net.extract(_arch(tiny_space, ("fp32", "int8", "int8")))
    assert sub.int8_linears() == [f"blocks.{i}.{m}" for i in (1, 2) for m in ("q", "k", "v", "o", "fc1", "fc2")]
    with pytest.raises(ValueError, match="embed_dim must be one of \\(16, 32\\), got 24"):
        net.extract_embedding(24)
    with pytest.raises(ValueError, match="heads must be one of \\(1, 2\\), got 3"):
        net.extract_layer(32, LayerConfig(3, 2, "softmax", "fp32"))
    assert not any(tmp_path.iterdir())
