"""Output paths that cannot escape their directory, and files that appear whole or not at all.

Every output path is built from names validated by `features.ids` and then checked again here
to lie inside its base directory (a defence in depth against a name that slipped through).
Files are written to a temporary name in the same directory, flushed to disk and renamed over
the target, so a failure (disk full, kill) leaves the previous file or none, never half a file.
A staging directory is created by `new_staging_dir` with a name unique to this process, and
only such a directory is ever removed recursively (`remove_staging_dir`).
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from features.errors import ConfigError, EnvironmentFailure

_STAGING_MARK = ".staging-"
_created: set[Path] = set()  # staging directories this process made (the only rmtree targets)


def safe_path(base: Path, *parts: str) -> Path:
    """`base/part/...` resolved, or ConfigError when it would lie outside `base`."""
    root = Path(base).resolve()
    path = root.joinpath(*parts).resolve()
    if path == root or not path.is_relative_to(root):
        raise ConfigError(
            f"{'/'.join(parts)!r} would be written outside {root}; names may not contain "
            "'/', '..' or start with '/' (example: run-2026-11-02)"
        )
    return path


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """An OSError while writing `path` becomes one line naming it (exit 1: the environment)."""
    try:
        yield
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
        what = "disk full" if full else "cannot write"
        raise EnvironmentFailure(f"{what}: {path} ({exc.strerror or exc})") from exc


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it is fsynced and renamed to `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            yield tmp
            with tmp.open("rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` through a temporary file (see `atomic_file`)."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def new_staging_dir(parent: Path, name: str) -> Path:
    """A fresh directory `parent/.<name>.staging-<pid>-<random>` owned by this process."""
    path = safe_path(parent, f".{name}{_STAGING_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    path.mkdir(parents=True)
    _created.add(path)
    return path


def remove_staging_dir(path: Path) -> None:
    """Remove a staging directory this process created; anything else is left alone."""
    path = path.resolve()
    if path in _created and _STAGING_MARK in path.name:
        shutil.rmtree(path, ignore_errors=True)
        _created.discard(path)


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable (POSIX: fsync the directory)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs: leftovers of dead processes may be cleaned up."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, under another user
        return True
    return True
