"""YAML configs with dotted ``key=value`` command-line overrides (mindcv/BasicSR style)."""
from __future__ import annotations

import copy
import os
from typing import Any, Dict, Iterable, Tuple

import yaml

from .fileio import atomic_write_text
from .errors import MsOsrError  # noqa: E402


class ConfigError(MsOsrError, ValueError):
    """A config file or override is invalid (message names the file or key)."""

    problems_per_line = True  # the schema reports every bad key at once, one a line


def parse_value(text: str) -> Any:
    """Parse an override value with YAML rules: ``3`` -> int, ``1e-4`` -> float, ``[1,2]`` -> list."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:  # YAML 1.1 reads "1e-4" as a string
            return float(value) if any(c.isdigit() for c in value) and value.lower() not in ("nan", "inf") else value
        except ValueError:
            return value
    return value


def load_config(path: str) -> Dict[str, Any]:
    """Load a YAML mapping, following an optional ``base: other.yaml`` (relative to the file)."""
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: config file not found")
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        raise ConfigError(f"{path}: config file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, found {type(data).__name__}")
    base = data.pop("base", None)
    if base:
        merged = load_config(os.path.join(os.path.dirname(path), base))
        return merge(merged, data)
    return data


def merge(base: Dict[str, Any], update: Dict[str, Any]) -> Dict[str, Any]:
    """Recursive dict merge; ``update`` wins."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def split_override(item: str, flag: str = "--set") -> Tuple[str, Any]:
    """``'a.b=value'`` -> ``('a.b', parsed value)``: the one parser of ``--set`` items (train.py, test.py)."""
    if "=" not in item:
        raise ConfigError(f"{flag} '{item}' must look like key=value")
    key, value = item.split("=", 1)
    return key.strip(), parse_value(value)


def set_dotted(cfg: Dict[str, Any], key: str, value: Any) -> None:
    """``cfg['a']['b'] = value`` for ``key='a.b'``, creating the mappings on the way."""
    node = cfg
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def apply_overrides(cfg: Dict[str, Any], overrides: Iterable[str], strict: bool = True) -> Dict[str, Any]:
    """Apply ``a.b.c=value`` overrides; with ``strict`` a key the config does not have is an error.
    (train.py checks against the full schema instead: :func:`ms_osr.schema.apply_overrides`.)"""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        key, value = split_override(item, "override")
        parts = key.split(".")
        node = cfg
        for i, part in enumerate(parts):
            if not isinstance(node, dict):  # a null (or scalar) section is replaced by a mapping
                break
            if strict and part not in node:
                raise ConfigError(f"override '{item}': unknown key '{'.'.join(parts[:i + 1])}'")
            node = node.get(part)
        set_dotted(cfg, key, value)
    return cfg


def save_config(cfg: Dict[str, Any], path: str) -> None:
    """Write the resolved config atomically (train.py saves it beside the checkpoints)."""
    atomic_write_text(path, yaml.safe_dump(cfg, sort_keys=False))
