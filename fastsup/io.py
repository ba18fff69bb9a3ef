"""The one atomic writer, and the folder lock that serialises writers of one folder.

Every file fastsup writes (result tensors and manifests, figures, numbers,
sweep chunks) goes through :func:`atomic_path`: it is written under a
temporary name in the same folder, flushed to disk, given the permissions an
ordinary file gets under the user's umask, and renamed over the target in
one step.  A reader therefore sees the old file or the new one, never a
half-written one, whatever happens to the writer.

Temporary names are ``.<name>.<token>.tmp``; a killed writer can leave one
behind, and :func:`remove_stale_temporaries` (called under the folder lock,
so no live writer owns them) deletes them on the next write to that folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from pathlib import Path
from typing import Iterator

TEMP_SUFFIX = ".tmp"
LOCK_FILE = ".fastsup.lock"


def new_token() -> str:
    """A unique id for one write (names temporaries and content files)."""
    return uuid.uuid4().hex


def _normal_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (the folder entry, not just the file, reaches the disk)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit, move what was written there onto ``path``.

    The caller writes the whole file to the yielded path (any writer that
    takes a path: ``save_file``, ``savefig``, ``write_bytes``).  On an
    exception nothing at ``path`` changes and the temporary file is removed.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{new_token()}{TEMP_SUFFIX}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _normal_mode())
        os.replace(tmp, path)
        fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def dumps_json(value) -> str:
    """Strict JSON (no NaN or inf), one key per line, each list on one line."""

    def dump(value, indent: str) -> str:
        if isinstance(value, dict) and value:
            inner = indent + "  "
            items = (f"{inner}{json.dumps(str(k))}: {dump(v, inner)}" for k, v in value.items())
            return "{\n" + ",\n".join(items) + f"\n{indent}}}"
        return json.dumps(value, allow_nan=False, ensure_ascii=False)

    return dump(value, "") + "\n"


def write_json_atomic(path, value) -> Path:
    return write_bytes_atomic(path, dumps_json(value).encode())


def read_json(path, what: str):
    """Parse a JSON file fastsup wrote; anything unreadable is a ValueError that names ``what``."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        kind = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise ValueError(f"{what} is not valid JSON: {kind}") from None


@contextlib.contextmanager
def folder_lock(folder: Path, *, blocking: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (released by the OS if the process dies).

    ``blocking=False``: a folder another process holds is an error at once.
    """
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, _normal_mode())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            raise ValueError(f"{str(folder)!r} is in use by another fastsup process") from None
        yield
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporaries left by killed writers; call only under :func:`folder_lock`."""
    for entry in folder.iterdir():
        if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX) and entry.is_file():
            entry.unlink(missing_ok=True)
