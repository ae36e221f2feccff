"""ms_osr.build: arguments checked against the constructor (a typo is a one-line user error, a bug inside a
constructor keeps its traceback), declared sub-model weights, the files a build reads."""
import warnings

import numpy as np
import pytest

import mindspore.nn as nn

import toy_restorers as toys
from ms_osr.build import create_model, load_model, weight_paths
from ms_osr.checkpoint import save_checkpoint
from ms_osr.errors import ModelArgumentError, MsOsrError
from ms_osr.registry import register_model


class _Broken(nn.Cell):
    def __init__(self, width: int = 4):
        super().__init__()
        len(width)  # a bug: TypeError from inside the constructor


@register_model
def toy_broken(width: int = 4) -> _Broken:
    return _Broken(width)


def test_unknown_argument_names_the_nearest():
    with pytest.raises(ModelArgumentError, match="model 'toy_convnet' has no argument 'widht' "
                                                 r"\(did you mean 'width'\?\)"):
        create_model("toy_convnet", widht=4)
    with pytest.raises(ModelArgumentError, match="no argument 'restorer_ckp'"):
        create_model("osr_small", restorer_ckp="x.ckpt")  # checked through osr(**kwargs) -> OSR.__init__


def test_a_bug_in_a_constructor_is_not_a_user_error(tmp_path):
    with pytest.raises(TypeError) as info:
        create_model("toy_broken")
    assert not isinstance(info.value, MsOsrError)
    ck = tmp_path / "w.ckpt"
    save_checkpoint(toys.toy_convnet(width=4), str(ck))
    with pytest.raises(TypeError):  # not reported as "bad arguments for model"
        load_model(str(ck), model="toy_broken")


def test_declared_sub_model_weights_and_files(tmp_path):
    base = toys.toy_convnet(width=8)
    save_checkpoint(base, str(tmp_path / "base.ckpt"))
    net = create_model("toy_composite", base_ckpt=str(tmp_path / "base.ckpt"))
    np.testing.assert_array_equal(net.base.head.weight.asnumpy(), base.head.weight.asnumpy())
    assert list(weight_paths("toy_composite", {"base_ckpt": "b.ckpt"})) == [("model.kwargs.base_ckpt", "b.ckpt")]
    kw = {"base": "restormer_tiny", "base_ckpt": "base.ckpt", "osf": "restoration_prior",
          "osf_kwargs": {"model": "restormer_tiny", "ckpt": "prior.ckpt", "standardize": "std.npz"}}
    assert sorted(weight_paths("ptg_rm_wrapper", kw)) == [
        ("model.kwargs.base_ckpt", "base.ckpt"), ("model.kwargs.osf_kwargs.ckpt", "prior.ckpt"),
        ("model.kwargs.osf_kwargs.standardize", "std.npz")]


def test_random_prior_warns_only_without_weights(tmp_path):
    with pytest.warns(UserWarning, match="random weights"):
        create_model("restoration_prior_osf", model="toy_convnet")
    prior = create_model("restoration_prior_osf", model="toy_convnet")
    save_checkpoint(prior, str(tmp_path / "full.ckpt"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every weight from the checkpoint: nothing random, nothing to warn about
        create_model("restoration_prior_osf", ckpt=str(tmp_path / "full.ckpt"), model="toy_convnet")
