"""PTG-RM: pre-train-guided refinement module (Xu et al., CVPR 2024), as the official code computes it.

The official module is ``refinement2`` in ``models/archs/low_light_transformer648_final.py``
of xiaogang00/pretrain_model_boost_restoration.  :class:`PTGRM` keeps its attribute names
(``r1``, ``mapp_space1``, ``transformer.0.attn.qkv`` ...), so an official state_dict
converts with ``ms_osr.convert`` without a rename table (``tools/convert_pth.py --model
ptg_rm``; keys of the full SNR network carry a ``refinement11.`` prefix: keep only those and
strip it, or convert into :class:`PTGRMWrapper`, whose PTG-RM attribute is also called
``refinement11``).

Data flow (f lives at H/4 x W/4, nf = 16 channels)::

    f   = r22(IN(r2(lrelu(IN(r1(base_out (+) inp))))))                    encoder R_e
    M   = sigmoid(r2_mask(lrelu(r1_mask(f (+) T_m(g) (+) S_m))))          Eq. 2 (1 channel)
    f^  = M * transformer(f) + (1 - M) * resnet(f)                        Eq. 3 (PTG-SVE)
    ca  = sigmoid(mapping12(lrelu(mapping11(avgpool(f^) (+) T_c(g)))))    Eq. 4
    C_p = mapp12(lrelu(mapp11(f^ (+) T_c(g) (+) S_c)))                    Eq. 5 (9 taps per channel)
    sa  = sigmoid(mapp1(lrelu(per_pixel_conv(f^, C_p)))) * f^             Eq. 6
    f_  = refine11((ca * f^) (+) sa) + f^                                 Eq. 7 (+ residual, code only)
    r   = conv_last3(lrelu(conv_last2(2 x [lrelu(pixel_shuffle(conv))]))) decoder R_d
    out = clamp(base_out, 0, 1) + r                                       Eq. 1 as coded (no mask)

With ``use_mask=True`` the last conv emits a fourth channel m and the paper's Eq. 1 is used:
``out = inp + (clamp(base_out, 0, 1) - inp) * sigmoid(m) + r`` (not in the official code).

How train.py calls the wrapper (``create_model('ptg_rm_wrapper', ...)``)::

    refined = net(x)                          # inference / validation: the refined image
    base_out, refined = net.forward_train(x)  # training: both outputs for Eq. 8
    loss = ptg_rm_joint_loss(base_out, refined, gt, l1)   # ms_osr.losses

``forward_train`` is an ordinary method of the cell: call it from the ``construct`` of the
loss cell and it compiles in GRAPH_MODE with the rest of the step.  The OSF g is computed
from the degraded input under ``stop_gradient``; the provider's weights are frozen.
"""
from __future__ import annotations

import math
from typing import Optional, Union

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import Parameter, Tensor
from mindspore.common.initializer import initializer

from ..registry import SubModel, create_model, register_model
from .layers import conv2d, conv2d_relu, crop, freeze, pad_to_multiple
from .osf import OSF_MODELS, build_osf
from .restormer import TransformerBlock

# Official default: 4 Restormer blocks at nf=16, 512-d CLIP OSF -> 0.67 M parameters (Table 2).
DEFAULT_PARAM_COUNT = 671_735


class InstanceNorm2d(nn.Cell):
    """``torch.nn.InstanceNorm2d(affine=True)`` (no running stats); MindSpore's op is GPU-only.

    Parameters are called ``weight``/``bias`` so the converter keeps the PyTorch names.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = Parameter(initializer("ones", (num_features,), ms.float32), name="weight")
        self.bias = Parameter(initializer("zeros", (num_features,), ms.float32), name="bias")

    def construct(self, x: Tensor) -> Tensor:
        mean = x.mean(axis=(2, 3), keep_dims=True)
        var = ((x - mean) ** 2).mean(axis=(2, 3), keep_dims=True)  # biased, as torch
        y = (x - mean) / ops.sqrt(var + self.eps)
        return y * self.weight.reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)


class ResidualBlock_noBN(nn.Cell):  # noqa: N801 (official class name)
    """conv3x3 -> ReLU -> conv3x3 plus identity (R_s, the short-range branch)."""

    def __init__(self, nf: int = 16):
        super().__init__()
        self.conv1 = conv2d_relu(nf, nf, 3)
        self.conv2 = conv2d(nf, nf, 3, bias=True)

    def construct(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.conv1(x))


def coordinate_grid(batch: int, height: int, width: int) -> Tensor:
    """(B, 2, h, w) grid: channel 0 = row coordinate, channel 1 = column, each linspace(-1, 1)."""
    rows = _linspace_m1_1(height).reshape(1, 1, height, 1).broadcast_to((batch, 1, height, width))
    cols = _linspace_m1_1(width).reshape(1, 1, 1, width).broadcast_to((batch, 1, height, width))
    return ops.concat((rows, cols), axis=1)


def _linspace_m1_1(n: int) -> Tensor:
    """torch.linspace(-1, 1, n) in float32, computed symmetrically from both ends as torch does."""
    idx = ops.arange(n).astype(ms.float32)
    if n == 1:
        return idx - 1.0
    step = 2.0 / (n - 1)
    from_start = idx * step - 1.0
    from_end = 1.0 - (n - 1 - idx) * step
    return ops.where(idx < n // 2, from_start, from_end)


def per_pixel_conv(feat: Tensor, kernel: Tensor, ksize: int) -> Tensor:
    """Spatially varying depthwise conv with replicate padding (official ``kernel2d_conv``).

    ``kernel`` has C*k*k channels ordered (c, dy, dx): out[c, y, x] = sum_{dy,dx}
    kernel[c*k*k + dy*k + dx, y, x] * pad(feat)[c, y + dy, x + dx].
    """
    b, c, h, w = feat.shape
    pad = (ksize - 1) // 2
    padded = ops.pad(feat, (pad, pad, pad, pad), mode="replicate")
    kernel = kernel.reshape(b, c, ksize * ksize, h, w)
    out = None
    for dy in range(ksize):
        for dx in range(ksize):
            term = crop(padded, dy, dx, h, w) * kernel[:, :, dy * ksize + dx]
            out = term if out is None else out + term
    return out


class PTGRM(nn.Cell):
    """The official ``refinement2`` module. ``construct(base_out, inp, osf) -> refined``.

    Args:
        nf: feature channels (16 in the release).
        osf_dim: length of the OSF vector g (512 for CLIP ViT-B/32).
        osf_hidden: hidden width of the two OSF MLPs T_m and T_c (256).
        num_blocks: Restormer TransformerBlocks in the long-range branch (4).
        heads, ffn_expansion_factor, bias, layernorm_type: TransformerBlock settings.
        kernel_size: size of the per-pixel predicted kernels (3).
        use_mask: paper Eq. 1 with a predicted mask I_m (not in the official code).
    """

    size_multiple = 4  # two stride-2 convs; other sizes are reflect-padded and cropped back

    def __init__(self, nf: int = 16, osf_dim: int = 512, osf_hidden: int = 256, num_blocks: int = 4,
                 heads: int = 1, ffn_expansion_factor: float = 2.66, bias: bool = False,
                 layernorm_type: str = "WithBias", kernel_size: int = 3, use_mask: bool = False):
        super().__init__()
        self.nf = nf
        self.osf_dim = osf_dim
        self.kh = kernel_size
        self.use_mask = use_mask
        cond = nf * 4  # width of T_m(g) / T_c(g)
        kk = nf * kernel_size * kernel_size

        # encoder R_e
        self.r1 = conv2d(6, nf, 3, bias=False)
        self.r1norm = InstanceNorm2d(nf)
        self.r2 = conv2d(nf, nf, 3, stride=2, bias=False)
        self.r2norm = InstanceNorm2d(nf)
        self.r22 = conv2d(nf, nf, 3, stride=2, bias=False)
        # OSF MLPs: T_m (range map) and T_c (channel attention + kernels)
        self.mapp_space1 = nn.Dense(osf_dim, osf_hidden, has_bias=False)
        self.mapp_space2 = nn.Dense(osf_hidden, cond, has_bias=False)
        self.mapp_space11 = nn.Dense(osf_dim, osf_hidden, has_bias=False)
        self.mapp_space22 = nn.Dense(osf_hidden, cond, has_bias=False)
        # position embeddings S_m and S_c
        self.mapp_position1 = conv2d(2, nf, 3, bias=False)
        self.mapp_position2 = conv2d(nf, nf, 1, bias=False)
        self.mapp_position11 = conv2d(2, nf, 3, bias=False)
        self.mapp_position22 = conv2d(nf, nf, 1, bias=False)
        # PTG-SVE: range map R_m, long (Restormer) and short (ResNet) branches
        self.r1_mask = conv2d(nf + cond + nf, nf, 3, bias=False)
        self.r2_mask = conv2d(nf, 1, 3, bias=False)
        self.transformer = nn.SequentialCell([
            TransformerBlock(nf, heads, ffn_expansion_factor, bias, layernorm_type) for _ in range(num_blocks)])
        self.resnet = ResidualBlock_noBN(nf)
        # PTG-CSA: channel attention R_c, kernel predictor R_p, spatial output R_o, fusion R_f
        self.mapping11 = nn.Dense(cond + nf, nf, has_bias=False)
        self.mapping12 = nn.Dense(nf, nf, has_bias=False)
        self.mapp11 = conv2d(nf + cond + nf, kk, 3, bias=False)
        self.mapp12 = conv2d(kk, kk, 3, bias=False)
        self.mapp1 = conv2d(nf, 1, 3, bias=False)
        self.refine11 = conv2d(nf * 2, nf, 1, bias=False)
        # decoder R_d
        self.r1_decoder = conv2d(nf, nf * 4, 3, bias=False)
        self.r2_decoder = conv2d(nf, nf * 4, 3, bias=False)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.conv_last2 = conv2d(nf, nf, 3, bias=True)
        self.conv_last3 = conv2d(nf, 4 if use_mask else 3, 3, bias=True)
        self.lrelu = nn.LeakyReLU(alpha=0.1)
        self.sigmoid = nn.Sigmoid()

    def _broadcast(self, v: Tensor, h: int, w: int) -> Tensor:
        b, c = v.shape
        return v.reshape(b, c, 1, 1).broadcast_to((b, c, h, w))

    def construct(self, base_out: Tensor, inp: Tensor, osf: Tensor) -> Tensor:
        base_p, h, w = pad_to_multiple(base_out, self.size_multiple)
        inp_p, _, _ = pad_to_multiple(inp, self.size_multiple)
        g = osf.astype(ms.float32)

        f = self.r1norm(self.r1(ops.concat((base_p, inp_p), axis=1)))
        f = self.r22(self.r2norm(self.r2(self.lrelu(f))))
        b, _, fh, fw = f.shape
        grid = coordinate_grid(b, fh, fw)

        # PTG-SVE (Eqs. 2-3): OSF-conditioned range map mixes long- and short-range features
        pos_m = self.mapp_position2(self.lrelu(self.mapp_position1(grid)))
        t_m = self.mapp_space2(self.lrelu(self.mapp_space1(g)))
        m = ops.concat((f, self._broadcast(t_m, fh, fw), pos_m), axis=1)
        m = self.sigmoid(self.r2_mask(self.lrelu(self.r1_mask(m))))
        fs = self.transformer(f) * m + self.resnet(f) * (1 - m)

        # PTG-CSA (Eqs. 4-7)
        pos_c = self.mapp_position22(self.lrelu(self.mapp_position11(grid)))
        t_c = self.mapp_space22(self.lrelu(self.mapp_space11(g)))
        pooled = fs.mean(axis=(2, 3))
        ca = self.mapping12(self.lrelu(self.mapping11(ops.concat((pooled, t_c), axis=1))))
        f_ca = self.sigmoid(ca).reshape(b, self.nf, 1, 1) * fs
        kernels = ops.concat((fs, self._broadcast(t_c, fh, fw), pos_c), axis=1)
        kernels = self.mapp12(self.lrelu(self.mapp11(kernels)))
        sa = self.mapp1(self.lrelu(per_pixel_conv(fs, kernels, self.kh)))
        f_sa = self.sigmoid(sa) * fs
        fused = self.refine11(ops.concat((f_ca, f_sa), axis=1)) + fs

        # decoder R_d
        y = self.lrelu(self.pixel_shuffle(self.r1_decoder(fused)))
        y = self.lrelu(self.pixel_shuffle(self.r2_decoder(y)))
        y = self.conv_last3(self.lrelu(self.conv_last2(y)))
        base_c = ops.clamp(base_p, 0.0, 1.0)
        if self.use_mask:
            out = inp_p + (base_c - inp_p) * self.sigmoid(y[:, 3:4]) + y[:, :3]
        else:
            out = base_c + y
        return crop(out, 0, 0, h, w)


def count_params(net: nn.Cell, trainable_only: bool = False) -> int:
    """Number of scalar parameters (all, or only those with requires_grad)."""
    params = net.trainable_params() if trainable_only else net.get_parameters()
    return int(sum(math.prod(p.shape) for p in params))


class PTGRMWrapper(nn.Cell):
    """Attach PTG-RM to any restorer ``base`` with an OSF provider ``osf`` (see ms_osr.models.osf).

    ``construct(x)`` returns the refined image; ``forward_train(x)`` returns ``(base_out, refined)``.
    With ``freeze_base`` the base is frozen (no gradient, not in trainable_params()); otherwise it is
    trained jointly with PTG-RM as in the official code.  Parameter names: ``base.*``, ``osf.*``,
    ``refinement11.*`` (the official name of the PTG-RM inside the SNR-aware network).
    """

    def __init__(self, base: nn.Cell, osf: nn.Cell, freeze_base: bool = True, **ptg_kwargs):
        super().__init__()
        self.base = base
        self.osf = freeze(osf)
        self.freeze_base = freeze_base
        if freeze_base:
            freeze(base)
        self.refinement11 = PTGRM(osf_dim=int(osf.out_dim), **ptg_kwargs)
        base_mult = int(getattr(base, "size_multiple", 1))
        self.size_multiple = base_mult * 4 // math.gcd(base_mult, 4)

    def osf_vector(self, x: Tensor) -> Tensor:
        """g = G(I_d): the frozen prior's vector for the degraded input."""
        return ops.stop_gradient(self.osf(x))

    def forward_train(self, x: Tensor):
        base_out = self.base(x)
        if self.freeze_base:
            base_out = ops.stop_gradient(base_out)
        refined = self.refinement11(base_out, x, self.osf_vector(x))
        return base_out, refined

    def construct(self, x: Tensor) -> Tensor:
        base_out = self.base(x)
        return self.refinement11(base_out, x, self.osf_vector(x))


@register_model
def ptg_rm(**kwargs) -> PTGRM:
    """The PTG-RM module alone (official ``refinement2``); ``construct(base_out, inp, osf)``."""
    return PTGRM(**kwargs)


@register_model(submodels=(SubModel("base", kwargs="base_kwargs", ckpt="base_ckpt"),
                           SubModel("osf", kwargs="osf_kwargs", aliases=OSF_MODELS, what="OSF provider",
                                    warn_random=("clip",))))
def ptg_rm_wrapper(base: Union[str, nn.Cell] = "restormer_small", base_kwargs: Optional[dict] = None,
                   freeze_base: bool = True, osf: Union[str, nn.Cell] = "clip", osf_kwargs: Optional[dict] = None,
                   ptg_kwargs: Optional[dict] = None) -> PTGRMWrapper:
    """Registered restorer ``base`` + PTG-RM guided by the OSF provider ``osf``.

    ``osf``: 'clip' | 'restoration_prior' | 'distilled' (see :func:`ms_osr.models.osf.build_osf`), or a
    built provider.  Weights (``base_ckpt``, ``osf_kwargs.ckpt``) are loaded by
    :func:`ms_osr.build.create_model`, which passes the built cells here.
    """
    base_net = create_model(base, **(base_kwargs or {})) if isinstance(base, str) else base
    provider = build_osf(osf, **(osf_kwargs or {})) if isinstance(osf, str) else osf
    return PTGRMWrapper(base_net, provider, freeze_base=freeze_base, **(ptg_kwargs or {}))
