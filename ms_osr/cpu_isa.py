"""Work around oneDNN's slow AVX-512 path for NCHW convolutions in MindSpore 2.10 on x86 CPUs.

What goes wrong
---------------
MindSpore's CPU Conv2D hands oneDNN (v3.10.1, ``mindspore/lib/libdnnl.so.3``) *plain* NCHW/OIHW memory
descriptors.  With the default ISA on an AVX-512 CPU, oneDNN's dispatcher picks ``jit_uni_ncsp:conv``, a
wrapper that reorders to NHWC and runs an inner convolution — but every optimised NHWC kernel rejects the
plain OIHW weights (``ONEDNN_VERBOSE=dispatch``: brgconv "bad flags", jit_avx512_common "unsupported format
tag", gemm "unsupported format tag for src"), so the inner kernel is ``ref:any``, the scalar reference
convolution.  Capping the ISA at AVX2 removes the (AVX-512-only) ``jit_uni_ncsp`` wrapper and oneDNN uses
``x64:gemm:jit`` (im2col + JIT sgemm) for 3x3, depthwise and 1x1 convolutions alike.

Measured (Xeon Sapphire-Rapids-class VM, 2 cores, 2 threads, oneDNN verbose kernel in brackets; GFLOP/s;
see ``benchmarks/conv_cpu.py`` and ``benchmarks/results.md`` for the interleaved MindSpore/PyTorch table):

=====================  ===========================  ==========================  ======================
ONEDNN_MAX_CPU_ISA      3x3 64->64 @128^2            depthwise 3x3 128ch @128^2  1x1 48->255 @128^2
=====================  ===========================  ==========================  ======================
unset / ALL             0.5-1.3 [ncsp:conv+ref:any]  0.1-0.2 [ncsp+ref:any]      45-60 [ncsp+brg_matmul]
AVX512_CORE(_VNNI/      0.7-1.0 [ncsp+ref:any]       0.1-0.2                     50-60
 _BF16/_FP16/_AMX)
AVX2 (chosen)           100-130 [gemm:jit]           3.4-7 [gemm:jit]            45-65 [gemm:jit]
AVX2_VNNI               ~108 (same kernel as AVX2)   ~3.2                        ~41
AVX2_VNNI_2             ~60                          ~3.3                        ~45
AVX / SSE41             44 / 21                      2.3 / 2.4                   30 / 13
=====================  ===========================  ==========================  ======================

AVX2 is the best cap: the AVX2-family values share one kernel (AVX2_VNNI only adds int8 paths) and anything
AVX-512 re-enables the reference fallback.  The cap costs little elsewhere: a 1024^3 MatMul runs at the same
speed under AVX2 (``gemm:jit``) as uncapped (``brg_matmul:avx512_core``), ~140-150 GFLOP/s here.
``ONEDNN_DEFAULT_FPMATH_MODE=BF16/TF32`` would let AVX-512/AMX kernels down-convert f32 and break numerical
parity with PyTorch (1e-4), so it is not used.  Alternatives tried in MindSpore itself and rejected: a
depthwise conv as 9 shifted multiply-adds (~30x slower: every slice/mul/add is a full memory pass),
``ops.DepthwiseConv2dNative`` (not supported on CPU), a 1x1 conv as ``ops.matmul`` (no faster; the separate
bias add costs a memory pass), graph-kernel fusion (needs AKG's Python deps, absent from the CPU wheel).

When and how the cap is applied
-------------------------------
oneDNN reads ``ONEDNN_MAX_CPU_ISA`` once, at its first ISA query (first CPU primitive), not at library load.
``ms_osr/__init__.py`` calls :func:`apply_cpu_isa_cap` first thing:

* x86-64 only (the variable's values are x86 ISA names; other architectures are left alone);
* a value the user set themselves always wins; ``MS_OSR_NO_ISA_CAP=1`` opts out entirely;
* if ``mindspore`` was imported before ``ms_osr``, the cap is also set through oneDNN's own API
  (``dnnl_set_max_cpu_isa`` in the already-loaded ``libdnnl``), which succeeds as long as no CPU kernel has
  run yet; only if oneDNN is already initialised does a ``RuntimeWarning`` say the cap could not be applied.

The variable is harmless for GPU/Ascend runs: oneDNN is only used by MindSpore's CPU kernels.  It is inherited
by child processes and is also read by a PyTorch imported into the same process (PyTorch bundles its own
oneDNN), whose convolutions then use AVX2 kernels as well — slower than its AVX-512 ones, but correct.
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys
import warnings

ISA_ENV = "ONEDNN_MAX_CPU_ISA"
# Best measured cap on AVX-512 machines (see the table above and benchmarks/conv_cpu.py).
DEFAULT_ISA = "AVX2"
DISABLE_ENV = "MS_OSR_NO_ISA_CAP"
# The older spelling: the only one oneDNN 2.x reads (libdnnl.so.2 in MindSpore 2.7.x and 2.8.0), still honoured
# by oneDNN 3.x (libdnnl.so.3 in 2.9.0 and 2.10.0); measured with a cap of SSE41 on each release.  Both are set.
LEGACY_ISA_ENV = "DNNL_MAX_CPU_ISA"

# dnnl_cpu_isa_t values from oneDNN 3.x's dnnl_types.h (for dnnl_set_max_cpu_isa / dnnl_get_effective_cpu_isa).
_ISA_CODES = {
    "SSE41": 0x1, "AVX": 0x3, "AVX2": 0x7, "AVX2_VNNI": 0xF, "AVX2_VNNI_2": 0x1F, "AVX512_CORE": 0x27,
    "AVX512_CORE_VNNI": 0x67, "AVX512_CORE_BF16": 0xE7, "AVX512_CORE_FP16": 0x1EF, "AVX512_CORE_AMX": 0xFEF,
    "AVX512_CORE_AMX_FP16": 0x1FEF,
}
_SUCCESS = 0

# What the last apply_cpu_isa_cap() call did: "env" (variable set before oneDNN initialised), "api" (set
# through the loaded libdnnl), "user" (user's own value kept), "opt-out", "too-late", "already-capped",
# "not-x86".
last_action: str | None = None


def _is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def _loaded_dnnl() -> ctypes.CDLL | None:
    """MindSpore's libdnnl if this process has already loaded it, else None."""
    try:
        with open("/proc/self/maps") as fh:
            paths = sorted({line.split()[-1] for line in fh if "libdnnl.so" in line})
    except OSError:
        return None
    for path in paths:
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _set_via_api(isa: str) -> bool | None:
    """Cap through the loaded libdnnl; True applied, False too late, None not loaded/unknown ISA."""
    code = _ISA_CODES.get(isa.upper())
    lib = _loaded_dnnl()
    if code is None or lib is None:
        return None
    try:
        return lib.dnnl_set_max_cpu_isa(ctypes.c_int(code)) == _SUCCESS
    except AttributeError:
        return None


def apply_cpu_isa_cap(isa: str = DEFAULT_ISA) -> str | None:
    """Cap oneDNN's CPU ISA for MindSpore unless the user set it or opted out; return the value in force.

    Returns the cap (``isa`` or the user's value) or None when nothing is capped.
    """
    global last_action
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        last_action = "opt-out"
        return os.environ.get(ISA_ENV)
    for var in (ISA_ENV, LEGACY_ISA_ENV):
        if var in os.environ:
            last_action = "user"
            os.environ.setdefault(LEGACY_ISA_ENV, os.environ[var])  # so that oneDNN 2.x sees the user's value too
            return os.environ[var]
    if not _is_x86():
        last_action = "not-x86"
        return None
    os.environ[ISA_ENV] = isa  # read lazily by oneDNN, and inherited by worker/child processes
    os.environ[LEGACY_ISA_ENV] = isa
    last_action = "env"
    if "mindspore" in sys.modules:
        applied = _set_via_api(isa)
        if applied:
            last_action = "api"
        elif applied is False:
            if not _effective_code() & ~_ISA_CODES.get(isa.upper(), 0):
                last_action = "already-capped"  # this CPU has nothing above the cap anyway
                return isa
            del os.environ[ISA_ENV], os.environ[LEGACY_ISA_ENV]  # do not pretend: this process runs uncapped
            last_action = "too-late"
            warnings.warn(
                f"mindspore ran CPU kernels before ms_osr was imported, so {ISA_ENV}={isa} could not be "
                f"applied; CPU convolutions may be ~100x slower. Import ms_osr first or export {ISA_ENV}={isa}.",
                RuntimeWarning,
                stacklevel=3,
            )
            return None
    return isa


def _effective_code() -> int:
    lib = _loaded_dnnl()
    try:
        return int(lib.dnnl_get_effective_cpu_isa()) if lib is not None else 0
    except AttributeError:
        return 0


def effective_cpu_isa() -> str | None:
    """The ISA MindSpore's oneDNN actually uses (e.g. ``"AVX2"``), or None if libdnnl is not loaded.

    Calling this initialises oneDNN's ISA detection, which freezes the cap: call it only after
    :func:`apply_cpu_isa_cap` (importing ``ms_osr`` does that).
    """
    lib = _loaded_dnnl()
    if lib is None:
        return None
    try:
        code = lib.dnnl_get_effective_cpu_isa()
    except AttributeError:
        return None
    names = {v: k for k, v in _ISA_CODES.items()}
    return names.get(code, hex(code))
