"""The primitives of a compiled GRAPH_MODE graph, with the dtypes of their tensor inputs.

The graph is the one MindSpore's frontend hands to the backend of any device: type inference, AMP
casts, automatic differentiation and graph optimisation have already run, so its primitives are the ones a
GPU or Ascend backend would have to select kernels for.  It is read as MindIR from the graph executor.
"""
from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from typing import Dict, FrozenSet, Iterable, Iterator, Set, Tuple

from mindspore import nn
from mindspore.common.api import _cell_graph_executor
from mindspore.train import mind_ir_pb2

_PRECOMPILE_ENV = "MS_DEV_PRECOMPILE_ONLY"
# MindIR TensorProto.DataType -> MindSpore dtype name
_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
           10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128",
           16: "bfloat16", 17: "float64"}

# Graph plumbing: handled by the framework itself on every device, no kernel is selected for them.
STRUCTURAL = frozenset({
    "Load", "UpdateState", "MakeTuple", "TupleGetItem", "Depend", "Return", "Partial", "Switch", "SwitchLayer",
    "make_tuple", "tuple_getitem", "MakeList", "ListGetItem", "make_list", "list_getitem", "StopGradient",
    "identity", "J", "env_getitem",
    "EnvironGet", "EnvironSet", "EnvironCreate", "ZerosLike", "RealMakeTuple", "TupleToTensor", "TensorToTuple",
})

# {primitive name: set of input-dtype tuples}
OpTable = Dict[str, Set[Tuple[str, ...]]]


def _primitive_name(op_type: str) -> str | None:
    """``REF::Conv2D:4`` -> ``Conv2D:4`` (the key of the model's primitive table); constants -> None."""
    if not op_type.startswith("REF::"):
        return None
    return op_type[len("REF::"):] or None


def _value_dtypes(attrs: Iterable) -> Tuple[str, ...]:
    """The dtypes of a node's output (one per tensor) from its ``shape`` attribute."""
    for attr in attrs:
        if attr.name == "shape":
            return tuple(_DTYPES.get(t.data_type, f"type{t.data_type}") for t in attr.tensors)
    return ()


def _constant_dtypes(attrs: Iterable) -> Tuple[str, ...]:
    """The dtype of a constant tensor input (scalars and tuples are attributes, not tensors: none)."""
    for attr in attrs:
        if attr.name == "value" and attr.tensors:
            return tuple(_DTYPES.get(t.data_type, f"type{t.data_type}") for t in attr.tensors)
    return ()


def _graph_ops(graph, out: OpTable, primitive_names: Dict[str, str]) -> None:
    dtype_of: Dict[str, Tuple[str, ...]] = {}
    for value in graph.input:
        dtype_of[value.name] = tuple(_DTYPES.get(t.data_type, "?") for t in value.tensor)
    for param in graph.parameter:
        dtype_of[param.name] = (_DTYPES.get(param.data_type, "?"),)
    for node in graph.node:
        if node.op_type == "Constant":
            dtype_of[node.output[0] if node.output else node.name] = _constant_dtypes(node.attribute)
        else:
            dtype_of[node.output[0] if node.output else node.name] = _value_dtypes(node.attribute)
    for node in graph.node:
        ref = _primitive_name(node.op_type)
        if ref is None or ref not in primitive_names:  # a call into a sub-graph (control flow), not an op
            continue
        name = primitive_names[ref]
        ins = tuple(d for src in node.input for d in dtype_of.get(src, ())[:1])
        out[name].add(ins)


@contextlib.contextmanager
def _frontend_only() -> Iterator[None]:
    """Stop compiling after the frontend (MindSpore's own switch, used by ``jit.compile_frontend``): the
    device-independent graph is complete there, and no CPU kernel is built for a GPU/Ascend graph."""
    old = os.environ.get(_PRECOMPILE_ENV)
    os.environ[_PRECOMPILE_ENV] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(_PRECOMPILE_ENV, None)
        else:
            os.environ[_PRECOMPILE_ENV] = old


def compiled_primitives(cell: nn.Cell, *inputs) -> OpTable:
    """Compile ``cell`` for ``inputs`` (frontend only, nothing runs) and return its primitives and input
    dtypes.  The cell is meant for the audit only: it is left compiled without a backend graph."""
    with _frontend_only():
        cell.compile(*inputs)
    # the full phase of the compiled graph (``compile_phase`` exists only from MindSpore 2.8 on)
    proto = _cell_graph_executor._graph_executor.get_func_graph_proto(cell.current_phase, "mind_ir", False)
    model = mind_ir_pb2.ModelProto()
    model.ParseFromString(proto)
    # node op_type "REF::Conv2D:4" names an entry of the primitive table, which holds the primitive's type
    names = {p.name: p.op_type for p in model.primitives}
    out: OpTable = defaultdict(set)
    for graph in [model.graph, *model.functions]:
        _graph_ops(graph, out, names)
    return dict(out)


def kernel_ops(table: OpTable) -> Dict[str, FrozenSet[Tuple[str, ...]]]:
    """The primitives that need a device kernel (graph plumbing removed)."""
    return {k: frozenset(v) for k, v in table.items() if k not in STRUCTURAL}
