"""CLIP image encoder (OpenAI ``VisionTransformer``) in MindSpore, for PTG-RM's OSF g.

Architecture and parameter names follow OpenAI's ``clip/model.py`` visual tower, so the
``visual.*`` entries of an OpenAI state_dict convert through :mod:`ms_osr.convert` (LayerNorm
gamma/beta <-> weight/bias is automatic; the text tower and ``logit_scale`` are ignored):

    visual.conv1.weight                     patch embedding (no bias), stride = patch size
    visual.class_embedding, visual.positional_embedding
    visual.ln_pre / visual.ln_post          LayerNorm, eps 1e-5
    visual.transformer.resblocks.N.{ln_1, attn.in_proj_weight, attn.in_proj_bias,
                                    attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj}   QuickGELU MLP
    visual.proj                             (width, 512) projection

:class:`CLIPImageEncoder` adds the preprocessing PTG-RM needs: clamp to [0, 1], then one of
``preprocess='stretch'`` (bilinear resize of the whole image to ``image_resolution``, 224: the
release fed full-size images, which stock CLIP rejects) or ``preprocess='openai'`` (OpenAI's own:
short side to 224 with PIL's bicubic, centre crop; :mod:`ms_osr.models.resample`), CLIP mean/std
normalisation, then the projected embedding, L2-normalised.  docs/ptg_rm.md says which configs
use which and why.
Weights: ``ms_osr.build.create_model('clip_vit_b32', ckpt='ViT-B-32.pt')`` (OpenAI's TorchScript file,
open_clip / state_dict files and converted ``.ckpt`` too).
"""
from __future__ import annotations

import numpy as np

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import Parameter, Tensor
from mindspore.common.initializer import Normal, initializer

from ..precision import cast_like
from ..registry import register_config, register_model
from .layers import conv2d, crop, layer_norm
from .resample import openai_resize_crop

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class QuickGELU(nn.Cell):
    """x * sigmoid(1.702 x), the activation OpenAI's CLIP was trained with."""

    def construct(self, x: Tensor) -> Tensor:
        return x * ops.sigmoid(1.702 * x)


class MultiheadAttention(nn.Cell):
    """Self-attention with ``torch.nn.MultiheadAttention``'s parameters and maths (no mask, no dropout).

    Written for MindSpore's CPU kernels: 2-D and batched matmuls with the transpose in the primitive
    (``ops.matmul`` of a 3-D input broadcasts the weight to every image: BroadcastTo + BatchMatMul, and a
    ReduceSum in its gradient) and q, k, v taken with one Split (indexing the transposed 5-D view ran as
    StridedSlice: with the broadcasts, a fifth of PTG-RM's training step with CLIP)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"CLIP width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = width // heads
        self.scale = self.head_dim ** -0.5
        self.in_proj_weight = Parameter(initializer(Normal(width ** -0.5), (3 * width, width), ms.float32),
                                        name="in_proj_weight")
        self.in_proj_bias = Parameter(initializer("zeros", (3 * width,), ms.float32), name="in_proj_bias")
        self.out_proj = nn.Dense(width, width, has_bias=True)
        self.matmul_wt = ops.MatMul(transpose_b=True)
        self.bmm_kt = ops.BatchMatMul(transpose_b=True)
        self.bmm = ops.BatchMatMul()

    def construct(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        weight, bias = cast_like(self.in_proj_weight, x), cast_like(self.in_proj_bias, x)  # float16 under AMP
        qkv = self.matmul_wt(x.reshape(b * n, c), weight) + bias  # (b n, 3 c): [q | k | v], each (heads, d)
        qkv = qkv.reshape(b, n, 3 * self.heads, self.head_dim).transpose(0, 2, 1, 3)  # b, 3 heads, n, d
        q, k, v = ops.split(qkv, self.heads, axis=1)
        attn = ops.softmax(self.bmm_kt(q * self.scale, k), axis=-1)
        out = self.bmm(attn, v).transpose(0, 2, 1, 3).reshape(b * n, c)
        return self.out_proj(out).reshape(b, n, c)


class MLP(nn.Cell):
    def __init__(self, width: int):
        super().__init__()
        self.c_fc = nn.Dense(width, width * 4, has_bias=True)
        self.gelu = QuickGELU()
        self.c_proj = nn.Dense(width * 4, width, has_bias=True)

    def construct(self, x: Tensor) -> Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Cell):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1 = layer_norm(width)
        self.attn = MultiheadAttention(width, heads)
        self.ln_2 = layer_norm(width)
        self.mlp = MLP(width)

    def construct(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Cell):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.SequentialCell([ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def construct(self, x: Tensor) -> Tensor:
        return self.resblocks(x)


class VisionTransformer(nn.Cell):
    """OpenAI CLIP visual tower: (B, 3, R, R) normalised image -> (B, output_dim) embedding (not normalised)."""

    def __init__(self, input_resolution: int = 224, patch_size: int = 32, width: int = 768, layers: int = 12,
                 heads: int = 12, output_dim: int = 512):
        super().__init__()
        if input_resolution % patch_size:
            raise ValueError(f"CLIP input_resolution {input_resolution} is not a multiple of patch {patch_size}")
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        scale = width ** -0.5
        tokens = (input_resolution // patch_size) ** 2 + 1
        self.conv1 = conv2d(3, width, patch_size, stride=patch_size, padding=0, bias=False)
        self.class_embedding = Parameter(initializer(Normal(scale), (width,), ms.float32), name="class_embedding")
        self.positional_embedding = Parameter(initializer(Normal(scale), (tokens, width), ms.float32),
                                              name="positional_embedding")
        self.ln_pre = layer_norm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = layer_norm(width)
        self.proj = Parameter(initializer(Normal(scale), (width, output_dim), ms.float32), name="proj")

    def construct(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        b, c = x.shape[0], x.shape[1]
        x = x.reshape(b, c, -1).transpose(0, 2, 1)  # b, grid*grid, width
        cls = cast_like(self.class_embedding, x).reshape(1, 1, c).broadcast_to((b, 1, c))
        x = ops.concat((cls, x), axis=1) + cast_like(self.positional_embedding, x)
        x = self.transformer(self.ln_pre(x))
        feat = self.ln_post(x[:, 0, :])
        return ops.matmul(feat, cast_like(self.proj, feat))


class CLIPImageEncoder(nn.Cell):
    """Degraded image in [0, 1] (any size) -> L2-normalised CLIP image embedding (B, output_dim).

    ``preprocess``: 'stretch' (default; the whole image, bilinear, aspect not kept) or 'openai'
    (OpenAI's ``clip.load`` preprocessing: aspect kept, PIL bicubic, centre crop).
    ``antialias`` ('stretch' only): average-pool by the integer factor min(H, W) // resolution before
    the bilinear resize (reduces aliasing on large inputs; off by default to match plain bilinear resizing).
    """

    PREPROCESSING = ("stretch", "openai")

    # everything outside the visual tower in an OpenAI/open_clip state_dict (text tower, logit_scale,
    # input_resolution/context_length/vocab_size buffers of the TorchScript file)
    torch_ignored_keys = (r"(?!visual\.)",)

    def __init__(self, input_resolution: int = 224, patch_size: int = 32, width: int = 768, layers: int = 12,
                 heads: int = 12, output_dim: int = 512, normalize: bool = True, antialias: bool = False,
                 preprocess: str = "stretch"):
        super().__init__()
        if preprocess not in self.PREPROCESSING:
            raise ValueError(f"CLIP preprocess must be one of {', '.join(self.PREPROCESSING)}, got '{preprocess}'")
        self.preprocess_mode = preprocess
        self.visual = VisionTransformer(input_resolution, patch_size, width, layers, heads, output_dim)
        self.resolution = input_resolution
        self.out_dim = output_dim
        self.normalize = normalize
        self.antialias = antialias
        self.mean = Tensor(np.array(CLIP_MEAN, np.float32).reshape(1, 3, 1, 1))
        self.std = Tensor(np.array(CLIP_STD, np.float32).reshape(1, 3, 1, 1))

    def preprocess(self, x: Tensor) -> Tensor:
        x = ops.clamp(x, 0.0, 1.0)
        if self.preprocess_mode == "openai":
            return (openai_resize_crop(x, self.resolution) - self.mean) / self.std
        h, w = x.shape[2], x.shape[3]
        if self.antialias:
            factor = min(h, w) // self.resolution
            if factor >= 2:
                x = crop(x, 0, 0, h - h % factor, w - w % factor)
                x = ops.avg_pool2d(x, factor, factor)
        if h != self.resolution or w != self.resolution:
            x = ops.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std

    def construct(self, x: Tensor) -> Tensor:
        feat = self.visual(self.preprocess(x))
        if self.normalize:
            feat = feat / ops.norm(feat, dim=-1, keepdim=True)
        return feat


@register_model
def clip_image_encoder(**kwargs) -> CLIPImageEncoder:
    """CLIP image encoder; defaults = ViT-B/32 (width 768, 12 layers, 12 heads, patch 32, 224 px, 512-d)."""
    return CLIPImageEncoder(**kwargs)


register_config("clip_vit_b32", "clip_image_encoder", "OpenAI CLIP ViT-B/32 image encoder (87.8 M params)")
register_config("clip_tiny", "clip_image_encoder", "random-weight CLIP-architecture encoder for CPU tests",
                input_resolution=64, patch_size=16, width=64, layers=2, heads=2, output_dim=32)
