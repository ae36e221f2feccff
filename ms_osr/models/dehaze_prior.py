"""The dark channel prior (He, Sun and Tang, CVPR 2009) as graph-mode MindSpore, and a skip that blends it in.

Haze is ``I = J t + A (1 - t)``.  The prior says that in a haze-free outdoor patch some channel is nearly
black, so the dark channel of ``I / A`` measures ``1 - t``; with the airlight ``A`` taken from the brightest
0.1% of the dark channel and ``t`` refined by a guided filter (grey guide), ``J = (I - A) / t + A``.  With no
training it removes 5.3 dB of the photo benchmark's haze where the shipped Res-HAIR removes 3.5
(``tools/haze_bounds.py`` holds the NumPy/OpenCV reference this module is tested against).

:class:`DarkChannelSkip` lets a network use it without trusting it: ``skip = I + g (J - I)`` with a per-pixel
weight ``g`` predicted from coarse features, zero at the start.  The prior is wrong on bright regions (sky) and
on images without haze, so ``g`` has to learn where it holds.

:class:`ScatteringSkip` inverts the scattering model with a transmission and an airlight that the network
predicts instead of the prior: one smooth scalar field and one colour per image, so unlike a field of colour
maps it cannot tint a region or carry colour across an edge.
"""
from __future__ import annotations

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops

from .layers import channel_mean, conv2d, pooled_head, pooled_logit, zero_init


def box_mean(x: ms.Tensor, radius: int) -> ms.Tensor:
    """Mean over a ``(2r+1)^2`` window with reflect-101 borders (OpenCV's ``cv2.blur``), by running sums.

    The radius shrinks to fit images smaller than the window (reflect padding needs ``r < side``)."""
    h, w = x.shape[-2], x.shape[-1]
    r = min(radius, h - 1, w - 1)
    if r < 1:
        return x
    k = 2 * r + 1
    p = ops.pad(x, (r, r, r, r), mode="reflect")
    s = ops.pad(ops.cumsum(p, axis=2), (0, 0, 1, 0))
    s = s[:, :, k:, :] - s[:, :, :-k, :]
    s = ops.pad(ops.cumsum(s, axis=3), (1, 0, 0, 0))
    return (s[:, :, :, k:] - s[:, :, :, :-k]) / float(k * k)


def guided_filter(guide: ms.Tensor, src: ms.Tensor, radius: int, eps: float) -> ms.Tensor:
    """He et al.'s guided filter of ``src`` with a one-channel ``guide`` (both B x 1 x H x W)."""
    mg, ms_ = box_mean(guide, radius), box_mean(src, radius)
    a = (box_mean(guide * src, radius) - mg * ms_) / (box_mean(guide * guide, radius) - mg * mg + eps)
    return box_mean(a, radius) * guide + box_mean(ms_ - a * mg, radius)


class DarkChannelDehaze(nn.Cell):
    """``J`` of a B x 3 x H x W image in [0, 1] by the dark channel prior (no parameters).

    It runs in float32 even under AMP (``keep_float32``, honoured by ``ms_osr.training.amp.apply_amp``): the
    running sums of :func:`box_mean` reach side x window (tens of thousands for a 1024 px image), beyond
    float16's range and far beyond its precision."""

    keep_float32 = True

    def __init__(self, patch: int = 15, omega: float = 0.95, t_min: float = 0.1, radius: int = 40,
                 eps: float = 1e-3):
        super().__init__()
        self.erode_neg = nn.MaxPool2d(kernel_size=patch, stride=1, pad_mode="same")  # min-pool = -max(-x)
        self.omega, self.t_min, self.radius, self.eps = omega, t_min, radius, eps

    def dark(self, x: ms.Tensor) -> ms.Tensor:
        return -self.erode_neg(-x.min(axis=1, keepdims=True))

    def airlight(self, x: ms.Tensor) -> ms.Tensor:
        """(B, 3, 1, 1): the mean colour of the pixels in the brightest 0.1% of the dark channel, at least 1e-3
        (a black or pure-red image would divide 0 by 0 below; whether ops.maximum then swallows the NaN
        depends on the backend)."""
        n, h, w = x.shape[0], x.shape[2], x.shape[3]
        k = max(1, (h * w) // 1000)
        _, top = ops.topk(self.dark(x).reshape(n, h * w), k)
        pixels = ops.gather_elements(x.reshape(n, 3, h * w), 2, ops.broadcast_to(top.reshape(n, 1, k), (n, 3, k)))
        return ops.maximum(pixels.mean(axis=2).reshape(n, 3, 1, 1), 1e-3)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        airlight = self.airlight(x)
        t = 1.0 - self.omega * self.dark(x / airlight)
        t = ops.maximum(guided_filter(channel_mean(x), t, self.radius, self.eps), self.t_min)
        return ops.clamp((x - airlight) / t + airlight, 0.0, 1.0)


class DarkChannelSkip(nn.Cell):
    """``I + g (J - I)``: the image moved towards its dark-channel dehazing by a per-pixel weight ``g``,
    predicted by a 3x3 conv from coarse features and upsampled bilinearly; ``g = 0`` at the start (zero
    weights), so a checkpoint without this cell restores the same image (``identity_at_init``)."""

    identity_at_init = True

    def __init__(self, channels: int):
        super().__init__()
        self.gate = nn.Conv2d(channels, 1, 3, pad_mode="pad", padding=1, has_bias=True, weight_init="zeros",
                              bias_init="zeros")
        self.dehaze = DarkChannelDehaze()

    def construct(self, feat: ms.Tensor, img: ms.Tensor) -> ms.Tensor:
        g = ops.interpolate(self.gate(feat), size=(img.shape[2], img.shape[3]), mode="bilinear",
                            align_corners=False)
        prior = ops.stop_gradient(self.dehaze(img))  # a fixed function of the input: nothing to learn in it
        return img + g * (prior - img)


class ScatteringSkip(nn.Cell):
    """``(I - A) / t + A``: the scattering model inverted with a transmission field ``t`` and an airlight ``A``
    predicted from coarse features ``feat`` (e.g. a U-Net's 1/8-resolution latent).

    ``t = clamp(exp(-d), t_min, t_max)`` with the optical depth ``d`` from a 3x3 conv, upsampled bilinearly
    (the synthetic haze's transmission is smooth, so a coarse field loses little); ``A`` (B, 3, 1, 1) =
    ``0.85 + 0.15 tanh(head)`` from the features pooled over the image (``pooled_logit``), the 0.7-1.0 range of
    the corpus' airlight.  ``t_max > 1`` lets it add a veil back where the rest of the network removes too much.
    Zero weights at the start give ``d = 0``, ``t = 1`` and the input itself, so a checkpoint without this cell
    restores the same image (``identity_at_init``)."""

    identity_at_init = True

    def __init__(self, channels: int, t_min: float = 0.1, t_max: float = 2.0):
        super().__init__()
        self.depth = zero_init(conv2d(channels, 1, 3))
        self.fc1, self.fc2 = pooled_head(channels, 3)
        self.t_min, self.t_max = t_min, t_max

    def transmission(self, feat: ms.Tensor, size: tuple) -> ms.Tensor:
        """``t`` (B, 1, H, W) at the image's ``size``."""
        d = ops.interpolate(self.depth(feat), size=size, mode="bilinear", align_corners=False)
        return ops.clamp(ops.exp(-d), self.t_min, self.t_max)

    def airlight(self, feat: ms.Tensor) -> ms.Tensor:
        """``A`` (B, 3, 1, 1)."""
        return 0.85 + 0.15 * ops.tanh(pooled_logit(feat, self.fc1, self.fc2))

    def construct(self, feat: ms.Tensor, img: ms.Tensor) -> ms.Tensor:
        a = self.airlight(feat)
        return (img - a) / self.transmission(feat, (img.shape[2], img.shape[3])) + a
