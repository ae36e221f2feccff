

import numpy as np


def parity_report(a, b) -> dict:
    """max/mean absolute difference between two outputs (MindSpore against its PyTorch reference)."""
    diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return {"max_abs": float(diff.max()), "mean_abs": float(diff.mean())}
