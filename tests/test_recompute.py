"""train.recompute: the marked blocks, unchanged gradients, and the config path."""
import numpy as np
import pytest

import ms_osr  # noqa: F401  (oneDNN cap before mindspore)
import mindspore as ms
from mindspore import ParameterTuple

from ms_osr.registry import create_model
from ms_osr.training.recompute import enable_recompute, recompute_units
from ms_osr.training.step import GradStep, LossNet

TINY = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 2, 2])


def _grads(net, x, y):
    step = GradStep(LossNet(net, {"type": "l1"}), net.trainable_params())
    step.set_train(True)
    loss, grads = step(x, y)
    return float(loss.asnumpy()), [g.asnumpy() for g in grads]


@pytest.mark.parametrize("name, kwargs, units", [("restormer", TINY, 8), ("res_hair_tiny", {}, None)])
def test_recompute_keeps_gradients(name, kwargs, units):
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.random((2, 3, 24, 24), dtype=np.float32))
    y = ms.Tensor(rng.random((2, 3, 24, 24), dtype=np.float32))
    ms.set_seed(3)
    plain = create_model(name, **kwargs)
    ms.set_seed(3)
    marked = create_model(name, **kwargs)
    ms.load_param_into_net(marked, {p.name: p.clone() for p in plain.get_parameters()}, strict_load=True)
    n = enable_recompute(marked)
    if units is not None:
        assert n == units  # encoder 3 + latent 1 + decoder 3 + refinement 1
    assert n == len(recompute_units(marked)) > 0
    loss_a, grads_a = _grads(plain, x, y)
    loss_b, grads_b = _grads(marked, x, y)
    assert abs(loss_a - loss_b) <= 1e-7
    worst = max(np.abs(a - b).max() / (np.abs(a).max() + 1e-12) for a, b in zip(grads_a, grads_b))
    assert worst <= 1e-5, worst
    assert any(np.abs(g).max() > 0 for g in grads_b)


def test_nested_units_are_marked_once():
    from mindspore import nn

    class Inner(nn.Cell):
        recompute_unit = True

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def construct(self, x):
            return self.conv(x)

    class Outer(Inner):
        def __init__(self):
            super().__init__()
            self.inner = Inner()

    net = nn.SequentialCell([Outer(), Inner()])
    assert recompute_units(net) == ["0", "1"]  # "0.inner" is inside a recomputed block
    assert enable_recompute(net) == 2


def test_model_without_units_is_a_clear_error():
    with pytest.raises(ValueError, match="no block marked for recomputation"):
        enable_recompute(create_model("toy_restorer"))
