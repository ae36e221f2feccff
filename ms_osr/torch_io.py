"""Reading PyTorch checkpoint files as NumPy arrays without running code from them.

A ``.pth``/``.ckpt`` file is a pickle, and a pickle can call any importable function while it
is read.  Two readers, neither of which calls anything outside a fixed allow-list:

* ``torch.save`` files (plain, BasicSR, Lightning, legacy format): ``torch.load(weights_only=True)``,
  whose unpickler builds only tensors and plain containers, widened by :data:`HARMLESS_GLOBALS`
  (``argparse.Namespace`` hyper-parameters, NumPy scalars/arrays/dtypes, Lightning's
  ``AttributeDict``), which only store data;
* TorchScript archives (OpenAI's ``ViT-B-32.pt``): ``torch.load`` refuses them with
  ``weights_only=True`` and ``torch.jit.load`` runs the archive's code, so
  :class:`_ArchiveUnpickler` reads ``data.pkl`` itself: the archive's own classes (``__torch__.*``)
  become attribute records and tensors are rebuilt from the stored bytes with NumPy.

Every refusal names the file and the object the pickle asked for, without ANSI codes.
"""
from __future__ import annotations

import argparse
import collections
import io
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from .checkpoint import ConversionError

# Outer containers seen in published checkpoints, tried in this order.
CONTAINER_KEYS = ("params_ema", "params", "state_dict", "model", "net", "module")

TORCH_HINT = "pip install torch==2.13.0"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def convert_command(path: str, model: str = "<model>") -> str:
    """The command that turns ``path`` into a MindSpore checkpoint."""
    return f"python tools/convert_pth.py --model {model} --src {path} --dst {os.path.splitext(path)[0]}_ms.ckpt"


class TorchFileError(ConversionError):
    """A PyTorch file cannot be read: refused, unreadable, or torch is missing (message names the file)."""


class TorchNeededError(TorchFileError):
    """The file is a PyTorch checkpoint and torch is not installed."""


@dataclass
class TorchCheckpoint:
    """Tensors of a PyTorch file: floating ones as float32, with what they were stored as."""

    arrays: Dict[str, np.ndarray]
    source_dtypes: List[str] = field(default_factory=list)  # floating dtypes found, e.g. ['float16']
    container: str = ""  # the key the weights sat under ('params', 'state_dict', ...), 'torchscript' or ''

    @property
    def upcast_note(self) -> str:
        """'' or e.g. 'source float16, stored as float32' for the converter's output line."""
        low = [d for d in self.source_dtypes if d != "float32"]
        return f"source {'/'.join(low)}, stored as float32" if low else ""


# ------------------------------------------------------------------------------------------------
# What a file is
# ------------------------------------------------------------------------------------------------

def is_torch_file(path: str) -> bool:
    """True for PyTorch's zip format (torch.save, TorchScript) and for pickles (legacy torch.save).

    A MindSpore checkpoint is a protobuf message and never starts with ``PK`` or a pickle
    PROTO opcode (0x80), whatever its extension (Lightning also writes ``.ckpt``).
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
    except OSError:
        return False
    return head == b"PK" or head[:1] == b"\x80"


def _archive_prefix(zf: zipfile.ZipFile) -> Optional[str]:
    for name in zf.namelist():
        if name.endswith("/data.pkl") and name.count("/") == 1:
            return name[: -len("data.pkl")]
    return None


def is_torchscript(path: str) -> bool:
    """A TorchScript archive: PyTorch's zip layout plus compiled code (``code/``, ``constants.pkl``)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        prefix = _archive_prefix(zf)
        names = zf.namelist()
    return prefix is not None and any(n == prefix + "constants.pkl" or n.startswith(prefix + "code/") for n in names)


# ------------------------------------------------------------------------------------------------
# torch.save files through torch's weights-only unpickler
# ------------------------------------------------------------------------------------------------

def _dict_placeholder(module: str, name: str) -> type:
    """A plain dict subclass standing for ``module.name`` when that package is not installed."""
    return type(name, (dict,), {"__module__": module, "__qualname__": name})


def harmless_globals() -> list:
    """Objects a checkpoint may name besides tensors: each only stores data when unpickled."""
    import numpy.core.multiarray as multiarray  # numpy<2 (the pinned version)

    found = [argparse.Namespace, collections.OrderedDict, multiarray.scalar, multiarray._reconstruct, np.ndarray,
             np.dtype]
    # NumPy pickles a dtype as np.dtype(...) and then sets its state on the concrete dtype class
    found += sorted({type(np.dtype(c)) for c in np.typecodes["All"] if c not in "MmO"} |
                    {type(np.dtype("M8[s]")), type(np.dtype("m8[s]"))}, key=str)
    for module, name in (("lightning.fabric.utilities.data", "AttributeDict"),
                         ("pytorch_lightning.utilities.parsing", "AttributeDict")):
        try:
            found.append(getattr(__import__(module, fromlist=[name]), name))
        except ImportError:
            found.append(_dict_placeholder(module, name))
    return found


def _clean(text: str) -> str:
    return _ANSI.sub("", text)


def refusal_message(path: str, exc: BaseException) -> str:
    """One line for a file torch's weights-only unpickler refused: the object it asked for."""
    text = _clean(str(exc))
    match = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if match:
        return (f"{path}: refused: loading it would call {match.group(1)}, which is not on the allow-list of "
                f"harmless objects (nothing from the file was run; save plain tensors, e.g. model.state_dict())")
    match = re.search(r"WeightsUnpickler error: ([^\n]+)", text)
    if match:
        return f"{path}: refused: {match.group(1).strip().rstrip('.')} (nothing from the file was run)"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return f"{path}: not a readable PyTorch checkpoint ({first})"


def _unwrap(obj, path: str) -> Tuple[dict, str]:
    for key in CONTAINER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            return obj[key], key
    if not isinstance(obj, dict):
        raise TorchFileError(f"{path}: expected a state_dict, found {type(obj).__name__}")
    return obj, ""


def _torch_load(path: str) -> TorchCheckpoint:
    import torch

    try:
        with torch.serialization.safe_globals(harmless_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError/RuntimeError/EOFError/...
        raise TorchFileError(refusal_message(path, exc)) from None
    state, container = _unwrap(obj, path)
    arrays, dtypes = {}, []
    for name, value in state.items():
        if torch.is_tensor(value):
            value = value.detach().cpu()
            if value.is_floating_point():
                dtypes.append(str(value.dtype).replace("torch.", ""))
                value = value.float()
            arrays[str(name)] = value.numpy()
    return TorchCheckpoint(arrays, sorted(set(dtypes)), container)


# ------------------------------------------------------------------------------------------------
# TorchScript archives without torch.jit
# ------------------------------------------------------------------------------------------------

_STORAGE_DTYPES = {"FloatStorage": np.float32, "HalfStorage": np.float16, "DoubleStorage": np.float64,
                   "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
                   "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
                   "BoolStorage": np.bool_}


class _ScriptObject:
    """Stands for an instance of a TorchScript class (``__torch__.*``): keeps its attributes, runs nothing."""

    def __setstate__(self, state) -> None:
        self.state = state


class _StorageType:
    def __init__(self, name: str):
        self.name = name


class _ArchiveUnpickler(pickle.Unpickler):
    """``data.pkl`` of a TorchScript archive with a closed set of callables (Python's "restricting
    globals" pattern): anything else raises before it could run."""

    def __init__(self, fh, zf: zipfile.ZipFile, prefix: str):
        super().__init__(fh)
        self.zf, self.prefix, self.storages = zf, prefix, {}

    def find_class(self, module: str, name: str):
        if module == "__torch__" or module.startswith("__torch__."):
            return _ScriptObject
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return lambda data, requires_grad, hooks: data
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"{module}.{name}")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, _numel = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"persistent id {kind!r}")
        if key not in self.storages:
            raw = self.zf.read(f"{self.prefix}data/{key}")
            dtype = _STORAGE_DTYPES[storage_type.name]
            if dtype == "bfloat16":  # NumPy has no bfloat16: its bits are the top half of a float32
                arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
                self.storages[key] = (arr, "bfloat16")
            else:
                self.storages[key] = (np.frombuffer(raw, np.dtype(dtype).newbyteorder("<")), np.dtype(dtype).name)
        return self.storages[key]


@dataclass
class _Tensor:
    array: np.ndarray
    dtype: str  # as stored ('float16', 'bfloat16', ...)


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    """``torch._utils._rebuild_tensor_v2`` in NumPy: a strided view of the storage, copied."""
    data, dtype = storage
    item = data.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(data[offset:], shape=tuple(size), strides=[s * item for s in stride])
    return _Tensor(np.array(view), dtype)


def _collect(obj, prefix: str, out: Dict[str, _Tensor]) -> None:
    state = getattr(obj, "state", obj)
    if not isinstance(state, dict):
        return
    for key, value in state.items():
        if isinstance(value, _Tensor):
            out[prefix + str(key)] = value
        elif isinstance(value, _ScriptObject):
            _collect(value, f"{prefix}{key}.", out)


def _read_torchscript(path: str) -> TorchCheckpoint:
    with zipfile.ZipFile(path) as zf:
        prefix = _archive_prefix(zf)
        if prefix + "byteorder" in zf.namelist() and zf.read(prefix + "byteorder").strip() != b"little":
            raise TorchFileError(f"{path}: big-endian TorchScript archive (not supported)")
        try:
            root = _ArchiveUnpickler(io.BytesIO(zf.read(prefix + "data.pkl")), zf, prefix).load()
        except pickle.UnpicklingError as exc:
            raise TorchFileError(f"{path}: refused: this TorchScript archive names {exc}, which is not a tensor or a "
                                 f"module record (nothing from the file was run)") from None
        except (KeyError, ValueError, TypeError, AttributeError, EOFError) as exc:
            raise TorchFileError(f"{path}: not a readable TorchScript archive ({type(exc).__name__}: {exc})") from None
    tensors: Dict[str, _Tensor] = {}
    _collect(root, "", tensors)
    arrays = {k: (t.array.astype(np.float32) if t.array.dtype.kind == "f" else t.array) for k, t in tensors.items()}
    dtypes = sorted({t.dtype for t in tensors.values() if t.array.dtype.kind == "f"})
    return TorchCheckpoint(arrays, dtypes, "torchscript")


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------

def read_torch_checkpoint(path: str) -> TorchCheckpoint:
    """Tensors of any PyTorch checkpoint file, without running code from it.

    Accepts a plain state_dict, BasicSR ``{'params'|'params_ema': ...}``, Lightning
    ``{'state_dict': ...}`` (optimizer state and hyper-parameters ignored), ``{'model': ...}``
    and TorchScript archives.  Raises :class:`TorchFileError` with one line naming the file.
    """
    if not os.path.isfile(path):
        raise TorchFileError(f"{path}: file not found")
    if os.path.getsize(path) == 0:
        raise TorchFileError(f"{path}: file is empty")
    if is_torchscript(path):
        ckpt = _read_torchscript(path)
    else:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise TorchNeededError(f"{path}: a PyTorch checkpoint; reading it needs torch ({TORCH_HINT}), or "
                                   f"convert it once where torch is installed: {convert_command(path)}") from None
        ckpt = _torch_load(path)
    if not ckpt.arrays:
        raise TorchFileError(f"{path}: no tensors found")
    return ckpt
