"""tools/convert_pth.py on Res-HAIR / Restormer checkpoints: formats, round trip, error paths (subprocess CLI)."""
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

import ms_osr  # noqa: F401  (oneDNN cap before mindspore)

from ms_osr.checkpoint import load_checkpoint, read_ckpt_arrays
from ms_osr.convert import torch_name_map
from ms_osr.registry import create_model
from torch_ref.hair_ref import HAIR
from torch_ref.restormer_ref import Restormer, randomize_

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(ROOT, "tools", "convert_pth.py")
TINY = dict(dim=8, num_blocks=(1, 1, 1, 1), heads=(1, 2, 2, 4), num_refinement_blocks=1)


def _cli(*args):
    return subprocess.Popen([sys.executable, CLI, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _run_all(commands):
    """Run CLI invocations two at a time (each spends most of its time importing MindSpore)."""
    results = []
    for i in range(0, len(commands), 2):
        procs = [_cli(*c) for c in commands[i:i + 2]]
        for p in procs:
            out, err = p.communicate(timeout=300)
            results.append((p.returncode, out, err))
    return results


def _lightning_ckpt(state_dict):
    """What Lightning's ModelCheckpoint writes for HAIR: weights under state_dict with 'net.' + training state."""
    sd = {"net." + k: v for k, v in state_dict.items()}
    first = next(iter(state_dict.values()))
    return {
        "epoch": 149, "global_step": 522900, "pytorch-lightning_version": "2.0.1",
        "state_dict": sd,
        "optimizer_states": [{"state": {0: {"step": torch.tensor(522900.0), "exp_avg": torch.zeros_like(first),
                                            "exp_avg_sq": torch.ones_like(first)}},
                              "param_groups": [{"lr": 2e-4, "betas": (0.9, 0.999), "eps": 1e-8,
                                                "weight_decay": 0.01, "amsgrad": False, "params": [0]}]}],
        "lr_schedulers": [{"warmup_epochs": 15, "max_epochs": 150, "last_epoch": 149, "base_lrs": [2e-4]}],
        "callbacks": {"ModelCheckpoint{'monitor': None}": {"best_model_score": None, "dirpath": "train_ckpt"}},
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 150}}}},
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("convert")
    torch.manual_seed(0)
    hair_sd = randomize_(HAIR(**TINY), seed=4).state_dict()
    rest_sd = randomize_(Restormer(**TINY), seed=5).state_dict()
    paths = {"dir": d, "hair": str(d / "hair3d.ckpt"), "rest": str(d / "restormer.pth")}
    torch.save(_lightning_ckpt(hair_sd), paths["hair"])
    torch.save({"params": rest_sd}, paths["rest"])
    # Broken variants of the Restormer file.
    renamed = dict(rest_sd)
    renamed["latent.0.attn.temperatur"] = renamed.pop("latent.0.attn.temperature")
    torch.save({"params": renamed}, str(d / "renamed.pth"))
    reshaped = dict(rest_sd)
    reshaped["output.weight"] = torch.zeros(3, 16, 3, 1)
    torch.save({"params": reshaped}, str(d / "shape.pth"))
    with open(paths["rest"], "rb") as f:
        blob = f.read()
    with open(d / "truncated.pth", "wb") as f:
        f.write(blob[: len(blob) // 2])
    open(d / "empty.pth", "wb").close()
    paths["hair_sd"] = {k: v.numpy() for k, v in hair_sd.items()}
    paths["rest_sd"] = {k: v.numpy() for k, v in rest_sd.items()}
    return paths


@pytest.fixture(scope="module")
def converted(files):
    d = files["dir"]
    jobs = [("--model", "res_hair_tiny", "--src", files["hair"], "--dst", str(d / "hair.ckpt")),
            ("--model", "restormer_tiny", "--src", files["rest"], "--dst", str(d / "rest.ckpt"))]
    return dict(zip(("hair", "rest"), _run_all(jobs)))


@pytest.mark.parametrize("kind,model", [("hair", "res_hair_tiny"), ("rest", "restormer_tiny")])
def test_forward_conversion_via_cli(files, converted, kind, model):
    rc, out, err = converted[kind]
    assert rc == 0, err
    dst = str(files["dir"] / f"{kind}.ckpt")
    assert f"wrote {dst}" in out
    # Loads strictly into the network and every tensor is bitwise the PyTorch one.
    net = create_model(model)
    load_checkpoint(net, dst)
    ref = files[f"{kind}_sd"]
    params = net.parameters_dict()
    names = torch_name_map(net)  # GroupNorm gamma/beta <-> weight/bias
    assert len(params) == len(ref)
    for name, p in params.items():
        np.testing.assert_array_equal(p.asnumpy(), ref[names[name]])


def test_reverse_round_trip_is_lossless(files, converted):
    assert converted["hair"][0] == 0
    d = files["dir"]
    back, again = str(d / "hair_back.pth"), str(d / "hair_again.ckpt")
    (rc, _, err), = _run_all([("--model", "res_hair_tiny", "--src", str(d / "hair.ckpt"), "--dst", back,
                               "--reverse")])
    assert rc == 0, err
    ckpt = torch.load(back, map_location="cpu", weights_only=True)
    sd = ckpt["state_dict"]  # HAIR's official container: Lightning, network under 'net.'
    assert set(sd) == {"net." + k for k in files["hair_sd"]}
    for k, v in sd.items():
        np.testing.assert_array_equal(v.numpy(), files["hair_sd"][k[len("net."):]])
    (rc, _, err), = _run_all([("--model", "res_hair_tiny", "--src", back, "--dst", again)])
    assert rc == 0, err
    first, second = read_ckpt_arrays(str(d / "hair.ckpt")), read_ckpt_arrays(again)
    assert set(first) == set(second)
    for k in first:
        assert first[k].dtype == second[k].dtype
        np.testing.assert_array_equal(first[k], second[k])


def test_error_paths_write_nothing(files):
    d = files["dir"]
    cases = {
        "wrong_model": ("restormer_tiny", files["hair"]),
        "renamed": ("restormer_tiny", str(d / "renamed.pth")),
        "shape": ("restormer_tiny", str(d / "shape.pth")),
        "truncated": ("restormer_tiny", str(d / "truncated.pth")),
        "empty": ("restormer_tiny", str(d / "empty.pth")),
    }
    jobs = [("--model", model, "--src", src, "--dst", str(d / f"out_{key}.ckpt")) for key, (model, src) in cases.items()]
    results = dict(zip(cases, _run_all(jobs)))
    for key, (rc, out, err) in results.items():
        src = cases[key][1]
        assert rc != 0, key
        assert src in err, (key, err)
        assert "Traceback" not in err, (key, err)
        assert not os.path.exists(d / f"out_{key}.ckpt"), key
        assert not [f for f in os.listdir(d) if f.startswith(f"out_{key}")], key  # no temp files left
    rc, _, err = results["wrong_model"]
    assert rc == 1
    assert "unexpected: latent.kernel_box" in err and "missing:    latent.0.attn.qkv.weight" in err
    assert "unexpected: latent.0.attn.temperatur" in results["renamed"][2]
    assert "missing:    latent.0.attn.temperature" in results["renamed"][2]
    assert "output.weight: checkpoint (3, 16, 3, 1) vs network (3, 16, 3, 3)" in results["shape"][2]
    assert "not a readable PyTorch checkpoint" in results["truncated"][2]
    assert "empty" in results["empty"][2]
    assert zipfile.is_zipfile(files["rest"])  # the good file was left untouched
