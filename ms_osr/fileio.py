"""Atomic file writing: write to a temporary file in the same folder, then rename.

Outputs get the permissions the user's umask gives a new file (``0o666 & ~umask``), like
``open()`` would: ``tempfile.mkstemp`` creates 0600 and MindSpore's ``save_checkpoint``
makes its file 0400, which would otherwise leave every result private.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``)."""
    try:
        with open("/proc/self/status", "r", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: the only portable way is to set it and put it back
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """Permissions of a file created now by ``open()``: 0o666 minus the umask."""
    return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_path(dst: str, suffix: str | None = None) -> Iterator[str]:
    """Yield a temporary path next to ``dst``; on success it replaces ``dst`` atomically.

    On any exception the temporary file is removed and ``dst`` is left untouched, so a
    reader never sees a half-written file.  The result has the umask's permissions.
    """
    dst = os.fspath(dst)
    folder = os.path.dirname(os.path.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    if suffix is None:
        suffix = os.path.splitext(dst)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(dst) + "-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, new_file_mode())  # before the fsync: the writer may have left it read-only
        with open(tmp, "rb+") as fh:  # make the bytes durable before the rename
            os.fsync(fh.fileno())
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def atomic_write_text(dst: str, text: str) -> None:
    with atomic_path(dst) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)


def _nearest_existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def writable_folder_problem(folder: str) -> str | None:
    """Why files cannot be written into ``folder`` (created on demand), or None if they can.

    Tries what the writers will do, a file in the folder (or in its nearest existing parent,
    which must then accept the new folder), because ``os.access`` says yes to root on a
    read-only mount.  Nothing is left behind.
    """
    folder = os.fspath(folder) or "."
    existing = _nearest_existing(folder)
    if not os.path.isdir(existing):
        return f"{existing} is not a folder" if existing != os.path.abspath(folder) else "not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=".ms_osr-write-check-", dir=existing)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return reason if existing == os.path.abspath(folder) else f"cannot create it in {existing}: {reason}"
    os.close(fd)
    os.remove(probe)
    return None
