"""YAML configs and dotted command-line overrides."""
import pytest

from ms_osr.config import ConfigError, apply_overrides, load_config, parse_value, save_config


def test_parse_value_types():
    assert parse_value("3") == 3
    assert parse_value("1e-4") == pytest.approx(1e-4)
    assert parse_value("2.5") == 2.5
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("true") is True
    assert parse_value("res_hair") == "res_hair"
    assert parse_value("null") is None


def test_base_include_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text("model: {name: a, kwargs: {dim: 8}}\ntrain: {lr: 0.1, steps: 5}\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\ntrain: {steps: 9}\n")
    cfg = load_config(str(tmp_path / "child.yaml"))
    assert cfg == {"model": {"name": "a", "kwargs": {"dim": 8}}, "train": {"lr": 0.1, "steps": 9}}
    cfg2 = apply_overrides(cfg, ["train.lr=2e-4", "model.kwargs.dim=16"])
    assert cfg2["train"]["lr"] == pytest.approx(2e-4) and cfg2["model"]["kwargs"]["dim"] == 16
    assert cfg["train"]["lr"] == 0.1  # original untouched
    out = tmp_path / "saved.yaml"
    save_config(cfg2, str(out))
    assert load_config(str(out)) == cfg2


def test_override_errors(tmp_path):
    cfg = {"train": {"lr": 1}}
    with pytest.raises(ConfigError, match="unknown key 'train.lrr'"):
        apply_overrides(cfg, ["train.lrr=3"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(cfg, ["train.lr"])
    assert apply_overrides(cfg, ["train.new=3"], strict=False)["train"]["new"] == 3


@pytest.mark.parametrize("text,msg", [("", "empty"), ("- a\n- b\n", "mapping"), ("a: [1,\n", "invalid YAML")])
def test_bad_config_files(tmp_path, text, msg):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"bad.yaml: .*{msg}"):
        load_config(str(path))
    with pytest.raises(ConfigError, match="missing.yaml: config file not found"):
        load_config(str(tmp_path / "missing.yaml"))
