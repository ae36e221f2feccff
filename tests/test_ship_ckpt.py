"""tools/ship_ckpt.py: a run becomes ckpt/<name>.{ckpt,yaml} (weights only, overrides applied) that reloads to
the same network; a missing run is one line and writes nothing."""
import numpy as np
import pytest

import ms_osr  # noqa: F401
import mindspore as ms

from ms_osr.build import load_model
from ms_osr.checkpoint import save_checkpoint
from ms_osr.config import load_config, save_config
from ms_osr.errors import UsageError
from ms_osr.registry import create_model
from scripts import load_script

SHIP = load_script("tools/ship_ckpt.py")


def test_ship_a_run_and_reload_it(tmp_path):
    run, dest = tmp_path / "run", tmp_path / "ckpt"
    run.mkdir()
    ms.set_seed(3)
    net = create_model("toy_restorer")
    save_checkpoint(net, str(run / "last.ckpt"))
    save_config({"model": {"name": "toy_restorer", "kwargs": {}}, "runtime": {"seed": 3}}, str(run / "config.yaml"))
    (run / "train_log.csv").write_text("step,loss\n1,0.5\n")
    SHIP.ship(str(run), "toy_demo", overrides=["runtime.seed=7"], dest=str(dest))
    assert sorted(p.name for p in dest.iterdir()) == ["toy_demo.ckpt", "toy_demo.yaml", "toy_demo_train_log.csv"]
    assert load_config(str(dest / "toy_demo.yaml"))["runtime"]["seed"] == 7
    x = ms.Tensor(np.random.default_rng(0).random((1, 3, 16, 16)).astype(np.float32))
    shipped = load_model(str(dest / "toy_demo.ckpt"), config=str(dest / "toy_demo.yaml")).net
    np.testing.assert_array_equal(shipped(x).asnumpy(), net(x).asnumpy())


def test_missing_run_writes_nothing(tmp_path):
    with pytest.raises(UsageError, match="last.ckpt: not found"):
        SHIP.ship(str(tmp_path / "nope"), "x", dest=str(tmp_path / "ckpt"))
    assert not (tmp_path / "ckpt").exists()
