"""Search space: validation, genome round trip, sampling, serialisation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supernet import DEFAULT_SPACE, Arch, LayerConfig, SearchSpace


def test_default_space_choices():
    s = DEFAULT_SPACE
    assert s.embed_dims == (64, 96, 128)
    assert s.depths == (1, 2, 3, 4, 5, 6)
    assert s.heads == (1, 2, 4) and s.ffn_ratios == (1, 2, 4)
    assert s.attentions == ("softmax", "linear", "local") and s.quants == ("fp32", "int8")
    assert s.genome_length == 2 + 4 * 6


def test_size_matches_enumeration(tiny_space):
    small = SearchSpace(embed_dims=(8,), depths=(1, 2), heads=(1,), ffn_ratios=(1, 2),
                        attentions=("softmax", "linear"), quants=("fp32", "int8"), head_dim=4)
    archs = list(small.iter_all())
    assert len(archs) == len(set(archs)) == small.size == 8 + 64


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_genome_round_trip(seed):
    arch = DEFAULT_SPACE.sample(seed)
    genome = DEFAULT_SPACE.encode(arch)
    assert genome.shape == (DEFAULT_SPACE.genome_length,)
    assert DEFAULT_SPACE.decode(genome) == arch
    mask = DEFAULT_SPACE.active_mask(genome)
    assert mask.sum() == 2 + 4 * arch.depth
    assert (genome[~mask] == 0).all()  # inactive layers are masked in the canonical genome


@settings(max_examples=100, deadline=None)
@given(genome=st.lists(st.integers(0, 1), min_size=26, max_size=26), noise=st.integers(0, 2**16))
def test_inactive_genes_do_not_matter(genome, noise):
    genome = np.array(genome)
    arch = DEFAULT_SPACE.decode(genome)
    rng = np.random.default_rng(noise)
    noisy = genome.copy()
    inactive = ~DEFAULT_SPACE.active_mask(genome)
    noisy[inactive] = rng.integers(0, DEFAULT_SPACE.cardinalities[inactive])
    assert DEFAULT_SPACE.decode(noisy) == arch
    assert (DEFAULT_SPACE.canonical(noisy) == DEFAULT_SPACE.encode(arch)).all()


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_json_round_trip_and_hash(seed):
    arch = DEFAULT_SPACE.sample(seed)
    again = Arch.from_json(arch.to_json())
    assert again == arch and hash(again) == hash(arch)
    assert json.loads(arch.to_json())["embed_dim"] == arch.embed_dim


def test_sampling_is_deterministic_for_a_seed():
    a = DEFAULT_SPACE.sample_many(20, np.random.default_rng(7))
    b = DEFAULT_SPACE.sample_many(20, np.random.default_rng(7))
    c = DEFAULT_SPACE.sample_many(20, np.random.default_rng(8))
    assert a == b and a != c
    assert len(set(a)) == 20


def test_sample_many_refuses_more_than_the_space_holds():
    small = SearchSpace(embed_dims=(8,), depths=(1,), heads=(1,), ffn_ratios=(1,),
                        attentions=("softmax",), quants=("fp32", "int8"), head_dim=4)
    with pytest.raises(ValueError, match="cannot draw 3 distinct architectures from a space of 2"):
        small.sample_many(3, 0)


def test_largest_and_smallest():
    big, small = DEFAULT_SPACE.largest(), DEFAULT_SPACE.smallest()
    assert big.embed_dim == 128 and big.depth == 6
    assert all(l == LayerConfig(4, 4, "softmax", "fp32") for l in big.layers)
    assert small.embed_dim == 64 and small.depth == 1
    assert small.layers[0] == LayerConfig(1, 1, "softmax", "fp32")


@pytest.mark.parametrize(
    "arch, message",
    [
        (Arch(80, (LayerConfig(1, 1, "softmax", "fp32"),)), r"embed_dim must be one of \(64, 96, 128\), got 80"),
        (Arch(64, ()), r"depth must be one of \(1, 2, 3, 4, 5, 6\), got 0"),
        (Arch(64, (LayerConfig(3, 1, "softmax", "fp32"),)), r"layers\[0\]\.heads must be one of \(1, 2, 4\), got 3"),
        (Arch(64, (LayerConfig(1, 1, "softmax", "fp32"), LayerConfig(1, 8, "softmax", "fp32"))),
         r"layers\[1\]\.ffn_ratio must be one of \(1, 2, 4\), got 8"),
        (Arch(64, (LayerConfig(1, 1, "sparse", "fp32"),)), r"layers\[0\]\.attention must be one of .*got 'sparse'"),
        (Arch(64, (LayerConfig(1, 1, "softmax", "int4"),)), r"layers\[0\]\.quant must be one of .*got 'int4'"),
    ],
)
def test_validation_names_field_choices_and_value(arch, message):
    with pytest.raises(ValueError, match=message):
        DEFAULT_SPACE.validate(arch)
    assert not DEFAULT_SPACE.contains(arch)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"embed_dims": ()}, "embed_dims must list at least one choice"),
        ({"depths": (1, 1)}, "depths must not repeat a choice"),
        ({"heads": (0, 1)}, "heads must hold positive integers, got 0"),
        ({"quants": ("fp32", "fp16")}, r"quants must be among \('fp32', 'int8'\), got 'fp16'"),
        ({"head_dim": -4}, "head_dim must be a positive integer, got -4"),
    ],
)
def test_space_declaration_is_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SearchSpace(**kwargs)


def test_decode_rejects_bad_genomes():
    with pytest.raises(ValueError, match="genome must have length 26"):
        DEFAULT_SPACE.decode([0, 0])
    genome = np.zeros(26, dtype=int)
    genome[0] = 3
    with pytest.raises(ValueError, match=r"gene embed_dim must lie in \[0, 2\], got 3"):
        DEFAULT_SPACE.decode(genome)


def test_from_dict_rejects_unknown_keys_and_bad_layers():
    with pytest.raises(ValueError, match="an arch needs exactly the keys"):
        Arch.from_dict({"embed_dim": 64})
    with pytest.raises(ValueError, match="layer 0 needs exactly the keys"):
        Arch.from_dict({"embed_dim": 64, "layers": [{"heads": 1}]})


def test_space_from_toml(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('[space]\nembed_dims = [32, 64]\ndepths = [1, 2]\nheads = [1, 2]\n'
                    'ffn_ratios = [2]\nattentions = ["softmax", "local"]\nquants = ["fp32"]\n'
                    'head_dim = 16\nlocal_window = 8\n')
    space = SearchSpace.from_toml(path)
    assert space.embed_dims == (32, 64) and space.attentions == ("softmax", "local")
    assert space.local_window == 8
    assert SearchSpace.from_dict(json.loads(json.dumps(space.to_dict()))) == space
    path.write_text("[space]\nembed_dim = [32]\n")
    with pytest.raises(ValueError, match=r"unknown search-space setting\(s\) \['embed_dim'\]"):
        SearchSpace.from_toml(path)
    path.write_text("[space\n")
    with pytest.raises(ValueError, match="cannot read search space"):
        SearchSpace.from_toml(path)
