"""MindSpore's own declaration of where a primitive runs: the "Supported Platforms" section of its
documentation, as installed with the package.

Lookup order for a primitive name (the first that declares platforms wins, and is recorded as the source):

1. the primitive class's docstring (``mindspore.ops.operations``, the YAML-generated ``gen_ops_prim``,
   ``_grad_ops``, ``_inner_ops``);
2. the function or class that docstring refers to (2.10's generated primitives say only "Refer to
   :func:`mindspore.ops.cat`");
3. the functional API of the same name in snake case (``Rsqrt`` -> ``mindspore.ops.rsqrt``);
4. for a gradient primitive (``Conv2DBackpropFilter``, ``ReluGrad``, ``SoftmaxBackward``), the forward
   primitive whose documented gradient it is (MindSpore documents the differentiable op, not its bprop).

The CPU column is also proven by execution (the tests run every graph on CPU); GPU and Ascend rest on
this declaration only.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import FrozenSet, Optional

PLATFORMS = ("CPU", "GPU", "Ascend")

_CLASS_MODULES = ("mindspore.ops.operations", "mindspore.ops.auto_generate.gen_ops_prim",
                  "mindspore.ops.operations._grad_ops", "mindspore.ops.operations._inner_ops",
                  "mindspore.ops.operations.math_ops", "mindspore.ops.operations.nn_ops",
                  "mindspore.ops.operations.array_ops")
_FUNC_MODULES = ("mindspore.ops", "mindspore.ops.auto_generate.gen_ops_def", "mindspore.ops.function",
                 "mindspore.mint", "mindspore.ops.extend")
# Suffixes of gradient primitives, longest first: Conv2DBackpropInput -> Conv2D, ReluGrad -> Relu.
_GRAD_SUFFIXES = ("BackpropFilter", "BackpropInput", "Backward", "GradV2", "GradExt", "Grad")
# Primitives with no documentation of their own that MindSpore's graph compiler emits for a documented
# API: {primitive: (documented API, where MindSpore lowers it)}.  Declared as that API is.
LOWERED_FROM = {
    "Muls": ("mindspore.ops.mul", "Tensor * Python number; mindspore/graph/_parse/standard_method.py mul()"),
    "Divs": ("mindspore.ops.div", "Tensor / Python number; mindspore/ops/composite/multitype_ops/div_impl.py"),
    "MatMulExt": ("mindspore.ops.matmul", "ops.matmul returns auto_generate.matmul_ext in 2.10"),
    "ZerosLikeExt": ("mindspore.ops.zeros_like", "ops.zeros_like in 2.10; its own doc lists Ascend only"),
    # emitted by MindSpore's autodiff for the gradient of a documented op (tests/test_op_audit.py checks each)
    "PowTensorScalar": ("mindspore.ops.erf", "gradient of erf; its own doc lists Ascend only"),
    "SplitWithSize": ("mindspore.ops.cat", "gradient of concat"),
    "SubScalar": ("mindspore.ops.pow", "gradient of x ** 2 (exponent - 1 on the host)"),
    "ResizeBilinearGrad": ("mindspore.ops.ResizeBilinearV2", "gradient of bilinear ops.interpolate (ResizeBilinearV2); "
                           "its own doc declares no platform and its name leads to no forward op"),
}
# Primitives MindSpore's compiler inserts by itself for every device target, documented for none:
# {primitive: why it is in our graphs}.  Accepted, and listed as such in the tables.
FRAMEWORK_INSERTED = {
    "TensorMove": "inserted by MindSpore's auto-monad pass when a Parameter is read after an in-place Assign in "
                  "the same graph (the EMA reads the weights AdamW has just updated); its bprop is registered in "
                  "mindspore/ops/_grad_experimental/grad_implementations.py",
}
_PLATFORM_RE = re.compile(r"Supported Platforms:\s*\n?\s*([^\n]*)")
_REF_RE = re.compile(r":(?:func|class):`(?:~)?(mindspore\.[\w.]+)`")


@dataclass(frozen=True)
class Declaration:
    platforms: FrozenSet[str]      # subset of PLATFORMS; empty when nothing is declared
    source: str                    # where the declaration was read, e.g. "doc of mindspore.ops.cat"
    doc: str = ""                  # the declaring docstring (for the dtype check)


def _platforms(doc: str) -> Optional[FrozenSet[str]]:
    m = _PLATFORM_RE.search(doc or "")
    if not m:
        return None
    found = frozenset(p for p in PLATFORMS if f"``{p}``" in m.group(1))
    return found or None  # "Deprecated" and similar declare nothing


def _resolve(path: str):
    module, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError):
        return None


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _from_doc(obj, label: str, depth: int = 0) -> Optional[Declaration]:
    doc = getattr(obj, "__doc__", None) or ""
    found = _platforms(doc)
    if found:
        return Declaration(found, label, doc)
    if depth < 2:
        for ref in _REF_RE.findall(doc):
            target = _resolve(ref)
            if target is not None and target is not obj:
                decl = _from_doc(target, f"doc of {ref}", depth + 1)
                if decl:
                    return decl
    return None


def _direct(name: str) -> Optional[Declaration]:
    for mod in _CLASS_MODULES:
        cls = _resolve(f"{mod}.{name}")
        if cls is not None:
            decl = _from_doc(cls, f"doc of {mod}.{name}")
            if decl:
                return decl
    for mod in _FUNC_MODULES:
        for fname in (_snake(name), _snake(name).replace("_ext", "")):
            fn = _resolve(f"{mod}.{fname}")
            if fn is not None:
                decl = _from_doc(fn, f"doc of {mod}.{fname}")
                if decl:
                    return decl
    return None


def _forward_of(name: str) -> Optional[str]:
    for suffix in _GRAD_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


@lru_cache(maxsize=None)
def declaration(name: str) -> Declaration:
    """What MindSpore declares for primitive ``name`` (empty platforms when it declares nothing)."""
    if name in FRAMEWORK_INSERTED:
        return Declaration(frozenset(PLATFORMS), f"framework-inserted, documented for no platform: "
                                                 f"{FRAMEWORK_INSERTED[name]}")
    if name in LOWERED_FROM:
        api, where = LOWERED_FROM[name]
        target = _resolve(api)
        api_decl = _from_doc(target, f"doc of {api}") if target is not None else None
        if api_decl:
            return Declaration(api_decl.platforms, f"emitted for {api} ({where}): {api_decl.source}", api_decl.doc)
    decl = _direct(name)
    if decl:
        return decl
    forward = _forward_of(name)
    while forward:
        for candidate in (forward, forward.capitalize(), forward.upper()):
            fdecl = _direct(candidate)
            if fdecl:
                return Declaration(fdecl.platforms, f"gradient of {candidate}: {fdecl.source}", fdecl.doc)
        forward = _forward_of(forward)
    return Declaration(frozenset(), "no declaration found")


_FP_NAMES = ("float16", "float32", "bfloat16", "float64")


def in_amp_white_list(name: str) -> bool:
    """MindSpore's own AMP white list (the primitives it runs in float16 at O1) names this primitive."""
    try:
        from mindspore.train.amp import AMP_WHITE_LIST
    except ImportError:
        return False
    return any(getattr(cls, "__name__", "") == name for cls in AMP_WHITE_LIST)


def declares_dtype(decl: Declaration, dtype: str, name: str = "") -> Optional[bool]:
    """float16 support as declared: True when the primitive is on MindSpore's AMP white list or its doc names
    float16 before the examples; False only when the doc names float32 there but not float16 (a plausible
    restriction); None when the doc says nothing either way."""
    if dtype == "float16" and in_amp_white_list(name):
        return True
    text = decl.doc.split("Examples:")[0]
    named = {d for d in _FP_NAMES if re.search(rf"\b{d}\b", text)}
    if dtype in named:
        return True
    return False if "float32" in named else None


@lru_cache(maxsize=None)
def _aicpu_registry() -> dict:
    """{primitive: set of input dtypes} from the Ascend AICPU op-info registry shipped in the package
    (``mindspore/ops/_op_impl/aicpu``): the kernels Ascend falls back to, with their dtypes."""
    import pkgutil

    try:
        pkg = importlib.import_module("mindspore.ops._op_impl.aicpu")
    except ImportError:
        return {}
    table: dict = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        try:
            mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        except Exception:  # an op module that fails to import declares nothing
            continue
        for value in vars(mod).values():
            if isinstance(value, dict) and "op_name" in value and "dtype_format" in value:
                dtypes = {fmt[0][0] for fmt in value["dtype_format"] if fmt}
                table.setdefault(value["op_name"], set()).update(dtypes)
    return table


def aicpu_dtypes(name: str) -> Optional[FrozenSet[str]]:
    """First-input dtypes of ``name``'s AICPU kernel on Ascend, or None when it has no AICPU registration."""
    found = _aicpu_registry().get(name)
    return frozenset(found) if found else None
