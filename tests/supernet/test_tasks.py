"""Task loaders: built-in splits and specs, and every bad `.npz` case ending in one clear line."""

from __future__ import annotations

import numpy as np
import pytest

from supernet import InputSpec
from supernet.tasks import Task, get_task, task_names


def _check_task(task: Task, spec: InputSpec) -> None:
    assert task.spec == spec
    sizes = []
    for split in ("train", "val", "test"):
        x, y = task.split(split)
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape[1:] == (spec.seq_len, spec.in_features) and y.shape == (len(x),)
        assert np.isfinite(x).all() and y.min() >= 0 and y.max() < spec.num_classes
        assert not x.flags.writeable
        sizes.append(len(x))
    assert min(sizes) > 0
    # splits are disjoint: no training example reappears in val or test
    train_rows = {row.tobytes() for row in task.x_train}
    for split in ("val", "test"):
        overlap = sum(row.tobytes() in train_rows for row in task.split(split)[0])
        assert overlap <= 0.02 * len(task.split(split)[0])  # identical images may exist in the raw data


def test_task_names_lists_builtins():
    assert task_names() == ["digits", "mnist", "mnist1d", "recall", "npz:PATH"]


def test_digits_patches_scaled_and_seeded():
    task = get_task("digits")
    _check_task(task, InputSpec(16, 4, 10))
    assert task.x_train.min() == 0.0 and task.x_train.max() == 1.0
    assert len(task.x_train) + len(task.x_val) + len(task.x_test) == 1797
    again = get_task("digits", seed=0)
    other = get_task("digits", seed=1)
    assert np.array_equal(task.y_val, again.y_val) and np.array_equal(task.x_test, again.x_test)
    assert not np.array_equal(task.y_val, other.y_val)
    # each split holds every class (stratified)
    assert len(np.unique(task.y_val)) == 10 and len(np.unique(task.y_test)) == 10


def test_digits_patch_layout_matches_image():
    from sklearn.datasets import load_digits

    images = load_digits().images / 16.0  # (1797, 8, 8)
    task = get_task("digits")
    # find one training example in the raw set and check its second token is the 2x2 block at row 0, cols 2-3
    token = task.x_train[0].reshape(16, 2, 2)
    match = [i for i in range(len(images)) if np.allclose(images[i][:2, :2], token[0])
             and np.allclose(images[i][:2, 2:4], token[1]) and np.allclose(images[i][6:, 6:], token[15])]
    assert match


@pytest.mark.parametrize("patch, tokens", [(7, 16), (4, 49), (2, 196)])
def test_mnist_patch_sizes(patch, tokens):
    task = get_task("mnist", patch=patch)
    _check_task(task, InputSpec(tokens, patch * patch, 10))
    assert len(task.x_train) + len(task.x_val) + len(task.x_test) == 5000
    assert task.options == {"patch": patch}


def test_mnist_rejects_bad_patch_and_unknown_option():
    with pytest.raises(ValueError, match=r"mnist patch must be one of \(7, 4, 2\), got 5"):
        get_task("mnist", patch=5)
    with pytest.raises(ValueError, match="takes options"):
        get_task("digits", patch=4)


def test_mnist1d_is_generated_locally_and_leaves_global_rng_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    task = get_task("mnist1d", samples=5000, patch=1)
    assert np.array_equal(np.random.get_state()[1], before)
    _check_task(task, InputSpec(40, 1, 10))
    assert len(task.x_test) == 1000 and abs(len(task.x_val) - 1000) <= 5  # stratified rounding
    assert abs(float(task.x_train.mean())) < 1e-3 and abs(float(task.x_train.std()) - 1.0) < 1e-3


def test_mnist1d_default_holds_2000_val_and_test_examples_as_20_tokens():
    task = get_task("mnist1d")
    _check_task(task, InputSpec(20, 2, 10))
    assert task.record() == {"name": "mnist1d", "options": {"samples": 10000, "patch": 2}, "seed": 0,
                             "n_train": 6000, "n_val": 2000, "n_test": 2000}
    one = get_task("mnist1d", samples=10000, patch=1)
    assert np.allclose(task.x_test.reshape(2000, 40), one.x_test.reshape(2000, 40))  # same values, regrouped


def test_mnist1d_length_resamples_the_same_signals_into_longer_sequences():
    long = get_task("mnist1d", samples=200, length=256, patch=1)
    _check_task(long, InputSpec(256, 1, 10))
    assert long.record()["options"] == {"samples": 200, "patch": 1, "length": 256}
    short = get_task("mnist1d", samples=200, patch=1)
    assert np.array_equal(long.y_test, short.y_test)  # the same examples, sampled more finely
    assert get_task("mnist1d", samples=200, length=256, patch=4).spec.seq_len == 64


@pytest.mark.parametrize("options, message", [
    ({"samples": 99}, r"option samples must be an integer in \[100, 1000000\], got 99"),
    ({"patch": 3}, r"option patch must divide length 40 \(e.g. one of \[1, 2, 4, 5, 8, 10, 20, 40\]\), got 3"),
    ({"length": 4}, r"option length must be an integer in \[8, 16384\], got 4"),
    ({"length": 256, "patch": 0}, r"option patch must be an integer in \[1, 256\], got 0"),
])
def test_mnist1d_bad_options_name_the_option_and_range(options, message):
    with pytest.raises(ValueError, match=message):
        get_task("mnist1d", **options)


# --------------------------------------------------------------------- recall
def test_recall_label_is_the_value_stored_with_the_query_key():
    task = get_task("recall", seq_len=24, pairs=5, vocab=9, values=4, n_train=100, n_val=100, n_test=100, seed=3)
    _check_task(task, InputSpec(24, 13, 4, "last"))
    for split in ("train", "val", "test"):
        x, y = task.split(split)
        keys, vals = x[:, :, :9], x[:, :, 9:]
        assert (keys[:, :-1].sum(axis=(1, 2)) == 5).all() and (vals.sum(axis=(1, 2)) == 5).all()
        assert (keys[:, :-1].sum(axis=1).max(axis=1) == 1).all()  # distinct keys per sequence
        assert (vals[:, -1] == 0).all() and (keys[:, -1].sum(axis=1) == 1).all()  # the query: a key alone
        for xi, yi in zip(x, y):
            query = xi[-1, :9].argmax()
            slot = np.flatnonzero(xi[:-1, query])
            assert len(slot) == 1 and xi[slot[0], 9:].argmax() == yi
    again = get_task("recall", seq_len=24, pairs=5, vocab=9, values=4, n_train=100, n_val=100, n_test=100, seed=3)
    assert np.array_equal(again.x_train, task.x_train)
    other = get_task("recall", seq_len=24, pairs=5, vocab=9, values=4, n_train=100, n_val=100, n_test=100, seed=4)
    assert not np.array_equal(other.x_train, task.x_train)
    assert task.record()["options"] == {"seq_len": 24, "pairs": 5, "vocab": 9, "values": 4,
                                        "n_train": 100, "n_val": 100, "n_test": 100}


def test_recall_reaches_1024_tokens():
    task = get_task("recall", seq_len=1024, pairs=16, n_train=100, n_val=100, n_test=100)
    assert task.spec.seq_len == 1024 and task.x_train.shape == (100, 1024, 24)


@pytest.mark.parametrize("options, message", [
    ({"pairs": 32}, r"option pairs must be an integer in \[1, 31\], got 32"),
    ({"seq_len": 1}, r"option seq_len must be an integer in \[2, 8192\], got 1"),
    ({"vocab": 4}, r"option vocab must be an integer in \[8, 4096\], got 4"),
    ({"values": 1}, r"option values must be an integer in \[2, 4096\], got 1"),
    ({"n_val": 50}, r"option n_val must be an integer in \[100, 10000000\], got 50"),
    ({"pairs": "8"}, r"option pairs must be an integer"),
    ({"seq_len": 8192, "n_train": 100000}, r"would hold .* input values"),
    ({"hops": 2}, r"takes options"),
])
def test_recall_bad_options_name_the_option_and_range(options, message):
    with pytest.raises(ValueError, match=message):
        get_task("recall", **options)


def test_readout_is_an_option_of_every_task():
    task = get_task("digits", readout="cls")
    assert task.spec.readout == "cls" and task.spec.tokens == 17 and task.record()["options"] == {"readout": "cls"}
    with pytest.raises(ValueError, match=r"readout must be one of \('mean', 'last', 'cls'\), got 'max'"):
        get_task("digits", readout="max")


def test_unknown_task_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown task 'cifar'; known: \['digits', 'mnist', 'mnist1d', 'recall', 'npz:PATH'\]"):
        get_task("cifar")


# --------------------------------------------------------------------- npz
def _npz(tmp_path, name="data.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return f"npz:{path}"


def _good(n=60, length=8, features=3, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, length, features)) * 5 + 2, np.arange(n) % classes


def test_npz_good_file_splits_and_standardises(tmp_path):
    x, y = _good()
    task = get_task(_npz(tmp_path, x=x, y=y))
    _check_task(task, InputSpec(8, 3, 3))
    assert len(task.x_train) + len(task.x_val) + len(task.x_test) == 60
    assert np.allclose(task.x_train.mean(axis=(0, 1)), 0, atol=1e-5)
    assert np.allclose(task.x_train.std(axis=(0, 1)), 1, atol=1e-4)


def test_npz_2d_inputs_and_given_splits(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {"x": rng.normal(size=(30, 12)), "y": np.arange(30) % 2,
              "x_val": rng.normal(size=(7, 12)), "y_val": np.arange(7) % 2,
              "x_test": rng.normal(size=(5, 12)), "y_test": np.arange(5) % 2, "num_classes": np.int64(4)}
    task = get_task(_npz(tmp_path, **arrays))
    assert task.spec == InputSpec(12, 1, 4)
    assert (len(task.x_train), len(task.x_val), len(task.x_test)) == (30, 7, 5)
    # val/test standardised with training statistics, not their own
    mean, std = arrays["x"].mean(), arrays["x"].std()
    assert np.allclose(task.x_val[..., 0], (arrays["x_val"] - mean) / std, atol=1e-5)


def test_npz_given_val_only_returns_holdout_to_train(tmp_path):
    x, y = _good(n=100)
    xv, yv = _good(n=20, seed=3)
    task = get_task(_npz(tmp_path, x=x, y=y, x_val=xv, y_val=yv))
    assert len(task.x_val) == 20
    assert len(task.x_train) + len(task.x_test) == 100


def _bad_cases(tmp_path):
    x, y = _good()
    yield "missing y", _npz(tmp_path, "a.npz", x=x), r"lacks key\(s\) \['y'\]"
    yield "missing y_val", _npz(tmp_path, "b.npz", x=x, y=y, x_val=x), r"lacks key\(s\) \['y_val'\]"
    yield "length mismatch", _npz(tmp_path, "c.npz", x=x, y=y[:-1]), r"y must be \(60,\) to match x"
    yield "val shape", _npz(tmp_path, "d.npz", x=x, y=y, x_val=x[:, :4], y_val=y), "x_val shape .* does not match x"
    yield "4-d x", _npz(tmp_path, "e.npz", x=x[..., None], y=y), r"must be \(N, L\) or \(N, L, F\)"
    xn = x.copy()
    xn[3, 2, 1] = np.nan
    xn[5, 0, 0] = np.inf
    yield "nan/inf", _npz(tmp_path, "f.npz", x=xn, y=y), "x holds 2 NaN or inf value"
    yield "one class", _npz(tmp_path, "g.npz", x=x, y=np.zeros(60, dtype=int)), "at least 2 classes"
    yield "negative label", _npz(tmp_path, "h.npz", x=x, y=y - 1), r"labels must lie in \[0, 1\], got -1"
    yield "label >= num_classes", _npz(tmp_path, "i.npz", x=x, y=y, num_classes=np.int64(2)), \
        r"labels must lie in \[0, 1\], got 2"
    yield "float labels", _npz(tmp_path, "j.npz", x=x, y=y + 0.5), "integer labels"
    yield "string inputs", _npz(tmp_path, "k.npz", x=np.full((60, 8), "a"), y=y), "real numbers"
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip archive at all")
    yield "garbage file", f"npz:{garbage}", "unreadable as .npz"
    truncated = tmp_path / "truncated.npz"
    np.savez(truncated, x=x, y=y)
    truncated.write_bytes(truncated.read_bytes()[:200])
    yield "truncated file", f"npz:{truncated}", "unreadable as .npz"
    yield "missing file", f"npz:{tmp_path / 'nope.npz'}", "does not exist"
    yield "no path", "npz:", "needs a path"
    yield "too few", _npz(tmp_path, "l.npz", x=x[:6], y=y[:6]), "needs at least 10 examples"
    obj = tmp_path / "object.npz"
    np.savez(obj, x=np.array([[1], [2, 3]], dtype=object), y=np.array([0, 1]))
    yield "pickled objects", f"npz:{obj}", "unreadable as .npz"


def test_npz_bad_files_raise_one_clear_line(tmp_path):
    cases = list(_bad_cases(tmp_path))
    assert len(cases) == 17
    for label, name, pattern in cases:
        with pytest.raises(ValueError, match=pattern) as info:
            get_task(name)
        message = str(info.value)
        assert "\n" not in message, label
        assert not isinstance(info.value.__cause__, Exception) or info.value.__suppress_context__, label


def test_npz_takes_no_options(tmp_path):
    x, y = _good()
    with pytest.raises(ValueError, match="takes only the option 'readout'"):
        get_task(_npz(tmp_path, x=x, y=y), patch=4)
    assert get_task(_npz(tmp_path, x=x, y=y), readout="last").spec.readout == "last"
