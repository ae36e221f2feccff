"""Strict checkpoint loading, atomic saving and the automatic PyTorch name map."""
import os

import mindspore.nn as nn
import numpy as np
import pytest

from ms_osr.checkpoint import CheckpointError, load_checkpoint, save_arrays, save_checkpoint
from ms_osr.convert import ConversionError, convert_state_dict, to_torch_state_dict, torch_name_map
from ms_osr.models.layers import conv2d, layer_norm


class Tiny(nn.Cell):
    def __init__(self, ch=4):
        super().__init__()
        self.conv = conv2d(3, ch)
        self.norm = layer_norm(ch)
        self.body = nn.SequentialCell([conv2d(ch, ch), nn.BatchNorm2d(ch)])

    def construct(self, x):
        return self.body(self.conv(x))


def test_name_map_renames_only_norms():
    m = torch_name_map(Tiny())
    assert m["conv.weight"] == "conv.weight"
    assert m["norm.gamma"] == "norm.weight" and m["norm.beta"] == "norm.bias"
    assert m["body.1.moving_variance"] == "body.1.running_var"


def test_save_load_roundtrip_and_prefixes(tmp_path):
    src, dst = Tiny(), Tiny()
    path = str(tmp_path / "t.ckpt")
    save_checkpoint(src, path, extra={"optimizer.moment1.conv.weight": np.ones(3, np.float32)})
    assert os.listdir(tmp_path) == ["t.ckpt"]
    load_checkpoint(dst, path)  # training namespaces are ignored
    for name, p in dst.parameters_dict().items():
        np.testing.assert_array_equal(p.asnumpy(), src.parameters_dict()[name].asnumpy())
    # a DataParallel-style file (every key under 'module.') loads strictly too
    arrays = {"module." + n: p.asnumpy() * 2 for n, p in src.parameters_dict().items()}
    save_arrays(arrays, str(tmp_path / "m.ckpt"))
    load_checkpoint(dst, str(tmp_path / "m.ckpt"))
    np.testing.assert_array_equal(dst.conv.weight.asnumpy(), src.conv.weight.asnumpy() * 2)


def test_strict_errors_name_the_file(tmp_path):
    wrong = str(tmp_path / "wrong.ckpt")
    save_checkpoint(Tiny(ch=8), wrong)
    with pytest.raises(CheckpointError, match="wrong.ckpt: checkpoint does not match.*wrong shape"):
        load_checkpoint(Tiny(), wrong)
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.ckpt: checkpoint file is empty"):
        load_checkpoint(Tiny(), str(empty))
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x00\x01not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="garbage.ckpt: not a readable MindSpore checkpoint"):
        load_checkpoint(Tiny(), str(garbage))
    with pytest.raises(CheckpointError, match="absent.ckpt: checkpoint file not found"):
        load_checkpoint(Tiny(), str(tmp_path / "absent.ckpt"))


def test_convert_state_dict_checks_everything():
    net = Tiny()
    sd = to_torch_state_dict(net)
    assert "norm.weight" in sd and "body.1.running_mean" in sd
    sd = {"module." + k: v for k, v in sd.items()}
    sd["module.body.1.num_batches_tracked"] = np.array(5)
    out = convert_state_dict(net, sd)
    assert set(out) == set(net.parameters_dict())
    bad = dict(sd)
    bad.pop("module.norm.weight")
    bad["module.norm.wieght"] = np.zeros(4, np.float32)
    bad["module.conv.bias"] = np.zeros(5, np.float32)
    with pytest.raises(ConversionError) as info:
        convert_state_dict(net, bad, source="x.pth")
    text = str(info.value)
    assert text.startswith("x.pth: checkpoint does not match the network: 1 missing, 1 unexpected, 1 with the wrong shape")
    assert "missing:    norm.weight" in text and "unexpected: norm.wieght" in text and "conv.bias" in text
