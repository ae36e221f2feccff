"""One config schema for YAML and --set (ms_osr.schema): each mistake a new user makes is one line naming
the key, before MindSpore loads or a run folder exists."""
import glob
import os

import pytest
import yaml

from ms_osr.config import ConfigError, load_config
from ms_osr.schema import apply_overrides, defaults, documented, resolve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BASE = {"model": {"name": "toy_restorer", "kwargs": {"width": 4}},
        "data": {"train": {"type": "skimage_samples", "split": "train", "degradations": ["noise_25"]},
                 "patch_size": 32, "batch_size": 4},
        "train": {"total_steps": 2, "scheduler": {"type": "cosine", "warmup_steps": 1}},
        "runtime": {"device": "cpu"}}

# (what the user wrote, the one line train.py prints)
YAML_CASES = [
    ({"train": {"clip_grad_nrom": 1.0}},
     "unknown key 'train.clip_grad_nrom' (did you mean 'train.clip_grad_norm'?)"),
    ({"train": {"scheduler": {"warmup_stpes": 10}}},
     "unknown key 'train.scheduler.warmup_stpes' (did you mean 'train.scheduler.warmup_steps'?)"),
    ({"data": {"batch_size": "four"}}, "data.batch_size must be an integer, got 'four'"),
    ({"data": {"patch_size": [32]}}, "data.patch_size must be an integer or null, got [32] (list)"),
]
SET_CASES = [
    ("train.total_steps=abc", "train.total_steps must be an integer or null, got 'abc'"),
    ("train.clip_grad_nrom=1", "unknown key 'train.clip_grad_nrom' (did you mean 'train.clip_grad_norm'?)"),
    ("train.scheduler.warmup_stpes=10",
     "unknown key 'train.scheduler.warmup_stpes' (did you mean 'train.scheduler.warmup_steps'?)"),
    ("data.batch_size=four", "data.batch_size must be an integer, got 'four'"),
    ("data.patch_size=[32]", "data.patch_size must be an integer or null, got [32] (list)"),
]


def _merge(a, b):
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return out


def _write(tmp_path, cfg, name="cfg.yaml"):
    cfg = dict(cfg, out_dir=str(tmp_path / "run"))
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.mark.parametrize("change,line", YAML_CASES)
def test_bad_yaml_is_one_line_before_the_run_folder(tmp_path, capsys, change, line):
    import train as train_cli

    path = _write(tmp_path, _merge(BASE, change))
    assert train_cli.main(["--config", path, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {path}: {line}"]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("item,line", SET_CASES)
def test_bad_set_is_one_line_before_the_run_folder(tmp_path, capsys, item, line):
    import train as train_cli

    path = _write(tmp_path, BASE)
    assert train_cli.main(["--config", path, "--no-progress", "--set", item]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: --set {item}: {line}"]
    assert not (tmp_path / "run").exists()


def test_every_problem_reported_at_once():
    cfg = _merge(BASE, {"train": {"clip_grad_nrom": 1.0, "amp": "O5"}, "data": {"batch_size": "four"}})
    with pytest.raises(ConfigError) as info:
        resolve(cfg, source="c.yaml")
    lines = str(info.value).splitlines()
    assert len(lines) == 3 and all(line.startswith("c.yaml: ") for line in lines)
    assert any("train.amp must be one of O0, O1, O2, O3, got 'O5'" in line for line in lines)


def test_debug_shows_the_traceback(tmp_path, capsys):
    import train as train_cli

    path = _write(tmp_path, _merge(BASE, {"data": {"batch_size": "four"}}))
    assert train_cli.main(["--config", path, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: ")


def test_same_rules_for_yaml_and_set():
    cfg = resolve(apply_overrides(BASE, ["train.ema.decay=0.9", "data.val=null", "model.kwargs.anything=1",
                                         "data.train.seed=3", "train.optimizer.betas=[0.8, 0.9]"]))
    assert cfg["train"]["ema"] == {"decay": 0.9} and cfg["data"]["val"] is None
    assert cfg["model"]["kwargs"]["anything"] == 1 and cfg["train"]["optimizer"]["lr"] == 2e-4
    assert cfg["out_dir"] == os.path.join("runs", "run")
    with pytest.raises(ConfigError, match="train.optimizer.betas must have 2 entries"):
        apply_overrides(BASE, ["train.optimizer.betas=[0.9]"])
    with pytest.raises(ConfigError, match="train.ema must be a mapping or null, got 0.9"):
        resolve(_merge(BASE, {"train": {"ema": 0.9}}))
    with pytest.raises(ConfigError, match="model.name is required"):
        resolve({k: v for k, v in BASE.items() if k != "model"})


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml"))),
                         ids=os.path.basename)
def test_shipped_configs_fit_the_schema(path):
    resolve(load_config(path), source=path)


def test_docs_list_every_key():
    text = open(os.path.join(ROOT, "docs", "training.md"), encoding="utf-8").read()
    assert documented(text) == []
    assert defaults()["train"]["optimizer"]["type"] == "adamw"
