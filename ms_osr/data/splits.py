"""Which split (train/test) and which subset (indoor/outdoor, real/synthetic) a folder belongs to.

Upstream datasets are downloaded with their splits side by side (``LOLdataset/{our485,eval15}``,
``GOPRO_Large/{train,test}``, ``LOL-v2/Real_captured/{Train,Test}``, ``SOTS/{indoor,outdoor}``).
A search below such a parent would otherwise mix training images into an evaluation, so the
folders found are filtered here by the split asked for, and a parent holding two subsets is refused.
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

from ..errors import DatasetError

# Folder names (lower case) that mark a split in the upstream trees.
TRAIN_NAMES = frozenset({"train", "training", "our485", "trainset", "train_data"})
TEST_NAMES = frozenset({"test", "testing", "eval15", "eval", "val", "valid", "validation", "testset"})
# Folder names that mark subsets which are evaluated separately, never pooled.
SUBSET_NAMES = frozenset({"indoor", "outdoor", "real_captured", "synthetic"})
SPLITS = ("train", "test")


class SplitError(DatasetError):
    """A folder holds several splits/subsets and the config does not say which (one-line message)."""


def split_of_name(name: str) -> Optional[str]:
    low = name.lower()
    if low in TRAIN_NAMES:
        return "train"
    if low in TEST_NAMES:
        return "test"
    return None


def _parts(path: str, root: str) -> List[str]:
    rel = os.path.relpath(path, root)
    return [] if rel == "." else rel.split(os.sep)


def split_of(path: str, root: str) -> Optional[str]:
    """The split named by the first split-like folder between ``root`` and ``path``."""
    for part in _parts(path, root):
        found = split_of_name(part)
        if found:
            return found
    return None


def _subset_of(path: str, root: str) -> Optional[str]:
    return next((p for p in _parts(path, root) if p.lower() in SUBSET_NAMES), None)


def select_split(root: str, dirs: Sequence[Tuple[str, ...]], split: Optional[str], what: str) -> List[Tuple[str, ...]]:
    """Keep the folder tuples (first element decides) of ``split`` found below ``root``.

    ``split=None`` keeps everything but refuses a root with both splits; a root that is itself
    one split folder (``LOL/eval15``) is accepted when it is the split asked for."""
    if split is not None and split not in SPLITS:
        raise SplitError(f"{root}: unknown split '{split}' for {what}; choose train or test")
    subsets = sorted({s for s in (_subset_of(d[0], root) for d in dirs) if s})
    if len(subsets) > 1:
        raise SplitError(f"{root}: holds the {' and '.join(subsets)} sets of {what} side by side; "
                         f"give one of them as the root")
    tagged = [(split_of(d[0], root), tuple(d)) for d in dirs]
    found = sorted({s for s, _ in tagged if s})
    if split is None:
        if len(found) > 1:
            names = {s: sorted({_split_folder(d[0], root, s) for t, d in tagged if t == s}) for s in found}
            raise SplitError(f"{root}: holds both a training split ({', '.join(names['train'])}) and a test split "
                             f"({', '.join(names['test'])}) of {what}; choose one with split: train or split: test")
        return [d for _, d in tagged]
    if not found:  # the root is itself one split folder, or the tree names no split
        own = split_of_name(os.path.basename(os.path.normpath(root)))
        if own and own != split:
            raise SplitError(f"{root}: this is the {own} split of {what}, but split: {split} was asked")
        return [d for _, d in tagged]
    keep = [d for s, d in tagged if s == split]
    if not keep:
        raise SplitError(f"{root}: no {split} split of {what} (found only the {found[0]} split)")
    return keep


def _split_folder(path: str, root: str, split: str) -> str:
    return next(p for p in _parts(path, root) if split_of_name(p) == split)
