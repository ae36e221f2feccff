"""Restormer: structure and parity with the PyTorch reference in GRAPH_MODE."""
import numpy as np
import pytest
import torch

import ms_osr  # noqa: F401  (oneDNN cap before mindspore)
import mindspore as ms

from ms_osr.checkpoint import load_arrays_into_net
from ms_osr.convert import convert_state_dict, torch_name_map
from ms_osr.models.restormer import Restormer as MsRestormer
from ms_osr.registry import create_model, list_models
from torch_ref import parity_report
from torch_ref.restormer_ref import Restormer, padded_forward, randomize_

TINY = dict(dim=8, num_blocks=(1, 1, 1, 1), heads=(1, 2, 2, 4), num_refinement_blocks=1)
# Second variant covers the other options: BiasFree LayerNorm, conv biases, another FFN factor.
TINY_BF = dict(TINY, LayerNorm_type="BiasFree", bias=True, ffn_expansion_factor=2.0, num_blocks=(1, 2, 1, 2),
               num_refinement_blocks=2)
MAX_TOL, MEAN_TOL = 1e-4, 1e-6


def _pair(name, kwargs, seed, **ms_kwargs):
    torch.manual_seed(seed)
    tm = randomize_(Restormer(**kwargs), seed=seed).eval()
    net = create_model(name, **ms_kwargs)
    net.set_train(False)
    load_arrays_into_net(net, convert_state_dict(net, {k: v.numpy() for k, v in tm.state_dict().items()}))
    return tm, net


@pytest.fixture(scope="module")
def tiny():
    return _pair("restormer_tiny", TINY, seed=1)


def _check(tm, net, x, label):
    out = net(ms.Tensor(x)).asnumpy()
    with torch.no_grad():
        ref = padded_forward(tm, torch.from_numpy(x)).numpy()
    rep = parity_report(out, ref)
    print(label, tuple(x.shape), rep)
    assert out.shape == x.shape
    assert rep["max_abs"] <= MAX_TOL and rep["mean_abs"] <= MEAN_TOL
    assert np.abs(ref - x).mean() > 0.02  # the residual branch is not negligible
    return out


def test_default_structure_matches_official():
    net = create_model("restormer")
    params = net.parameters_dict()
    assert len(params) == 494
    assert sum(p.size for p in params.values()) == 26_126_644
    assert tuple(params["up4_3.body.0.weight"].shape) == (768, 384, 3, 3)
    assert tuple(params["reduce_chan_level3.weight"].shape) == (192, 384, 1, 1)
    assert tuple(params["latent.7.attn.temperature"].shape) == (8, 1, 1)
    assert tuple(params["refinement.3.ffn.project_in.weight"].shape) == (2 * 255, 96, 1, 1)
    assert net.size_multiple == 8
    # MindSpore names are the official PyTorch names: the converter maps them with no overrides.
    assert set(torch_name_map(net).values()) == set(Restormer().state_dict())
    assert all(m == t for m, t in torch_name_map(net).items())


def test_registry_names():
    names = list_models()
    for n in ("restormer", "restormer_small", "restormer_tiny"):
        assert n in names
    assert isinstance(create_model("restormer_small"), MsRestormer)
    with pytest.raises(ValueError, match="LayerNorm_type"):
        create_model("restormer_tiny", LayerNorm_type="Other")


def test_parity_batch2_odd_size(tiny):
    tm, net = tiny
    x = np.random.default_rng(0).random((2, 3, 37, 45), dtype=np.float32)
    _check(tm, net, x, "restormer_tiny")


def test_parity_exact_multiple_and_tiny_input(tiny):
    tm, net = tiny
    rng = np.random.default_rng(1)
    _check(tm, net, rng.random((1, 3, 24, 40), dtype=np.float32), "restormer_tiny")  # no padding
    _check(tm, net, rng.random((1, 3, 3, 11), dtype=np.float32), "restormer_tiny")  # reflect + replicate


def test_parity_biasfree_variant():
    tm, net = _pair("restormer_tiny", TINY_BF, seed=2, **{k: v for k, v in TINY_BF.items() if k not in TINY
                                                          or TINY[k] != v})
    assert any(n.endswith("qkv.bias") for n in net.parameters_dict())
    assert not any(n.endswith("norm1.body.bias") for n in net.parameters_dict())
    x = np.random.default_rng(2).random((2, 3, 37, 45), dtype=np.float32)
    _check(tm, net, x, "restormer_tiny BiasFree+bias")


@pytest.mark.slow
def test_full_size_parity_64():
    torch.set_num_threads(2)
    tm, net = _pair("restormer", {}, seed=3)
    x = np.random.default_rng(3).random((1, 3, 64, 64), dtype=np.float32)
    _check(tm, net, x, "restormer full")
