"""Run the audit and check it: every primitive of a GPU/Ascend graph must be declared for that target by
MindSpore (:mod:`.support`), float16 inputs must not contradict the declaring doc, and the CPU-only C++
kernels (aot ``Custom`` ops) must appear in CPU graphs only.  Prints one table per model and target.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from . import cases, graph_ops
from .support import Declaration, aicpu_dtypes, declaration, declares_dtype

# The graphs of a target: CPU trains and infers in float32 (train.py turns AMP off there) with the C++
# kernels; GPU and Ascend build the same cells (kernels off), so one set of graphs serves both.
LEVELS_PER_TARGET = {"CPU": ("O0",), "GPU": cases.AMP_LEVELS, "Ascend": cases.AMP_LEVELS}
DEVICE_BUILD = {"CPU": "CPU", "GPU": "GPU", "Ascend": "GPU"}
# Our C++ kernels are aot Custom ops compiled for this CPU: never allowed in a GPU/Ascend graph.
CPU_ONLY = frozenset({"Custom"})
_SHORT = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "int32": "i32", "int64": "i64", "bool": "b",
          "float64": "f64", "uint8": "u8"}

GraphKey = Tuple[str, str, str]  # (phase, amp, build)


@dataclass
class ModelAudit:
    case: cases.ModelCase
    graphs: Dict[GraphKey, graph_ops.OpTable] = field(default_factory=dict)

    def ops_for(self, target: str) -> Dict[str, Dict[str, frozenset]]:
        """{primitive: {"infer O2": dtypes, ...}} over the graphs ``target`` runs."""
        out: Dict[str, Dict[str, frozenset]] = {}
        for (phase, amp, build), table in self.graphs.items():
            if build != DEVICE_BUILD[target] or amp not in LEVELS_PER_TARGET[target]:
                continue
            for op, dtypes in graph_ops.kernel_ops(table).items():
                out.setdefault(op, {})[f"{phase} {amp}"] = dtypes
        return out


@dataclass(frozen=True)
class Problem:
    model: str
    target: str
    op: str
    graphs: str
    reason: str

    def __str__(self) -> str:
        return f"{self.model} on {self.target}: {self.op} ({self.graphs}): {self.reason}"


def run_audit(models: Optional[Sequence[str]] = None, phases: Sequence[str] = cases.PHASES,
              levels: Sequence[str] = cases.AMP_LEVELS, progress=None) -> List[ModelAudit]:
    """Compile every graph of the selected models (factory names) and collect their primitives: the GPU/Ascend
    build at ``levels``, and the CPU build at O0 (reusing the GPU graphs when no C++ kernel is involved)."""
    audits = []
    for case in cases.MODEL_CASES:
        if models and case.factory not in models:
            continue
        audit = ModelAudit(case)
        cpu_differs = cases.uses_cpu_kernels(case)
        for build, build_levels in (("GPU", levels), ("CPU", ("O0",))):
            for amp in build_levels:
                for phase in phases:
                    if build == "CPU" and not cpu_differs and (phase, amp, "GPU") in audit.graphs:
                        audit.graphs[(phase, amp, "CPU")] = audit.graphs[(phase, amp, "GPU")]
                        continue
                    table = cases.audit_graph(case, phase, build, amp)
                    if table is not None:
                        audit.graphs[(phase, amp, build)] = table
                    if progress:
                        progress(f"{case.factory} {phase} {amp} ({build} build)")
        audits.append(audit)
    return audits


def _uses_float16(dtype_sets: Iterable[frozenset]) -> bool:
    return any("float16" in ins for dtypes in dtype_sets for ins in dtypes)


def check(audits: Sequence[ModelAudit], targets: Sequence[str] = cases.TARGETS) -> List[Problem]:
    """Every reason a graph would not run on a target according to MindSpore's declarations."""
    problems = []
    for audit in audits:
        for target in targets:
            for op, per_graph in sorted(audit.ops_for(target).items()):
                where = ", ".join(sorted(per_graph))
                if target != "CPU" and op in CPU_ONLY:
                    problems.append(Problem(audit.case.factory, target, op, where,
                                            "CPU-only C++ kernel in a device graph"))
                    continue
                decl = declaration(op)
                if target not in decl.platforms:
                    problems.append(Problem(audit.case.factory, target, op, where,
                                            f"not declared for {target} ({decl.source})"))
                elif _uses_float16(per_graph.values()) and declares_dtype(decl, "float16", op) is False:
                    problems.append(Problem(audit.case.factory, target, op, where,
                                            f"float16 input, but {decl.source} names no float16"))
    return problems


def _dtype_cell(dtypes: Optional[frozenset]) -> str:
    if dtypes is None:
        return ""
    kinds = sorted({_SHORT.get(d, d) for ins in dtypes for d in ins} or {"-"})
    return "/".join(kinds)


def _mark(decl: Declaration, target: str, op: str) -> str:
    if target != "CPU" and op in CPU_ONLY:
        return "NO (CPU kernel)"
    return "yes" if target in decl.platforms else "NO"


def format_tables(audits: Sequence[ModelAudit], targets: Sequence[str] = cases.TARGETS) -> str:
    """Markdown: per model and target, every primitive with its input dtypes per graph and MindSpore's
    declaration."""
    lines = []
    for audit in audits:
        for target in targets:
            per_op = audit.ops_for(target)
            cols = [f"{phase} {amp}" for phase in cases.PHASES for amp in LEVELS_PER_TARGET[target]
                    if any(k == (phase, amp, DEVICE_BUILD[target]) for k in audit.graphs)]
            lines.append(f"#### {audit.case.factory} ({audit.case.config}) on {target}\n")
            extra = " AICPU dtypes |" if target == "Ascend" else ""
            lines.append("| primitive | " + " | ".join(cols) + f" | declared for {target} | declared by |" + extra)
            lines.append("|---" * (len(cols) + 3 + bool(extra)) + "|")
            for op in sorted(per_op):
                decl = declaration(op)
                cells = [_dtype_cell(per_op[op].get(c)) for c in cols]
                row = f"| {op} | " + " | ".join(cells) + f" | {_mark(decl, target, op)} | {decl.source} |"
                if extra:
                    row += f" {_dtype_cell(frozenset((d,) for d in aicpu_dtypes(op) or ()))} |"
                lines.append(row)
            lines.append("")
    return "\n".join(lines)
