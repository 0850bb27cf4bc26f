"""Run config: defaults, TOML, CLI overrides, validation with one clear message."""

from __future__ import annotations

import pytest

from runners._errors import UserInputError
from runners.config import RunConfig, load_config


def test_defaults_are_the_main_job():
    c = RunConfig()
    assert c.task.name == "digits" and c.profile.device == "cpu"
    assert c.search.objectives == ("accuracy", "latency", "size") and c.executor.kind == "local"


def test_toml_then_flags(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('seed = 3\n[train]\nepochs = 2\n[search]\nalgorithm = "nsga2"\nbudget = 40\n'
                    'objectives = ["accuracy", "latency"]\n[space]\nembed_dims = [16, 32]\nhead_dim = 8\n')
    c = load_config(path)
    assert (c.seed, c.train.epochs, c.search.algorithm, c.search.budget) == (3, 2, "nsga2", 40)
    assert c.space_obj().embed_dims == (16, 32)
    d = c.with_overrides(**{"search.budget": 10, "train.epochs": None, "seed": 5})
    assert (d.search.budget, d.train.epochs, d.seed) == (10, 2, 5)


@pytest.mark.parametrize("text, message", [
    ("[train]\nepoch = 2\n", r"unknown key\(s\) \['epoch'\] in \[train\]"),
    ("[serch]\nbudget = 2\n", r"unknown config section\(s\) \['serch'\]"),
    ("[search]\nbudget = 0\n", "search.budget must be > 0, got 0"),
    ("[search]\nbudget = 'many'\n", "search.budget must be a number, got 'many'"),
    ("[search]\nobjectives = ['accuracy', 'speed']\n", "unknown objective 'speed'"),
    ("[search]\nobjectives = ['latency', 'size']\n", "must include 'accuracy'"),
    ("[executor]\nkind = 'slurm'\n", "executor must be one of"),
    ("[space]\ndepths = [0]\n", r"bad \[space\] in config: depths must hold positive integers"),
    ("[train\n", "cannot read config"),
])
def test_bad_config_names_the_problem(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(UserInputError, match=message):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
