"""JSON Schema (draft 2020-12) of the YAML form of gateway.yaml, for editor completion/validation.

Generated from the Structs with msgspec, then adjusted to what users write rather than what the
loader stores: unit fields accept strings ("30s", "1MiB"), targets accept "host:port" (or URL) strings,
and derived fields (host/port) are hidden.
"""
from __future__ import annotations

import typing
from typing import Any

import msgspec

from .model import UNIT_KEY, GatewayConfig, TargetSpec
from .units import DURATION_PATTERN, SIZE_PATTERN

__all__ = ["json_schema"]

_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_STRING_FORMS = {
    "duration": {"type": "string", "pattern": DURATION_PATTERN, "examples": ["250ms", "30s", "2m"]},
    "size": {"type": "string", "pattern": SIZE_PATTERN, "examples": ["512KiB", "1MiB", "10KB"]},
}


def _structs(root: type[msgspec.Struct]) -> dict[str, type[msgspec.Struct]]:
    """Every Struct reachable from `root`, by class name (msgspec's $defs key)."""
    found: dict[str, type[msgspec.Struct]] = {}
    pending = [root]
    while pending:
        cls = pending.pop()
        if cls.__name__ in found:
            continue
        found[cls.__name__] = cls
        for hint in typing.get_type_hints(cls).values():
            pending.extend(_nested_structs(hint))
    return found


def _nested_structs(tp: Any) -> list[type[msgspec.Struct]]:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return [tp]
    return [s for arg in typing.get_args(tp) for s in _nested_structs(arg)]


def _markers(cls: type[msgspec.Struct]) -> dict[str, str]:
    """field name -> unit marker ("duration", "size", "derived") from Meta.extra."""
    out = {}
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        for meta in typing.get_args(hint)[1:] if typing.get_origin(hint) is typing.Annotated else ():
            if isinstance(meta, msgspec.Meta) and meta.extra and UNIT_KEY in meta.extra:
                out[name] = meta.extra[UNIT_KEY]
    return out


def _patch_struct(definition: dict[str, Any], markers: dict[str, str]) -> None:
    props = definition["properties"]
    for name, marker in markers.items():
        if marker == "derived":
            props.pop(name, None)
            if name in definition.get("required", []):
                definition["required"].remove(name)
            continue
        numeric = props[name]
        extras = {k: numeric.pop(k) for k in ("description", "default") if k in numeric}
        props[name] = {"anyOf": [numeric, dict(_STRING_FORMS[marker])], **extras}


def _strip_derived(value: Any) -> Any:
    # Defaults such as the default listener are encoded with their host/port; hide those.
    if isinstance(value, dict):
        return {k: _strip_derived(v) for k, v in value.items() if k not in ("host", "port")}
    if isinstance(value, list):
        return [_strip_derived(v) for v in value]
    return value


def json_schema() -> dict[str, Any]:
    """Return a fresh JSON Schema dict describing gateway.yaml."""
    # JSON round trip: a fresh, plain-JSON copy (msgspec leaves tuple defaults as tuples).
    schema = msgspec.json.decode(msgspec.json.encode(msgspec.json.schema(GatewayConfig)))
    defs = schema["$defs"]
    for name, cls in _structs(GatewayConfig).items():
        _patch_struct(defs[name], _markers(cls))
    listeners = defs["GatewayConfig"]["properties"]["listeners"]
    listeners["default"] = _strip_derived(listeners.get("default", []))
    target_ref = {"$ref": f"#/$defs/{TargetSpec.__name__}"}
    targets = defs["ServiceSpec"]["properties"]["targets"]
    targets["items"] = {"anyOf": [{"type": "string", "description": "'host:port' or 'http://host[:port]' shorthand"},
                                  target_ref]}
    return {"$schema": _DIALECT, "title": "LiteMesh gateway.yaml", **schema}
