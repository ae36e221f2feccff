"""The containers the official PyTorch code of each model family loads, for MindSpore -> PyTorch.

A bare state_dict loads into none of the official loaders:

==============  ===============================================  =================================
format          file content                                     official loader
==============  ===============================================  =================================
dataparallel    ``{'module.<name>': tensor}``                    GridDehazeNet, OSR ``Net``:
                                                                 ``nn.DataParallel(net).load_state_dict(torch.load(f))``
basicsr         ``{'params': {name: tensor}}``                   Restormer / BasicSR:
                                                                 ``net.load_state_dict(torch.load(f)['params'])``
lightning       ``{'state_dict': {'net.<name>': tensor}, ...}``  HAIR (Lightning module with ``self.net``):
                                                                 ``load_from_checkpoint(f)``
plain           ``{name: tensor}``                               PTG-RM ``refinement2``, CLIP, ours
==============  ===============================================  =================================
"""
from __future__ import annotations

from typing import Dict

FORMATS = ("plain", "basicsr", "lightning", "dataparallel")
# factory name (ms_osr.registry) -> the container its official code reads; others: plain
OFFICIAL_FORMAT = {"griddehazenet": "dataparallel", "osr_resnet": "dataparallel", "restormer": "basicsr",
                   "res_hair": "lightning"}
# What Lightning's load_from_checkpoint needs besides the weights (it migrates by this version).
LIGHTNING_VERSION = "2.0.1"


def official_format(model: str) -> str:
    """The container the official code of ``model`` (a registered name) loads."""
    from .registry import model_kwargs

    return OFFICIAL_FORMAT.get(model_kwargs(model)[0], "plain")


def wrap_state_dict(state: Dict[str, object], fmt: str) -> Dict[str, object]:
    """Put a PyTorch-named state_dict into the container ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "plain":
        return dict(state)
    if fmt == "basicsr":
        return {"params": dict(state)}
    if fmt == "dataparallel":
        return {f"module.{k}": v for k, v in state.items()}
    if fmt == "lightning":
        return {"epoch": 0, "global_step": 0, "pytorch-lightning_version": LIGHTNING_VERSION,
                "state_dict": {f"net.{k}": v for k, v in state.items()}, "optimizer_states": [],
                "lr_schedulers": [], "callbacks": {}}
    raise ValueError(f"unknown checkpoint format '{fmt}': choose one of {', '.join(FORMATS)}")
