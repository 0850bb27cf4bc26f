"""Run config: defaults, TOML, CLI overrides, validation with one clear message."""

from __future__ import annotations

import pytest

from runners._errors import UserInputError
from runners.config import RunConfig, load_config


def test_defaults_are_the_main_job():
    c = RunConfig()
    assert c.task.name == "mnist1d" and c.task.options == {} and c.profile.device == "cpu"
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
    ("[train]\nattention_weights = 'split'\n", r"bad \[train\] setting: attention_weights must be one of"),
    ("[train]\nsandwich_choices = 'last'\n", r"bad \[train\] setting: sandwich_choices must be one of"),
    ("[train]\nepochs = 0\n", r"bad \[train\] setting: epochs must be a positive integer, got 0"),
    ("[task]\nname = 3\n", "task.name must be a task name, got 3"),
    ("[task]\noptions = 3\n", "task.options must be a table, got 3"),
])
def test_bad_config_names_the_problem(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(UserInputError, match=message):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_task_options_in_toml_flat_or_as_a_table(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[task]\nname = "recall"\nseq_len = 64\n[task.options]\npairs = 16\n')
    c = load_config(path)
    assert c.task.name == "recall" and c.task.options == {"seq_len": 64, "pairs": 16}
    other = c.with_overrides(**{"task.name": "digits"})  # another task drops the options
    assert other.task.options == {}
    more = c.with_overrides(**{"task.options": {"pairs": 8}})
    assert more.task.options == {"seq_len": 64, "pairs": 8}


def test_train_settings_defaults_are_train_configs():
    from dataclasses import fields

    from supernet.train_config import TrainConfig

    settings, config = RunConfig().train, TrainConfig()
    for f in fields(settings):
        if f.name != "threads":
            assert getattr(settings, f.name) == getattr(config, f.name), f.name
    assert settings.train_config(seed=4) == TrainConfig(seed=4)


def test_shipped_configs_load():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "configs"
    configs = {p.name: load_config(p) for p in sorted(folder.glob("*.toml"))}
    assert {"long.toml", "ranked.toml"} <= set(configs)
    ranked = configs["ranked.toml"]
    assert ranked.train.epochs == 10 and ranked.search.tune_steps == 360 and ranked.search.tune_lr == 2e-3
    assert ranked.search.accuracy_split() == "val, tuned 360 steps at lr 0.002"
