"""Weight files a config names (pre-trained priors, frozen restorers): checked before a run starts.

A missing ``ViT-B-32.pt`` used to end in a traceback from deep inside the CLIP loader after the
runtime was up; here it is one line naming the file, the config key and how to get or make it.
"""
from __future__ import annotations

import glob
import os
from typing import Dict, List

import yaml

from .build import weight_paths

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config_writing(path: str) -> str:
    """The shipped config whose out_dir holds ``path`` (runs/<name>/last.ckpt), or ''."""
    run_dir = os.path.normpath(os.path.dirname(path))
    for cfg in sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml"))):
        try:
            with open(cfg, "r", encoding="utf-8") as fh:
                out = (yaml.safe_load(fh) or {}).get("out_dir")
        except (OSError, yaml.YAMLError):
            continue
        if out and os.path.normpath(out) == run_dir:
            return os.path.relpath(cfg, ROOT)
    return ""


def how_to_get(key: str, path: str) -> str:
    """One sentence on where the file comes from."""
    name = os.path.basename(path)
    if name.lower().startswith("vit-") or "clip" in name.lower():
        return ("OpenAI's CLIP image-encoder weights: download ViT-B-32.pt (the file `clip.load('ViT-B/32')` "
                "fetches, see docs/ptg_rm.md) and pass its path with --set " + key + "=FILE; the .pt is read directly")
    if key.endswith("standardize"):
        return "statistics written by tools/ptg_rm_experiment.py --calibrate-osf (the config's header has the command)"
    cfg = _config_writing(path)
    if cfg:
        return f"written by `python train.py --config {cfg}`; run that first"
    if os.path.normpath(path).split(os.sep)[0] == "ckpt":
        return "a shipped checkpoint (ckpt/README.md lists them)"
    if name.endswith((".pth", ".pt")):
        return "PyTorch weights; give the right path, or convert them with tools/convert_pth.py"
    return f"give the right path with --set {key}=FILE, or convert PyTorch weights with tools/convert_pth.py"


def missing_weight_files(model_cfg: Dict) -> List[str]:
    """One line per weight file named in ``model.kwargs`` that does not exist."""
    model_cfg = model_cfg or {}
    if not model_cfg.get("name"):
        return []
    # the files a build of this model reads, as its registry declaration names them (ms_osr.build)
    found = weight_paths(model_cfg["name"], model_cfg.get("kwargs") or {})
    return [f"{key}: {path}: file not found; {how_to_get(key, path)}"
            for key, path in found if not os.path.isfile(path)]
