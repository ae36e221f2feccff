"""Runtime selection: device resolution, mode, seeding and thread count."""
import random

import mindspore as ms
import numpy as np
import pytest

from ms_osr import runtime
from ms_osr.runtime import resolve_device, setup_runtime


def test_auto_prefers_accelerators_in_order(monkeypatch):
    seen = []

    def fake_available(target):
        seen.append(target)
        return target in ("GPU", "CPU")

    monkeypatch.setattr(runtime, "_device_available", fake_available)
    monkeypatch.delenv("MS_OSR_DEVICE", raising=False)
    assert resolve_device("auto") == "GPU"
    assert seen[:2] == ["Ascend", "GPU"]


def test_auto_falls_back_to_cpu_here(monkeypatch):
    monkeypatch.delenv("MS_OSR_DEVICE", raising=False)
    assert resolve_device(None) == "CPU"  # CI machines have no accelerator


def test_environment_variable_overrides_auto(monkeypatch):
    monkeypatch.setenv("MS_OSR_DEVICE", "cpu")
    assert resolve_device("auto") == "CPU"


def test_explicit_names():
    assert resolve_device("cpu") == "CPU"
    assert resolve_device("CPU") == "CPU"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_unavailable_device_fails_loudly():
    with pytest.raises(RuntimeError, match="'gpu' was requested"):
        resolve_device("gpu")


def test_modes_switch_and_restore():
    try:
        setup_runtime(device="cpu", mode="pynative")
        assert ms.get_context("mode") == ms.PYNATIVE_MODE
    finally:
        info = setup_runtime(device="cpu", mode="graph", seed=0)
    assert ms.get_context("mode") == ms.GRAPH_MODE
    assert info.device == "CPU" and ms.get_context("device_target") == "CPU"
    with pytest.raises(ValueError, match="unknown mode"):
        setup_runtime(mode="eager")


def test_seeding_is_reproducible():
    import mindspore.nn as nn

    def draw():
        setup_runtime(device="cpu", seed=123)
        # network initialisation is what must agree across runs and data-parallel ranks
        return random.random(), np.random.rand(), nn.Dense(8, 4).weight.asnumpy()

    a, b = draw(), draw()
    assert a[0] == b[0] and a[1] == b[1]
    np.testing.assert_array_equal(a[2], b[2])
    setup_runtime(device="cpu", seed=0)


def test_thread_count_applied():
    setup_runtime(device="cpu", threads=2, seed=0)
    assert ms.get_context("runtime_num_threads") == 2
