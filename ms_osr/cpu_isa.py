"""Work around oneDNN's slow AVX-512 convolution kernels in MindSpore 2.10 on CPU.

On AVX-512 CPUs the oneDNN build inside MindSpore 2.10 dispatches 3x3 and depthwise
convolutions to a kernel that is roughly 100x slower than the AVX2 one.  oneDNN reads
``ONEDNN_MAX_CPU_ISA`` once, when it initialises, so the cap must be in the environment
before ``mindspore`` is imported.  ``ms_osr/__init__.py`` calls :func:`apply_cpu_isa_cap`
first thing; a value the user set themselves always wins.
"""
from __future__ import annotations

import os
import sys
import warnings

ISA_ENV = "ONEDNN_MAX_CPU_ISA"
# Best measured cap on AVX-512 machines (see benchmarks/conv_cpu.py); "ALL" disables the cap.
DEFAULT_ISA = "AVX2"
DISABLE_ENV = "MS_OSR_NO_ISA_CAP"


def apply_cpu_isa_cap(isa: str = DEFAULT_ISA) -> str | None:
    """Set ``ONEDNN_MAX_CPU_ISA`` unless the user set it or opted out; return the value in force."""
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        return os.environ.get(ISA_ENV)
    if ISA_ENV in os.environ:
        return os.environ[ISA_ENV]
    if "mindspore" in sys.modules:
        # oneDNN may already be initialised: the cap would be silently ignored.
        warnings.warn(
            f"mindspore was imported before ms_osr, so {ISA_ENV}={isa} could not be applied; "
            f"CPU convolutions may be very slow. Import ms_osr first or export {ISA_ENV}={isa}.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    os.environ[ISA_ENV] = isa
    return isa
