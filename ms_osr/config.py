"""YAML configs with dotted ``key=value`` command-line overrides (mindcv/BasicSR style)."""
from __future__ import annotations

import copy
import os
from typing import Any, Dict, Iterable

import yaml

from .fileio import atomic_write_text


class ConfigError(ValueError):
    """A config file or override is invalid (message names the file or key)."""


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


def apply_overrides(cfg: Dict[str, Any], overrides: Iterable[str], strict: bool = True) -> Dict[str, Any]:
    """Apply ``a.b.c=value`` overrides; with ``strict`` an unknown key is an error (catches typos)."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = cfg
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node.get(part), dict):
                if strict and part not in node:
                    raise ConfigError(f"override '{item}': unknown key '{'.'.join(parts[:i + 1])}'")
                node[part] = {}
            node = node[part]
        if strict and parts[-1] not in node:
            raise ConfigError(f"override '{item}': unknown key '{key}'")
        node[parts[-1]] = parse_value(value)
    return cfg


def save_config(cfg: Dict[str, Any], path: str) -> None:
    """Write the resolved config atomically (train.py saves it beside the checkpoints)."""
    atomic_write_text(path, yaml.safe_dump(cfg, sort_keys=False))
