"""LITEMESH_* environment overrides, applied to the raw YAML data before validation.

`LITEMESH_<SECTION>__<FIELD>=value` sets a scalar of the `server`, `limits` or `timeouts` section;
`LITEMESH_LISTEN=host:port` replaces the first listener's address. Other LITEMESH_ variables
without "__" (LITEMESH_DEBUG, LITEMESH_NO_EXTENSIONS, ...) belong to other parts and are ignored.
Invalid values are reported by the normal validation, attributed via `EnvOverrides.sources`.
"""
from __future__ import annotations

import types
import typing
from typing import Any, Mapping, NamedTuple

import msgspec
import yaml

from .model import UNIT_KEY, AdminSpec, LimitsSpec, ServerSpec, ServerTimeouts

__all__ = ["EnvOverrides", "apply_env_overrides", "PREFIX", "LISTEN_VAR", "SECTIONS"]

PREFIX = "LITEMESH_"
LISTEN_VAR = "LITEMESH_LISTEN"
SECTIONS: dict[str, type[msgspec.Struct]] = {"server": ServerSpec, "limits": LimitsSpec, "timeouts": ServerTimeouts,
                                            "admin": AdminSpec}

Path = tuple[str | int, ...]


class EnvOverrides(NamedTuple):
    data: dict[str, Any]                        # a copy of the input with overrides applied
    sources: dict[Path, str]                    # config path -> variable that set it
    problems: list[tuple[str, str, str]]        # (variable, config path text, message)


def _wants_raw_string(annotation: Any) -> bool:
    """True when the env string must reach validation verbatim (str fields and unit fields)."""
    if typing.get_origin(annotation) is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        if any(isinstance(m, msgspec.Meta) and (m.extra or {}).get(UNIT_KEY) for m in metadata):
            return True
        annotation = base
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_wants_raw_string(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    return annotation is str


def _is_string_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return typing.get_origin(annotation) is tuple and typing.get_args(annotation)[:1] == (str,)


def _parse_scalar(text: str, annotation: Any) -> Any:
    # Non-string fields get YAML scalar rules, so "4", "true", "auto" mean what they would in the file.
    if _wants_raw_string(annotation):
        return text
    if _is_string_list(annotation):  # "10.0.0.0/8, 127.0.0.1": a comma-separated list ("" = empty)
        return [item.strip() for item in text.split(",") if item.strip()]
    try:
        value = yaml.safe_load(text)
    except Exception:   # YAMLError, or a tagged value PyYAML cannot build ("!!int x": ValueError, ...)
        return text     # validation reports it against the variable
    return value if isinstance(value, (str, int, float, bool)) else text


def _set_listen(data: dict[str, Any], value: str, sources: dict[Path, str]) -> None:
    listeners = data.get("listeners")
    if listeners is None or listeners == []:
        data["listeners"] = [{"address": value}]
    elif isinstance(listeners, list) and isinstance(listeners[0], dict):
        data["listeners"] = [{**listeners[0], "address": value}, *listeners[1:]]
    else:
        return  # malformed listeners: validation reports it against the file
    sources[("listeners", 0, "address")] = LISTEN_VAR


def _set_field(data: dict[str, Any], var: str, value: str, sources: dict[Path, str],
               problems: list[tuple[str, str, str]]) -> None:
    section_name, _, field_name = var[len(PREFIX):].partition("__")
    section_name, field_name = section_name.lower(), field_name.lower()
    spec = SECTIONS.get(section_name)
    if spec is None:
        problems.append((var, "", f"unknown section {section_name!r} (expected one of: {', '.join(sorted(SECTIONS))})"))
        return
    hints = typing.get_type_hints(spec, include_extras=True)
    if field_name not in hints:
        problems.append((var, section_name, f"unknown field {field_name!r}"))
        return
    section = data.get(section_name)
    if section is None:
        section = {}
    if not isinstance(section, dict):
        return  # wrong type in the file; validation reports it there
    section = data[section_name] = dict(section)  # copy on write: the caller's data stays untouched
    section[field_name] = _parse_scalar(value, hints[field_name])
    sources[(section_name, field_name)] = var


def apply_env_overrides(data: Mapping[str, Any], env: Mapping[str, str]) -> EnvOverrides:
    """Return a copy of `data` with LITEMESH_* overrides applied (sorted for determinism)."""
    result = dict(data)  # the setters copy what they change (a deep copy of 10k routes costs 150 ms)
    sources: dict[Path, str] = {}
    problems: list[tuple[str, str, str]] = []
    for var in sorted(env):
        if var == LISTEN_VAR:
            _set_listen(result, env[var], sources)
        elif var.startswith(PREFIX) and "__" in var:
            _set_field(result, var, env[var], sources, problems)
    return EnvOverrides(result, sources, problems)
