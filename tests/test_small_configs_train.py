"""Every model's small CPU config trains for a few steps through the real Trainer and its loss falls.

The configs are the shipped YAML files, shrunk in steps, patch size and batch so that CI can afford
them, trained on one degradation (noise sigma 25) so that the loss trend is not hidden by the mix;
validation is switched off (tested elsewhere).
"""
import csv
import os

import numpy as np
import pytest

from ms_osr.config import apply_overrides, load_config
from ms_osr.training.loop import Trainer, resolve_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 16

CASES = {
    "res_hair_small_cpu": [],
    "restormer_small_cpu": [],
    "griddehazenet_small_cpu": [],
    "osr_small_cpu": [],
    "ptg_rm_small_cpu": [],
    # PTG-RM on a second base model (random frozen base: no stage-1 run folder in CI)
    "ptg_rm_griddehazenet_small_cpu": ["model.kwargs.base_ckpt=null", "model.kwargs.osf_kwargs.ckpt=null"],
}


def _losses(path):
    with open(path, newline="") as fh:
        return [float(row["loss"]) for row in csv.DictReader(fh)]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_small_config_loss_falls(name, tmp_path):
    cfg = load_config(os.path.join(ROOT, "configs", f"{name}.yaml"))
    cfg = apply_overrides(cfg, CASES[name] + [
        f"train.total_steps={STEPS}", "data.patch_size=32", "data.batch_size=4", "data.num_workers=1",
        "train.log_every=1", f"train.save_every={STEPS}", f"train.val_every={STEPS * 10}",
        "train.scheduler.warmup_steps=0", f"out_dir={tmp_path / 'run'}",
    ])
    cfg["data"]["val"] = None
    # one degradation, so that batch-to-batch variation of the loss does not hide the trend
    cfg["data"]["train"]["degradations"] = ["noise_25"]
    summary = Trainer(resolve_config(cfg), progress=False).fit()
    assert summary["step"] == STEPS
    losses = _losses(tmp_path / "run" / "train_log.csv")
    assert len(losses) == STEPS and all(np.isfinite(losses))
    first, last = np.mean(losses[:4]), np.mean(losses[-4:])
    print(f"{name}: mean loss of steps 1-4 {first:.4f} -> steps {STEPS - 3}-{STEPS} {last:.4f}")
    assert last < first
    assert (tmp_path / "run" / "last.ckpt").is_file()
