#!/usr/bin/env python
"""Ship a training run as ``ckpt/<name>``: weights only, the resolved config, the logs and curves.

    python tools/ship_ckpt.py --run runs/osr_study/channels_s0 --name osr_small_rain \\
        --set model.kwargs.restorer_ckpt=null

Writes ``ckpt/<name>.ckpt`` (the network's parameters, no optimizer state), ``ckpt/<name>.yaml`` (the run's
resolved ``config.yaml`` with the ``--set`` overrides, e.g. ``restorer_ckpt: null`` when the checkpoint already
holds a wrapped restorer's weights, so users need no run folder) and copies of ``train_log.csv``,
``val_log.jsonl`` and ``curves.png`` as ``ckpt/<name>_train_log.csv`` etc.  The shipped pair is loaded back and
must give the same output as the run's checkpoint on a test image, or nothing is kept.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import ms_osr  # noqa: E402,F401  (oneDNN cap before mindspore)
from ms_osr.cli import run_cli  # noqa: E402
from ms_osr.errors import UsageError  # noqa: E402

LOGS = ("train_log.csv", "val_log.jsonl", "curves.png")


def ship(run: str, name: str, which: str = "last", overrides=(), dest: str = os.path.join(ROOT, "ckpt")) -> str:
    import mindspore as ms
    import numpy as np

    from ms_osr.build import load_model
    from ms_osr.checkpoint import save_checkpoint
    from ms_osr.config import apply_overrides, load_config, save_config
    from ms_osr.fileio import atomic_path

    src = os.path.join(run, f"{which}.ckpt")
    config = os.path.join(run, "config.yaml")
    for path in (src, config):
        if not os.path.isfile(path):
            raise UsageError(f"{path}: not found (is {run} a finished training run?)")
    net = load_model(src, config=config).net
    cfg = apply_overrides(load_config(config), overrides)
    ckpt, yaml = os.path.join(dest, f"{name}.ckpt"), os.path.join(dest, f"{name}.yaml")
    x = np.random.default_rng(0).random((1, 3, 48, 48)).astype(np.float32)
    expected = net(ms.Tensor(x)).asnumpy()
    with atomic_path(ckpt) as tmp_ckpt, atomic_path(yaml) as tmp_yaml:
        save_checkpoint(net, tmp_ckpt)
        save_config(cfg, tmp_yaml)
        again = load_model(tmp_ckpt, config=tmp_yaml).net(ms.Tensor(x)).asnumpy()
        if not np.allclose(again, expected, atol=1e-5):
            raise UsageError(f"{src}: the shipped copy does not reproduce the run's output "
                             f"(max |diff| {np.abs(again - expected).max():.2e}); nothing written")
    for log in LOGS:
        if os.path.isfile(os.path.join(run, log)):
            stem, ext = os.path.splitext(log)
            shutil.copyfile(os.path.join(run, log), os.path.join(dest, f"{name}_{stem}{ext}"))
    return ckpt


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="training run folder (config.yaml + last.ckpt/best.ckpt)")
    p.add_argument("--name", required=True, help="shipped name: ckpt/<name>.ckpt and .yaml")
    p.add_argument("--which", choices=["last", "best"], default="last")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="override a value of the shipped YAML")
    p.add_argument("--dest", default=os.path.join(ROOT, "ckpt"))
    args = p.parse_args(argv)
    print(ship(args.run, args.name, args.which, args.set, args.dest))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
