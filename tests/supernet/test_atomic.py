"""The shared atomic write: all or nothing, ordinary permissions, no temp files left."""

from __future__ import annotations

import os

import pytest

from supernet import atomic_write


def test_writes_and_replaces_with_ordinary_permissions(tmp_path):
    path = tmp_path / "sub" / "f.json"
    atomic_write(path, lambda tmp: tmp.write_text("one"))
    atomic_write(path, lambda tmp: tmp.write_text("two"))
    assert path.read_text() == "two"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in path.parent.iterdir()] == ["f.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "f.json"
    path.write_text("kept")

    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]
