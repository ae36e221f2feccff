"""Res-HAIR diagnostics: entropy and separability against known cases, and on a tiny network."""
import numpy as np
import pytest

import ms_osr  # noqa: F401
import mindspore as ms

from ms_osr.hair_diagnostics import HairDiagnostics, diagnose, hyper_levels, normalised_entropy, separability
from ms_osr.registry import create_model


def test_normalised_entropy_bounds():
    assert normalised_entropy(np.full((2, 5), 0.2)) == pytest.approx([1.0, 1.0])
    assert normalised_entropy(np.array([[1.0, 0, 0, 0]]))[0] == pytest.approx(0.0, abs=1e-9)
    assert 0 < normalised_entropy(np.array([[0.7, 0.1, 0.1, 0.1]]))[0] < 1


def test_separability_of_separated_and_mixed_clusters():
    rng = np.random.default_rng(0)
    labels = ["a"] * 10 + ["b"] * 10 + ["c"] * 10
    centres = {"a": [0, 0], "b": [10, 0], "c": [0, 10]}
    clear = np.array([centres[c] for c in labels]) + rng.normal(0, 0.1, (30, 2))
    r2, acc, chance = separability(clear, labels)
    assert r2 > 0.99 and acc == 1.0 and chance == pytest.approx(1 / 3)
    mixed = rng.normal(0, 1, (30, 2))
    r2m, accm, _ = separability(mixed, labels)
    assert r2m < 0.3 and accm < 0.7


def test_diagnose_tiny_res_hair_and_refuse_other_models():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_seed(0)
    net = create_model("res_hair_tiny")
    rng = np.random.default_rng(0)
    images = [rng.random((32, 32, 3)).astype(np.float32) for _ in range(6)]
    d = diagnose(net, images, ["x", "y", "z"] * 2)
    names = [n for n, _ in hyper_levels(net)]
    assert names and len(d.entropy) == len(d.spread) >= len(names)
    assert all(0 <= v <= 1 for v in d.entropy.values()) and all(v >= 0 for v in d.spread.values())
    s = d.summary()
    assert set(s) == {"hsn_entropy", "kernel_spread", "giv_r2", "giv_accuracy"} and 0 <= s["giv_r2"] <= 1
    assert "nearest-centroid accuracy" in d.table()
    with pytest.raises(ValueError, match="not a Res-HAIR network"):
        diagnose(create_model("osr_resnet_small"), images, ["x"] * 6)
    assert np.isnan(HairDiagnostics().summary()["hsn_entropy"])


@pytest.mark.slow
def test_cli_prints_diagnostics_for_a_checkpoint(tmp_path, capsys):
    from scripts import load_script

    from ms_osr.checkpoint import save_checkpoint
    from ms_osr.config import save_config
    from ms_osr.data.corpus import read_manifest
    from ms_osr.data.io import write_image

    cli = load_script("test.py", "ms_osr_test_cli_hd")
    photos = tmp_path / "photos" / "test"
    photos.mkdir(parents=True)
    for i, r in enumerate(x for x in read_manifest() if x["split"] == "test"):
        write_image(str(photos / f"{r['name']}.png"), np.random.default_rng(i).random((40, 48, 3)).astype(np.float32))
    ms.set_seed(0)
    save_checkpoint(create_model("res_hair_tiny"), str(tmp_path / "hair.ckpt"))
    save_config({"model": {"name": "res_hair_tiny", "kwargs": {}}}, str(tmp_path / "hair.yaml"))
    rc = cli.main(["--ckpt", str(tmp_path / "hair.ckpt"), "--hair-diagnostics", "--data-root", str(tmp_path / "photos"),
                   "--mode", "pynative"])
    out = capsys.readouterr().out
    assert rc == 0 and "Res-HAIR diagnostics on 48 degraded images" in out and "chance 33.3%" in out


@pytest.mark.slow
def test_training_logs_selection_entropy_and_giv_separability(tmp_path):
    import json

    from ms_osr.training.loop import Trainer, resolve_config

    cfg = resolve_config({
        "model": {"name": "res_hair_tiny", "kwargs": {}},
        "data": {"train": {"type": "skimage_samples", "split": "train", "degradations": ["noise_25"]},
                 "val": {"type": "skimage_samples", "split": "heldout", "degradations": ["noise_25", "rain"],
                         "crop": 32},
                 "patch_size": 32, "batch_size": 2, "num_workers": 1},
        "train": {"total_steps": 2, "val_every": 2, "save_every": 2, "log_every": 1, "update": "host",
                  "optimizer": {"type": "adamw", "lr": 1e-3}},
        "runtime": {"device": "cpu", "mode": "graph", "seed": 0, "threads": 2},
        "out_dir": str(tmp_path / "run")})
    Trainer(cfg, progress=False).fit()
    vals = [json.loads(line) for line in (tmp_path / "run" / "val_log.jsonl").read_text().splitlines()]
    last = vals[-1]
    assert 0 <= last["hsn_entropy"] <= 1 and last["kernel_spread"] >= 0
    assert 0 <= last["giv_r2"] <= 1 and 0 <= last["giv_accuracy"] <= 1
    assert (tmp_path / "run" / "curves.png").is_file()


def test_hsn_temperature_sharpens_the_selection():
    """``hsn_temperature`` divides the HSN logits (1 = official): same weights, lower selection entropy."""
    from ms_osr.models.hair import FullyCon

    ms.set_seed(0)
    official = FullyCon(16, 5, depth=1)
    sharp = FullyCon(16, 5, depth=1, temperature=0.25)
    ms.load_param_into_net(sharp, {p.name: ms.Parameter(p.asnumpy(), name=p.name) for p in official.get_parameters()})
    giv = ms.Tensor(np.random.default_rng(0).normal(size=(6, 16)).astype(np.float32))
    logits = official.net(giv).asnumpy().astype(np.float64)
    expected = np.exp(4 * logits) / np.exp(4 * logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(sharp(giv).asnumpy(), expected, atol=1e-6)
    assert normalised_entropy(sharp(giv).asnumpy()).mean() < normalised_entropy(official(giv).asnumpy()).mean()
    with pytest.raises(ValueError, match="temperature must be > 0"):
        FullyCon(16, 5, temperature=0.0)
    net = create_model("res_hair_tiny", hsn_temperature=0.5)
    assert all(abs(h.inv_temperature - 2.0) < 1e-12 for _, level in hyper_levels(net) for h in level.extracts)


def test_giv_separation_loss_is_one_minus_the_diagnostic_r2():
    from ms_osr.losses import giv_separation_loss

    rng = np.random.default_rng(1)
    labels = list("abcabcab")
    onehot = np.eye(4, dtype=np.float32)[["abcd".index(c) for c in labels]]  # class d absent from the batch
    for giv in (rng.normal(size=(8, 5)), np.array([[0, 0], [9, 0], [0, 9]] * 3)[:8] + rng.normal(0, 0.01, (8, 2))):
        giv = giv.astype(np.float32)
        loss = float(giv_separation_loss(ms.Tensor(giv), ms.Tensor(onehot)).asnumpy())
        assert loss == pytest.approx(1.0 - separability(giv, labels)[0], abs=1e-5)
    assert loss < 1e-4  # the separated clusters


def _separation_cfg(tmp_path, weight, degradations=("noise_25", "rain"), steps=2):
    from ms_osr.training.loop import resolve_config

    return resolve_config({
        "model": {"name": "res_hair_tiny", "kwargs": {}},
        "data": {"train": {"type": "skimage_samples", "split": "train", "degradations": list(degradations)},
                 "patch_size": 32, "batch_size": 4, "num_workers": 1},
        "train": {"total_steps": steps, "val_every": None, "save_every": None, "log_every": 1, "update": "host",
                  "optimizer": {"type": "adamw", "lr": 2e-3}, "scheduler": {"type": "constant"},
                  "loss": {"type": "l1", "giv_separation": weight}},
        "runtime": {"device": "cpu", "mode": "graph", "seed": 0, "threads": 2},
        "out_dir": str(tmp_path / f"run{weight}")})


@pytest.mark.slow
def test_giv_separation_term_reaches_the_classifier_and_separates(tmp_path):
    """The label loss: batches carry one-hot degradations, the term's gradient reaches the DAC (the GIV's
    encoder), and host updates on a batch pull its GIVs apart by degradation (the diagnostic's R² rises)."""
    from ms_osr.data import datasets as DS
    from ms_osr.errors import MsOsrError
    from ms_osr.losses import giv_separation_loss
    from ms_osr.training.loop import Trainer, bias_corrections

    trainer = Trainer(_separation_cfg(tmp_path, 1.0), progress=False)
    assert trainer.classes == ["noise_25", "rain"]
    view = DS.EpochView(trainer.train_source, 0, 0, 4, patch_size=32, classes=trainer.classes)
    batch = [view[i] for i in range(4)]
    assert all(len(item) == 3 and item[2].sum() == 1 for item in batch)
    labels = [trainer.classes[int(np.argmax(item[2]))] for item in batch]
    assert labels == [trainer.train_source.degradation(i) for i in view.indices[:4]] and len(set(labels)) == 2
    x, y, onehot = (ms.Tensor(np.stack([b[k] for b in batch])) for k in range(3))

    def separation():
        trainer.net.set_train(False)
        return float(giv_separation_loss(trainer.net.global_vector(x), onehot).asnumpy())

    before = separation()
    names = [p.name for p in trainer.optimizer.params]
    dac = [i for i, n in enumerate(names) if n.startswith("feature.")]
    for step in range(12):
        trainer.step_cell.set_train(True)
        _, grads = trainer.step_cell(x, y, onehot)
        if step == 0:
            zero = [names[i] for i in dac if not np.abs(grads[i].asnumpy()).max() > 0]
            # only the DAC's attention query/key stay at 0: its map is 1x1 on 32 px crops, the softmax constant
            assert dac and len(zero) < len(dac) and all(".attn_1.q." in n or ".attn_1.k." in n for n in zero), zero
        trainer.optimizer.update(grads, 1e-3, *bias_corrections(step, trainer.betas))
    assert separation() < 0.5 * before, (before, separation())
    trainer.fit()  # the full loop feeds the labels too
    with pytest.raises(MsOsrError, match="at least two degradation types"):
        Trainer(_separation_cfg(tmp_path, 1.0, degradations=("noise_25",)), progress=False)


def test_giv_separation_refuses_a_model_without_a_giv():
    from ms_osr.training.step import LossNet

    with pytest.raises(ValueError, match="giv_separation needs a Res-HAIR model"):
        LossNet(create_model("toy_restorer", width=4), {"type": "l1", "giv_separation": 0.1})


def test_giv_separation_step_compiles_with_mixed_precision():
    """On GPU/Ascend train.py runs O2: the label loss must reach the network's restore_with_giv there too (the AMP
    wrapper has no such method), and the step takes the labels after lr and the bias corrections."""
    from ms_osr.audit import cases, graph_ops
    from ms_osr.training.optim import AdamW
    from ms_osr.training.step import make_step_cell

    net = cases.build_model(cases.ModelCase("res_hair", "res_hair_tiny"), "GPU")
    step, _ = make_step_cell(net, {"loss": {"type": "l1", "giv_separation": 0.1}, "loss_scale": "dynamic"},
                             AdamW(net.trainable_params()), amp="O2")
    x = ms.Tensor(np.random.default_rng(0).random((2, 3, 32, 32), np.float32))
    scalars = [ms.Tensor(v, ms.float32) for v in (1e-4, 0.1, 0.001)]
    prims = graph_ops.compiled_primitives(step, x, x, *scalars, ms.Tensor(np.eye(2, dtype=np.float32)))
    assert "Cast" in prims  # compiled, and really in mixed precision
