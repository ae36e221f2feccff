"""Model registry: registration, named configurations and errors."""
import pytest

from ms_osr import registry


def test_register_and_configs(monkeypatch):
    monkeypatch.setattr(registry, "_FACTORIES", {})
    monkeypatch.setattr(registry, "_CONFIGS", {})
    monkeypatch.setattr(registry, "_LOADED", True)

    @registry.register_model
    def toy(width=4, depth=1):
        return ("toy", width, depth)

    registry.register_config("toy_small", "toy", "tiny", width=2)
    assert registry.create_model("toy") == ("toy", 4, 1)
    assert registry.create_model("toy_small") == ("toy", 2, 1)
    assert registry.create_model("toy_small", width=3, depth=2) == ("toy", 3, 2)
    assert registry.list_models() == ["toy", "toy_small"]
    with pytest.raises(KeyError, match="registered twice"):
        registry.register_model(toy)
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        registry.create_model("nope")


def test_every_method_is_registered():
    names = registry.list_models()
    assert len(names) == len(set(names))
    expected = {"restormer", "restormer_small", "res_hair", "res_hair_small", "griddehazenet", "griddehazenet_small",
                "osr_resnet", "osr_resnet_small", "osr", "osr_small", "ptg_rm", "ptg_rm_wrapper", "clip_vit_b32"}
    assert expected <= set(names), sorted(expected - set(names))
