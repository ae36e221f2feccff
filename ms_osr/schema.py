"""The one schema of a training config: every key's default, type and allowed values.

``train.py`` runs a YAML file and its ``--set`` overrides through :func:`resolve` (YAML) and
:func:`apply_overrides` (``--set``), so both reject the same things the same way, before the runtime
starts or a run folder exists: an unknown key names the nearest valid one, a wrong type is one line
naming the key.  ``docs/training.md`` documents every key (a test checks it lists them all).

Open mappings (``model.kwargs``, ``data.train``, ``data.val``) are checked by their owners: the
model's constructor signature and the data source builders.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from .config import ConfigError, set_dotted, split_override
from .errors import suggest


ABSENT = "<absent>"  # default of keys that stay out of the resolved config unless set (their reader has a default)


@dataclass(frozen=True)
class Field:
    """One leaf key: ``kind`` is int, float, bool, str, list, dict or any; ``choices`` limit the values."""

    kind: str
    default: Any = ABSENT
    nullable: bool = False
    choices: Tuple[Any, ...] = ()
    length: Optional[int] = None  # lists of a fixed length (betas)

    def check(self, key: str, value: Any) -> Optional[str]:
        """None when ``value`` fits, else the one-line reason."""
        if value is None:
            return None if self.nullable else f"{key} must be {_KIND_WORDS[self.kind]}, got null"
        if not _is_kind(value, self.kind):
            if isinstance(value, (str, bool)) and self.choices:
                return f"{key} must be one of {', '.join(map(str, self.choices))}, got {value!r}"
            alt = " or null" if self.nullable else ""
            return f"{key} must be {_KIND_WORDS[self.kind]}{alt}, got {_show(value)}"
        if self.choices and value not in self.choices:
            return (f"{key} must be one of {', '.join(map(str, self.choices))}, got {value!r}"
                    f"{suggest(value, self.choices)}")
        if self.length is not None and len(value) != self.length:
            return f"{key} must have {self.length} entries, got {len(value)}"
        if self.kind == "list" and self.length and not all(_is_kind(v, "float") for v in value):
            return f"{key} must be a list of numbers, got {_show(value)}"
        return None


@dataclass(frozen=True)
class Section:
    """A mapping of known keys; ``open`` mappings take any key (checked elsewhere)."""

    fields: Dict[str, Any]
    nullable: bool = False
    open: bool = False


_KIND_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
               "list": "a list", "dict": "a mapping", "any": "a value"}


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "any":
        return True
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {"bool": bool, "str": str, "list": list, "dict": dict}[kind])


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else f"{value!r} ({type(value).__name__})"


LOSS_TYPES = ("l1", "charbonnier", "psnr", "smooth_l1", "ptg_joint")

SCHEMA = Section({
    "model": Section({"name": Field("str", None, nullable=True),  # required: checked in resolve()
                      "kwargs": Section({}, open=True)}),
    "data": Section({
        "root": Field("str", None, nullable=True),
        "train": Section({}, open=True),
        "val": Section({}, open=True, nullable=True),
        "patch_size": Field("int", 128, nullable=True),
        "batch_size": Field("int", 8),
        "num_workers": Field("int", 1),
        "multiprocessing": Field("bool", False),
        "augment": Field("bool", True),
        "skip_bad": Field("bool", False),
    }),
    "train": Section({
        "total_steps": Field("int", None, nullable=True),
        "epochs": Field("int", None, nullable=True),
        "optimizer": Section({"type": Field("str", "adamw", choices=("adamw", "adam")),
                              "lr": Field("float", 2e-4), "weight_decay": Field("float", 0.01),
                              "betas": Field("list", [0.9, 0.999], length=2), "eps": Field("float", 1e-8),
                              # {regex of parameter names: factor of the learning rate}
                              "lr_mult": Field("dict", None, nullable=True)}),
        "scheduler": Section({"type": Field("str", "cosine", choices=("cosine", "step", "constant")),
                              "warmup_steps": Field("int", 0, nullable=True),
                              "warmup_epochs": Field("float", nullable=True),
                              "warmup_start": Field("float", nullable=True),
                              "hold_steps": Field("int", nullable=True), "hold_epochs": Field("float", nullable=True),
                              "step_steps": Field("int", nullable=True), "step_epochs": Field("float", nullable=True),
                              "gamma": Field("float", nullable=True), "min_lr": Field("float", 0.0)}, nullable=True),
        # the options of every loss (ms_osr.losses); LossNet checks that the chosen one takes them
        "loss": Section({"type": Field("str", "l1", choices=LOSS_TYPES), "eps": Field("float", nullable=True),
                         "beta": Field("float", nullable=True),
                         "base_loss": Field("str", nullable=True, choices=("l1", "charbonnier", "psnr")),
                         "lambda1": Field("float", nullable=True),
                         # Res-HAIR: weight of the GIV separation term (ms_osr.losses.giv_separation_loss)
                         "giv_separation": Field("float", nullable=True),
                         # osr/osr_resnet with harm_gate: weight of the gate label loss (losses.gate_supervision_loss)
                         "gate_supervision": Field("float", nullable=True),
                         # Res-HAIR with a skip transform (affine/dark-channel/scattering): loss on the skip image
                         "skip_supervision": Field("float", nullable=True)}),
        "clip_grad_norm": Field("float", None, nullable=True),
        "ema": Section({"decay": Field("float", 0.999)}, nullable=True),
        "amp": Field("str", "O0", choices=("O0", "O1", "O2", "O3")),
        "loss_scale": Field("any", 1024.0),
        "update": Field("str", "device", choices=("device", "host")),
        "recompute": Field("bool", False),
        "val_every": Field("int", 500, nullable=True),
        "save_every": Field("int", 500, nullable=True),
        "log_every": Field("int", 20),
    }),
    "runtime": Section({"device": Field("str", "auto",
                                        choices=("auto", "cpu", "gpu", "ascend", "CPU", "GPU", "Ascend")),
                        "mode": Field("str", "graph", choices=("graph", "pynative")),
                        "seed": Field("int", 0), "threads": Field("int", None, nullable=True)}),
    "out_dir": Field("str", None, nullable=True),
})

# Sections that are absent (None) unless a config sets them: their defaults apply only when present.
_ABSENT_BY_DEFAULT = {"data.train", "data.val", "train.ema"}


def defaults(section: Section = SCHEMA, prefix: str = "") -> Dict[str, Any]:
    """The default config (``model.name``, ``data.train`` and the step count have none)."""
    out: Dict[str, Any] = {}
    for name, spec in section.fields.items():
        key = f"{prefix}{name}"
        if isinstance(spec, Section):
            out[name] = None if key in _ABSENT_BY_DEFAULT else ({} if spec.open else defaults(spec, key + "."))
        elif spec.default is not ABSENT:
            out[name] = copy.deepcopy(spec.default)
    return out


def keys(section: Section = SCHEMA, prefix: str = "") -> Iterator[str]:
    """Every dotted key of the schema (sections and leaves)."""
    for name, spec in section.fields.items():
        yield prefix + name
        if isinstance(spec, Section):
            yield from keys(spec, f"{prefix}{name}.")


def lookup(dotted: str) -> Tuple[Optional[Any], str]:
    """``(spec, '')`` for a schema key, ``(None, '')`` under an open mapping, or ``(None, reason)``."""
    node: Any = SCHEMA
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if isinstance(node, Section) and node.open:
            return None, ""
        if not isinstance(node, Section) or part not in node.fields:
            here = ".".join(parts[:i])
            known = [f"{here}.{k}" if here else k for k in node.fields] if isinstance(node, Section) else []
            if not isinstance(node, Section):
                return None, f"'{dotted}': {here} is a value, not a mapping"
            return None, f"unknown key '{'.'.join(parts[:i + 1])}'{suggest('.'.join(parts[:i + 1]), known)}"
        node = node.fields[part]
    return node, ""


def problems(cfg: Dict[str, Any], section: Section = SCHEMA, prefix: str = "") -> List[str]:
    """One line per unknown key or wrong value in ``cfg`` (already merged with the defaults)."""
    out: List[str] = []
    if not isinstance(cfg, dict):
        return [f"{prefix.rstrip('.') or 'config'} must be a mapping, got {_show(cfg)}"]
    for name, value in cfg.items():
        key = f"{prefix}{name}"
        spec = section.fields.get(name)
        if spec is None:
            out.append(f"unknown key '{key}'{suggest(key, [prefix + k for k in section.fields])}")
        elif isinstance(spec, Section):
            if value is None and (spec.nullable or key in _ABSENT_BY_DEFAULT):
                continue
            if not isinstance(value, dict):
                out.append(f"{key} must be a mapping{' or null' if spec.nullable else ''}, got {_show(value)}")
            elif not spec.open:
                out += problems(value, spec, key + ".")
        else:
            reason = spec.check(key, value)
            if reason:
                out.append(reason)
    return out


def _merge(base: Dict[str, Any], update: Dict[str, Any]) -> Dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in (update or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _fill_section_defaults(cfg: Dict[str, Any]) -> None:
    """A section present in the config but absent by default (``train.ema: {}``) gets its own defaults."""
    for key in _ABSENT_BY_DEFAULT:
        head, name = key.split(".")
        spec = SCHEMA.fields[head].fields[name]
        value = cfg.get(head, {}).get(name)
        if isinstance(value, dict) and not spec.open:
            cfg[head][name] = _merge(defaults(spec, key + "."), value)


def resolve(cfg: Dict[str, Any], name: str = "run", source: str = "config") -> Dict[str, Any]:
    """Defaults filled in, every key and value checked, required keys present; ``out_dir`` defaults to
    ``runs/<name>``.  Raises :class:`ConfigError` with one line per problem, each prefixed by ``source``."""
    found = problems(cfg)  # on the user's keys first: a typo is reported as such, not hidden by a default
    merged = _merge(defaults(), cfg) if not found else cfg
    if not found:
        _fill_section_defaults(merged)
        found = problems(merged)
    if not found:
        tr = merged["train"]
        if not merged["model"].get("name"):
            found.append("model.name is required")
        if not merged["data"].get("train"):
            found.append("data.train is required")
        if not tr.get("total_steps") and not tr.get("epochs"):
            found.append("set train.total_steps or train.epochs")
        for key in ("data.batch_size", "train.log_every"):
            head, leaf = key.split(".")
            if merged[head][leaf] < 1:
                found.append(f"{key} must be at least 1, got {merged[head][leaf]}")
    if found:
        raise ConfigError("\n".join(f"{source}: {line}" for line in found))
    if not merged.get("out_dir"):
        merged["out_dir"] = os.path.join("runs", name)
    return merged


def apply_overrides(cfg: Dict[str, Any], overrides: Iterable[str]) -> Dict[str, Any]:
    """``a.b.c=value`` items (values parsed as YAML) applied to ``cfg``; each key and value is checked
    against the schema exactly as a YAML file's would be (keys under open mappings are free)."""
    cfg = copy.deepcopy(cfg)
    found = []
    for item in overrides:
        try:
            key, value = split_override(item)
        except ConfigError as exc:
            found.append(str(exc))
            continue
        spec, reason = lookup(key)
        if not reason and isinstance(spec, Field):
            reason = spec.check(key, value) or ""
        elif not reason and isinstance(spec, Section):
            if value is None and not spec.nullable and key not in _ABSENT_BY_DEFAULT:
                reason = f"{key} must be a mapping, got null"
            elif value is not None and not isinstance(value, dict):
                reason = f"{key} must be a mapping, got {_show(value)}"
            elif isinstance(value, dict) and not spec.open:
                reason = "; ".join(problems(value, spec, key + "."))
        if reason:
            found.append(f"--set {item}: {reason}")
        else:
            set_dotted(cfg, key, value)
    if found:
        raise ConfigError("\n".join(found))
    return cfg


def run_name(config_path: str) -> str:
    """``runs/<name>`` comes from the config file's stem."""
    return os.path.splitext(os.path.basename(config_path))[0]


def shortcut_overrides(out_dir: Optional[str], runtime: Dict[str, Any]) -> List[str]:
    """``--out-dir`` / ``--device`` ... as the ``--set`` items they stand for."""
    items = [f"out_dir={out_dir}"] if out_dir else []
    return items + [f"runtime.{k}={v}" for k, v in runtime.items() if v is not None]


def documented(text: str, skip: Sequence[str] = ()) -> List[str]:
    """Schema keys whose last part does not appear in ``text`` (docs/training.md)."""
    return [k for k in keys() if k not in skip and k.rsplit(".", 1)[-1] not in text]
