"""What every entry point does with errors: one line per :class:`~ms_osr.errors.MsOsrError`, a non-zero
exit, and the traceback only with ``--debug`` (or ``MS_OSR_DEBUG=1``)."""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Callable, Optional, Sequence

from .errors import MsOsrError

EXIT_ERROR = 1


def add_debug_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")


def debug_requested(argv: Optional[Sequence[str]] = None) -> bool:
    args = sys.argv[1:] if argv is None else argv
    return "--debug" in args or os.environ.get("MS_OSR_DEBUG") == "1"


def print_error(exc: BaseException, detail: bool = False) -> None:
    """``error: <first line>``; every line when each is a problem of its own (or with ``detail``)."""
    lines = [ln for ln in str(exc).splitlines() if ln.strip()] or [type(exc).__name__]
    if not (detail or getattr(exc, "problems_per_line", False)):
        lines = lines[:1]
    for line in lines:
        print(f"error: {line.strip()}", file=sys.stderr)


def run_cli(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None,
            code: int = EXIT_ERROR) -> int:
    """``main(argv)``, with user errors turned into ``error:`` lines and exit status ``code``."""
    try:
        return main(argv)
    except MsOsrError as exc:
        debug = debug_requested(argv)
        if debug:
            traceback.print_exc()
        print_error(exc, detail=debug)
        return code
