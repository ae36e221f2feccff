"""Static shapes where Ascend wants them: fixed tile and patch sizes compile one graph and reuse it.

Counted at MindSpore's graph executor (ms_osr.audit.compiles), so any recompilation shows up whatever the
code path; a run that does recompile logs the cell and the input shapes."""
import logging

import numpy as np
import mindspore as ms

from ms_osr.audit.compiles import count_compiles
from ms_osr.inference import Restorer
from ms_osr.registry import create_model
from ms_osr.training.loop import Trainer


def _images(*sizes):
    rng = np.random.default_rng(0)
    return [rng.random((h, w, 3), dtype=np.float32) for h, w in sizes]


def test_fixed_tile_compiles_one_graph_for_every_image_size():
    ms.set_seed(0)
    restorer = Restorer(create_model("toy_restorer"), tile=32, tile_overlap=8, shapes="static")
    with count_compiles() as log:
        for img in _images((70, 90), (100, 64), (33, 41)):
            assert restorer(img).shape == img.shape
    assert log.shapes("TinyRestorer") == [((1, 3, 32, 32),)]


def test_new_whole_image_size_recompiles_and_says_so(caplog):
    ms.set_seed(0)
    restorer = Restorer(create_model("toy_restorer"), shapes="static")
    with caplog.at_level(logging.INFO, logger="ms_osr.audit.compiles"), count_compiles() as log:
        for img in _images((40, 48), (40, 48), (56, 40)):
            restorer(img)
    assert log.shapes("TinyRestorer") == [((1, 3, 40, 48),), ((1, 3, 56, 40),)]
    assert "compiled TinyRestorer for input shapes ((1, 3, 56, 40),)" in caplog.text


def test_watched_step_reports_a_second_graph(tmp_path):
    from ms_osr.audit.compiles import watch_recompiles

    net = create_model("toy_restorer")
    said = []
    watch_recompiles(net, said.append)
    x = np.zeros((1, 3, 16, 16), np.float32)
    net(ms.Tensor(x))
    net(ms.Tensor(x))
    assert said == []
    net(ms.Tensor(np.zeros((1, 3, 24, 16), np.float32)))
    assert len(said) == 1 and "TinyRestorer compiled graph 2 for input shapes ((1, 3, 24, 16),)" in said[0]


def test_training_with_fixed_patch_compiles_the_step_once(tmp_path):
    from test_train import _cfg

    cfg = _cfg(tmp_path, tmp_path / "run", steps=5, val_every=0, save_every=0)  # 2 steps per epoch: 3 epochs
    trainer = Trainer(cfg, progress=False)
    with count_compiles() as log:
        assert trainer.fit()["step"] == 5
    assert log.shapes("TrainStep") == [((2, 3, 16, 16), (2, 3, 16, 16), (), (), ())]
    assert log.count() == 1
