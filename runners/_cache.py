"""The accuracy cache of a supernet: no architecture's accuracy is evaluated twice.

One SQLite table per run folder (RUN/accuracy_cache.sqlite), keyed by the checkpoint's
SHA-256 (the weights file named in RUN/supernet/checkpoint.json), the split and the
architecture (its canonical JSON). Every search on that supernet reads and appends it:
the searches of every device, named searches, and re-runs of `hwnas search`. A retrained
checkpoint has another hash, so its searches never see the old accuracies.

SQLite rather than a parquet file: several searches (devices side by side, or two
`hwnas search` processes) append to it at once, and each append is one transaction, so a
killed search leaves the table whole. Searches side by side in one process also share
what is being evaluated: an architecture one search is evaluating is waited for by the
others, not evaluated again. (Two separate processes that meet the same new architecture
at the same moment may both evaluate it; the table keeps one row.)
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ._errors import UserInputError

CACHE_FILE = "accuracy_cache.sqlite"
SCHEMA_VERSION = 1

# (cache file, checkpoint, split, arch) -> set when its accuracy is stored: the evaluations in
# flight in this process, so searches side by side never evaluate one architecture twice.
_IN_FLIGHT: dict[tuple[str, str, str, str], threading.Event] = {}
_IN_FLIGHT_LOCK = threading.Lock()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accuracy (
    checkpoint_sha256 TEXT NOT NULL,
    split TEXT NOT NULL,
    arch TEXT NOT NULL,
    accuracy REAL NOT NULL,
    examples INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (checkpoint_sha256, split, arch)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def checkpoint_hash(meta: dict[str, Any]) -> str:
    """The SHA-256 of the checkpoint's weights file, from its manifest (`load_checkpoint`'s meta)."""
    try:
        return str(meta["files"]["weights"]["sha256"])
    except (KeyError, TypeError):
        raise UserInputError("the checkpoint manifest names no weights hash (files.weights.sha256)") from None


class AccuracyCache:
    """Accuracies of one checkpoint on one split, stored in `path` and shared by every search.

    `wrap(evaluate)` returns an evaluation function that answers stored architectures from
    the table and evaluates (then stores) only the others; `hits` and `new` count both
    since this object was made.
    """

    def __init__(self, path: str | Path, checkpoint_sha256: str, *, split: str = "val", examples: int = 0) -> None:
        self.path = Path(path)
        self.checkpoint_sha256, self.split, self.examples = checkpoint_sha256, split, int(examples)
        self.hits = 0
        self.new = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as db:
                db.executescript(_SCHEMA)
                db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                found = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise UserInputError(f"{self.path} is not a readable accuracy cache ({exc}); move it away") from None
        if found != str(SCHEMA_VERSION):
            raise UserInputError(f"{self.path} has schema version {found}; this hwnas reads {SCHEMA_VERSION}")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60.0)  # waits while another search appends

    def lookup(self, keys: Sequence[str]) -> dict[str, float]:
        """Stored accuracies of the architectures `keys` (canonical JSON); missing ones left out."""
        out: dict[str, float] = {}
        with self._connect() as db:
            for start in range(0, len(keys), 500):  # SQLite's limit on bound parameters
                chunk = list(keys[start:start + 500])
                marks = ",".join("?" * len(chunk))
                rows = db.execute(f"SELECT arch, accuracy FROM accuracy WHERE checkpoint_sha256 = ? AND split = ? "
                                  f"AND arch IN ({marks})", [self.checkpoint_sha256, self.split, *chunk])
                out.update(rows)
        return out

    def store(self, keys: Sequence[str], values: Sequence[float]) -> None:
        now = time.time()
        with self._connect() as db:  # one transaction
            db.executemany("INSERT OR IGNORE INTO accuracy VALUES (?, ?, ?, ?, ?, ?)",
                           [(self.checkpoint_sha256, self.split, k, float(v), self.examples, now)
                            for k, v in zip(keys, values)])

    def __len__(self) -> int:
        """Accuracies stored for this checkpoint and split."""
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM accuracy WHERE checkpoint_sha256 = ? AND split = ?",
                              (self.checkpoint_sha256, self.split)).fetchone()[0]

    def wrap(self, evaluate: Callable[[list[Any]], np.ndarray]) -> Callable[[list[Any]], np.ndarray]:
        """`evaluate(archs) -> accuracies`, answered from the table where it can be."""
        def cached(archs: list[Any]) -> np.ndarray:
            keys = [a.to_json() for a in archs]  # canonical JSON, as in search files
            with _IN_FLIGHT_LOCK:  # claim what nobody stores or evaluates yet
                stored = self.lookup(keys)
                mine, claimed, theirs = [], set(), []
                for i, k in enumerate(keys):
                    if k in stored or k in claimed:
                        continue
                    event = _IN_FLIGHT.get(self._flight(k))
                    if event is None:
                        _IN_FLIGHT[self._flight(k)] = threading.Event()
                        mine.append(i)
                        claimed.add(k)
                    else:
                        theirs.append(event)
            try:
                if mine:
                    values = np.asarray(evaluate([archs[i] for i in mine]), dtype=np.float64)
                    self.store([keys[i] for i in mine], values)
            finally:
                with _IN_FLIGHT_LOCK:
                    for i in mine:
                        _IN_FLIGHT.pop(self._flight(keys[i])).set()
            for event in theirs:
                event.wait()
            stored = self.lookup(keys)
            missing = [k for k in keys if k not in stored]  # another search's evaluation failed
            if missing:
                return cached(archs)
            self.hits += len(keys) - len(mine)
            self.new += len(mine)
            return np.array([stored[k] for k in keys], dtype=np.float64)

        return cached

    def _flight(self, key: str) -> tuple[str, str, str, str]:
        return (str(self.path.resolve()), self.checkpoint_sha256, self.split, key)

    def summary(self) -> dict[str, Any]:
        return {"file": self.path.name, "checkpoint_sha256": self.checkpoint_sha256, "split": self.split,
                "hits": self.hits, "new_evaluations": self.new, "stored": len(self)}

    def line(self) -> str:
        return f"accuracy cache: {self.hits} hits, {self.new} new evaluations ({len(self)} stored for this checkpoint)"


__all__ = ["AccuracyCache", "CACHE_FILE", "checkpoint_hash"]
