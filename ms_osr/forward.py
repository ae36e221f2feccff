"""One network call on one image, the same for test.py (:class:`ms_osr.inference.Restorer`), the trainer's
validation and the tools: HxWx3 in, the restored HxWx3 out."""
from __future__ import annotations

from typing import Any

import numpy as np


def final_output(y: Any) -> Any:
    """The restored image of a network call: the output itself, or the last of several (a network
    that returns ``(intermediate, ..., restored)``, as PTG-RM's ``forward_train`` does)."""
    return y[-1] if isinstance(y, (tuple, list)) else y


def to_batch(img: np.ndarray) -> np.ndarray:
    """HxWx3 -> contiguous float32 1x3xHxW."""
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None], np.float32)


def from_batch(y: Any) -> np.ndarray:
    """The first image of a network output batch as HxWx3 (a MindSpore tensor or an array)."""
    arr = final_output(y)
    arr = arr.asnumpy() if hasattr(arr, "asnumpy") else np.asarray(arr)
    return arr[0].transpose(1, 2, 0)


def restore_array(net, lq: np.ndarray) -> np.ndarray:
    """HxWx3 [0, 1] -> the network's restored HxWx3, clipped to [0, 1] (whole image, batch of one)."""
    from mindspore import Tensor

    return np.clip(from_batch(net(Tensor(to_batch(lq)))), 0.0, 1.0)
