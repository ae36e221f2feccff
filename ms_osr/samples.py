"""What evaluation restores: one :class:`Sample` per image, with optional ground truth.  Shared by every
place that builds samples (user files, benchmarks, a config's data.val, the demo) and the one evaluation
path that scores them (:func:`ms_osr.evaluation.evaluate_samples`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

import numpy as np


@dataclass
class Sample:
    """One image to restore.

    ``load()`` returns ``(degraded, clean_or_None)``; it may raise ImageReadError/EvaluationError.
    ``sources`` are the files it reads (never overwritten by outputs).  A loader of user files
    (:class:`FilePair`) also tells, once called, the input's ``format`` and ``gt_problem``: why
    its ground truth could not be used (the image is then restored without metrics).
    """

    name: str
    load: Callable[[], Tuple[np.ndarray, Optional[np.ndarray]]]
    sources: Tuple[str, ...] = ()
    group: str = ""  # e.g. the degradation or noise level, for per-group averages
    meta: Dict[str, object] = field(default_factory=dict)  # copied into the record, e.g. photo and seed
