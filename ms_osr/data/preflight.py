"""Check every file of a data source before anything runs: one line per missing or unreadable file.

Without this a bad file in a validation list surfaced as a traceback at the first validation, after
training, and one in a training list after the first step.  The check opens each distinct file once
and looks at its signature (PNG/JPEG/BMP/TIFF) and, for JPEG, the end-of-image marker, the same
truncation test :func:`ms_osr.data.io.read_image` applies; it does not decode pixels, so it costs
seconds on RESIDE-sized sets.  With ``skip_bad`` the bad pairs are dropped instead, one warning each.
"""
from __future__ import annotations

import os
from typing import Callable, List, Optional, Sequence, Set, Tuple

from . import datasets as DS
from .datasets import DatasetError, PairedFiles, Source, SyntheticPairs

_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"BM", b"II*\x00", b"MM\x00*",
               b"\x93NUMPY")  # .npy: the SID frames of the SNR-aware release
MAX_LINES = 20  # problems printed before "... and N more"


class PreflightError(DatasetError):
    """Some files of a source are missing or unreadable; the message has one line per file."""

    problems_per_line = True

    def __init__(self, label: str, problems: Sequence[str], switch: str = "set data.skip_bad: true"):
        fix = f"fix it or {switch} to leave its pair out"
        if len(problems) == 1:
            super().__init__(f"{label}: {problems[0]} ({fix})")
        else:
            lines = list(problems[:MAX_LINES])
            if len(problems) > MAX_LINES:
                lines.append(f"... and {len(problems) - MAX_LINES} more")
            head = (f"{label}: {len(problems)} missing or unreadable files; fix them or {switch} to leave their "
                    f"pairs out")
            super().__init__("\n".join([head] + lines))
        self.problems = list(problems)


def probe_image(path: str) -> Optional[str]:
    """Why ``path`` cannot be read as an image, or None."""
    if not os.path.exists(path):
        return "file not found"
    if not os.path.isfile(path):
        return "not a regular file"
    try:
        size = os.path.getsize(path)
        if size == 0:
            return "file is empty"
        with open(path, "rb") as fh:
            head = fh.read(16)
            if not head.startswith(_SIGNATURES):
                return "not an image file (no PNG/JPEG/BMP/TIFF/NPY signature)"
            if head.startswith(b"\xff\xd8"):
                fh.seek(max(0, size - 1024))
                if b"\xff\xd9" not in fh.read():
                    return "truncated JPEG (no end-of-image marker)"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None


def source_pairs(src: Source) -> List[Tuple[Optional[str], Optional[str]]]:
    """(degraded, clean) paths of a source; synthetic sources have only the clean file."""
    if isinstance(src, DS.Concat):
        return [p for part, _ in src.parts for p in source_pairs(part)]
    if isinstance(src, PairedFiles):
        return [tuple(p) for p in src.pairs]
    if isinstance(src, SyntheticPairs):
        return [(None, c) for c in src.clean if isinstance(c, str)]
    return []  # sources without files on disk (or unknown kinds) have nothing to check


def check_source(src: Source) -> List[Tuple[str, str]]:
    """``(path, problem)`` for every distinct bad file, in source order."""
    seen: Set[str] = set()
    problems = []
    for pair in source_pairs(src):
        for path in pair:
            if path is None or path in seen:
                continue
            seen.add(path)
            why = probe_image(path)
            if why:
                problems.append((path, why))
    return problems


def without(src: Source, bad: Set[str]) -> Optional[Source]:
    """``src`` without the items that use a file in ``bad`` (None when nothing is left)."""
    if isinstance(src, DS.Concat):
        parts = [(p, r) for p, r in ((without(part, bad), r) for part, r in src.parts) if p is not None]
        return DS.Concat(parts) if parts else None
    if isinstance(src, PairedFiles):
        keep = [p for p in src.pairs if p[0] not in bad and p[1] not in bad]
        if not keep:
            return None
        out = _clone(src)
        out.pairs = keep
        return out
    if isinstance(src, SyntheticPairs):
        keep = [c for c in src.clean if not (isinstance(c, str) and c in bad)]
        if not keep:
            return None
        out = _clone(src)
        out.clean, out._cache = keep, {}
        return out
    return src


def _clone(src: Source) -> Source:
    out = object.__new__(type(src))
    out.__dict__.update(src.__dict__)
    return out


def checked(src: Source, label: str, skip_bad: bool = False, warn: Callable[[str], None] = print,
            switch: str = "set data.skip_bad: true") -> Source:
    """``src`` after the check: unchanged when every file is fine; otherwise :class:`PreflightError` (``switch``
    names the option that skips), or with ``skip_bad`` a copy without the bad pairs (one ``warn`` line per file)."""
    problems = check_source(src)
    if not problems:
        return src
    lines = [f"{path}: {why}" for path, why in problems]
    if not skip_bad:
        raise PreflightError(label, lines, switch)
    for line in lines:
        warn(f"skipped: {line}")
    kept = without(src, {path for path, _ in problems})
    if kept is None:
        raise DatasetError(f"{label}: every file is missing or unreadable")
    return kept
