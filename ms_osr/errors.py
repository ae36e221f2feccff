"""One base class for every error a user can cause (bad config, missing file, wrong checkpoint).

Each entry point catches :class:`MsOsrError` and prints its message (one line per problem) without a
traceback; anything else is a bug and keeps its traceback.  The subclasses keep their historic second
base (``ValueError``, ``RuntimeError``) so code that caught those still works.
"""
from __future__ import annotations


class MsOsrError(Exception):
    """A problem with what the user gave (a file, a config, an argument): the message says which and why.

    The first line of the message is the error; further lines are detail (a checkpoint's full mismatch
    list) shown with ``--debug``, unless ``problems_per_line`` says each line is a problem of its own
    (one missing file a line).
    """

    problems_per_line = False

    @classmethod
    def each_line(cls, lines) -> "MsOsrError":
        """One error whose every line is a problem of its own (printed one ``error:`` line each)."""
        err = cls("\n".join(lines))
        err.problems_per_line = True
        return err


class DatasetError(MsOsrError, ValueError):
    """A dataset folder/list is malformed (message names the file or folder).  Defined here so that the
    data modules share it without importing each other (ms_osr.data.datasets re-exports it)."""


class EvaluationError(MsOsrError, ValueError):
    """A user-facing problem with evaluation inputs/outputs (the message names the file)."""


class UsageError(MsOsrError, ValueError):
    """Command-line arguments that do not fit together (``--tile 0``, ``--input`` without ``--ckpt``)."""


class UnknownNameError(MsOsrError, KeyError):
    """A name looked up in a registry (model, degradation) that is not there (the message lists the choices)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelArgumentError(MsOsrError, ValueError):
    """Constructor arguments a registered model does not take, or values its constructor refuses."""


class DeviceError(MsOsrError, ValueError, RuntimeError):
    """A device or execution mode that this machine or MindSpore cannot provide."""


def suggest(name: str, choices) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ''."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
