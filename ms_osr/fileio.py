"""Atomic file writing: write to a temporary file in the same folder, then rename."""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator


@contextlib.contextmanager
def atomic_path(dst: str, suffix: str | None = None) -> Iterator[str]:
    """Yield a temporary path next to ``dst``; on success it replaces ``dst`` atomically.

    On any exception the temporary file is removed and ``dst`` is left untouched, so a
    reader never sees a half-written file.
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
