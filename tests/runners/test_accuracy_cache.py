"""The accuracy cache: stored accuracies are read, never evaluated again; another checkpoint
hash sees none of them; a broken file is bad input."""

from __future__ import annotations

import numpy as np
import pytest

from runners._cache import AccuracyCache, checkpoint_hash
from runners._errors import UserInputError


@pytest.fixture
def archs(tiny_space):
    rng = np.random.default_rng(0)
    out = list(dict.fromkeys(tiny_space.sample(rng) for _ in range(40)))
    return out[:8]


class Counting:
    """An accuracy function that records which architectures it was asked for."""

    def __init__(self) -> None:
        self.asked: list = []

    def __call__(self, archs):
        self.asked += list(archs)
        return np.array([(hash(a.to_json()) % 1000) / 1000 for a in archs])


def test_each_architecture_is_evaluated_once_across_caches_of_one_file(tmp_path, archs):
    path = tmp_path / "cache.sqlite"
    evaluate = Counting()
    first = AccuracyCache(path, "a" * 64, examples=269)
    cached = first.wrap(evaluate)
    values = cached(archs[:5])
    assert len(evaluate.asked) == 5 and (first.hits, first.new) == (0, 5)
    again = cached(archs[3:8])  # two seen, three new
    assert evaluate.asked[5:] == archs[5:8]
    assert (first.hits, first.new) == (2, 8) and len(first) == 8
    assert np.array_equal(again[:2], values[3:5])

    second = AccuracyCache(path, "a" * 64, examples=269)  # another search, same supernet
    out = second.wrap(evaluate)(list(reversed(archs)))
    assert len(evaluate.asked) == 8 and (second.hits, second.new) == (8, 0)
    assert np.array_equal(out, Counting()(list(reversed(archs))))
    assert "8 hits, 0 new evaluations" in second.line()


def test_another_checkpoint_or_split_sees_no_stored_accuracy(tmp_path, archs):
    path = tmp_path / "cache.sqlite"
    AccuracyCache(path, "a" * 64).wrap(Counting())(archs)
    retrained = AccuracyCache(path, "b" * 64)
    evaluate = Counting()
    retrained.wrap(evaluate)(archs)
    assert len(evaluate.asked) == len(archs) and retrained.hits == 0
    test_split = AccuracyCache(path, "a" * 64, split="test")
    assert len(test_split) == 0 and test_split.lookup([a.to_json() for a in archs]) == {}


def test_a_broken_cache_file_is_one_clear_error(tmp_path):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"not a database, just bytes" * 100)
    with pytest.raises(UserInputError, match="is not a readable accuracy cache"):
        AccuracyCache(path, "a" * 64)
    with pytest.raises(UserInputError, match="names no weights hash"):
        checkpoint_hash({"files": {}})
    assert checkpoint_hash({"files": {"weights": {"sha256": "c" * 64}}}) == "c" * 64


def test_searches_side_by_side_never_evaluate_one_architecture_twice(tmp_path, archs):
    import threading
    import time

    path = tmp_path / "cache.sqlite"
    asked: list = []
    lock = threading.Lock()
    barrier = threading.Barrier(2)

    def slow(batch):
        with lock:
            asked.extend(batch)
        time.sleep(0.2)  # keep the evaluation in flight while the other search asks
        return Counting()(batch)

    results = {}

    def search(name: str, order) -> None:
        cache = AccuracyCache(path, "a" * 64)
        evaluate = cache.wrap(slow)
        barrier.wait()
        results[name] = (cache, [evaluate([a]) for a in order])

    threads = [threading.Thread(target=search, args=("one", archs)),
               threading.Thread(target=search, args=("two", archs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.to_json() for a in asked) == sorted(a.to_json() for a in archs)  # each exactly once
    one, two = results["one"][0], results["two"][0]
    assert one.new + two.new == len(archs) and one.hits + two.hits == len(archs)
    assert [float(v[0]) for v in results["one"][1]] == [float(v[0]) for v in results["two"][1]]
