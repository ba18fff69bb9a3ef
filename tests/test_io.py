"""The one atomic writer: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import os

import pytest

from fastsup import io


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "numbers.json"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with io.atomic_path(path) as tmp:
            tmp.write_bytes(b'{"half": ')
            raise KeyboardInterrupt
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["numbers.json"]
    io.write_bytes_atomic(path, b"new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["numbers.json"]


def test_written_files_get_ordinary_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        io.write_bytes_atomic(tmp_path / "a", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o640


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    (tmp_path / ".result.json.0123.tmp").write_text("left by a killed writer")
    (tmp_path / "keep.tmp").write_text("not ours: no leading dot")
    (tmp_path / "data").write_text("x")
    with io.folder_lock(tmp_path):
        io.remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".fastsup.lock", "data", "keep.tmp"]


def test_json_is_strict():
    with pytest.raises(ValueError):
        io.dumps_json({"loss": float("nan")})
    assert io.dumps_json({"a": [1, 2], "b": {"c": None}}) == '{\n  "a": [1, 2],\n  "b": {\n    "c": null\n  }\n}\n'
