"""Data parallelism on MindSpore's own collective engine (``msrun`` launches the workers)."""
from __future__ import annotations

import logging
import os
from typing import Tuple

log = logging.getLogger(__name__)

_STATE = {"rank": 0, "world": 1, "initialised": False}


def launched_by_msrun() -> bool:
    """msrun/dynamic-cluster processes carry MS_ROLE (MS_WORKER, or MS_SCHED for the scheduler) and MS_WORKER_NUM."""
    return os.environ.get("MS_ROLE") in ("MS_WORKER", "MS_SCHED") and int(os.environ.get("MS_WORKER_NUM", "1")) > 1


def init_distributed() -> Tuple[int, int]:
    """Initialise communication when launched by msrun; returns ``(rank, world)`` ((0, 1) otherwise).

    Sets the data-parallel context so ``nn.DistributedGradReducer`` averages gradients."""
    if _STATE["initialised"]:
        return _STATE["rank"], _STATE["world"]
    if not launched_by_msrun():
        _STATE["initialised"] = True
        return 0, 1
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank, init

    init()
    if os.environ.get("MS_ROLE") == "MS_SCHED":  # msrun runs the script in its scheduler too: it only serves
        raise SystemExit(0)
    rank, world = get_rank(), get_group_size()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=world)
    _STATE.update(rank=rank, world=world, initialised=True)
    log.info("data parallel: rank %d of %d", rank, world)
    return rank, world
