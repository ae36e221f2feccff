"""tools/widen_osr_resnet.py: a wider osr_resnet that computes what the trained one computes."""
import os

import numpy as np
import pytest

from scripts import load_script
from ms_osr.checkpoint import read_ckpt_arrays, save_checkpoint
from ms_osr.errors import UsageError
from ms_osr.registry import create_model

tool = load_script("tools/widen_osr_resnet.py")


def _arrays(net):
    return {name: p.asnumpy() for name, p in net.parameters_dict().items()}


def test_widening_keeps_the_output_and_the_noise_breaks_the_copies():
    net = create_model("osr_resnet", width=0.25, global_skip=True)
    arrays = _arrays(net)
    image = np.random.default_rng(1).random((1, 3, 16, 16), dtype=np.float32)
    before = tool._output(arrays, 0.25, True, image)
    wide = tool.widen_arrays(arrays, 0.6)  # 4 -> 10 channels: copies are uneven (3, 3, 2, 2)
    assert wide["conv_input_3.weight"].shape == (10, 3, 3, 3) and wide["conv_up_1.weight"].shape == (38, 10, 3, 3)
    assert wide["conv_out_3.weight"].shape == (3, 19, 3, 3)
    np.testing.assert_allclose(tool._output(wide, 0.6, True, image), before, atol=1e-5)
    noisy = tool.widen_arrays(arrays, 0.6, noise=0.01, seed=0)
    w = noisy["res_1.conv1.weight"]
    assert not np.allclose(w[0], w[4]) and np.abs(tool._output(noisy, 0.6, True, image) - before).max() < 0.05


def test_it_refuses_to_narrow_or_to_read_another_network(tmp_path):
    arrays = _arrays(create_model("osr_resnet", width=0.5))
    with pytest.raises(UsageError, match="narrower than the source"):
        tool.widen_arrays(arrays, 0.25)
    with pytest.raises(UsageError, match="not an osr_resnet checkpoint: no conv_input_3.weight"):
        tool.widen_arrays({"restorer." + k: v for k, v in arrays.items()}, 1.0)
    gated = _arrays(create_model("osr_resnet", width=0.5, global_skip=True, harm_gate=True))
    with pytest.raises(UsageError, match="outside the plain osr_resnet .harm_gate"):
        tool.widen_arrays(gated, 1.0)
    src = str(tmp_path / "gated.ckpt")
    save_checkpoint(create_model("osr_resnet", width=0.5, global_skip=True, harm_gate=True), src)
    with pytest.raises(UsageError, match=f"^{src}: holds parameters outside"):
        tool.widen(src, str(tmp_path / "wide.ckpt"), 1.0)
    assert not os.path.exists(tmp_path / "wide.ckpt")


def test_cli_writes_a_loadable_checkpoint(tmp_path, capsys):
    src, dst = str(tmp_path / "small.ckpt"), str(tmp_path / "wide.ckpt")
    save_checkpoint(create_model("osr_resnet", width=0.25, global_skip=True), src)
    assert tool.main(["--src", src, "--width", "0.5", "--dst", dst]) == 0
    assert "width=0.5 global_skip=True" in capsys.readouterr().out
    assert read_ckpt_arrays(dst)["conv_up_2.weight"].shape == (32, 32, 3, 3)
    assert tool.main(["--src", src, "--width", "0.1", "--dst", str(tmp_path / "x.ckpt")]) == 1
    assert "narrower than the source" in capsys.readouterr().err and not (tmp_path / "x.ckpt").exists()


def test_a_source_whose_width_rounds_unevenly_is_rebuilt_for_the_check(tmp_path):
    """At width 0.6 the groups have 10/38/38/38/19 channels: no single ratio of the first group rebuilds it, so the
    source width is searched among the groups' ratios (what Net rounds to), and the widening passes its check."""
    src, dst = str(tmp_path / "w06.ckpt"), str(tmp_path / "wide.ckpt")
    save_checkpoint(create_model("osr_resnet", width=0.6, global_skip=True), src)
    arrays = read_ckpt_arrays(src)
    assert tool.group_widths(arrays) == [10, 38, 38, 38, 19]
    assert tool.stage_channels(tool.source_width(arrays)) == [10, 38, 38, 38, 19]
    assert tool.widen(src, dst, 1.0, noise=0.0) > 100.0  # identical outputs: PSNR at the 1e-20 floor
    with pytest.raises(UsageError, match=r"no osr_resnet width gives the checkpoint's channels per group \[3, "):
        tool.source_width({k: (v[:3] if k == "conv_input_3.weight" else v) for k, v in arrays.items()})
