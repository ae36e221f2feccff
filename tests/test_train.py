"""Training loop: schedule, AdamW vs torch, losses, checkpoints/logs, exact resume (in-process and
after SIGKILL), CLI overrides and errors, and 2-worker data parallelism with msrun."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
import yaml

import mindspore as ms
from mindspore import Tensor

from ms_osr import losses as L
from ms_osr.checkpoint import load_checkpoint, read_ckpt_arrays
from ms_osr.registry import create_model
from ms_osr.training.loop import Trainer, resolve_config
from ms_osr.training.optim import AdamW, LRSchedule, bias_corrections, build_schedule

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
VENV_BIN = os.path.dirname(PY)


# ---------------------------------------------------------------------------------- schedule
def test_cosine_schedule_warmup_and_never_rises():
    s = LRSchedule(2e-4, total_steps=100, warmup_steps=10, min_lr=1e-6)
    lrs = [s(i) for i in range(130)]
    assert lrs[0] == pytest.approx(2e-5) and lrs[9] == pytest.approx(1.82e-4) and lrs[10] == pytest.approx(2e-4)
    assert all(b >= a for a, b in zip(lrs[:10], lrs[1:11]))  # warm-up rises
    assert max(lrs) == pytest.approx(2e-4)
    assert all(b <= a + 1e-18 for a, b in zip(lrs[10:], lrs[11:]))  # never rises again
    assert lrs[99] == pytest.approx(1e-6) and lrs[129] == pytest.approx(1e-6)
    hold = LRSchedule(3e-4, 100, hold_steps=40, min_lr=1e-6)
    assert hold(39) == pytest.approx(3e-4) and hold(70) < 3e-4
    ep = build_schedule({"type": "cosine", "warmup_epochs": 15, "min_lr": 0}, 2e-4, 150 * 4, 4)
    assert ep.warmup == 60
    step = build_schedule({"type": "step", "step_epochs": 20, "gamma": 0.5}, 1e-3, 1000, 10)
    assert step(199) == pytest.approx(1e-3) and step(200) == pytest.approx(5e-4) and step(450) == pytest.approx(2.5e-4)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "elementwise"])
@pytest.mark.parametrize("decoupled", [True, False])
def test_adamw_matches_torch(decoupled, fused):
    """Both update paths (the fused kernel for float32 weights, the elementwise graph for AMP's float16 weights)
    follow torch.optim.AdamW / Adam over five steps."""
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((4, 3)).astype(np.float32)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(5)]
    p = ms.Parameter(Tensor(w0), name="w")
    opt = AdamW([p], betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05, decoupled=decoupled)
    assert opt.fused
    opt.fused = fused  # read when the update compiles, at its first call
    tp = torch.nn.Parameter(torch.tensor(w0))
    topt = (torch.optim.AdamW if decoupled else torch.optim.Adam)([tp], lr=1e-2, betas=(0.9, 0.99), eps=1e-8,
                                                                  weight_decay=0.05)
    for step, g in enumerate(grads):
        lr = 1e-2
        bc1, bc2 = bias_corrections(step, (0.9, 0.99))
        opt((Tensor(g),), Tensor(lr, ms.float32), Tensor(bc1, ms.float32), Tensor(bc2, ms.float32))
        tp.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(p.asnumpy(), tp.detach().numpy(), atol=1e-6, rtol=1e-5)
    state = opt.state_arrays()
    np.testing.assert_allclose(state["optimizer.exp_avg.w"], topt.state[tp]["exp_avg"].numpy(), atol=1e-6)
    np.testing.assert_allclose(state["optimizer.exp_avg_sq.w"], topt.state[tp]["exp_avg_sq"].numpy(), atol=1e-7)


def test_lr_multipliers_scale_the_step_per_parameter():
    """``lr_mult``: a parameter matched by a pattern moves as with lr x factor, the others as with lr; the host
    update agrees with the compiled one; a pattern matching nothing is refused."""
    from ms_osr.training.optim import HostAdamW

    rng = np.random.default_rng(0)
    w0 = {n: rng.standard_normal((3, 2)).astype(np.float32) for n in ("hsn.w", "body.w")}
    grads = [tuple(Tensor(rng.standard_normal((3, 2)).astype(np.float32)) for _ in w0) for _ in range(3)]

    def run(opt_cls, lr_mult, lr):
        params = [ms.Parameter(Tensor(w), name=n) for n, w in w0.items()]
        opt = opt_cls(params, (0.9, 0.99), 1e-8, 0.05, lr_mult=lr_mult)
        for step, g in enumerate(grads):
            bc1, bc2 = bias_corrections(step, (0.9, 0.99))
            if opt_cls is AdamW:
                opt(g, Tensor(lr, ms.float32), Tensor(bc1, ms.float32), Tensor(bc2, ms.float32))
            else:
                opt.update(g, lr, bc1, bc2)
        return [p.asnumpy() for p in params]

    scaled = run(AdamW, {"^hsn\\.": 4.0}, 1e-2)
    np.testing.assert_allclose(scaled[0], run(AdamW, None, 4e-2)[0], atol=1e-6)
    np.testing.assert_allclose(scaled[1], run(AdamW, None, 1e-2)[1], atol=1e-6)
    for a, b in zip(scaled, run(HostAdamW, {"^hsn\\.": 4.0}, 1e-2)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="no trainable parameter matches 'extracts'"):
        AdamW([ms.Parameter(Tensor(w0["body.w"]), name="body.w")], lr_mult={"extracts": 10.0})


def test_losses_values():
    rng = np.random.default_rng(1)
    a, b = rng.random((2, 3, 8, 8)).astype(np.float32), rng.random((2, 3, 8, 8)).astype(np.float32)
    ta, tb = Tensor(a), Tensor(b)
    assert float(L.l1_loss(ta, tb).asnumpy()) == pytest.approx(np.abs(a - b).mean(), rel=1e-5)
    assert float(L.charbonnier_loss(ta, tb, 1e-3).asnumpy()) == pytest.approx(
        np.sqrt((a - b) ** 2 + 1e-6).mean(), rel=1e-5)
    d = np.abs(a - b)
    assert float(L.smooth_l1_loss(ta, tb, 0.3).asnumpy()) == pytest.approx(
        np.where(d < 0.3, 0.5 * d ** 2 / 0.3, d - 0.15).mean(), rel=1e-5)
    mse = ((a - b) ** 2).reshape(2, -1).mean(1)
    assert float(L.psnr_loss(ta, tb).asnumpy()) == pytest.approx(np.mean(10 * np.log10(mse)), rel=1e-4)


# --------------------------------------------------------------------------- loop helpers
def _images(folder, n=4, size=24):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = cv2.GaussianBlur((rng.random((size, size, 3)) * 255).astype(np.uint8), (0, 0), 2)
        cv2.imwrite(os.path.join(folder, f"{i}.png"), img)
    return folder


def _cfg(tmp_path, out, steps=7, **train):
    clean = _images(str(tmp_path / "clean"))
    cfg = {
        "model": {"name": "toy_restorer", "kwargs": {"width": 4}},
        "data": {"train": {"type": "synthetic_folder", "root": clean, "degradations": ["noise_25"]},
                 "val": {"type": "synthetic_folder", "root": clean, "degradations": ["noise_25"], "crop": 16},
                 "patch_size": 16, "batch_size": 2, "num_workers": 1},
        "train": {"total_steps": steps, "optimizer": {"type": "adamw", "lr": 1e-2, "weight_decay": 0.01},
                  "scheduler": {"type": "cosine", "warmup_steps": 2, "min_lr": 1e-4}, "loss": {"type": "l1"},
                  "clip_grad_norm": 1.0, "val_every": 3, "save_every": 3, "log_every": 1},
        "runtime": {"device": "cpu", "mode": "graph", "seed": 0, "threads": 1},
        "out_dir": str(out),
    }
    cfg["train"].update(train)
    return resolve_config(cfg)


def _weights(path):
    return read_ckpt_arrays(path)


def test_train_outputs_and_checkpoint_layout(tmp_path):
    out = tmp_path / "run"
    summary = Trainer(_cfg(tmp_path, out, ema={"decay": 0.9}), progress=False).fit()
    assert summary["step"] == 7
    for name in ("last.ckpt", "best.ckpt", "config.yaml", "train_log.csv", "val_log.jsonl", "curves.png"):
        assert (out / name).is_file(), name
    raw = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(out / "last.ckpt")).items()}
    assert int(raw["train_state.step"].item()) == 7
    assert any(k.startswith("optimizer.exp_avg.") for k in raw) and any(k.startswith("ema.") for k in raw)
    net = create_model("toy_restorer", width=4)
    load_checkpoint(net, str(out / "last.ckpt"))  # weights only, training state ignored
    load_checkpoint(net, str(out / "best.ckpt"))
    load_checkpoint(net, str(out / "last.ckpt"), namespace="ema.")
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["model"] == {"name": "toy_restorer", "kwargs": {"width": 4}}
    rows = (out / "train_log.csv").read_text().strip().splitlines()
    assert rows[0].startswith("step,epoch,loss,lr") and len(rows) == 8
    vals = [json.loads(line) for line in (out / "val_log.jsonl").read_text().splitlines()]
    assert [v["step"] for v in vals] == [3, 6, 7] and all(np.isfinite(v["psnr"]) for v in vals)
    assert cv2.imread(str(out / "curves.png")).shape[0] > 100


def test_resume_in_process_is_exact(tmp_path):
    straight = tmp_path / "straight"
    Trainer(_cfg(tmp_path, straight, ema={"decay": 0.8}), progress=False).fit()
    cut = tmp_path / "cut"
    Trainer(_cfg(tmp_path, cut, ema={"decay": 0.8}), progress=False).fit(stop_at=3)  # mid-epoch (2 steps/epoch)
    assert int(ms.load_checkpoint(str(cut / "last.ckpt"))["train_state.step"].asnumpy().item()) == 3
    Trainer(_cfg(tmp_path, cut, ema={"decay": 0.8}), resume=True, progress=False).fit()
    a = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(straight / "last.ckpt")).items()}
    b = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(cut / "last.ckpt")).items()}
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-6, err_msg=k)
    la = (straight / "train_log.csv").read_text().splitlines()
    lb = (cut / "train_log.csv").read_text().splitlines()
    assert [r.split(",")[:3] for r in la] == [r.split(",")[:3] for r in lb]


def test_host_update_matches_device_update(tmp_path):
    dev, host = tmp_path / "dev", tmp_path / "host"
    Trainer(_cfg(tmp_path, dev, steps=5, val_every=0), progress=False).fit()
    Trainer(_cfg(tmp_path, host, steps=5, val_every=0, update="host"), progress=False).fit()
    a = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(dev / "last.ckpt")).items()}
    b = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(host / "last.ckpt")).items()}
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=2e-6, err_msg=k)


def _run_cli(args, env=None, **kw):
    return subprocess.run([PY, os.path.join(ROOT, "train.py"), *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, **kw)


def _write_cfg(tmp_path, cfg, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_cli_overrides_and_errors(tmp_path, capsys):
    import train as train_cli

    cfg = _cfg(tmp_path, tmp_path / "cli", steps=2)
    path = _write_cfg(tmp_path, cfg)
    assert train_cli.main(["--config", path, "--no-progress", "--set", "train.total_steps=3",
                           "model.kwargs.width=2", "train.val_every=0"]) == 0
    saved = yaml.safe_load((tmp_path / "cli" / "config.yaml").read_text())
    assert saved["train"]["total_steps"] == 3 and saved["model"]["kwargs"]["width"] == 2
    assert train_cli.main(["--config", path, "--set", "train.totl_steps=3"]) == 2
    assert "unknown key 'train.totl_steps'" in capsys.readouterr().err
    bad = dict(cfg, model={"name": "no_such_model", "kwargs": {}})
    assert train_cli.main(["--config", _write_cfg(tmp_path, bad, "bad.yaml"), "--no-progress"]) == 2
    assert "unknown model 'no_such_model'" in capsys.readouterr().err
    # a misspelt data key: one line naming the section and the key, before any file is read or a run folder made
    assert train_cli.main(["--config", path, "--no-progress", "--set", "data.val.crp=16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data.val (synthetic_folder): unknown key(s) crp (did you mean 'crop'?); known:" in err[0]
    # a corrupt training image: one clear line naming the file
    (tmp_path / "clean" / "2.png").write_bytes(b"garbage")
    assert train_cli.main(["--config", path, "--no-progress", "--set", "train.val_every=0",
                           "data.val=null"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "2.png" in err and "not an image file" in err  # checked before step 1
    assert train_cli.main(["--config", path, "--no-progress", "--set", "train.val_every=0", "data.val=null",
                           "data.skip_bad=true", "train.total_steps=2"]) == 0


def test_amp_forced_off_on_cpu(tmp_path, capsys):
    Trainer(_cfg(tmp_path, tmp_path / "amp", steps=1, amp="O2", val_every=0), progress=False).fit()
    assert "using O0" in capsys.readouterr().err


def test_recompute_config_same_weights(tmp_path, capsys):
    """train.recompute: true gives the same trained weights; a model without blocks is a config error."""
    finals = []
    for flag in (False, True):
        cfg = _cfg(tmp_path, tmp_path / f"rc_{flag}", steps=2, val_every=0, recompute=flag)
        cfg["model"] = {"name": "restormer_tiny", "kwargs": {}}
        Trainer(cfg, progress=False).fit()
        finals.append(_final_weights(tmp_path / f"rc_{flag}"))
    assert "blocks recompute their activations" in capsys.readouterr().err
    assert finals[0].keys() == finals[1].keys()
    assert max(np.abs(finals[0][k] - finals[1][k]).max() for k in finals[0]) <= 1e-5
    with pytest.raises(Exception, match="no block marked for recomputation"):
        Trainer(_cfg(tmp_path, tmp_path / "rc_toy", steps=1, val_every=0, recompute=True), progress=False)


def test_ptg_joint_loss_switch(tmp_path):
    cfg = _cfg(tmp_path, tmp_path / "ptg", steps=2, val_every=0, loss={"type": "ptg_joint", "base_loss": "l1"})
    cfg["model"] = {"name": "ptg_rm_wrapper", "kwargs": {
        "base": "toy_restorer", "base_kwargs": {"width": 4}, "freeze_base": False, "osf": "clip",
        "osf_kwargs": {"config": "clip_tiny"},
        "ptg_kwargs": {"num_blocks": 1}}}
    try:
        net = create_model(cfg["model"]["name"], **cfg["model"]["kwargs"])
    except TypeError as exc:  # the wrapper's constructor arguments changed
        pytest.fail(f"ptg_rm_wrapper kwargs: {exc}")
    assert hasattr(net, "forward_train")
    summary = Trainer(cfg, progress=False).fit()
    assert summary["step"] == 2 and np.isfinite(summary["loss"])
    raw = ms.load_checkpoint(str(tmp_path / "ptg" / "last.ckpt"))
    assert any(k.startswith("optimizer.exp_avg.refinement11.") for k in raw)
    assert any(k.startswith("optimizer.exp_avg.base.") for k in raw)  # base trained jointly
    assert not any(k.startswith("optimizer.exp_avg.osf.") for k in raw)  # frozen prior


# ------------------------------------------------------------------------ slow: kill, msrun
def _final_weights(out):
    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(out / "last.ckpt")).items()
            if not k.startswith("train_state.")}


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume(tmp_path):
    steps = 120  # enough margin that the kill always lands before the run ends, even on an idle machine
    cfg = _cfg(tmp_path, tmp_path / "ref", steps=steps, save_every=3, val_every=0, log_every=1)
    cfg["data"]["train"]["repeat"] = 4  # 16 samples / batch 2 = 8 steps per epoch
    ref_path = _write_cfg(tmp_path, cfg, "ref.yaml")
    run = tmp_path / "killed"
    args = ["--config", ref_path, "--no-progress", "--out-dir", str(run)]
    env = {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([PY, os.path.join(ROOT, "train.py"), *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, **env})
    ckpt = run / "last.ckpt"
    deadline = time.time() + 240
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        if ckpt.is_file():
            step = int(ms.load_checkpoint(str(ckpt))["train_state.step"].asnumpy().item())
            if step >= 9:  # past the first epoch, so the kill is mid-epoch 1 or later
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed_at = step
                break
        time.sleep(0.05)
    assert killed_at is not None, "training finished or stalled before it could be killed"
    saved = int(ms.load_checkpoint(str(ckpt))["train_state.step"].asnumpy().item())  # still a readable file
    assert saved % 3 == 0 and saved < steps
    res = _run_cli(args + ["--resume"], timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"resumed from {ckpt} at step {saved}" in res.stderr
    assert not [f for f in os.listdir(run) if f.startswith(".tmp-")]
    ref = _run_cli(["--config", ref_path, "--no-progress"], timeout=300)
    assert ref.returncode == 0, ref.stderr[-2000:]
    a, b = _final_weights(tmp_path / "ref"), _final_weights(run)
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-5, err_msg=k)
    rows = [r.split(",")[0] for r in (run / "train_log.csv").read_text().splitlines()[1:]]
    assert rows == [str(i) for i in range(1, steps + 1)]  # no duplicated / lost log rows


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_msrun_two_workers_match_single_process(tmp_path):
    msrun = os.path.join(VENV_BIN, "msrun")
    assert os.path.isfile(msrun), f"msrun not found next to {PY}"
    cfg = _cfg(tmp_path, tmp_path / "dp", steps=4, val_every=0, save_every=0, log_every=1)
    cfg["data"]["batch_size"] = 4  # global: 2 per worker
    cfg["data"]["train"]["repeat"] = 2
    path = _write_cfg(tmp_path, cfg)
    dump = tmp_path / "ranks"
    env = {**os.environ, "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""), "GLOG_v": "3",
           "MS_OSR_DUMP_RANK_WEIGHTS": str(dump)}
    res = subprocess.run([msrun, "--worker_num=2", "--local_worker_num=2", f"--master_port={_free_port()}",
                          f"--log_dir={tmp_path / 'logs'}", "--join=True", os.path.join(ROOT, "train.py"),
                          "--config", path, "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=400)
    logs = "".join(open(os.path.join(tmp_path / "logs", f)).read()[-1500:] for f in os.listdir(tmp_path / "logs"))
    assert res.returncode == 0, logs
    r0, r1 = np.load(dump / "rank0.npz"), np.load(dump / "rank1.npz")
    for k in r0.files:
        np.testing.assert_array_equal(r0[k], r1[k], err_msg=k)  # replicas identical
    single = tmp_path / "single"
    Trainer(dict(cfg, out_dir=str(single)), progress=False).fit()
    ref = read_ckpt_arrays(str(single / "last.ckpt"))
    dp = read_ckpt_arrays(str(tmp_path / "dp" / "last.ckpt"))  # written by rank 0 only
    for k in ref:
        np.testing.assert_allclose(dp[k], ref[k], atol=2e-5, err_msg=k)
        np.testing.assert_allclose(r0[k], ref[k], atol=2e-5, err_msg=k)
    assert "train_log.csv" in os.listdir(tmp_path / "dp")
