"""Raw YAML values → typed (frozen) dataclasses, collecting every problem with its field path."""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union


def short(value: Any, limit: int = 120) -> str:
    """`value`'s repr (a string: itself) cut to `limit` characters, for problem messages about any input."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def field_name(key: Any) -> str:
    """A mapping key as a field path shows it: itself, cut when long."""
    text = str(key)
    return text if len(text) <= 60 else f"{text[:60]}..."


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _convert(value: Any, tp: Any, path: str, problems: list[str]) -> Any:
    """Convert a YAML value to type `tp`, appending problems (with `path`) instead of raising."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        tried = {}
        for option in options:
            trial: list[str] = []
            out = _convert(value, option, path, trial)
            if not trial:
                return out
            tried[option] = trial
        meant = [o for o in options if dataclasses.is_dataclass(o) and isinstance(value, dict)
                 and set(map(str, value)) & {f.name for f in dataclasses.fields(o)}]
        if meant:  # a mapping with a record's field names was meant as that record: its own problems say why not
            problems += tried[meant[0]]
            return None
        problems.append(f"{path}: expected {' or '.join(_type_name(o) for o in options)}, got {short(value)}")
        return None
    if origin is Literal:
        if value not in args:
            problems.append(f"{path}: {short(value)} is not one of {', '.join(map(str, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        return to_dataclass(value, tp, path, problems)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            problems.append(f"{path}: expected a list, got {short(value)}")
            return ()
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{path}[{i}]", problems) for i, v in enumerate(value))
        if len(value) != len(args):
            problems.append(f"{path}: expected {len(args)} items, got {len(value)}")
            return ()
        return tuple(_convert(v, a, f"{path}[{i}]", problems) for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a mapping, got {short(value)}")
            return {}
        return {str(k): _convert(v, args[1], f"{path}.{k}", problems) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            problems.append(f"{path}: expected true/false, got {short(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected an integer, got {short(value)}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected a number, got {short(value)}")
            return value
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            problems.append(f"{path}: expected a string, got {short(value)}")
        return str(value)
    return value


def to_dataclass(raw: Any, cls: type, path: str, problems: list[str]) -> Any:
    """`cls` built from a mapping; every problem is appended, a part that cannot be built is None."""
    if not isinstance(raw, dict):
        problems.append(f"{path or '<top>'}: expected a mapping, got {short(raw)}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # not the derived ones
    prefix = f"{path}." if path else ""
    for key in raw:
        if key not in fields:
            problems.append(f"{prefix}{field_name(key)}: unknown key; known: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name in raw:
            kwargs[name] = _convert(raw[name], hints[name], f"{prefix}{name}", problems)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.append(f"{prefix}{name}: required field is missing")
            kwargs[name] = None  # a placeholder, so the checks after parsing still see every other field
    return cls(**kwargs)
