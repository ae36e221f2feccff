"""tools/gate_weights.py: the weights of the wrapper's and the restorer's harm gates, per image."""
import numpy as np

import ms_osr  # noqa: F401
import mindspore as ms

from ms_osr.models.osr import OSR
from ms_osr.registry import create_model
from scripts import load_script

tool = load_script("tools/gate_weights.py")


def _x(b=2):
    return ms.Tensor(np.random.default_rng(0).random((b, 3, 24, 24)).astype(np.float32))


def test_each_gate_is_read_where_it_acts():
    x = _x()
    ms.set_seed(0)
    restorer = create_model("osr_resnet_small", global_skip=True, harm_gate=True)
    alone = tool.image_gates(restorer, x)
    assert list(alone) == ["restorer"] and alone["restorer"].shape == (2,)
    np.testing.assert_allclose(alone["restorer"], 1.0, atol=1e-6)  # w = 1 at the start
    restorer.harm_gate.fc2.bias.set_data(ms.Tensor(np.array([-2.0], np.float32)))
    np.testing.assert_allclose(tool.image_gates(restorer, x)["restorer"], (1 + np.exp(-4)) / (1 + np.exp(2)),
                               rtol=1e-5)
    # inside a wave wrapper (identity transforms at the start), read on the real term = the image itself
    wrapped = OSR(restorer=restorer, adapter_channels=8, fusion_channels=8, harm_gate=True, gate_start_logit=0.0)
    both = tool.image_gates(wrapped, x)
    assert set(both) == {"wrapper", "restorer"}
    np.testing.assert_allclose(both["restorer"], tool.image_gates(restorer, x)["restorer"], rtol=1e-5)
    np.testing.assert_allclose(both["wrapper"], 0.5, atol=1e-6)
    assert tool.image_gates(create_model("osr_small"), x) == {}
