"""The graphs the audit compiles: every registered architecture in a small configuration, in inference and
in a training step, at AMP levels O0/O2/O3, built as they would be built for a device target.

The device target only changes which cells are built (``ms_osr.kernels`` runs its C++ kernels on CPU
only), so the GPU/Ascend graphs are built with :func:`ms_osr.kernels.build_for` on this machine and
compiled by the same MindSpore frontend a GPU/Ascend build runs.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import mindspore as ms
from mindspore import Tensor, nn

from .. import kernels
from ..registry import create_model
from . import graph_ops

TARGETS = ("CPU", "GPU", "Ascend")
AMP_LEVELS = ("O0", "O2", "O3")
PHASES = ("infer", "train")


@dataclass(frozen=True)
class ModelCase:
    """One registered architecture in an audit-sized configuration."""
    factory: str                       # registry factory the case covers
    config: str                        # registered name or factory passed to create_model
    kwargs: Dict = field(default_factory=dict)
    size: int = 32                     # input side (a multiple of every model's size_multiple)
    train: bool = True                 # False: a frozen encoder that is never trained
    loss: str = "l1"


_CLIP_TINY = {"config": "clip_tiny"}
MODEL_CASES: Tuple[ModelCase, ...] = (
    ModelCase("toy_restorer", "toy_restorer"),
    ModelCase("griddehazenet", "griddehazenet_small"),
    ModelCase("osr_resnet", "osr_resnet_small"),
    ModelCase("osr", "osr_small"),
    ModelCase("restormer", "restormer_tiny"),
    # Res-HAIR with its optional dark-channel skip: the plain graph's primitives and the prior's (the optional
    # affine skip's primitives are a subset of these: compiled and compared on 2026-12-07)
    ModelCase("res_hair", "res_hair_tiny", {"dark_channel_skip": True}),
    # PTG-RM's OSF providers: frozen encoders, never trained by train.py (DistilledOSF is distilled by
    # ms_osr.training.osf_distill, whose step is not audited)
    ModelCase("clip_image_encoder", "clip_tiny", train=False),
    ModelCase("restoration_prior_osf", "restoration_prior_osf", {"model": "res_hair_tiny", "out_dim": 24},
              train=False),
    ModelCase("distilled_osf", "distilled_osf", {"out_dim": 16, "width": 4, "hidden": 16}, train=False),
    ModelCase("constant_osf", "constant_osf", {"out_dim": 16}, train=False),
    # PTG-RM (the ptg_rm factory) inside its wrapper, trained with the joint loss as configs/ptg_rm_lol.yaml
    ModelCase("ptg_rm_wrapper", "ptg_rm_wrapper",
              {"base": "restormer_tiny", "osf": "clip", "osf_kwargs": _CLIP_TINY,
               "ptg_kwargs": {"nf": 8, "num_blocks": 1}}, loss="ptg_joint"),
)


def covered_factories() -> List[str]:
    """Registry factories the cases cover (``ptg_rm`` through ``ptg_rm_wrapper``)."""
    return sorted({c.factory for c in MODEL_CASES} | {"ptg_rm"})


def build_model(case: ModelCase, target: str) -> nn.Cell:
    with kernels.build_for(target), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random-weight CLIP warning
        ms.set_seed(0)
        return create_model(case.config, **case.kwargs)


def uses_cpu_kernels(case: ModelCase) -> bool:
    """Does the CPU build of the model run any C++ kernel?  If not, its CPU graphs are its GPU graphs."""
    net = build_model(case, "CPU")
    return any(isinstance(c, kernels.KernelCell) and c.use_kernel for _, c in net.cells_and_names())


def _inputs(case: ModelCase, batch: int = 1):
    rng = np.random.default_rng(0)
    shape = (batch, 3, case.size, case.size)
    return Tensor(rng.random(shape, dtype=np.float32)), Tensor(rng.random(shape, dtype=np.float32))


def inference_graph(case: ModelCase, target: str, amp: str) -> graph_ops.OpTable:
    from ..training.amp import apply_amp

    net = build_model(case, target)
    net.set_train(False)
    net = apply_amp(net, amp)
    x, _ = _inputs(case)
    return graph_ops.compiled_primitives(net, x)


def train_step_cell(case: ModelCase, target: str, amp: str, loss_scale="dynamic") -> Tuple[nn.Cell, Callable]:
    """The step ``train.py`` compiles (AdamW on device, gradient clipping, EMA), and its arguments."""
    from ..training.optim import AdamW
    from ..training.step import EMA, make_step_cell

    net = build_model(case, target)
    params = net.trainable_params()
    cfg = {"loss": {"type": case.loss}, "clip_grad_norm": 1.0, "loss_scale": loss_scale}
    step, _ = make_step_cell(net, cfg, AdamW(params, weight_decay=0.01), EMA(params, 0.999), amp=amp)
    x, y = _inputs(case, batch=2)
    scalars = [Tensor(v, ms.float32) for v in (1e-4, 0.1, 0.001)]
    return step, (x, y, *scalars)


def train_graph(case: ModelCase, target: str, amp: str) -> graph_ops.OpTable:
    step, args = train_step_cell(case, target, amp)
    return graph_ops.compiled_primitives(step, *args)


def audit_graph(case: ModelCase, phase: str, target: str, amp: str) -> Optional[graph_ops.OpTable]:
    """The primitives of one graph, or None when the case has no such phase (a frozen encoder's training)."""
    if phase == "train" and not case.train:
        return None
    return (train_graph if phase == "train" else inference_graph)(case, target, amp)
