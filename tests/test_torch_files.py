"""PyTorch files in and out (issue 18, points 4-5): nothing from a file ever runs, harmless extras
load, --reverse writes each family's official container, sub-network prefixes, fp16 notes,
TorchScript archives, and PyTorch checkpoints handed to test.py / train.py."""
import io
import os
import pickle
import re
import sys
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import ms_osr  # noqa: E402,F401

import toy_restorers as toys  # noqa: E402
from scripts import load_script  # noqa: E402
from ms_osr.checkpoint import load_checkpoint, read_ckpt_arrays, save_checkpoint  # noqa: E402
from ms_osr.config import save_config  # noqa: E402
from ms_osr.convert import to_torch_state_dict, torch_name_map  # noqa: E402
from ms_osr.data.io import read_image, write_image  # noqa: E402
from ms_osr.registry import create_model  # noqa: E402
from ms_osr.torch_formats import official_format, wrap_state_dict  # noqa: E402
from ms_osr.torch_io import TorchFileError, is_torch_file, read_torch_checkpoint  # noqa: E402
from torch_ref.clip_ref import CLIPImageEncoderRef  # noqa: E402
from torch_ref.griddehazenet_ref import GridDehazeNetRef  # noqa: E402
from torch_ref.hair_ref import HAIR  # noqa: E402
from torch_ref.ptg_rm_ref import refinement2  # noqa: E402
from torch_ref.restormer_ref import Restormer, randomize_  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(dim=8, num_blocks=(1, 1, 1, 1), heads=(1, 2, 2, 4), num_refinement_blocks=1)
GDN_SMALL = dict(depth_rate=8, height=3, width=4, num_dense_layer=2, growth_rate=8)
ANSI = re.compile(r"\x1b\[")


CONVERT = load_script("tools/convert_pth.py", "ms_osr_convert_cli")
TEST_CLI = load_script("test.py", "ms_osr_test_cli_torch")


def _convert(capsys, *argv):
    rc = CONVERT.main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _random_state(module, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return module.state_dict()


# ----------------------------------------------------------------------------- nothing runs
class _Payload:
    """Unpickling this creates ``marker``: proof that the reader ran code from the file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (io.open, (self.marker, "w"))


def _evil_files(d, marker):
    state = {"w": torch.zeros(2)}
    files = {}
    files["zip.pth"] = d / "zip.pth"
    torch.save({"state_dict": state, "hyper_parameters": _Payload(marker)}, files["zip.pth"])
    files["legacy.pth"] = d / "legacy.pth"
    torch.save({"params": state, "x": _Payload(marker)}, files["legacy.pth"], _use_new_zipfile_serialization=False)
    files["lightning.ckpt"] = d / "lightning.ckpt"  # a plain pickle under Lightning's extension, for test.py
    with open(files["lightning.ckpt"], "wb") as fh:
        pickle.dump({"state_dict": {}, "cb": _Payload(marker)}, fh, protocol=2)
    # a TorchScript archive whose data.pkl was replaced by the payload
    ts = torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2))
    good = d / "good_script.pt"
    ts.save(str(good))
    files["script.pt"] = d / "script.pt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(files["script.pt"], "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("/data.pkl"):
                data = pickle.dumps(_Payload(marker), protocol=2)
            dst.writestr(item, data)
    return files


def test_malicious_pickles_never_execute(tmp_path, capsys):
    marker = str(tmp_path / "PWNED")
    files = _evil_files(tmp_path, marker)
    for name, path in files.items():
        with pytest.raises(TorchFileError) as info:
            read_torch_checkpoint(str(path))
        msg = str(info.value)
        assert "\n" not in msg and not ANSI.search(msg), (name, msg)
        assert msg.startswith(f"{path}: refused: ") and "io.open" in msg and "nothing from the file was run" in msg
        assert "weights_only=False" not in msg
        assert not os.path.exists(marker), name
    # the same through the converter CLI and through test.py (Lightning's .ckpt extension)
    rc, _, err = _convert(capsys, "--model", "toy_restorer", "--src", str(files["zip.pth"]),
                          "--dst", str(tmp_path / "out.ckpt"))
    assert rc == 1 and "io.open" in err and not os.path.exists(tmp_path / "out.ckpt")
    save_config({"model": {"name": "toy_restorer", "kwargs": {}}}, str(tmp_path / "lightning.yaml"))
    write_image(str(tmp_path / "in.png"), np.full((8, 8, 3), 0.5, np.float32))
    rc = TEST_CLI.main(["--ckpt", str(files["lightning.ckpt"]), "--input", str(tmp_path / "in.png"),
                        "--output", str(tmp_path / "res")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "refused: loading it would call io.open" in err[0]
    assert not os.path.exists(marker)


def test_refusal_message_is_one_clean_line(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"x": _Payload(str(tmp_path / "m"))}, path)
    with pytest.raises(TorchFileError) as info:
        read_torch_checkpoint(str(path))
    assert str(info.value) == (f"{path}: refused: loading it would call io.open, which is not on the allow-list of "
                               f"harmless objects (nothing from the file was run; save plain tensors, e.g. "
                               f"model.state_dict())")
    trunc = tmp_path / "trunc.pth"
    torch.save({"w": torch.zeros(100)}, tmp_path / "full.pth")
    trunc.write_bytes((tmp_path / "full.pth").read_bytes()[:300])
    with pytest.raises(TorchFileError, match=r"trunc.pth: not a readable PyTorch checkpoint \(") as info:
        read_torch_checkpoint(str(trunc))
    assert not ANSI.search(str(info.value)) and "\n" not in str(info.value)


def test_harmless_extras_load(tmp_path):
    import argparse
    from collections import OrderedDict

    w = torch.randn(3, 2)
    lightning = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": OrderedDict([("net.w", w)]), "epoch": 3,
                "hyper_parameters": argparse.Namespace(lr=2e-4, name="hair", dims=[1, 2])}, lightning)
    basicsr = tmp_path / "basicsr.pth"
    torch.save({"params": {"w": w}, "best_psnr": np.float64(31.5), "iter": np.int64(400000),
                "hist": np.arange(4, dtype=np.float32), "dtype": np.dtype("float16")}, basicsr)
    for path, name, container in ((lightning, "net.w", "state_dict"), (basicsr, "w", "params")):
        ck = read_torch_checkpoint(str(path))
        assert ck.container == container and set(ck.arrays) == {name}
        np.testing.assert_array_equal(ck.arrays[name], w.numpy())
        assert is_torch_file(str(path))


# ----------------------------------------------------------------------------- --reverse containers
def _official_loaders():
    """How each family's official code reads a checkpoint (without the packages it lives in)."""

    class LightningHAIR(torch.nn.Module):  # HAIR's LightningModule: the network is self.net
        def __init__(self):
            super().__init__()
            self.net = HAIR(**TINY)

    def gridehazenet(path):  # GridDehazeNet test.py: DataParallel, then load_state_dict(torch.load(...))
        net = torch.nn.DataParallel(GridDehazeNetRef(**GDN_SMALL))
        net.load_state_dict(torch.load(path, weights_only=True))
        return net.module.state_dict()

    def restormer(path):  # Restormer test scripts: checkpoint['params']
        net = Restormer(**TINY)
        net.load_state_dict(torch.load(path, weights_only=True)["params"])
        return net.state_dict()

    def hair(path):  # Lightning load_from_checkpoint: version check, then module.load_state_dict(state_dict)
        ckpt = torch.load(path, weights_only=True)
        assert ckpt["pytorch-lightning_version"]
        module = LightningHAIR()
        module.load_state_dict(ckpt["state_dict"])
        return module.net.state_dict()

    def ptg_rm(path):  # SNR-aware/BasicSR load_network: a plain state_dict
        net = refinement2()
        net.load_state_dict(torch.load(path, weights_only=True))
        return net.state_dict()

    return {"griddehazenet_small": (GridDehazeNetRef(**GDN_SMALL), gridehazenet, "dataparallel"),
            "restormer_tiny": (randomize_(Restormer(**TINY), seed=1), restormer, "basicsr"),
            "res_hair_tiny": (randomize_(HAIR(**TINY), seed=2), hair, "lightning"),
            "ptg_rm": (refinement2(), ptg_rm, "plain")}


def test_reverse_writes_the_official_container(tmp_path, capsys):
    for model, (ref, loader, fmt) in _official_loaders().items():
        state = _random_state(ref, seed=3)
        src_pth, ms_ckpt, back = tmp_path / f"{model}.pth", tmp_path / f"{model}.ckpt", tmp_path / f"{model}_back.pth"
        torch.save(state, src_pth)
        assert _convert(capsys, "--model", model, "--src", str(src_pth), "--dst", str(ms_ckpt))[0] == 0
        assert official_format(model) == fmt
        rc, out, err = _convert(capsys, "--model", model, "--src", str(ms_ckpt), "--dst", str(back), "--reverse")
        assert rc == 0, err
        assert f"({fmt} container)" in out
        loaded = loader(str(back))
        assert set(loaded) >= {k for k in state if not k.endswith("num_batches_tracked")}
        for k, v in state.items():
            np.testing.assert_array_equal(loaded[k].numpy(), v.numpy(), err_msg=f"{model}: {k}")


def test_reverse_format_choice_and_prefix(tmp_path, capsys):
    net = create_model("restormer_tiny")
    ck = tmp_path / "r.ckpt"
    save_checkpoint(net, str(ck))
    names = set(torch_name_map(net).values())
    expected = {"plain": lambda o: set(o) == names,
                "basicsr": lambda o: set(o) == {"params"} and set(o["params"]) == names,
                "dataparallel": lambda o: set(o) == {"module." + n for n in names},
                "lightning": lambda o: set(o["state_dict"]) == {"net." + n for n in names}}
    for fmt, check in expected.items():
        dst = tmp_path / f"r_{fmt}.pth"
        rc, out, err = _convert(capsys, "--model", "restormer_tiny", "--src", str(ck), "--dst", str(dst),
                                "--reverse", "--format", fmt)
        assert rc == 0 and check(torch.load(dst, weights_only=True)), (fmt, err)
    dst = tmp_path / "r_prefixed.pth"
    assert _convert(capsys, "--model", "restormer_tiny", "--src", str(ck), "--dst", str(dst), "--reverse",
                    "--format", "plain", "--prefix", "refinement11.")[0] == 0
    assert set(torch.load(dst, weights_only=True)) == {"refinement11." + n for n in names}
    with pytest.raises(SystemExit):
        CONVERT.main(["--model", "restormer_tiny", "--src", str(ck), "--dst", str(tmp_path / "x.ckpt"),
                      "--format", "basicsr"])
    assert "--format chooses what --reverse writes" in capsys.readouterr().err
    assert wrap_state_dict({"a": 1}, "plain") == {"a": 1}


def test_list_option_exists(capsys):
    assert "--list" in CONVERT.build_parser().format_help()
    rc, out, _ = _convert(capsys, "--list")
    lines = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert rc == 0 and "res_hair_tiny" in lines and "lightning" in lines["res_hair"]
    assert "basicsr" in lines["restormer"] and "dataparallel" in lines["griddehazenet"]


# ----------------------------------------------------------------------------- prefixes, fp16, TorchScript
def test_ptg_rm_whole_network_file_through_the_cli(tmp_path, capsys):
    ref = refinement2()
    state = _random_state(ref, seed=4)
    whole = {"refinement11." + k: v for k, v in state.items()}
    whole.update({"conv_first_1.weight": torch.zeros(64, 3, 3, 3), "upconv1.bias": torch.zeros(64)})
    src = tmp_path / "SID_official.pth"
    torch.save(whole, src)
    for extra in ([], ["--prefix", "refinement11."]):
        dst = tmp_path / f"ptg{len(extra)}.ckpt"
        rc, out, err = _convert(capsys, "--model", "ptg_rm", "--src", str(src), "--dst", str(dst), *extra)
        assert rc == 0, err
        assert out.strip() == (f"wrote {dst}: {len(state)} tensors, {sum(v.numel() for v in state.values()):,} "
                               f"parameters (the 'refinement11.*' tensors; 2 others in the file ignored)")
        net = create_model("ptg_rm")
        load_checkpoint(net, str(dst))
        names = torch_name_map(net)
        for n, p in net.parameters_dict().items():
            np.testing.assert_array_equal(p.asnumpy(), state[names[n]].numpy())
    # two copies: ambiguous, so nothing is guessed and the mismatch list is printed
    twice = dict(whole, **{"other." + k: v for k, v in state.items()})
    torch.save(twice, tmp_path / "twice.pth")
    rc, _, err = _convert(capsys, "--model", "ptg_rm", "--src", str(tmp_path / "twice.pth"),
                          "--dst", str(tmp_path / "t.ckpt"))
    assert rc == 1 and "missing" in err and not os.path.exists(tmp_path / "t.ckpt")
    rc, _, err = _convert(capsys, "--model", "ptg_rm", "--src", str(src), "--dst", str(tmp_path / "p.ckpt"),
                          "--prefix", "nope.")
    assert rc == 1 and err.strip() == f"error: {src}: no 'nope.*' keys"


def test_fp16_source_is_noted(tmp_path, capsys):
    state = {k: v.half() for k, v in _random_state(refinement2(), seed=5).items()}
    torch.save({"params": state}, tmp_path / "half.pth")
    rc, out, _ = _convert(capsys, "--model", "ptg_rm", "--src", str(tmp_path / "half.pth"),
                          "--dst", str(tmp_path / "half.ckpt"))
    assert rc == 0 and out.strip().endswith("parameters (source float16, stored as float32)")
    arrays = read_ckpt_arrays(str(tmp_path / "half.ckpt"))
    assert all(a.dtype == np.float32 for a in arrays.values())


def test_openai_torchscript_clip_converts_without_torch_jit(tmp_path, capsys, monkeypatch):
    ref = CLIPImageEncoderRef(input_resolution=64, patch_size=16, width=64, layers=2, heads=2, output_dim=32).eval()
    _random_state(ref, seed=6)
    ref = ref.half().float()
    scripted = torch.jit.trace(ref, torch.rand(1, 3, 64, 64)).half()  # OpenAI's archive holds fp16 tensors
    src = tmp_path / "ViT-tiny.pt"
    scripted.save(str(src))

    def no_jit(*a, **k):
        raise AssertionError("torch.jit.load runs the archive's code")

    monkeypatch.setattr(torch.jit, "load", no_jit)
    dst = tmp_path / "clip.ckpt"
    rc, out, err = _convert(capsys, "--model", "clip_tiny", "--src", str(src), "--dst", str(dst))
    assert rc == 0, err
    assert "source float16, stored as float32" in out
    net = create_model("clip_tiny")
    load_checkpoint(net, str(dst))
    names = torch_name_map(net)
    want = ref.state_dict()
    for n, p in net.parameters_dict().items():
        np.testing.assert_array_equal(p.asnumpy(), want[names[n]].numpy())


# ----------------------------------------------------------------------------- test.py / train.py
@pytest.fixture
def lightning_toy(tmp_path):
    """A toy network's weights in HAIR's Lightning container, under Lightning's .ckpt extension."""
    net = toys.toy_convnet(width=8)
    state = {k: torch.from_numpy(v) for k, v in to_torch_state_dict(net).items()}
    path = tmp_path / "epoch=149.ckpt"
    torch.save(wrap_state_dict(state, "lightning"), path)
    save_config({"model": {"name": "toy_convnet", "kwargs": {"width": 8}}}, str(tmp_path / "epoch=149.yaml"))
    return net, str(path)


def test_test_py_converts_a_pytorch_checkpoint_on_the_fly(tmp_path, lightning_toy, capsys):
    net, path = lightning_toy
    write_image(str(tmp_path / "in.png"), np.random.default_rng(0).random((12, 12, 3), dtype=np.float32))
    rc = TEST_CLI.main(["--ckpt", path, "--input", str(tmp_path / "in.png"), "--output", str(tmp_path / "o.png")])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "not a readable MindSpore checkpoint" not in cap.err
    from ms_osr.inference import Restorer
    want = Restorer(net)(read_image(str(tmp_path / "in.png")))
    np.testing.assert_allclose(read_image(str(tmp_path / "o.png")), want, atol=1 / 255)


def test_without_torch_test_py_names_the_conversion_command(tmp_path, lightning_toy, capsys, monkeypatch):
    _, path = lightning_toy
    write_image(str(tmp_path / "in.png"), np.zeros((8, 8, 3), np.float32))
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    rc = TEST_CLI.main(["--ckpt", path, "--input", str(tmp_path / "in.png"), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1
    stem = os.path.splitext(path)[0]
    assert err[0] == (f"error: {path}: a PyTorch checkpoint and torch is not installed: convert it once where torch "
                      f"is installed with `python tools/convert_pth.py --model toy_convnet --src {path} --dst "
                      f"{stem}_ms.ckpt`, or pip install torch==2.13.0")


def test_train_py_takes_a_pytorch_sub_network_checkpoint(tmp_path, lightning_toy, capsys, monkeypatch):
    """train.py builds composite models whose frozen part comes from a weight file (PTG-RM's base);
    the toys are registered by this module's import of toy_restorers."""
    import train as train_cli

    net, path = lightning_toy
    clean = tmp_path / "clean"
    clean.mkdir()
    for i in range(2):
        write_image(str(clean / f"{i}.png"), np.random.default_rng(i).random((24, 24, 3), dtype=np.float32))
    cfg = {"model": {"name": "toy_composite", "kwargs": {"base_ckpt": path}},
           "data": {"train": {"type": "synthetic_folder", "root": str(clean), "degradations": ["noise_25"]},
                    "val": None, "patch_size": 16, "batch_size": 2, "num_workers": 1},
           "train": {"total_steps": 1, "optimizer": {"type": "adamw", "lr": 1e-4, "weight_decay": 0.0},
                     "scheduler": {"type": "cosine", "warmup_steps": 0, "min_lr": 1e-5}, "loss": {"type": "l1"},
                     "val_every": 0, "save_every": 1, "log_every": 1},
           "runtime": {"device": "cpu", "mode": "pynative", "seed": 0, "threads": 1},
           "out_dir": str(tmp_path / "run")}
    save_config(cfg, str(tmp_path / "cfg.yaml"))
    rc = train_cli.main(["--config", str(tmp_path / "cfg.yaml"), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    trained = read_ckpt_arrays(str(tmp_path / "run" / "last.ckpt"))
    for n, p in net.parameters_dict().items():  # one small step away from the file's weights, not random init
        assert np.abs(trained[f"base.{n}"] - p.asnumpy()).max() < 1e-2, n
    monkeypatch.setitem(sys.modules, "torch", None)
    rc = train_cli.main(["--config", str(tmp_path / "cfg.yaml"), "--no-progress", "--out-dir", str(tmp_path / "r2")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and f"python tools/convert_pth.py --model <model> --src {path}" in err[0]
