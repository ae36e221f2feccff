"""Mixed precision on CPU: the O2/O3 steps that GPU/Ascend run (fp16 casts, loss scaling, unscaling,
overflow skip, dynamic scale), executed with MindSpore's CPU float16 kernels on the toy restorer."""
import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor

from ms_osr.audit import graph_ops
from ms_osr.registry import create_model
from ms_osr.training.amp import LossScaler, build_loss_scaler
from ms_osr.training.loop import AMP_ON_CPU_ENV, Trainer
from ms_osr.training.optim import AdamW
from ms_osr.training.step import EMA, GradStep, LossNet, make_step_cell

SCALARS = [Tensor(v, ms.float32) for v in (1e-3, 0.1, 0.001)]  # lr, bias corrections of step 1


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return [Tensor(rng.random((2, 3, 16, 16), dtype=np.float32)) for _ in range(2)]


def _net():
    ms.set_seed(0)
    return create_model("toy_restorer")


def _arrays(params):
    return {p.name: p.asnumpy().copy() for p in params}


def test_power_of_two_scale_unscales_exactly():
    net = _net()
    x, y = _data()
    loss0, grads0 = GradStep(LossNet(net, {"type": "l1"}), net.trainable_params())(x, y)
    loss1, grads1, finite = GradStep(LossNet(net, {"type": "l1"}), net.trainable_params(),
                                     scaler=LossScaler(1024.0))(x, y)
    assert bool(finite.asnumpy())
    assert float(loss1.asnumpy()) == float(loss0.asnumpy())
    for g0, g1 in zip(grads0, grads1):
        np.testing.assert_array_equal(g1.asnumpy(), g0.asnumpy())


@pytest.mark.parametrize("level", ["O2", "O3"])
def test_amp_step_runs_convs_in_float16_and_trains(level):
    x, y = _data()
    ref_net = _net()
    ref_loss = float(LossNet(ref_net, {"type": "l1"})(x, y).asnumpy())
    net = _net()
    params = net.trainable_params()
    before = _arrays(params)
    step, scaler = make_step_cell(net, {"loss": {"type": "l1"}, "loss_scale": 1024}, AdamW(params), amp=level)
    loss = float(step(x, y, *SCALARS).asnumpy())
    assert abs(loss - ref_loss) < 2e-3 * max(1.0, ref_loss)  # fp16 forward, fp32 loss
    assert int(scaler.overflows.asnumpy()) == 0
    after = _arrays(params)
    assert all(p.dtype == ms.float32 for p in params)  # master weights stay float32
    assert all(not np.array_equal(before[k], after[k]) for k in before)
    ops = graph_ops.compiled_primitives(step, x, y, *SCALARS)  # the graph that just ran
    assert ("float16", "float16") in ops["Conv2D"] and "Cast" in ops


def test_overflow_skips_the_whole_update():
    net = _net()
    params = net.trainable_params()
    opt, ema = AdamW(params), EMA(params, 0.9)
    # 2**40 x dL/dout overflows float16 in the backward pass
    step, scaler = make_step_cell(net, {"loss": {"type": "l1"}, "loss_scale": 2.0 ** 40}, opt, ema, amp="O2")
    state = [params, opt.exp_avg, opt.exp_avg_sq, ema.shadow]
    before = [_arrays(group) for group in state]
    loss = float(step(*_data(), *SCALARS).asnumpy())
    assert np.isfinite(loss)
    assert int(scaler.overflows.asnumpy()) == 1
    for group, saved in zip(state, before):
        for name, value in _arrays(group).items():
            np.testing.assert_array_equal(value, saved[name], err_msg=name)


def test_dynamic_scale_halves_on_overflow_and_doubles_after_window():
    net = _net()
    params = net.trainable_params()
    scaler = LossScaler(2.0 ** 40, dynamic=True, window=2)
    step = GradStep(LossNet(ms.amp.auto_mixed_precision(net, "O2"), {"type": "l1"}), params, scaler=scaler)
    *_, finite = step(*_data())
    assert not bool(finite.asnumpy()) and float(scaler.value.asnumpy()) == 2.0 ** 39
    scaler.value.set_data(Tensor(256.0, ms.float32))
    for seed, want in ((1, 256.0), (2, 512.0), (3, 512.0)):
        *_, finite = step(*_data(seed))
        assert bool(finite.asnumpy())
        assert float(scaler.value.asnumpy()) == want
    assert int(scaler.overflows.asnumpy()) == 1 and int(scaler.good_steps.asnumpy()) == 1


def test_loss_scale_config():
    assert build_loss_scaler("dynamic").dynamic and float(build_loss_scaler("dynamic").value.asnumpy()) == 2.0 ** 16
    assert not build_loss_scaler(512).dynamic and float(build_loss_scaler(512).value.asnumpy()) == 512.0
    with pytest.raises(ValueError):
        LossScaler(0.0)


@pytest.mark.parametrize("update", ["device", "host"])
def test_trainer_amp_on_cpu_skips_overflow_and_resumes_scale(tmp_path, monkeypatch, capsys, update):
    """train.py's own loop with amp O2 (kept on CPU by the test hook): an overflowing step is logged and
    updates nothing, the next steps train, and the dynamic scale state is saved in last.ckpt."""
    from test_train import _cfg

    monkeypatch.setenv(AMP_ON_CPU_ENV, "1")
    cfg = _cfg(tmp_path, tmp_path / "amp", steps=3, amp="O2", loss_scale="dynamic", val_every=0, update=update)
    trainer = Trainer(cfg, progress=False)
    params = trainer.net.trainable_params()
    before = _arrays(params)
    trainer.scaler.value.set_data(Tensor(2.0 ** 40, ms.float32))  # this step overflows
    trainer.fit(stop_at=1)
    assert "fp16 gradient overflow, update skipped" in capsys.readouterr().err
    assert trainer.step == 1 and trainer.skipped_steps == 1 and float(trainer.scaler.value.asnumpy()) == 2.0 ** 39
    assert all(np.array_equal(v, before[k]) for k, v in _arrays(params).items())
    trainer.scaler.value.set_data(Tensor(1024.0, ms.float32))
    summary = trainer.fit()
    assert summary["step"] == 3 and np.isfinite(summary["loss"]) and trainer.skipped_steps == 1
    assert all(not np.array_equal(v, before[k]) for k, v in _arrays(params).items())
    raw = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(tmp_path / "amp" / "last.ckpt")).items()}
    assert raw["loss_scale.value"].item() == 1024.0 and raw["loss_scale.good_steps"].item() == 2
