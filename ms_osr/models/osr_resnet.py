"""The residual network of the official OSR release (``Net``, "Baseline-Res12"), 738,819 parameters.

Plain full-resolution CNN: stem conv 3->16, residual blocks (conv-ReLU-conv + identity,
convolutions without bias) between channel-changing 3x3 convs with bias, no global skip,
no output activation.  Parameter names are the official ones (``conv_input_3``,
``res_1`` ... ``res_12`` with ``conv1``/``conv2``, ``conv_up_1``, ``conv_up_2``,
``conv_down_1``, ``conv_down_2``, ``conv_out_3``), so both the authors' MindSpore files
(PyTorch names copied verbatim with the DataParallel ``module.`` prefix) and plain
PyTorch state_dicts load strictly through :func:`ms_osr.checkpoint.load_checkpoint`.

The official evaluation feeds inputs normalised with mean 0.5 / std 0.5 ([-1, 1]) and
scores the raw output against the [0, 1] ground truth; with ``input_norm=True`` (default)
this model takes [0, 1] images and normalises them itself.  For super-resolution the
official script nearest-upsamples the normalised LR input to the HR size inside the
network; here that is :meth:`Net.upsample_input`, applied by the caller before ``construct``
so that the output keeps the input size (nearest upsampling commutes with the
normalisation).  Fully convolutional at full resolution: ``size_multiple`` is 1.
"""
from __future__ import annotations

import math
from typing import List, Tuple

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops

from ..registry import register_config, register_model
from .layers import conv2d, pooled_head, pooled_logit


class ResidualBlock(nn.Cell):
    """``conv2(ReLU(conv1(x))) + x`` with two bias-free 3x3 convolutions (official ``_Residual_Block``)."""

    recompute_unit = True  # see ms_osr.training.recompute

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv2d(channels, channels, 3, bias=False)
        self.conv2 = conv2d(channels, channels, 3, bias=False)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.conv2(ops.relu(self.conv1(x))) + x


# (name of the channel-changing conv before the group, its in/out channels, residual blocks after it)
STAGES = (("conv_input_3", 3, 16, 2), ("conv_up_1", 16, 64, 2), ("conv_up_2", 64, 64, 4),
          ("conv_down_1", 64, 64, 2), ("conv_down_2", 64, 32, 2))


def stage_channels(width: float = 1.0) -> List[int]:
    """The output channels of each stage at ``width``, rounded as :class:`Net` builds them."""
    return [max(1, int(round(cout * width))) for _, _, cout, _ in STAGES]


class CorrectionGate(nn.Cell):
    """One weight per image for the correction a global-skip restorer adds to its input (our option,
    ``harm_gate=True``): ``w = sigmoid(z) / sigmoid(start_logit)`` with ``z`` read from the last features by
    :func:`ms_osr.models.layers.pooled_logit`, so ``w`` is 1 at the start (zero ``fc2`` weight, bias
    ``start_logit``) and at most ``1 / sigmoid(start_logit)`` (1.018 at 4).

    Why: the network's receptive field is 61 px, so nothing in it can tell an image without rain from one
    with it; the gate pools the whole image.  Trained with clean pairs beside rain (and the label loss
    ``train.loss.gate_supervision``), ``w -> 0`` leaves an image the gate reads as clean alone.  Unlike the
    OSR wrapper's :class:`ms_osr.models.osr.HarmGate`, which reads the pixels through two convs of its own,
    this one reads the restorer's own features and trains with them (docs/osr.md §10)."""

    identity_at_init = True  # w = 1: a checkpoint without the gate restores the same image

    def __init__(self, channels: int, start_logit: float = 4.0) -> None:
        super().__init__()
        self.fc1, self.fc2 = pooled_head(channels, 1, start_logit)
        self.scale = 1.0 + math.exp(-start_logit)  # 1 / sigmoid(start_logit)

    def logit(self, feat: ms.Tensor) -> ms.Tensor:
        """The logit ``z``, shape (B, 1, 1, 1)."""
        return pooled_logit(feat, self.fc1, self.fc2)

    def weight_of(self, z: ms.Tensor) -> ms.Tensor:
        """``w`` from the logit."""
        return ops.sigmoid(z) * self.scale


class Net(nn.Cell):
    """Official OSR baseline restorer; see module docstring.  ``width`` scales every channel count;
    ``harm_gate`` (with ``global_skip``) weighs the correction per image (:class:`CorrectionGate`)."""

    size_multiple = 1

    def __init__(self, input_norm: bool = True, width: float = 1.0, global_skip: bool = False,
                 harm_gate: bool = False, gate_start_logit: float = 4.0) -> None:
        super().__init__()
        if harm_gate and not global_skip:
            raise ValueError("osr_resnet: harm_gate needs global_skip=True (the gate weighs the correction "
                             "added to the input)")
        self.input_norm = input_norm
        # The official Net has no global skip (default).  Trained from scratch on a CPU budget, it must
        # rebuild absolute colours and shifted them by up to -80 grey levels on unseen photos
        # (docs/osr.md §6); ``global_skip`` adds the input so the network only learns the correction.
        self.global_skip = global_skip
        block = 0
        last = 3
        # Attributes are created in the official order, so the ckpt lists names in the same order.
        for (conv_name, _, _, n_blocks), cout in zip(STAGES, stage_channels(width)):
            setattr(self, conv_name, conv2d(last, cout, 3))
            for _ in range(n_blocks):
                block += 1
                setattr(self, f"res_{block}", ResidualBlock(cout))
            last = cout
        self.conv_out_3 = conv2d(last, 3, 3)
        self.use_gate = harm_gate
        if harm_gate:
            self.harm_gate = CorrectionGate(last, gate_start_logit)

    @staticmethod
    def upsample_input(x: ms.Tensor, size: tuple) -> ms.Tensor:
        """Nearest upsampling of an LR input to ``size`` (the official SR evaluation path)."""
        return ops.interpolate(x, size=tuple(size), mode="nearest")

    def construct(self, inp: ms.Tensor) -> ms.Tensor:
        if self.use_gate:
            return self.restore_with_gate(inp)[0]
        out = self.conv_out_3(self.features(inp))
        return inp + out if self.global_skip else out

    def restore_with_gate(self, inp: ms.Tensor) -> Tuple[ms.Tensor, ms.Tensor]:
        """``(output, gate logit)``: for the gate's label loss (``train.loss.gate_supervision``)."""
        feat = self.features(inp)
        z = self.harm_gate.logit(feat)
        return inp + self.harm_gate.weight_of(z) * self.conv_out_3(feat), z

    def features(self, inp: ms.Tensor) -> ms.Tensor:
        """The last stage's features, before ``conv_out_3``."""
        x = (inp - 0.5) / 0.5 if self.input_norm else inp
        x = self.conv_input_3(x)
        x = self.res_2(self.res_1(x))
        x = self.conv_up_1(x)
        x = self.res_4(self.res_3(x))
        x = self.conv_up_2(x)
        x = self.res_8(self.res_7(self.res_6(self.res_5(x))))
        x = self.conv_down_1(x)
        x = self.res_10(self.res_9(x))
        x = self.conv_down_2(x)
        return self.res_12(self.res_11(x))


@register_model
def osr_resnet(**kwargs) -> Net:
    """Official OSR residual network (738,819 parameters at ``width=1``)."""
    return Net(**kwargs)


register_config("osr_resnet_small", "osr_resnet",
                "Net at quarter width (4/16/16/8 channels), 46k parameters; tests / CPU", width=0.25)
register_config("osr_resnet_half_skip", "osr_resnet",
                "Net at half width (8/32/32/16 channels) with a global skip, 185k parameters; the restorer of "
                "the shipped osr_small_rain (trained from scratch on the photo corpus)", width=0.5, global_skip=True)
register_config("osr_resnet_skip", "osr_resnet",
                "Net at the official width (16/64/64/64/32 channels) with a global skip, 739k parameters; "
                "tools/widen_osr_resnet.py grows osr_resnet_half_skip's weights into it", global_skip=True)
