"""OSR: out-of-sample restoration by reprogramming a restorer with a wave-function transform.

Jiang & Han, "Generalizing to Out-of-Sample Degradations via Model Reprogramming"
(TIP 2024).  The transforms are not released; this is the project's own design from
the paper's description (Wave-MLP style waves, PATM-style two-branch output fusion).
Formulas and reasoning: docs/osr.md.  In short, per pixel and colour channel::

    z       = W_r x + i W_i x                      complex Channel-FC   (W_r = I, W_i = 0 at init)
    A       = |z| + E(x)                           amplitude: content kept (|z|) and enhanced (E)
    theta   = angle(z) + P(x)                      phase: adapted by the phase adapter P
    Re, Im  = A cos(theta), A sin(theta)           Euler; the two real terms
    R, I    = f(Re), f(Im)                         reprogrammed restorer f (frozen or trainable)
    u + i v = (R + i I) e^{-i theta}               re-formed wave, adapted phase removed
    W = FC([u, v, |R + iI|]),  C = FC(x)           wave branch, input-image branch
    a = softmax(MLP(GAP(W + C)))                   per-channel branch weights
    y = u + Proj(a_0 C + a_1 W)                    back to image space

E, P and Proj end in zero-initialised convolutions, so at initialisation
``y = f(x)`` exactly (up to the batched restorer call): reprogramming starts from the
plain restorer.  Magnitude and angle have finite, bounded gradients at zero amplitude.

A second reading, ``transform="fourier"``, decouples the image's 2-D spectrum instead
(amplitude |F(x)| enhanced, phase angle(F(x)) adapted, back by the inverse transform) and
feeds the restorer the re-formed image: the phase shift reaches the restorer's input at
first order, where the per-pixel wave's phase is removed again before the output (why
that matters: docs/osr.md §6).  A third, ``transform="channels"``, feeds the restorer both
real terms of the per-pixel wave as input channels (``Re + M Im``, see ChannelsInputTransform).
``use_phase`` / ``use_amplitude`` / ``use_fusion`` switch a path off for ablations (its weights
stay, so one checkpoint serves every switch).

``harm_gate=True`` (our addition, docs/osr.md §8) weighs the whole restoration per image,
``y = x + g (y - x)`` with ``g`` in (0, 1) read from the input and the change the wrapper makes:
trained with clean pairs beside the known degradation, it learns to leave content alone
that does not carry that degradation, which is what "first do no harm" on unseen
degradations asks of a restorer that cannot know them.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops

from ..registry import SubModel, create_model, register_config, register_model
from .layers import conv2d, freeze, gelu, pooled_head, pooled_logit, zero_init


def wave_magnitude(re: ms.Tensor, im: ms.Tensor) -> ms.Tensor:
    """``sqrt(re^2 + im^2)`` with a zero (sub)gradient instead of NaN where both parts are 0.

    Away from 0 the gradient is the exact ``(re, im) / |z|`` (norm 1, so no clipping is needed).
    """
    r2 = re * re + im * im
    nonzero = r2 > 0
    safe = ops.where(nonzero, r2, ops.ones_like(r2))  # sqrt'(0) is infinite; keep it out of the graph
    return ops.where(nonzero, ops.sqrt(safe), ops.zeros_like(r2))


def wave_angle(re: ms.Tensor, im: ms.Tensor, eps: float = 1e-3) -> ms.Tensor:
    """``atan2(im, re)`` in (-pi, pi], 0 at the origin, with a bounded gradient.

    The true gradient ``(-im, re) / |z|^2`` is 0/0 at the origin and explodes near it (the
    phase of a black pixel is meaningless).  The value is computed without gradient and a
    term that is exactly zero in value, ``(re_sg * im - im_sg * re) / (|z_sg|^2 + eps^2)``,
    carries the gradient ``(-im, re) / (|z|^2 + eps^2)``: exact for ``|z| >> eps``, at most
    ``1 / (2 eps)``, and 0 at the origin.
    """
    re_sg = ops.stop_gradient(re)
    im_sg = ops.stop_gradient(im)
    r2 = re_sg * re_sg + im_sg * im_sg
    nonzero = r2 > 0
    value = ops.where(nonzero, ops.atan2(ops.where(nonzero, im_sg, ops.zeros_like(im_sg)),
                                         ops.where(nonzero, re_sg, ops.ones_like(re_sg))), ops.zeros_like(r2))
    carrier = (re_sg * im - im_sg * re) / (r2 + eps * eps)
    return ops.stop_gradient(value) + carrier


def _identity_init(conv: nn.Cell) -> nn.Cell:
    """Identity weight of a square 1x1 conv without bias: it starts by passing its input through."""
    c = conv.weight.shape[0]
    conv.weight.set_data(ms.Tensor(np.eye(c, dtype=np.float32).reshape(c, c, 1, 1)))
    return conv


class PhaseAdapter(nn.Cell):
    """Phase offset P(x): local conv features plus a global (image-level) degradation code.

    A degradation is largely a global "style" (haze density, rain streak orientation, blur
    extent), hence the pooled context added to every pixel before the output conv.
    """

    def __init__(self, channels: int, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = conv2d(in_channels, channels, 3)
        self.conv2 = conv2d(channels, channels, 3)
        self.context = conv2d(channels, channels, 1, padding=0)
        self.conv_out = zero_init(conv2d(channels, in_channels, 3))

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        h = ops.relu(self.conv2(ops.relu(self.conv1(x))))
        g = ops.relu(self.context(h.mean(axis=(2, 3), keep_dims=True)))
        return self.conv_out(h + g)


class AmplitudeEnhancer(nn.Cell):
    """Additive amplitude correction E(x): three 3x3 convs, the last zero-initialised."""

    def __init__(self, channels: int, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = conv2d(in_channels, channels, 3)
        self.conv2 = conv2d(channels, channels, 3)
        self.conv_out = zero_init(conv2d(channels, in_channels, 3))

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.conv_out(ops.relu(self.conv2(ops.relu(self.conv1(x)))))


class WaveInputTransform(nn.Cell):
    """Image -> (real, imaginary, phase): decouple into amplitude and phase, adapt, unfold by Euler."""

    def __init__(self, channels: int = 32, in_channels: int = 3, angle_eps: float = 1e-3,
                 use_phase: bool = True, use_amplitude: bool = True) -> None:
        super().__init__()
        self.angle_eps = angle_eps
        self.use_phase, self.use_amplitude = use_phase, use_amplitude
        # Complex Channel-FC z = W_r x + i W_i x; W_r = identity, W_i = 0 gives |z| = x, angle(z) = 0.
        self.proj_real = _identity_init(conv2d(in_channels, in_channels, 1, padding=0, bias=False))
        self.proj_imag = zero_init(conv2d(in_channels, in_channels, 1, padding=0, bias=False))
        self.amplitude_enhancer = AmplitudeEnhancer(channels, in_channels)
        self.phase_adapter = PhaseAdapter(channels, in_channels)

    def construct(self, x: ms.Tensor):
        return self.terms(x)

    def terms(self, x: ms.Tensor):
        """(real, imaginary, phase) of the adapted wave ``A e^{i theta}``."""
        zr = self.proj_real(x)
        zi = self.proj_imag(x)
        amplitude = wave_magnitude(zr, zi)
        if self.use_amplitude:
            amplitude = amplitude + self.amplitude_enhancer(x)
        phase = wave_angle(zr, zi, self.angle_eps)
        if self.use_phase:
            phase = phase + self.phase_adapter(x)
        return amplitude * ops.cos(phase), amplitude * ops.sin(phase), phase


class ChannelsInputTransform(WaveInputTransform):
    """Image -> restorer input ``Re + M Im``: the restorer takes both real terms as input channels.

    A frozen restorer's first layer takes 3 channels; widening it to the 6 channels ``[Re, Im]`` with
    the Im half equal to its Re half composed with a learnt 1x1 mixing ``M`` is exactly a linear first
    layer applied to ``Re + M Im``, so this works for any restorer without touching it.  ``M = I`` at
    initialisation; ``Im = 0`` there, so the input is ``x`` (identity), and the phase reaches the
    restorer at first order (``d input / d theta = M A`` at ``theta = 0``)."""

    def __init__(self, channels: int = 32, in_channels: int = 3, angle_eps: float = 1e-3,
                 use_phase: bool = True, use_amplitude: bool = True) -> None:
        super().__init__(channels, in_channels, angle_eps, use_phase, use_amplitude)
        self.imag_mix = _identity_init(conv2d(in_channels, in_channels, 1, padding=0, bias=False))

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        real, imag, _ = self.terms(x)
        return real + self.imag_mix(imag)


class FusionHead(nn.Cell):
    """PATM-style output fusion: ``Proj(a_0 FC(x) + a_1 FC(w))`` with per-channel weights ``a`` from the
    pooled sum of both branches; ``Proj`` is zero-initialised, so the head starts as an exact no-op."""

    def __init__(self, channels: int, wave_channels: int, in_channels: int = 3) -> None:
        super().__init__()
        self.channels = channels
        self.fc_wave = conv2d(wave_channels, channels, 1, padding=0)
        self.fc_input = conv2d(in_channels, channels, 1, padding=0)
        hidden = max(channels // 4, 4)
        self.reweight_fc1 = conv2d(channels, hidden, 1, padding=0)
        self.reweight_act = gelu()
        self.reweight_fc2 = conv2d(hidden, 2 * channels, 1, padding=0)
        self.proj = zero_init(conv2d(channels, in_channels, 3))

    def fuse(self, wave_terms: ms.Tensor, x: ms.Tensor) -> ms.Tensor:
        wave = self.fc_wave(wave_terms)
        content = self.fc_input(x)
        pooled = (wave + content).mean(axis=(2, 3), keep_dims=True)
        logits = self.reweight_fc2(self.reweight_act(self.reweight_fc1(pooled)))
        b = logits.shape[0]
        weights = ops.softmax(logits.reshape(b, self.channels, 2, 1, 1), axis=2)
        return self.proj(weights[:, :, 0] * content + weights[:, :, 1] * wave)


class WaveOutputTransform(FusionHead):
    """(restored real, restored imaginary, phase, input) -> image; PATM-style two-branch fusion."""

    def __init__(self, channels: int = 32, in_channels: int = 3, use_fusion: bool = True) -> None:
        super().__init__(channels, 3 * in_channels, in_channels)
        self.use_fusion = use_fusion

    def construct(self, real: ms.Tensor, imag: ms.Tensor, phase: ms.Tensor, x: ms.Tensor) -> ms.Tensor:
        cos_p = ops.cos(phase)
        sin_p = ops.sin(phase)
        # Re-formed wave (real + i imag) multiplied by e^{-i phase}: u is the image-space reading.
        u = real * cos_p + imag * sin_p
        if not self.use_fusion:
            return u
        v = imag * cos_p - real * sin_p
        return u + self.fuse(ops.cat((u, v, wave_magnitude(real, imag)), 1), x)


def spectral_coordinates(h: int, w_half: int, like: ms.Tensor) -> ms.Tensor:
    """(1, 3, h, w_half) signed vertical frequency, horizontal frequency (cycles/pixel) and radius of
    every ``rfft2`` bin: rain streaks and haze live at particular orientations and radii."""
    fy = ops.arange(0, h, dtype=like.dtype)
    fy = ops.where(fy < (h + 1) // 2, fy, fy - h) / h
    fx = ops.arange(0, w_half, dtype=like.dtype) / (2 * (w_half - 1) if w_half > 1 else 1)
    gy = ops.broadcast_to(fy.reshape(1, 1, h, 1), (1, 1, h, w_half))
    gx = ops.broadcast_to(fx.reshape(1, 1, 1, w_half), (1, 1, h, w_half))
    return ops.cat((gy, gx, ops.sqrt(gy * gy + gx * gx)), 1)


class SpectralAdapter(nn.Cell):
    """Per-frequency correction from the spectrum itself: 1x1 convs over [log(1+|F|), cos, sin of the
    phase, frequency coordinates] plus a global code of the image (the degradation "style");
    the last conv is zero-initialised."""

    def __init__(self, channels: int, in_channels: int = 3) -> None:
        super().__init__()
        self.image_conv = conv2d(in_channels, channels, 3)
        self.context = conv2d(channels, channels, 1, padding=0)
        self.conv1 = conv2d(3 * in_channels + 3, channels, 1, padding=0)
        self.conv2 = conv2d(channels, channels, 1, padding=0)
        self.conv_out = zero_init(conv2d(channels, in_channels, 1, padding=0))

    def construct(self, spectral: ms.Tensor, x: ms.Tensor) -> ms.Tensor:
        g = self.context(ops.relu(self.image_conv(x)).mean(axis=(2, 3), keep_dims=True))
        h = ops.relu(self.conv1(spectral) + g)
        return self.conv_out(ops.relu(self.conv2(h)))


class FourierInputTransform(nn.Cell):
    """Image -> re-formed image: ``A = |F(x)|``, ``phi = angle(F(x))`` per colour channel and ``rfft2``
    bin; ``A' = A exp(E)`` (amplitude kept and enhanced), ``phi' = phi + P`` (phase adapted);
    ``x' = F^-1(A' e^{i phi'})``.  E = P = 0 at initialisation, so ``x' = x``."""

    def __init__(self, channels: int = 32, in_channels: int = 3, angle_eps: float = 1e-3,
                 use_phase: bool = True, use_amplitude: bool = True) -> None:
        super().__init__()
        self.angle_eps = angle_eps
        self.use_phase, self.use_amplitude = use_phase, use_amplitude
        self.amplitude_enhancer = SpectralAdapter(channels, in_channels)
        self.phase_adapter = SpectralAdapter(channels, in_channels)
        self.complex = ops.Complex()

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        spec = ops.rfft2(x, norm="ortho")
        re, im = ops.real(spec), ops.imag(spec)
        amplitude = wave_magnitude(re, im)
        phase = wave_angle(re, im, self.angle_eps)
        b = x.shape[0]
        coords = ops.broadcast_to(spectral_coordinates(h, re.shape[-1], x), (b, 3, h, re.shape[-1]))
        feats = ops.cat((ops.log1p(amplitude), ops.cos(phase), ops.sin(phase), coords), 1)
        if self.use_amplitude:
            amplitude = amplitude * ops.exp(self.amplitude_enhancer(feats, x))
        if self.use_phase:
            phase = phase + self.phase_adapter(feats, x)
        out = self.complex(amplitude * ops.cos(phase), amplitude * ops.sin(phase))
        return ops.irfft2(out, s=(h, w), norm="ortho")


class ImageOutputTransform(FusionHead):
    """(restorer output, input) -> image: the restorer's output plus the fusion head (the Fourier and
    channels readings, whose restorer already answers in image space)."""

    def __init__(self, channels: int = 32, in_channels: int = 3, use_fusion: bool = True) -> None:
        super().__init__(channels, in_channels, in_channels)
        self.use_fusion = use_fusion

    def construct(self, restored: ms.Tensor, x: ms.Tensor) -> ms.Tensor:
        if not self.use_fusion:
            return restored
        return restored + self.fuse(restored, x)


class HarmGate(nn.Cell):
    """Per-image weight ``g`` in (0, 1) of a restoration: ``x + g (y - x)``.

    Reads the input ``x`` and the change ``y - x`` (gradient stopped: the gate judges the change, it does
    not shape it) through two 3x3 convs, pools their features over the image (mean and max: rain streaks
    are sparse), and maps them to one logit, whose bias starts at ``start_logit`` (3: g = 0.95, close to the
    ungated wrapper; 0: g = 0.5, half way, where the sigmoid learns fastest in both directions)."""

    def __init__(self, channels: int = 16, in_channels: int = 3, start_logit: float = 3.0) -> None:
        super().__init__()
        self.conv1 = conv2d(2 * in_channels, channels, 3)
        self.conv2 = conv2d(channels, channels, 3, stride=2)
        self.fc1, self.fc2 = pooled_head(channels, 1, start_logit)

    def logit(self, x: ms.Tensor, y: ms.Tensor) -> ms.Tensor:
        """The logit of ``g``, shape (B, 1, 1, 1)."""
        h = ops.relu(self.conv2(ops.relu(self.conv1(ops.cat((x, ops.stop_gradient(y - x)), 1)))))
        return pooled_logit(h, self.fc1, self.fc2)

    def weight(self, x: ms.Tensor, y: ms.Tensor) -> ms.Tensor:
        """``g`` of shape (B, 1, 1, 1)."""
        return ops.sigmoid(self.logit(x, y))

    def construct(self, x: ms.Tensor, y: ms.Tensor) -> ms.Tensor:
        return self.gated_with_logit(x, y)[0]

    def gated_with_logit(self, x: ms.Tensor, y: ms.Tensor):
        """``(x + g (y - x), logit of g)``."""
        z = self.logit(x, y)
        return x + ops.sigmoid(z) * (y - x), z


TRANSFORMS = ("wave", "fourier", "channels")


class OSR(nn.Cell):
    """Reprogramming wrapper: input transform -> restorer on both wave terms -> output transform.

    ``restorer`` is a registered model name (built with ``restorer_kwargs``) or an
    ``nn.Cell`` taking and returning (B, 3, H, W).  Its weights come from ``restorer_ckpt``
    through :func:`ms_osr.build.create_model` (declared below); otherwise it keeps its random
    initialisation (the paper studies both).  ``freeze_restorer`` sets ``requires_grad=False`` on its
    parameters: gradients still flow through it to the input transform.
    """

    def __init__(self, restorer: str | nn.Cell = "osr_resnet", restorer_kwargs: Mapping | None = None,
                 freeze_restorer: bool = True, adapter_channels: int = 32,
                 fusion_channels: int = 32, angle_eps: float = 1e-3, transform: str = "wave",
                 use_phase: bool = True, use_amplitude: bool = True, use_fusion: bool = True,
                 harm_gate: bool = False, gate_channels: int = 16, gate_start_logit: float = 3.0) -> None:
        super().__init__()
        if transform not in TRANSFORMS:
            raise ValueError(f"OSR transform '{transform}' unknown: choose {', '.join(TRANSFORMS)}")
        if isinstance(restorer, str):
            restorer = create_model(restorer, **dict(restorer_kwargs or {}))
        elif restorer_kwargs:
            raise ValueError("restorer_kwargs is only used when restorer is a registered name")
        if not isinstance(restorer, nn.Cell):
            raise TypeError(f"restorer must be a model name or an nn.Cell, got {type(restorer).__name__}")
        if isinstance(restorer, OSR):
            raise ValueError("the OSR restorer must be a plain restorer, not another OSR wrapper")
        self.restorer = restorer
        self.freeze_restorer = freeze_restorer
        if freeze_restorer:
            freeze(self.restorer)
        self.size_multiple = int(getattr(restorer, "size_multiple", 1))
        self.transform = transform
        paths = dict(use_phase=use_phase, use_amplitude=use_amplitude)
        if transform == "wave":
            self.input_transform = WaveInputTransform(adapter_channels, angle_eps=angle_eps, **paths)
            self.output_transform = WaveOutputTransform(fusion_channels, use_fusion=use_fusion)
        else:
            inputs = FourierInputTransform if transform == "fourier" else ChannelsInputTransform
            self.input_transform = inputs(adapter_channels, angle_eps=angle_eps, **paths)
            self.output_transform = ImageOutputTransform(fusion_channels, use_fusion=use_fusion)
        self.use_gate = harm_gate
        if harm_gate:
            self.harm_gate = HarmGate(gate_channels, start_logit=gate_start_logit)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        y = self.reprogrammed(x)
        return self.harm_gate(x, y) if self.use_gate else y

    def restore_with_gate(self, x: ms.Tensor):
        """``(output, gate logit)``: for the gate's label loss (``train.loss.gate_supervision``)."""
        return self.harm_gate.gated_with_logit(x, self.reprogrammed(x))

    def reprogrammed(self, x: ms.Tensor) -> ms.Tensor:
        """The wrapper's restoration before the harm gate."""
        if self.transform != "wave":  # the restorer takes one re-formed image
            return self.output_transform(self.restorer(self.input_transform(x)), x)
        real, imag, phase = self.input_transform(x)
        # Both terms through the same restorer in one batched call.
        b = x.shape[0]
        restored = self.restorer(ops.cat((real, imag), 0))
        return self.output_transform(restored[:b], restored[b:], phase, x)


@register_model(submodels=(SubModel("restorer", kwargs="restorer_kwargs", ckpt="restorer_ckpt"),))
def osr(**kwargs) -> OSR:
    """OSR wrapper; kwargs: restorer=<name>|Cell, restorer_kwargs={}, restorer_ckpt=None, freeze_restorer=True, ..."""
    return OSR(**kwargs)


register_config("osr_small", "osr",
                "OSR around osr_resnet_small (quarter-width Net), 16-channel adapters; CPU training",
                restorer="osr_resnet_small", adapter_channels=16, fusion_channels=16)
register_config("osr_fourier_small", "osr",
                "OSR, Fourier reading (spectrum amplitude/phase), around osr_resnet_small, 16-channel adapters",
                restorer="osr_resnet_small", adapter_channels=16, fusion_channels=16, transform="fourier")
register_config("osr_channels_small", "osr",
                "OSR, channels reading (restorer takes Re + M Im), around osr_resnet_small, 16-channel adapters",
                restorer="osr_resnet_small", adapter_channels=16, fusion_channels=16, transform="channels")
register_config("osr_gdn_small", "osr", "OSR around griddehazenet_small, 16-channel adapters; CPU training",
                restorer="griddehazenet_small", adapter_channels=16, fusion_channels=16)
register_config("osr_griddehazenet", "osr", "OSR around the official-size GridDehazeNet, 32-channel adapters",
                restorer="griddehazenet")
