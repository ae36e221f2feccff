"""PyTorch twin of ``ms_osr.models.osr.OSR`` (the wave-function reading, docs/osr.md §2), same parameter names,
written from the formulas, around any PyTorch restorer: the parity test and bench_models.py both use it."""
import torch
import torch.nn as nn
import torch.nn.functional as F


def _conv(cin: int, cout: int, k: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias)


def magnitude(re, im):
    """|z| with a zero (and a finite gradient) at z = 0."""
    r2 = re * re + im * im
    nz = r2 > 0
    return torch.where(nz, torch.sqrt(torch.where(nz, r2, torch.ones_like(r2))), torch.zeros_like(r2))


def angle(re, im, eps: float):
    """atan2(im, re) with the gradient (re dim - im dre) / (|z|^2 + eps^2) (finite at z = 0)."""
    re_sg, im_sg = re.detach(), im.detach()
    r2 = re_sg * re_sg + im_sg * im_sg
    nz = r2 > 0
    value = torch.where(nz, torch.atan2(torch.where(nz, im_sg, torch.zeros_like(im_sg)),
                                        torch.where(nz, re_sg, torch.ones_like(re_sg))), torch.zeros_like(r2))
    return value + (re_sg * im - im_sg * re) / (r2 + eps * eps)


class AmplitudeEnhancer(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1, self.conv2, self.conv_out = _conv(3, ch, 3), _conv(ch, ch, 3), _conv(ch, 3, 3)

    def forward(self, x):
        return self.conv_out(F.relu(self.conv2(F.relu(self.conv1(x)))))


class PhaseAdapter(AmplitudeEnhancer):
    def __init__(self, ch: int):
        super().__init__(ch)
        self.context = _conv(ch, ch, 1)

    def forward(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.conv_out(h + F.relu(self.context(h.mean((2, 3), keepdim=True))))


class WaveIn(nn.Module):
    def __init__(self, ch: int, eps: float):
        super().__init__()
        self.eps = eps
        self.proj_real, self.proj_imag = _conv(3, 3, 1, bias=False), _conv(3, 3, 1, bias=False)
        self.amplitude_enhancer, self.phase_adapter = AmplitudeEnhancer(ch), PhaseAdapter(ch)

    def forward(self, x):
        zr, zi = self.proj_real(x), self.proj_imag(x)
        amp = magnitude(zr, zi) + self.amplitude_enhancer(x)
        phase = angle(zr, zi, self.eps) + self.phase_adapter(x)
        return amp * torch.cos(phase), amp * torch.sin(phase), phase


class WaveOut(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.ch = ch
        hidden = max(ch // 4, 4)
        self.fc_wave, self.fc_input = _conv(9, ch, 1), _conv(3, ch, 1)
        self.reweight_fc1, self.reweight_fc2 = _conv(ch, hidden, 1), _conv(hidden, 2 * ch, 1)
        self.proj = _conv(ch, 3, 3)

    def forward(self, real, imag, phase, x):
        c, s = torch.cos(phase), torch.sin(phase)
        u, v = real * c + imag * s, imag * c - real * s
        wave = self.fc_wave(torch.cat([u, v, magnitude(real, imag)], 1))
        content = self.fc_input(x)
        logits = self.reweight_fc2(F.gelu(self.reweight_fc1((wave + content).mean((2, 3), keepdim=True))))
        w = torch.softmax(logits.reshape(x.shape[0], self.ch, 2, 1, 1), dim=2)
        return u + self.proj(w[:, :, 0] * content + w[:, :, 1] * wave)


class OSRRef(nn.Module):
    """input transform -> ``restorer`` on both wave terms in one batch -> output transform."""

    def __init__(self, restorer: nn.Module, adapter_channels: int = 32, fusion_channels: int = 32,
                 angle_eps: float = 1e-3, freeze_restorer: bool = True):
        super().__init__()
        self.restorer = restorer
        self.input_transform, self.output_transform = WaveIn(adapter_channels, angle_eps), WaveOut(fusion_channels)
        if freeze_restorer:
            self.restorer.requires_grad_(False)

    def forward(self, x):
        real, imag, phase = self.input_transform(x)
        restored = self.restorer(torch.cat([real, imag], 0))
        b = x.shape[0]
        return self.output_transform(restored[:b], restored[b:], phase, x)
