"""CLIP image encoder: parity with the PyTorch reference (random weights, small config), OpenAI key
layout through the converter (text tower ignored, TorchScript files), ViT-B/32 size."""
import numpy as np
import pytest
import torch

import mindspore as ms

from ms_osr.checkpoint import load_arrays_into_net
from ms_osr.convert import ConversionError, convert_state_dict
from ms_osr.build import load_weights
from ms_osr.models.clip import CLIPImageEncoder
from ms_osr.torch_io import read_torch_checkpoint
from ms_osr.models.ptg_rm import count_params
from ms_osr.registry import create_model
from torch_ref.clip_ref import CLIPImageEncoderRef

def vit_param_count(input_resolution: int = 224, patch_size: int = 32, width: int = 768, layers: int = 12,
                    output_dim: int = 512) -> int:
    """Closed-form parameter count of the visual tower (checks the constructed model)."""
    tokens = (input_resolution // patch_size) ** 2 + 1
    block = 2 * 2 * width + (3 * width * width + 3 * width) + (width * width + width) \
        + (4 * width * width + 4 * width) + (4 * width * width + width)
    return 3 * width * patch_size * patch_size + width + tokens * width + 4 * width + layers * block \
        + width * output_dim


TINY = dict(input_resolution=64, patch_size=16, width=64, layers=2, heads=2, output_dim=32)
MAX_TOL, MEAN_TOL = 1e-4, 1e-6


def _random_ref(antialias: bool = False) -> CLIPImageEncoderRef:
    torch.manual_seed(0)
    ref = CLIPImageEncoderRef(**TINY, antialias=antialias).eval()
    with torch.no_grad():  # LayerNorm weights/biases and attention biases away from 1/0 as well
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return ref


def _openai_like_state_dict(ref) -> dict:
    sd = {k: v.numpy() for k, v in ref.state_dict().items()}
    # what the full OpenAI checkpoint carries besides the visual tower
    sd.update({"logit_scale": np.array(4.6, np.float32), "input_resolution": np.array(224),
               "token_embedding.weight": np.zeros((10, 8), np.float32),
               "transformer.resblocks.0.ln_1.weight": np.ones(8, np.float32),
               "text_projection": np.zeros((8, 4), np.float32)})
    return sd


def _assert_close(a, b, what):
    diff = np.abs(a - b)
    assert diff.max() <= MAX_TOL and diff.mean() <= MEAN_TOL, (what, diff.max(), diff.mean())


@pytest.mark.parametrize("antialias", [False, True])
def test_parity_with_torch_reference(antialias, rng):
    ref = _random_ref(antialias)
    net = create_model("clip_tiny", antialias=antialias)
    load_arrays_into_net(net, convert_state_dict(net, _openai_like_state_dict(ref), source="openai-like"))
    net.set_train(False)
    for shape in [(1, 3, 64, 64), (2, 3, 37, 51), (1, 3, 150, 131)]:
        x = rng.random(shape, dtype=np.float32) * 1.2 - 0.1  # out-of-range values are clamped
        out = net(ms.Tensor(x.astype(np.float32))).asnumpy()
        with torch.no_grad():
            want = ref(torch.from_numpy(x.astype(np.float32))).numpy()
        assert out.shape == (shape[0], 32)
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
        _assert_close(out, want, shape)


def test_missing_visual_key_is_reported():
    ref = _random_ref()
    sd = _openai_like_state_dict(ref)
    del sd["visual.proj"]
    sd["visual.extra.weight"] = np.zeros(3, np.float32)
    net = create_model("clip_tiny")
    with pytest.raises(ConversionError) as err:
        convert_state_dict(net, sd, source="broken.pt")
    assert "visual.proj" in str(err.value) and "visual.extra.weight" in str(err.value)


def test_torchscript_and_state_dict_files(tmp_path, rng):
    """OpenAI ships TorchScript archives; open_clip/HF ship state_dicts: both load and agree."""
    ref = _random_ref().half().float()  # weights exactly representable in fp16, like OpenAI's file
    x = rng.random((1, 3, 40, 48), dtype=np.float32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    scripted = torch.jit.trace(ref, torch.from_numpy(x))
    scripted.half()  # OpenAI's ViT-B-32.pt stores fp16 tensors; the reader casts them to fp32
    ts_path = str(tmp_path / "ViT-tiny.pt")
    scripted.save(ts_path)
    sd_path = str(tmp_path / "vit_tiny_state.pth")
    torch.save({k: torch.from_numpy(v) for k, v in _openai_like_state_dict(ref).items()}, sd_path)
    ts_state = read_torch_checkpoint(ts_path).arrays
    assert ts_state["visual.conv1.weight"].dtype == np.float32
    np.testing.assert_array_equal(ts_state["visual.proj"], ref.visual.proj.detach().numpy())
    outs = []
    for path in (ts_path, sd_path):
        net = CLIPImageEncoder(**TINY)
        load_weights(net, path)
        net.set_train(False)
        outs.append(net(ms.Tensor(x)).asnumpy())
    _assert_close(outs[0], want, "torchscript")
    np.testing.assert_array_equal(outs[0], outs[1])
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ConversionError, match="bad.pt"):
        read_torch_checkpoint(str(bad))


def test_vit_b32_size():
    net = create_model("clip_vit_b32")
    assert net.out_dim == 512 and net.resolution == 224
    assert count_params(net) == vit_param_count() == 87_849_216
    assert count_params(create_model("clip_tiny")) == vit_param_count(64, 16, 64, 2, 32)
    with pytest.raises(ValueError, match="multiple of patch"):
        CLIPImageEncoder(input_resolution=100, patch_size=32)
