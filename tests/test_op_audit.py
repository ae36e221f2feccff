"""Operator audit (ms_osr.audit): primitives of compiled graphs against MindSpore's declared platforms.

The quick tests audit the small CNNs at every AMP level and check the checker with real graphs; the slow
test audits every registered architecture (what docs/devices.md shows)."""
import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor, nn, ops

from ms_osr import kernels, registry
from ms_osr.audit import cases, graph_ops, report
from ms_osr.audit.support import declaration
from ms_osr.models.layers import ConvTranspose3x3S2, DepthwiseConv3x3, StridedConv3x3
from ms_osr.models.restormer import GatedGELU


def test_every_registered_architecture_is_audited():
    factories = {registry.model_kwargs(name)[0] for name in registry.list_models()}
    # the package's architectures; tests register toy models of their own (tests/toy_restorers.py)
    factories = {f for f in factories if registry._FACTORIES[f].__module__.startswith("ms_osr.")}
    missing = factories - set(cases.covered_factories())
    assert not missing, f"add an audit case (ms_osr/audit/cases.py) for {sorted(missing)}"


def test_declarations_come_from_mindspore_docs():
    conv = declaration("Conv2D")
    assert conv.platforms == {"CPU", "GPU", "Ascend"} and "Conv2D" in conv.source
    # a bprop primitive is declared through the forward op it differentiates
    assert declaration("Conv2DBackpropFilter").source.startswith("gradient of Conv2D")
    assert declaration("Fmax").platforms == {"CPU"}  # MindSpore declares ops.Fmax for CPU only
    assert declaration("NoSuchPrimitive").platforms == frozenset()


def _erf_loss(x):
    return ops.erf(x).sum()


def _cat_loss(x):
    return (ops.concat((x, x * 2.0), 1) * 3.0).sum()


def _square_loss(x):
    return ((x - 1.0) ** 2).sum()


def _resize_loss(x):
    return (ops.interpolate(x, size=(7, 9), mode="bilinear", align_corners=False) * 3.0).sum()


class _Grad(nn.Cell):
    def __init__(self, fn):
        super().__init__()
        self.grad = ms.grad(fn)

    def construct(self, x):
        return self.grad(x)


@pytest.mark.parametrize("fn, primitive", [(_erf_loss, "PowTensorScalar"), (_cat_loss, "SplitWithSize"),
                                           (_square_loss, "SubScalar"), (_resize_loss, "ResizeBilinearGrad")])
def test_gradient_primitives_come_from_the_documented_op(fn, primitive):
    """support.LOWERED_FROM credits these undocumented primitives to the op whose gradient emits them."""
    x = Tensor(np.random.default_rng(0).random((1, 4, 4, 4), np.float32) + 0.5)
    assert primitive in graph_ops.compiled_primitives(_Grad(fn), x)
    assert primitive not in graph_ops.compiled_primitives(_Grad(_cat_loss if fn is not _cat_loss else _erf_loss), x)


class _FmaxNet(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fmax = ops.operations.Fmax()

    def construct(self, x):
        return self.fmax(x, x)


def test_check_flags_undeclared_op_and_cpu_kernel_in_device_graph():
    x = Tensor(np.ones((1, 4, 8, 8), np.float32))
    audit = report.ModelAudit(cases.ModelCase("fmax", "fmax"))
    audit.graphs[("infer", "O0", "GPU")] = graph_ops.compiled_primitives(_FmaxNet(), x)
    problems = report.check([audit])
    assert {(p.target, p.op) for p in problems} == {("GPU", "Fmax"), ("Ascend", "Fmax")}
    # a CPU-built cell with the C++ kernel, wrongly placed in a GPU graph, is caught too
    with kernels.build_for("CPU"):
        dw = DepthwiseConv3x3(4)
    if not dw.op.use_kernel:
        pytest.skip("no C++ compiler: the kernels are off")
    audit.graphs[("infer", "O0", "GPU")] = graph_ops.compiled_primitives(dw, x)
    assert ("GPU", "Custom") in {(p.target, p.op) for p in report.check([audit])}


# the cells, each built for a target; the convolutions hold their kernel cell as ``op``
_KERNEL_CELLS = {"depthwise": lambda: DepthwiseConv3x3(8), "transposed": lambda: ConvTranspose3x3S2(8, 8, relu=True),
                 "strided": lambda: StridedConv3x3(8, 8, relu=True), "gated_gelu": GatedGELU}


@pytest.mark.parametrize("name", sorted(_KERNEL_CELLS))
def test_kernels_step_aside_off_cpu(name):
    """The cells that run the C++ kernels on CPU build MindSpore's own operators for GPU/Ascend."""
    def build(target):
        with kernels.build_for(target):
            return _KERNEL_CELLS[name]()

    x = Tensor(np.random.default_rng(0).random((1, 8, 8, 8), np.float32))
    cpu = build("CPU")
    if not getattr(cpu, "op", cpu).use_kernel:
        pytest.skip("no C++ compiler: the kernels are off")
    assert "Custom" in graph_ops.compiled_primitives(cpu, x)
    for target in ("GPU", "Ascend"):
        device_ops = graph_ops.compiled_primitives(build(target), x)
        assert "Custom" not in device_ops and device_ops


def test_small_models_every_level_declared():
    audits = report.run_audit(["toy_restorer", "osr_resnet"])
    assert report.check(audits) == []
    for audit in audits:
        o0 = audit.ops_for("GPU")["Conv2D"]
        assert all("float16" not in ins for ins in o0["train O0"])
        for graph in ("infer O2", "infer O3", "train O2", "train O3"):  # AMP really runs the convs in fp16
            assert any(ins == ("float16", "float16") for ins in o0[graph]), graph
        assert {"infer O2", "train O2"} <= set(audit.ops_for("GPU")["Cast"])
    text = report.format_tables(audits)
    assert "#### toy_restorer (toy_restorer) on Ascend" in text and "| Conv2D |" in text


@pytest.mark.slow
def test_every_model_every_graph_declared():
    """Every architecture, inference and training step, at O0 and at O2 (train.py's AMP level); O3 is in
    the quick test for the small CNNs and in docs/devices.md (tools/op_audit.py), to keep CI's time."""
    audits = report.run_audit(levels=("O0", "O2"))
    problems = report.check(audits)
    assert problems == [], "\n".join(map(str, problems))
    cpu_custom = [a.case.factory for a in audits if "Custom" in a.ops_for("CPU")]
    assert {"restormer", "res_hair", "ptg_rm_wrapper"} <= set(cpu_custom) or not kernels.enabled()
