"""Run configuration: embedded defaults, a TOML file, then CLI flags, in that order.

A TOML config has one table per stage; every key is optional:

    seed = 0
    [task]     name = "mnist1d"  samples = 10000  patch = 2   (any other key is a task option)
    [space]    ...               (see supernet.SearchSpace; omitted: the default space)
    [train]    epochs = 5        batch_size = 32    lr = 2e-3   k_random = 2   threads = 2
               device = "cuda"   (where the supernet and the finetune stage train; measuring
               stays on the target device)   (every supernet.TrainConfig setting; defaults are TrainConfig's)
    [profile]  device = "cpu"    samples = 80       preset = "default"   target = "min_ms"
               devices = ["cpu", "torch-cpu"]   (several target devices; overrides `device`)
               adapt_from = "cpu"   adapt_samples = 20   (other devices adapt this one's predictor)
    [search]   algorithm = "linas"  budget = 100  objectives = ["accuracy", "latency", "size"]
               max_latency_ms = 0.5   max_size_mb = 1.0
               tune_steps = 0   tune_lr = 2e-3   (score each candidate after that many
               fine-tuning updates from its inherited weights; 0: inherited weights as they are)
    [export]   baselines = true   max_front = 8   passes = 2   (passes over the exported models)
    [finetune] enabled = false   epochs = 10   lr = 1e-3   baselines = true
               (epochs, batch_size, lr, weight_decay, warmup_epochs, grad_clip: unset means
               the supernet's [train] value)
    [executor] kind = "local"    ray_address = ""   num_cpus = 2
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from supernet.train_config import TrainConfig

from ._errors import UserInputError, user_errors

SCHEMA_VERSION = 1
OBJECTIVES = ("accuracy", "latency", "size", "flops", "params")


DEFAULT_TASK = "mnist1d"
DEFAULT_SEED = 0


@dataclass(frozen=True)
class TaskSettings:
    """A task name and its options (each task's own defaults fill in the rest)."""

    name: str = DEFAULT_TASK
    options: dict[str, Any] = field(default_factory=dict)


_TRAIN = TrainConfig()


@dataclass(frozen=True)
class TrainSettings:
    """Supernet training settings: `supernet.TrainConfig`'s (its defaults), plus torch threads."""

    epochs: int = _TRAIN.epochs
    batch_size: int = _TRAIN.batch_size
    lr: float = _TRAIN.lr
    weight_decay: float = _TRAIN.weight_decay
    warmup_epochs: float = _TRAIN.warmup_epochs
    grad_clip: float = _TRAIN.grad_clip
    k_random: int = _TRAIN.k_random
    sandwich: bool = _TRAIN.sandwich
    distill: bool = _TRAIN.distill
    sandwich_choices: str = _TRAIN.sandwich_choices
    attention_weights: str = _TRAIN.attention_weights
    # Where the supernet and the finetune stage's models train: "cpu" or "cuda[:N]". Measuring,
    # searching and evaluating stay on the CPU and the target device, so a run made on a GPU
    # machine for a CPU target trains fast and still measures the CPU.
    device: str = _TRAIN.device
    # Torch threads for training and supernet evaluation (never beside a measurement: those run
    # in their own stages). On the 2-core development VM two threads train the default supernet
    # 1.36x and evaluate subnets 1.9x faster than one.
    threads: int = 2

    def train_config(self, seed: int) -> TrainConfig:
        """The supernet's TrainConfig for these settings (raises ValueError on a bad value)."""
        settings = {k: v for k, v in asdict(self).items() if k != "threads"}
        return TrainConfig(**settings, seed=seed)


@dataclass(frozen=True)
class ProfileSettings:
    """The device to profile and how: the measurement protocol's preset name (one of
    `hwprofiles.MeasureConfig.preset`'s) and the latency statistic predictors are fitted to
    (one of the statistics a `hwprofiles.Profile` holds)."""

    device: str = "cpu"
    samples: int = 80
    # The default protocol (3 rounds of up to 0.1 s per model): its fastest runs repeat within
    # ±10% 98% of the time here, the fast preset's only ~60%, for ~15 s more on 80 subnets.
    preset: str = "default"
    # Statistic the latency predictor is fitted to and checked against after export:
    # "min_ms" (fastest timed run) or "median_ms". On shared or virtual machines the
    # median drifts with the neighbours' load while the fastest run repeats (see
    # benchmarks/results/latency_predictors.md), so the fastest run is the default. It is
    # hwprofiles.DEFAULT_TARGET (tests/runners/test_defaults.py holds them equal), written out
    # here so that reading the config does not import hwprofiles and pandas.
    target: str = "min_ms"
    # Passes over the whole list of models measured (hwprofiles.MeasureConfig.passes): 0 lets the
    # device decide (three for several intra-op threads, whose slow states last minutes and hit
    # models unevenly; one for a single thread), and `pass_gap` is the least seconds between the
    # passes' starts.
    passes: int = 0
    pass_gap: float = 60.0
    # Several target devices, one search and one export each (empty: the single `device`).
    devices: tuple[str, ...] = ()
    # A device of `devices` whose predictor the others adapt with `adapt_samples` measurements
    # (predictors.adapt_predictor) instead of being profiled in full; None: profile every one.
    adapt_from: str | None = None
    adapt_samples: int = 20

    def device_names(self) -> tuple[str, ...]:
        """The run's target devices, in order."""
        return tuple(self.devices) if self.devices else (self.device,)

    def measure_config(self):
        """The protocol of `preset` (raises UserInputError naming the known presets)."""
        from hwprofiles import MeasureConfig

        with user_errors("profile.preset: "):
            config = MeasureConfig.preset(self.preset)
        with user_errors("profile: "):
            return replace(config, passes=self.passes or None, pass_gap=self.pass_gap)

    def check(self) -> None:
        from hwprofiles import TARGETS

        _check(not isinstance(self.passes, bool) and isinstance(self.passes, int) and self.passes >= 0,
               f"profile.passes must be 0 (the device decides) or a positive integer, got {self.passes!r}")
        self.measure_config()
        _check(self.target in TARGETS, f"profile.target must be one of {list(TARGETS)}, got {self.target!r}")
        _check(not isinstance(self.samples, bool) and self.samples >= 8,
               f"profile.samples must be >= 8, got {self.samples}")
        names = self.device_names()
        _check(all(isinstance(n, str) and n for n in names), f"profile.devices must be device names, got {names!r}")
        repeated = sorted({n for n in names if names.count(n) > 1})
        _check(not repeated, f"profile.devices names a device more than once: {repeated}")
        _check(self.adapt_from is None or self.adapt_from in names,
               f"profile.adapt_from must be one of the run's devices {list(names)}, got {self.adapt_from!r}")
        _check(self.adapt_from is None or len(names) > 1,
               "profile.adapt_from needs at least two devices (profile.devices)")
        _check(not isinstance(self.adapt_samples, bool) and isinstance(self.adapt_samples, int)
               and self.adapt_samples >= 1, f"profile.adapt_samples must be >= 1, got {self.adapt_samples!r}")


def accuracy_split(tune: dict[str, Any] | None) -> str:
    """The accuracy cache's split key of val accuracies scored with `tune` (a search record's
    `accuracy_tune`; None: inherited weights as they are)."""
    return "val" if tune is None else f"val, tuned {tune['steps']} steps at lr {tune['lr']:g}"


def cli_measure_config(preset: str, passes: int, pass_gap: float):
    """The measurement protocol of a command's --preset, --passes and --pass-gap (UserInputError
    naming the option on a bad value)."""
    if isinstance(passes, bool) or passes < 0:
        raise UserInputError(f"--passes must be 0 (the device decides) or a positive integer, got {passes}")
    if not pass_gap >= 0:
        raise UserInputError(f"--pass-gap must be a non-negative number of seconds, got {pass_gap}")
    return ProfileSettings(preset=preset, passes=passes, pass_gap=pass_gap).measure_config()


@dataclass(frozen=True)
class SearchSettings:
    algorithm: str = "linas"
    budget: int = 100
    objectives: tuple[str, ...] = ("accuracy", "latency", "size")
    max_latency_ms: float | None = None
    max_size_mb: float | None = None
    # Accuracy of each candidate after this many updates from its inherited weights (labels only,
    # AdamW, cosine from tune_lr, one batch order for all): on the default task 360 updates at
    # 2e-3 rank subnets about as a second standalone seed does (Kendall tau 0.78-0.81 against a
    # ceiling of 0.82; inherited weights alone 0.54; with [train] epochs = 10 the largest subnet
    # also lands within a point of its standalone twin), at about 20 s per candidate on one core
    # of the 2-core VM, so it is off by default (benchmarks/results/supernet_quality_*).
    tune_steps: int = 0
    tune_lr: float = 2e-3

    def accuracy_split(self) -> str:
        """The name of the accuracies this search scores: the accuracy cache's split key."""
        return accuracy_split(self.accuracy_tune())

    def accuracy_tune(self) -> dict[str, Any] | None:
        """The fine-tune before scoring (None: inherited weights as they are), as search.json records it."""
        return None if self.tune_steps == 0 else {"steps": self.tune_steps, "lr": self.tune_lr, "batch_size": 32}


@dataclass(frozen=True)
class ExportSettings:
    baselines: bool = True
    # Front models exported, re-measured and re-evaluated: at most this many, spread evenly over
    # the front's predicted latency (the fastest and the slowest always in); 0 exports them all.
    # A 3-objective front on the default task holds ~40 models at ~3 s each to export and check.
    max_front: int = 8
    # Passes over the exported models, pooled (runners.exporting.export_protocol), the test
    # accuracies evaluated between them. In one pass a slow phase that the gate's small reference
    # model does not feel can leave a model 30-50% slow; over seven default runs the second pass
    # brought 10 such models (first pass 1-48% slower) within ±10% of prediction and took none
    # out (benchmarks/results/end_to_end_run38-44). A device measured in more passes (several
    # threads) keeps its own count.
    passes: int = 2


@dataclass(frozen=True)
class FinetuneSettings:
    """The optional finetune stage: exported front models trained on from their inherited
    weights, uniform baselines trained from scratch, all with one recipe.

    Off by default: it trains every exported model (about 20 on the default run) for the
    full budget, which takes tens of minutes on a laptop CPU. Each training setting left
    unset (None) takes the supernet's own training value, so by default the baselines get
    the supernet's recipe.
    """

    enabled: bool = False
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    warmup_epochs: float | None = None
    grad_clip: float | None = None
    baselines: bool = True  # also train the uniform baselines from scratch

    def train_config(self, base: TrainConfig, device: str = "cpu") -> TrainConfig:
        """The one recipe of every fine-tuned and standalone model: `base` (the supernet's
        training config) with this section's settings, trained on `device` (the run's
        `train.device`; it is not part of the recipe); raises UserInputError."""
        overrides = {name: getattr(self, name) for name in _FINETUNE_RECIPE if getattr(self, name) is not None}
        with user_errors("bad finetune setting: ", catch=(TypeError, ValueError)):
            return replace(base, **overrides, device=device)


_FINETUNE_RECIPE = ("epochs", "batch_size", "lr", "weight_decay", "warmup_epochs", "grad_clip")


@dataclass(frozen=True)
class ExecutorSettings:
    kind: str = "local"
    ray_address: str | None = None
    num_cpus: int = 2


@dataclass(frozen=True)
class RunConfig:
    seed: int = DEFAULT_SEED
    task: TaskSettings = field(default_factory=TaskSettings)
    space: dict[str, Any] | None = None
    train: TrainSettings = field(default_factory=TrainSettings)
    profile: ProfileSettings = field(default_factory=ProfileSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)

    def __post_init__(self) -> None:
        check = _check
        check(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        check(isinstance(self.task.name, str) and bool(self.task.name), f"task.name must be a name, got {self.task.name!r}")
        with user_errors("bad [train] setting: "):
            self.train.train_config(self.seed)
        check(isinstance(self.finetune.enabled, bool) and isinstance(self.finetune.baselines, bool),
              "finetune.enabled and finetune.baselines must be true or false")
        self.finetune.train_config(self.train.train_config(self.seed))
        check(self.train.threads > 0, f"train.threads must be > 0, got {self.train.threads}")
        self.profile.check()
        check(self.search.budget > 0, f"search.budget must be > 0, got {self.search.budget}")
        objectives = self.search.objectives
        check(len(objectives) >= 1, "search.objectives must name at least one objective")
        for name in objectives:
            check(name in OBJECTIVES, f"unknown objective {name!r}; known: {list(OBJECTIVES)}")
        check(len(set(objectives)) == len(objectives), f"search.objectives repeats a name: {list(objectives)}")
        check("accuracy" in objectives, "search.objectives must include 'accuracy' (the expensive objective)")
        for name in ("max_latency_ms", "max_size_mb"):
            value = getattr(self.search, name)
            check(value is None or value > 0, f"search.{name} must be > 0, got {value}")
        check(isinstance(self.search.tune_steps, int) and 0 <= self.search.tune_steps <= 100_000,
              f"search.tune_steps must be an integer in 0..100000, got {self.search.tune_steps!r}")
        check(math.isfinite(self.search.tune_lr) and 0 < self.search.tune_lr <= 1,
              f"search.tune_lr must be in (0, 1], got {self.search.tune_lr!r}")
        check(self.executor.kind in ("local", "ray"),
              f"executor must be one of ['local', 'ray'], got {self.executor.kind!r}")
        check(self.executor.num_cpus > 0, f"executor.num_cpus must be > 0, got {self.executor.num_cpus}")
        check(not isinstance(self.export.max_front, bool) and self.export.max_front >= 0,
              f"export.max_front must be >= 0 (0: the whole front), got {self.export.max_front}")
        check(not isinstance(self.export.passes, bool) and isinstance(self.export.passes, int)
              and self.export.passes >= 1, f"export.passes must be a positive integer, got {self.export.passes!r}")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    def space_obj(self):
        from supernet import DEFAULT_SPACE, SearchSpace

        if self.space is None:
            return DEFAULT_SPACE
        with user_errors("bad [space] in config: ", catch=(TypeError, ValueError)):
            return check_space(SearchSpace.from_dict(self.space))

    def with_overrides(self, **overrides: Any) -> "RunConfig":
        """Apply CLI flags given as 'section.key' -> value (None means 'not given')."""
        data = self.to_dict()
        for dotted, value in overrides.items():
            if value is None:
                continue
            section, _, key = dotted.rpartition(".")
            target = data[section] if section else data
            if dotted == "task.name" and value != data["task"]["name"]:
                data["task"]["options"] = {}  # another task: the stored task's options do not apply
            if dotted == "task.options":
                value = {**data["task"]["options"], **value}
            target[key] = value
        return config_from_dict(data)


def check_space(space):
    """`space` if every attention type it declares is registered (raises ValueError naming the
    known ones). The space itself accepts any name so that search/ and predictors/ need no
    torch; a supernet needs each type, so runners check before any stage starts."""
    from supernet import get_attention

    for name in space.attentions:
        get_attention(name)
    return space


def load_space(path: str | Path | None):
    """The search space of a TOML file (`[space]` table or top-level keys), or the default
    space for None; raises UserInputError on a missing, unreadable or invalid file."""
    from supernet import DEFAULT_SPACE, SearchSpace

    if path is None:
        return DEFAULT_SPACE
    if not Path(path).is_file():
        raise UserInputError(f"space file {path} does not exist")
    with user_errors(f"bad search space {path}: ", catch=(TypeError, ValueError, OSError, UnicodeDecodeError)):
        return check_space(SearchSpace.from_toml(path))


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UserInputError(message)


_SECTIONS = {"task": TaskSettings, "train": TrainSettings, "profile": ProfileSettings,
             "search": SearchSettings, "export": ExportSettings, "finetune": FinetuneSettings,
             "executor": ExecutorSettings}


def _task_section(data: Any) -> TaskSettings:
    """[task]: `name`, and every other key (or an `options` table) is one of the task's options."""
    if not isinstance(data, dict):
        raise UserInputError(f"[task] must be a table, got {data!r}")
    data = dict(data)
    name = data.pop("name", DEFAULT_TASK)
    options = data.pop("options", {})
    if not isinstance(options, dict):
        raise UserInputError(f"task.options must be a table, got {options!r}")
    if not isinstance(name, str) or not name:
        raise UserInputError(f"task.name must be a task name, got {name!r}")
    merged = {k: v for k, v in {**options, **data}.items() if v is not None}  # None: "not set" in old run files
    return TaskSettings(name=name, options=merged)


def parse_task_options(pairs: list[str] | None) -> dict[str, Any] | None:
    """CLI `--task-option KEY=VALUE` pairs -> options (integers where the value is one)."""
    if not pairs:
        return None
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserInputError(f"--task-option must be KEY=VALUE, got {pair!r}")
        value = value.strip()
        try:
            options[key.strip()] = int(value)
        except ValueError:
            options[key.strip()] = value
    return options


def _section(cls: type, data: Any, name: str) -> Any:
    if cls is TaskSettings:
        return _task_section(data)
    if not isinstance(data, dict):
        raise UserInputError(f"[{name}] must be a table, got {data!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UserInputError(f"unknown key(s) {unknown} in [{name}]; known: {sorted(known)}")
    values = {}
    for key, value in data.items():
        default = getattr(cls(), key)
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        elif isinstance(default, bool) and not isinstance(value, bool):
            raise UserInputError(f"{name}.{key} must be true or false, got {value!r}")
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserInputError(f"{name}.{key} must be a number, got {value!r}")
            value = type(default)(value) if isinstance(default, float) else value
        values[key] = value
    return cls(**values)


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    known = {"seed", "space", *_SECTIONS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserInputError(f"unknown config section(s) {unknown}; known: {sorted(known)}")
    kwargs: dict[str, Any] = {name: _section(cls, data[name], name) for name, cls in _SECTIONS.items() if name in data}
    if "seed" in data:
        if isinstance(data["seed"], bool) or not isinstance(data["seed"], int):
            raise UserInputError(f"seed must be an integer, got {data['seed']!r}")
        kwargs["seed"] = data["seed"]
    if data.get("space") is not None:
        kwargs["space"] = dict(data["space"])
    config = RunConfig(**kwargs)
    config.space_obj()  # validate the space now
    return config


def load_config(path: str | Path | None) -> RunConfig:
    """Defaults, or defaults overridden by a TOML file."""
    if path is None:
        return RunConfig()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserInputError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserInputError(f"cannot read config {path}: {exc}") from None
    return config_from_dict(data)


__all__ = ["DEFAULT_SEED", "DEFAULT_TASK", "RunConfig", "TaskSettings", "parse_task_options", "TrainSettings",
           "ProfileSettings", "SearchSettings", "ExportSettings", "FinetuneSettings", "ExecutorSettings", "load_config",
           "config_from_dict", "check_space", "load_space", "replace"]
