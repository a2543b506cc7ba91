"""Configuration as (nested) dataclasses, loaded from YAML and overridden from the command line.

Every training job declares one dataclass tree (components each with their own small config),
with the paper's values as defaults. ``load_config`` builds it from, in order of precedence:
command-line overrides (``--optim.lr 1e-4`` or ``--optim.lr=1e-4``), a YAML file
(``--config FILE``), and the dataclass defaults. Unknown keys are errors, never ignored, and
values are parsed as YAML scalars and then checked against the field's type.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration key or value that does not fit the config dataclass."""


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _strip_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _coerce(value: Any, tp: Any, key: str) -> Any:
    tp = _strip_optional(tp)
    if value is None:
        return None
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping for {tp.__name__}, got {value!r}")
        return _build(tp, value, prefix=key + ".")
    origin = typing.get_origin(tp)
    if origin in (list, tuple, Sequence):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        (inner,) = typing.get_args(tp)[:1] or (Any,)
        items = [_coerce(v, inner, key) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, str):
            if value.lower() in ("true", "1", "yes"):
                return True
            if value.lower() in ("false", "0", "no"):
                return False
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected a bool, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected an int, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError as exc:
                raise ConfigError(f"{key}: expected a float, got {value!r}") from exc
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a float, got {value!r}")
        return float(value)
    if tp is str:
        return str(value)
    return value


def _build(cls: type[T], data: dict, prefix: str = "") -> T:
    types_ = _field_types(cls)
    unknown = set(data) - set(types_)
    if unknown:
        raise ConfigError(f"unknown config keys for {cls.__name__}: {', '.join(prefix + k for k in sorted(unknown))}")
    kwargs = {k: _coerce(v, types_[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.replace("-", "_").split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {dotted}: {part} is not a section")
    node[parts[-1]] = value


def parse_overrides(args: Sequence[str]) -> dict:
    """``["--a.b", "1", "--c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}`` (values parsed as YAML scalars)."""
    tree: dict = {}
    i = 0
    args = list(args)
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ConfigError(f"expected --key value, got {arg!r}")
        key = arg[2:]
        if "=" in key:
            key, raw = key.split("=", 1)
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            raw = args[i + 1]
            i += 1
        else:
            raw = "true"
        value = yaml.safe_load(raw) if raw != "" else ""
        _set_dotted(tree, key, value)
        i += 1
    return tree


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def load_config(cls: type[T], config_path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Build ``cls`` from its defaults, a YAML file and ``--key value`` overrides (highest first wins)."""
    data: dict = {}
    if config_path:
        with open(config_path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{config_path}: the top level must be a mapping")
    data = _merge(data, parse_overrides(overrides))
    return _build(cls, data)


def build_config(cls: type[T], data: dict) -> T:
    """``cls`` from a plain (nested) mapping, with the same key and type checks as ``load_config``."""
    return _build(cls, data)


def merge_trees(base: dict, top: dict) -> dict:
    """``base`` with ``top`` merged into it, section by section (``top`` wins)."""
    return _merge(base, top)


def config_to_dict(cfg: Any) -> dict:
    """The config as plain data (for logs, checkpoints and manifests)."""
    return dataclasses.asdict(cfg)


def parse_job_args(cls: type[T], argv: Sequence[str] | None, description: str = "") -> T:
    """Parse ``--config FILE`` plus ``--key value`` overrides into ``cls`` (``--output-dir`` maps to ``output_dir``)."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(description or cls.__doc__ or "")
        print("\nOptions (as --key value, nested with dots):")
        print(yaml.safe_dump(config_to_dict(cls()), sort_keys=False))
        raise SystemExit(0)
    config_path = None
    rest: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--config":
            config_path = argv[i + 1]
            i += 2
            continue
        if argv[i].startswith("--config="):
            config_path = argv[i].split("=", 1)[1]
            i += 1
            continue
        rest.append(argv[i])
        i += 1
    return load_config(cls, config_path, rest)
