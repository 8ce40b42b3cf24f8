"""Write files so that a crash never leaves a half-written file that looks complete."""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The file's data reaches the disk before the rename, and the rename before this returns:
    otherwise a power cut could leave `path` renamed into place but empty, or gone."""
    path = Path(path)
    _make_folders(path.parent)
    tmp = _new_file_beside(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _make_folders(folder: Path) -> None:
    """mkdir -p, with each new folder's entry in its parent flushed to the disk: the fsync of
    the file's own folder after the rename does not make that folder's entry durable, so a
    power cut could otherwise lose a whole new folder with the files renamed into it."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for new in reversed(missing):
        try:
            os.mkdir(new)
        except FileExistsError:
            if not new.is_dir():
                raise
            # made by a concurrent writer, whose fsync may not have run yet: flushing the
            # parent again costs little
        _fsync(new.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as error:
        # Some file systems (FUSE, CIFS mounts) refuse to fsync a folder: the rename stands.
        if not (path.is_dir() and error.errno in (errno.EINVAL, errno.ENOTSUP, errno.EBADF)):
            raise
    finally:
        os.close(fd)


def _temporary_name(path: Path, token: str) -> Path:
    return path.with_name(f".{path.name}.{token}{path.suffix or '.tmp'}")


def remove_temporaries(path) -> list[Path]:
    """Remove the temporaries of `path` that a writer killed mid-write left behind (the caller
    knows that no writer of `path` is running); return them."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(re.escape(_temporary_name(path, "TOKEN").name).replace("TOKEN", "[0-9a-f]{8}") + "$")
    found = [p for p in path.parent.iterdir() if pattern.match(p.name)]
    for leftover in found:
        leftover.unlink(missing_ok=True)
    return found


def _new_file_beside(path: Path) -> Path:
    """A new, empty file with a unique name beside `path`. Created with mode 0666, which the
    kernel reduces by the umask as for any new file (mkstemp's 0600 would make results
    private, e.g. to a group on a shared cluster); reading the umask instead would briefly
    change it for every thread of the process."""
    while True:
        tmp = _temporary_name(path, secrets.token_hex(4))
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")


def write_csv(path, frame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def _jsonable(obj):
    # numpy scalars reach here from pandas and Keras histories
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {obj!r}")
