"""The oneDNN ISA cap (ms_osr.cpu_isa): env logic and that the fast kernel is really in force.

Every scenario runs in a fresh interpreter: oneDNN reads its ISA once per process.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable


def _cpu_has_avx512() -> bool:
    with open("/proc/cpuinfo") as fh:
        return any(line.startswith("flags") and "avx512f" in line.split() for line in fh)


def run_py(code: str, **env_changes) -> dict:
    """Run ``code`` in a fresh interpreter; it must print one JSON line last."""
    env = dict(os.environ)
    for key in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MS_OSR_NO_ISA_CAP", "ONEDNN_VERBOSE", "DNNL_VERBOSE"):
        env.pop(key, None)
    env.update({k: v for k, v in env_changes.items()})
    env["PYTHONPATH"] = ROOT
    env["GLOG_v"] = "3"
    proc = subprocess.run([PY, "-W", "always", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    out = json.loads(last)
    out["stderr"] = proc.stderr
    out["stdout"] = proc.stdout
    return out


# A 3x3 conv in GRAPH_MODE; reports the cap, what ms_osr did and the ISA oneDNN ended up using.
CONV = """
import numpy as np, mindspore as ms
from mindspore import nn
ms.set_device("CPU"); ms.set_context(mode=ms.GRAPH_MODE)
net = nn.Conv2d(8, 8, 3, pad_mode="pad", padding=1, has_bias=True)
net(ms.Tensor(np.ones((1, 8, 16, 16), np.float32))).asnumpy()
"""
REPORT = """
import json, os
from ms_osr import cpu_isa
print(json.dumps({"env": os.environ.get("ONEDNN_MAX_CPU_ISA"), "action": cpu_isa.last_action,
                  "effective": cpu_isa.effective_cpu_isa()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
class TestCap:
    def test_fresh_import_applies_avx2_and_fast_kernel(self):
        out = run_py("import ms_osr\n" + CONV + REPORT, ONEDNN_VERBOSE="1", DNNL_VERBOSE="1")  # oneDNN 3.x, 2.x
        assert out["env"] == "AVX2"
        assert out["action"] == "env"
        assert out["effective"] == "AVX2"
        # oneDNN's own log: AVX2 ISA and the JIT gemm convolution (not the reference fallback).
        assert "isa:Intel AVX2" in out["stdout"]
        execs = [ln for ln in out["stdout"].splitlines() if ",exec,cpu,convolution," in ln]
        assert execs and all("gemm:jit" in ln for ln in execs), execs[:2]
        assert not any("ref:any" in ln for ln in execs)

    def test_user_setting_wins(self):
        out = run_py("import ms_osr\n" + CONV + REPORT, ONEDNN_MAX_CPU_ISA="AVX")
        assert out["env"] == "AVX" and out["action"] == "user"
        assert out["effective"] == "AVX"  # on oneDNN 2.x (MindSpore 2.7/2.8) through the mirrored legacy variable

    def test_cap_also_sets_the_spelling_onednn_2_reads(self):
        """MindSpore 2.7.x/2.8.0 bundle oneDNN 2.x (libdnnl.so.2), which reads only DNNL_MAX_CPU_ISA."""
        out = run_py("import ms_osr, os, json\nprint(json.dumps({'legacy': os.environ.get('DNNL_MAX_CPU_ISA')}))")
        assert out["legacy"] == "AVX2"
        out = run_py(CONV + REPORT, DNNL_MAX_CPU_ISA="SSE41")  # below every x86-64 CPU's ISA: always visible
        assert out["action"] == "user" and out["effective"] == "SSE41"

    def test_legacy_variable_counts_as_user_setting(self):
        out = run_py("import ms_osr\n" + REPORT, DNNL_MAX_CPU_ISA="SSE41")
        assert out["env"] is None and out["action"] == "user"

    def test_opt_out(self):
        out = run_py("import ms_osr\n" + CONV + REPORT, MS_OSR_NO_ISA_CAP="1")
        assert out["env"] is None and out["action"] == "opt-out"
        if _cpu_has_avx512():
            assert out["effective"].startswith("AVX512")

    def test_mindspore_imported_first_but_idle_still_capped(self):
        # oneDNN reads its ISA lazily: the cap goes through dnnl_set_max_cpu_isa without a warning.
        out = run_py("import mindspore\nimport ms_osr\n" + CONV + REPORT)
        assert out["action"] == "api"
        assert out["effective"] == "AVX2"
        assert "RuntimeWarning" not in out["stderr"]

    def test_warning_when_onednn_already_ran(self):
        code = "import warnings\n" + CONV + """
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import ms_osr
import json, os
from ms_osr import cpu_isa
print(json.dumps({"warned": [str(w.message) for w in caught if w.category is RuntimeWarning],
                  "env": os.environ.get("ONEDNN_MAX_CPU_ISA"), "action": cpu_isa.last_action}))
"""
        out = run_py(code)
        if _cpu_has_avx512():
            assert out["action"] == "too-late"
            assert out["env"] is None
            assert len(out["warned"]) == 1 and "ONEDNN_MAX_CPU_ISA=AVX2" in out["warned"][0]
        else:  # nothing above AVX2 on this CPU: nothing to warn about
            assert out["action"] == "already-capped" and not out["warned"]


def test_apply_is_pure_env_logic_in_process(monkeypatch):
    """The decision table without a subprocess (mindspore is already loaded and initialised here)."""
    from ms_osr import cpu_isa

    monkeypatch.setenv("MS_OSR_NO_ISA_CAP", "1")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert cpu_isa.apply_cpu_isa_cap() is None and cpu_isa.last_action == "opt-out"
    monkeypatch.setenv("MS_OSR_NO_ISA_CAP", "0")  # "0" means do not opt out
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2_VNNI")
    assert cpu_isa.apply_cpu_isa_cap() == "AVX2_VNNI" and cpu_isa.last_action == "user"


# ------------------------------------------------------------------ faster CPU formulations (layers.py)
class _Fast:
    """Cells wrapping the layers.py helpers for GRAPH_MODE checks."""

    @staticmethod
    def cells():
        import mindspore.nn as nn

        from ms_osr.models import layers

        class Split(nn.Cell):
            def construct(self, x):
                a, b, c = layers.split_channels(x, [2, 3, 4])
                return a, b, c

        class Mean(nn.Cell):
            def construct(self, x):
                return layers.channel_mean(x)

        class Norm(nn.Cell):
            def __init__(self, subtract_mean):
                super().__init__()
                self.subtract_mean = subtract_mean

            def construct(self, x):
                return layers.channel_normalize(x, 1e-5, self.subtract_mean)

        return Split, Mean, Norm


def test_split_channels_equals_slices():
    import mindspore as ms
    import numpy as np

    split, _, _ = _Fast.cells()
    x = np.random.default_rng(0).standard_normal((2, 9, 5, 7)).astype(np.float32)
    a, b, c = split()(ms.Tensor(x))
    assert np.array_equal(a.asnumpy(), x[:, :2]) and np.array_equal(b.asnumpy(), x[:, 2:5])
    assert np.array_equal(c.asnumpy(), x[:, 5:])


@pytest.mark.parametrize("subtract_mean", [True, False])
def test_channel_normalize_matches_float64_layernorm(subtract_mean):
    import mindspore as ms
    import numpy as np

    _, mean_cell, norm_cell = _Fast.cells()
    x = (np.random.default_rng(1).standard_normal((2, 48, 13, 17)) * 2 + 0.5).astype(np.float32)
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=1, keepdims=True)
    var = ((x64 - mu) ** 2).mean(axis=1, keepdims=True)
    ref = ((x64 - mu) if subtract_mean else x64) / np.sqrt(var + 1e-5)
    out = norm_cell(subtract_mean)(ms.Tensor(x)).asnumpy()
    assert out.shape == x.shape
    assert np.abs(out - ref).max() <= 2e-5 and np.abs(out - ref).mean() <= 1e-6
    m = mean_cell()(ms.Tensor(x)).asnumpy()
    assert m.shape == (2, 1, 13, 17) and np.abs(m - mu).max() <= 1e-5


def test_channel_normalize_gradient_matches_reduce_formulation():
    import mindspore as ms
    import mindspore.nn as nn
    import mindspore.ops as ops
    import numpy as np

    _, _, norm_cell = _Fast.cells()

    class Reference(nn.Cell):  # the plain ReduceMean formulation
        def construct(self, x):
            xc = x - x.mean(axis=1, keep_dims=True)
            return xc * ops.rsqrt((xc * xc).mean(axis=1, keep_dims=True) + 1e-5)

    x = ms.Tensor(np.random.default_rng(2).standard_normal((1, 16, 6, 5)).astype(np.float32))
    w = ms.Tensor(np.random.default_rng(3).standard_normal((1, 16, 6, 5)).astype(np.float32))

    def loss_of(cell):
        return lambda t: (cell(t) * w).sum()

    g_fast = ms.grad(loss_of(norm_cell(True)))(x).asnumpy()
    g_ref = ms.grad(loss_of(Reference()))(x).asnumpy()
    assert np.abs(g_fast - g_ref).max() <= 1e-4


@pytest.mark.parametrize("window", [(0, 0, 11, 13), (1, 1, 9, 10), (0, 2, 5, 11), (3, 0, 8, 13), (2, 4, 1, 1)])
def test_crop_equals_slicing_and_passes_gradients(window):
    import mindspore as ms
    import mindspore.nn as nn
    import numpy as np

    from ms_osr.models.layers import crop

    class Crop(nn.Cell):
        def construct(self, x):
            return crop(x, *window)

    top, left, h, w = window
    x = np.random.default_rng(4).standard_normal((2, 3, 11, 13)).astype(np.float32)
    assert np.array_equal(Crop()(ms.Tensor(x)).asnumpy(), x[:, :, top:top + h, left:left + w])
    class Loss(nn.Cell):
        def construct(self, t):
            return crop(t, *window).sum()

    grad = ms.grad(Loss())(ms.Tensor(x)).asnumpy()
    expected = np.zeros_like(x)
    expected[:, :, top:top + h, left:left + w] = 1.0
    assert np.array_equal(grad, expected)
