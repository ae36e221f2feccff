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
