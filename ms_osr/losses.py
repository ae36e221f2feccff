"""Restoration losses on (B, C, H, W) MindSpore tensors (graph-mode friendly functions).

Pixel losses used by the training loop: :func:`l1_loss` (Restormer/HAIR/PromptIR),
:func:`charbonnier_loss` (PTG-RM's base term, BasicSR convention), :func:`psnr_loss`
(negative PSNR, as BasicSR's PSNRLoss).  Other modules may add model-specific losses below.
"""
from __future__ import annotations

import math

from mindspore import ops


def l1_loss(pred, target):
    """Mean absolute error over all elements."""
    return ops.mean(ops.abs(pred - target))


def charbonnier_loss(pred, target, eps: float = 1e-3):
    """Mean of sqrt((pred - target)^2 + eps^2) (a smooth L1)."""
    diff = pred - target
    return ops.mean(ops.sqrt(diff * diff + eps * eps))


def psnr_loss(pred, target, eps: float = 1e-8):
    """-PSNR in dB for [0, 1] images, averaged over the batch (minimise to maximise PSNR)."""
    diff = pred - target
    mse = ops.mean(diff * diff, axis=(1, 2, 3))
    return ops.mean(10.0 / math.log(10.0) * ops.log(mse + eps))


def smooth_l1_loss(pred, target, beta: float = 1.0):
    """Huber / smooth L1 (torch ``F.smooth_l1_loss`` with ``beta``): GridDehazeNet's pixel term."""
    diff = ops.abs(pred - target)
    return ops.mean(ops.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta))


PIXEL_LOSSES = {"l1": l1_loss, "charbonnier": charbonnier_loss, "psnr": psnr_loss, "smooth_l1": smooth_l1_loss}


def ptg_rm_joint_loss(base_out, refined, target, base_loss=None, lambda1: float = 1.0):
    """PTG-RM Eq. 8: ``L_g(base_out, target) + lambda1 * L_g(refined, target)`` (lambda1 = 1 in the paper).

    ``base_loss`` is the base restorer's own loss L_g, a function ``(pred, target) -> scalar``
    (default: L1).  With a frozen base the first term carries no gradient but is still reported.
    Use with ``base_out, refined = net.forward_train(x)`` of ``ptg_rm_wrapper``.
    """
    loss = l1_loss if base_loss is None else base_loss
    return loss(base_out, target) + lambda1 * loss(refined, target)


def ptg_joint_loss(base_out, refined, target, base_loss: str = "l1", lambda1: float = 1.0):
    """Eq. 8 with L_g named by a string, for YAML (``loss: {type: ptg_joint, base_loss: charbonnier}``).

    ``base_loss``: 'l1' | 'charbonnier' | 'psnr'.  The name is a compile-time constant, so each
    branch folds away in GRAPH_MODE.
    """
    if base_loss == "l1":
        return ptg_rm_joint_loss(base_out, refined, target, l1_loss, lambda1)
    if base_loss == "charbonnier":
        return ptg_rm_joint_loss(base_out, refined, target, charbonnier_loss, lambda1)
    if base_loss == "psnr":
        return ptg_rm_joint_loss(base_out, refined, target, psnr_loss, lambda1)
    raise ValueError("ptg_joint base_loss must be 'l1', 'charbonnier' or 'psnr'")


def gate_supervision_loss(logit, onehot, clean_index: int):
    """Binary cross-entropy of a per-image gate logit (B, 1, 1, 1) against "degraded" (1) or clean (0), from
    the batch's one-hot degradation labels (B, C) whose column ``clean_index`` is the ``identity`` class.
    Our option for OSR's harm gate (``loss: {gate_supervision: w}``, docs/osr.md §8): the reconstruction loss
    alone barely moves the gate, since the wrapper changes the clean training crops little."""
    z = logit.reshape(-1)
    target = 1.0 - onehot[:, clean_index]
    return ops.mean(ops.softplus(z) - target * z)  # -log sigmoid(z) for 1, -log(1 - sigmoid(z)) for 0


def giv_separation_loss(giv, onehot, eps: float = 1e-6):
    """Fisher criterion of a batch of image-level vectors ``giv`` (B, D) against degradation labels ``onehot``
    (B, C): within-class sum of squares over total sum of squares, i.e. 1 - R² (0: the vectors of one
    degradation coincide and differ from the others'; 1: the degradation explains none of their variance).
    Scale-free, no parameters.  Our option for Res-HAIR (``loss: {giv_separation: w}``); the official code
    trains with L1 only."""
    counts = ops.maximum(ops.sum(onehot, 0), 1.0)                        # (C,) classes absent from the batch: 1
    means = ops.matmul(onehot.T, giv) / ops.expand_dims(counts, 1)       # (C, D)
    within = ops.sum(ops.square(giv - ops.matmul(onehot, means)))
    total = ops.sum(ops.square(giv - ops.mean(giv, 0, keep_dims=True)))
    return within / (total + eps)
