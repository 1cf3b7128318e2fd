"""gateway.yaml -> GatewayConfig.

Pipeline: compose YAML (keeping node marks) -> env overrides -> normalise units / shorthands /
unknown keys -> msgspec.convert per list element (so independent mistakes are all reported) ->
semantic checks -> ConfigError listing every issue with file:line:column.
"""
from __future__ import annotations

import difflib
import functools
import grp
import ipaddress
import keyword
import os
import pwd
import re
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple

import msgspec
import yaml

from .._gc import gc_paused
from ..algo._route_pattern import MAX_PATTERN_LEN, MAX_SEGMENTS, PATH_CHARS_RE
from ..http.headers import valid_host
from . import env as env_mod
from .model import (UNIT_KEY, AdminSpec, GatewayConfig, LimitsSpec, ListenerSpec, RespondSpec, RouteSpec,
                    ServerSpec, ServerTimeouts, ServiceSpec, TargetSpec)
from .pathform import encode_non_ascii, route_path_form
from .units import parse_address, parse_duration, parse_size, parse_target, target_key

__all__ = ["ConfigIssue", "ConfigError", "load_config", "load_config_text", "locate_issues", "EXAMPLE_CONFIG_PATH"]

EXAMPLE_CONFIG_PATH = Path(__file__).with_name("example.yaml")

PathT = tuple[str | int, ...]


class ConfigIssue(NamedTuple):
    file: str
    line: int | None
    column: int | None
    path: str          # e.g. "routes[3].paths[0]"; "" for the document itself
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """Raised with every problem found; str() gives one 'file:line:col: path: message' per line."""

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues: list[ConfigIssue] = list(issues)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(issue) for issue in self.issues)


def format_path(path: PathT) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[^.\[\]\"'\s]+", str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{str(part)!r}]"
    return out


# ---------------------------------------------------------------- issue collection + locations

class _Issues:
    """Collects issues and resolves config paths to YAML positions or env variables."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.values: dict[PathT, tuple[int, int]] = {}   # path -> (line, col) of the value node
        self.keys: dict[PathT, tuple[int, int]] = {}     # path -> (line, col) of its mapping key
        self.env_sources: dict[PathT, str] = {}
        self.items: list[ConfigIssue] = []
        # path -> node for the aliases of an already walked node: nothing under them is indexed
        self.shared: dict[PathT, yaml.Node] = {}

    def add(self, path: PathT, message: str, *, at: PathT | None = None, key: bool = False) -> None:
        """Record an issue for `path`; `at` overrides the located node, `key` prefers the key's mark."""
        loc = path if at is None else at
        for i in range(len(loc), -1, -1):
            var = self.env_sources.get(loc[:i])
            if var is not None:
                self.items.append(ConfigIssue(f"<env {var}>", None, None, format_path(path), message))
                return
        line_col = self.keys.get(loc) if key else None
        if line_col is None:
            line_col = next((self._mark_at(loc, i, key) for i in range(len(loc), -1, -1) if loc[:i] in self.values),
                            None)
        line, col = line_col if line_col else (None, None)
        self.items.append(ConfigIssue(self.filename, line, col, format_path(path), message))

    def _mark_at(self, loc: PathT, known: int, key: bool) -> tuple[int, int]:
        """The position of ``loc``, whose first ``known`` parts are indexed: under an alias, found
        by walking the aliased node along the rest of the path."""
        node = self.shared.get(loc[:known]) if known < len(loc) else None
        if node is None:
            return self.values[loc[:known]]
        return _mark_within(node, loc[known:], key)

    def sorted(self) -> list[ConfigIssue]:
        # Env problems first (they are global), then file order; ties keep discovery order.
        return sorted(self.items, key=lambda i: (not i.file.startswith("<env"), i.line or 0, i.column or 0))


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _mark_within(node: yaml.Node, rest: PathT, key: bool) -> tuple[int, int]:
    """Position of the node at relative path ``rest`` under ``node`` (of its key if ``key``), or of
    the deepest node on the way that exists."""
    key_node = None
    for part in rest:
        if isinstance(node, yaml.MappingNode):
            pair = next((pair for pair in node.value if isinstance(pair[0], yaml.ScalarNode)
                         and pair[0].value == part), None)
            if pair is None:
                return _mark(node)
            key_node, node = pair
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            key_node, node = None, node.value[part]
        else:
            return _mark(node)
    return _mark(key_node if key and key_node is not None else node)


_STR_TAG, _MAP_TAG, _SEQ_TAG = "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"

#: deepest nesting of collections a document may have (the schema needs four levels, as in
#: ``routes[0].respond.headers``): the walks below recurse once per level
MAX_DEPTH = 64
#: how many nodes aliases may add to a document: ALIAS_RATIO times its own, and at least ALIAS_FLOOR
ALIAS_FLOOR = 100_000
ALIAS_RATIO = 10

_UNSEEN = object()   # a node not walked yet (None in _Walk.done is one being walked)


class _NotPlain(Exception):
    """The document uses merge keys, custom tags, non-string keys or recursion: take the slow path."""


class _Refused(Exception):
    """The document as a whole is refused (nested too deep, aliases standing for too much)."""

    def __init__(self, line_col: tuple[int, int], path: PathT, message: str) -> None:
        super().__init__(message)
        self.line_col, self.path, self.message = line_col, path, message


class _Walk:
    """One walk over a composed document: which collection nodes were walked, and how many nodes
    the aliases stand for.

    An alias is the anchored node itself once more (the composer does not copy it), so walking
    every alias in full costs the size of the *expanded* document: 8 aliases of 8 aliases of ...,
    7 levels deep, is 300 bytes that stand for 2.4 million nodes (an "alias bomb", 10 s to
    walk).  So each collection node is walked once: an alias of it gets the same result (shared,
    as PyYAML's own constructor shares it) for one dict lookup, and adds the node's expanded size
    to ``aliased``, which :meth:`check_aliases` bounds.  Paths under an alias are not indexed;
    ``_Issues`` finds their positions in the aliased node (``_Issues.shared``).
    """

    __slots__ = ("issues", "loader", "done", "aliased", "largest", "largest_path")

    def __init__(self, issues: _Issues, loader: Any) -> None:
        self.issues = issues
        self.loader = loader
        # id(collection node) -> (result, expanded size in nodes); None while it is being walked
        self.done: dict[int, tuple[Any, int] | None] = {}
        self.aliased = 0   # nodes the aliases stand for, beyond one each
        self.largest = 0   # expanded size of the largest alias, and where it is
        self.largest_path: PathT = ()

    @staticmethod
    def too_deep(node: yaml.Node) -> _Refused:
        return _Refused(_mark(node), (), f"collections nested more than {MAX_DEPTH} levels deep")

    def alias(self, node: yaml.Node, path: PathT, done: tuple[Any, int]) -> Any:
        """An alias of a node walked before: its result; its size is counted."""
        result, size = done
        self.aliased += size - 1
        self.issues.shared[path] = node
        if size > self.largest:
            self.largest, self.largest_path = size, path
        return result

    def check_aliases(self) -> None:
        limit = max(ALIAS_FLOOR, ALIAS_RATIO * len(self.issues.values))
        if self.aliased <= limit:
            return
        path = self.largest_path
        # an alias has no node of its own: point at its key, or at the collection holding it
        at = self.issues.keys.get(path) or self.issues.values[path[:-1]]
        raise _Refused(at, path, f"YAML aliases expand the document by {self.aliased:,} nodes, more than the "
                                 f"{limit:,} allowed (an alias bomb?); this alias alone stands for "
                                 f"{self.largest:,} nodes")


def _index_nodes(node: yaml.Node, path: PathT, walk: _Walk) -> None:
    """Record the position of every value (and mapping key) by path; flag duplicate keys."""
    issues = walk.issues
    issues.values.setdefault(path, _mark(node))
    if isinstance(node, yaml.ScalarNode):
        return
    done = walk.done.get(id(node), _UNSEEN)
    if done is not _UNSEEN:   # an alias (None: of a node that contains it, which this path allows)
        walk.alias(node, path, done or (None, 1))
        return
    if len(path) >= MAX_DEPTH:
        raise walk.too_deep(node)
    walk.done[id(node)] = None
    start = len(issues.values) + walk.aliased
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = key_node.value
            if key == "<<":   # merged mappings: walked for their aliases (PyYAML copies what they merge)
                _index_nodes(value_node, path + (key,), walk)
                continue
            if key in seen:   # PyYAML silently keeps the last one; that hides typos
                _duplicate_key(issues, path + (key,), key_node)
            seen.add(key)
            issues.keys.setdefault(path + (key,), _mark(key_node))
            _index_nodes(value_node, path + (key,), walk)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_nodes(item, path + (i,), walk)
    walk.done[id(node)] = (None, len(issues.values) + walk.aliased - start + 1)


def _duplicate_key(issues: _Issues, path: PathT, key_node: yaml.Node) -> None:
    line, col = _mark(key_node)
    issues.items.append(ConfigIssue(issues.filename, line, col, format_path(path), "duplicate key"))


def _construct_plain(node: yaml.Node, path: PathT, walk: _Walk) -> Any:
    """Index and construct in one walk for plain documents (string keys, standard tags): several
    times faster than PyYAML's constructor on a 10,000-route table.  Raises _NotPlain otherwise."""
    values = walk.issues.values
    values.setdefault(path, _mark(node))
    if isinstance(node, yaml.ScalarNode):
        return node.value if node.tag == _STR_TAG else walk.loader.construct_object(node)
    done = walk.done.get(id(node), _UNSEEN)
    if done is not _UNSEEN:
        if done is None:   # recursive
            raise _NotPlain
        return walk.alias(node, path, done)
    if len(path) >= MAX_DEPTH:
        raise walk.too_deep(node)
    walk.done[id(node)] = None
    start = len(values) + walk.aliased
    # string scalars, most of the nodes, are read in the loops below rather than by a call each
    if isinstance(node, yaml.MappingNode):
        if node.tag != _MAP_TAG:
            raise _NotPlain
        out: dict[str, Any] = {}
        keys = walk.issues.keys
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR_TAG or key_node.value == "<<":
                raise _NotPlain
            key = key_node.value
            sub = path + (key,)
            if key in out:   # PyYAML silently keeps the last one; that hides typos
                _duplicate_key(walk.issues, sub, key_node)
            keys.setdefault(sub, _mark(key_node))
            if value_node.tag == _STR_TAG and type(value_node) is yaml.ScalarNode:
                values.setdefault(sub, _mark(value_node))
                out[key] = value_node.value
            else:
                out[key] = _construct_plain(value_node, sub, walk)
        result: Any = out
    else:
        if node.tag != _SEQ_TAG:
            raise _NotPlain
        result = []
        for i, item in enumerate(node.value):
            if item.tag == _STR_TAG and type(item) is yaml.ScalarNode:
                values.setdefault(path + (i,), _mark(item))
                result.append(item.value)
            else:
                result.append(_construct_plain(item, path + (i,), walk))
    walk.done[id(node)] = (result, len(values) + walk.aliased - start + 1)
    return result


class _FastResolver:
    """Plain scalars whose first character no implicit resolver claims are strings: skip the
    resolver's Python lookup for them (~3 us a node, a third of a big file's parse time)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode and implicit[0] and value and value[0] not in self.yaml_implicit_resolvers:
            return _STR_TAG
        return super().resolve(kind, value, implicit)  # type: ignore[misc]


class _BadValuesMarked:
    """PyYAML's constructors of tagged scalars fail with bare Python errors on values they cannot
    read (``!!int x``: ValueError, ``!!int ''``: IndexError, ``!!bool x``: KeyError,
    ``!!timestamp x``: AttributeError): each becomes a YAML error at its node."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)  # type: ignore[misc]
        except yaml.YAMLError:
            raise
        except Exception:   # whatever a constructor raised on a value it cannot read
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            value = node.value if isinstance(node, yaml.ScalarNode) else ""
            shown = repr(value if len(value) <= 40 else value[:40] + "...")
            raise yaml.constructor.ConstructorError(None, None, f"invalid {tag} value {shown}",
                                                    node.start_mark) from None


# libyaml's parser is ~10x faster on large route tables and keeps the same node marks.
_YAML_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_LOADER = type("_YamlLoader", (_FastResolver, _BadValuesMarked, _YAML_BASE), {})
# libyaml reports the position of a character it refuses in bytes of UTF-8, PyYAML's reader in characters
_READER_COUNTS_BYTES = _YAML_BASE is not yaml.SafeLoader
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")   # what YAML counts as a line break


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based (line, column) of the character at ``index`` of ``text``."""
    line, start = 1, 0
    for found in _LINE_BREAK.finditer(text, 0, index):
        line, start = line + 1, found.end()
    return line, index - start + 1


def _parse_yaml(text: str, issues: _Issues) -> Any:
    loader = None
    try:
        loader = _YAML_LOADER(text)
        node = loader.get_single_node()
        if node is None:
            return None
        reported = len(issues.items)
        walk = _Walk(issues, loader)
        try:
            data = _construct_plain(node, (), walk)
        except _NotPlain:
            del issues.items[reported:]
            issues.values.clear()
            issues.keys.clear()
            issues.shared.clear()
            walk = _Walk(issues, loader)
            _index_nodes(node, (), walk)
            walk.check_aliases()   # before PyYAML builds the document: its merge keys copy what they merge
            return loader.construct_document(node)
        walk.check_aliases()
        return data
    except _Refused as exc:
        line, col = exc.line_col
        issues.items.append(ConfigIssue(issues.filename, line, col, format_path(exc.path), exc.message))
    except yaml.reader.ReaderError as exc:   # a character YAML does not allow, such as a control character
        index = exc.position
        if _READER_COUNTS_BYTES:
            index = len(text.encode("utf-8")[:index].decode("utf-8", "ignore"))
        line, col = _position(text, index)
        what = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        issues.items.append(ConfigIssue(issues.filename, line, col, "",
                                        f"YAML syntax error: unacceptable character {what}: {exc.reason}"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(filter(None, [exc.context, exc.problem])) or str(exc)
        line, col = (mark.line + 1, mark.column + 1) if mark else _position(text, 0)
        issues.items.append(ConfigIssue(issues.filename, line, col, "", f"YAML syntax error: {problem}"))
    except yaml.YAMLError as exc:   # any other has no mark: the document as a whole
        line, col = _position(text, 0)
        issues.items.append(ConfigIssue(issues.filename, line, col, "", f"YAML error: {exc}"))
    except UnicodeEncodeError as exc:   # libyaml reads UTF-8: a lone surrogate has no encoding
        line, col = _position(text, exc.start)
        issues.items.append(ConfigIssue(issues.filename, line, col, "", f"YAML syntax error: unacceptable "
                                        f"character #x{ord(text[exc.start]):04x}: a lone surrogate is not text"))
    finally:
        if loader is not None:
            loader.dispose()
    raise ConfigError(issues.items)


# ---------------------------------------------------------------- type-guided normalisation

_DROP = object()   # sentinel: remove this key (already reported, or empty meaning "use default")
_FAILED = object()


def _split_annotated(annotation: Any) -> tuple[Any, str | None]:
    """Strip Annotated[...] and return (base type, litemesh unit marker or None)."""
    if typing.get_origin(annotation) is not typing.Annotated:
        return annotation, None
    base, *metadata = typing.get_args(annotation)
    for meta in metadata:
        if isinstance(meta, msgspec.Meta) and meta.extra and UNIT_KEY in meta.extra:
            return base, meta.extra[UNIT_KEY]
    return base, None


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _union_args(tp: Any) -> tuple[Any, ...]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


@functools.lru_cache(maxsize=None)
def _struct_fields(cls: type[msgspec.Struct]) -> tuple[dict[str, Any], frozenset[str]]:
    """Type hints and defaulted field names of a config struct (resolving hints is slow: cache)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    defaults = frozenset(f.name for f in msgspec.structs.fields(cls)
                         if f.default is not msgspec.NODEFAULT or f.default_factory is not msgspec.NODEFAULT)
    return hints, defaults


class _FieldPlan:
    """What normalising a value of one annotation takes, worked out once per annotation."""

    __slots__ = ("annotation", "base", "unit", "struct", "item_type", "nullable")

    def __init__(self, annotation: Any) -> None:
        self.annotation = annotation  # keeps the id-keyed cache entry valid
        self.base, self.unit = _split_annotated(annotation)
        self.struct = next((arg for arg in _union_args(self.base) if _is_struct(arg)), None)
        self.item_type = typing.get_args(self.base)[0] if typing.get_origin(self.base) is tuple else None
        self.nullable = type(None) in _union_args(self.base)


_PLANS: dict[int, _FieldPlan] = {}


def _plan(annotation: Any) -> _FieldPlan:
    plan = _PLANS.get(id(annotation))
    if plan is None or plan.annotation is not annotation:
        plan = _PLANS[id(annotation)] = _FieldPlan(annotation)
    return plan


class _Normaliser:
    """Rewrites raw YAML data so msgspec can validate it: units parsed, shorthands expanded,
    unknown/derived keys reported and removed, empty (null) optional sections defaulted."""

    def __init__(self, issues: _Issues) -> None:
        self.issues = issues

    def value(self, value: Any, annotation: Any, path: PathT) -> Any:
        plan = _plan(annotation)
        if plan.unit in ("duration", "size"):
            return self.unit(value, plan.unit, path)
        if plan.base is TargetSpec and isinstance(value, str):
            value = {"address": value}   # "host:port" shorthand
        if isinstance(value, dict):
            return self.struct(value, plan.struct, path) if plan.struct else value
        if isinstance(value, list) and plan.item_type is not None:
            item_type = plan.item_type
            return [self.value(item, item_type, path + (i,)) for i, item in enumerate(value)]
        return value

    def unit(self, value: Any, unit: str, path: PathT) -> Any:
        try:
            return parse_duration(value) if unit == "duration" else parse_size(value)
        except (ValueError, TypeError) as exc:
            self.issues.add(path, str(exc))
            return _DROP

    def struct(self, value: dict, cls: type[msgspec.Struct], path: PathT) -> dict:
        hints, defaults = _struct_fields(cls)
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or key not in hints:
                self.unknown_key(key, hints, path)
                continue
            plan = _plan(hints[key])
            if plan.unit == "derived":
                self.issues.add(path + (key,), "is set from 'address'; remove it", key=True)
                continue
            # An empty YAML value ("server:" with everything commented out) means "use the default".
            if item is None and key in defaults and not plan.nullable:
                continue
            normalised = self.value(item, hints[key], path + (key,))
            if normalised is not _DROP:
                out[key] = normalised
        return out

    def unknown_key(self, key: Any, hints: Mapping[str, Any], path: PathT) -> None:
        public = [name for name, hint in hints.items() if _split_annotated(hint)[1] != "derived"]
        close = difflib.get_close_matches(str(key), public, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        self.issues.add(path, f"unknown field {key!r}{hint}", at=path + (str(key),), key=True)


# ---------------------------------------------------------------- msgspec conversion

_MSGSPEC_PATH = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")


def _parse_msgspec_error(exc: msgspec.ValidationError) -> tuple[PathT, str]:
    """'Expected `int`, got `str` - at `$.routes[0].priority`' -> (('routes', 0, 'priority'), msg)."""
    text = str(exc)
    message, sep, where = text.rpartition(" - at `")
    if not sep:
        message, where = text, "$`"
    path: list[str | int] = []
    for match in _MSGSPEC_PATH.finditer(where[1:-1]):
        if match.group(0) == "[...]":
            break   # msgspec does not name dict keys; point at the dict itself
        path.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
    message = re.sub(r"field `([^`]*)`", r"field '\1'", message).replace("`", "")
    return tuple(path), message[:1].lower() + message[1:]


def _convert(value: Any, tp: Any, path: PathT, issues: _Issues) -> Any:
    try:
        return msgspec.convert(value, tp)
    except msgspec.ValidationError as exc:
        rel, message = _parse_msgspec_error(exc)
        issues.add(path + rel, message)
        return _FAILED


def _convert_list(data: dict, key: str, item_type: type, issues: _Issues) -> list[tuple[int, Any]] | None:
    """Convert each element separately; returns (index, struct) pairs, or None if absent/invalid."""
    raw = data.get(key)
    if raw is None:
        return None
    if not isinstance(raw, list):
        _convert(raw, tuple[item_type, ...], (key,), issues)
        return None
    converted = [(i, _convert(item, item_type, (key, i), issues)) for i, item in enumerate(raw)]
    return [(i, obj) for i, obj in converted if obj is not _FAILED]


# ---------------------------------------------------------------- semantic checks

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE_CHARS = re.compile(r"[\r\n\x00]")
# RFC 9110 §5.5 field-value: visible characters, space, tab and obs-text (sent as Latin-1 bytes)
_NOT_FIELD_VALUE = re.compile(r"[^\t\x20-\x7e\x80-\xff]")
_PARAM = re.compile(r"\{([^{}]*)\}")
_DNS_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_MANAGED_HEADERS = {"content-length", "transfer-encoding"}


def _is_identifier(name: str) -> bool:
    return name.isidentifier() and name.isascii() and not keyword.iskeyword(name)


def check_path_pattern(pattern: str) -> tuple[set[str], str | None]:
    """Validate one route path, in the router's spelling (``route_path_form``); returns (capture
    names, error message or None).  Every rule of the route trie's ``parse_path`` is checked here
    too (with the trie's own limits and characters), so a path this accepts compiles."""
    if len(pattern) > MAX_PATTERN_LEN:
        return set(), f"longer than {MAX_PATTERN_LEN} characters"
    if pattern.startswith("~"):
        if not pattern[1:]:
            return set(), "empty regex"
        try:
            return set(re.compile(pattern[1:]).groupindex), None
        except re.error as exc:
            return set(), f"invalid regex: {exc}"
    body = pattern[1:] if pattern.startswith("=") else pattern
    if not body.startswith("/"):
        return set(), "must start with '/'"
    if re.search(r"[\s?#\x00-\x1f\x7f]", body):
        return set(), "must not contain whitespace, control characters, '?' or '#'"
    if PATH_CHARS_RE.fullmatch(body) is None:
        bad = next(char for char in body if PATH_CHARS_RE.fullmatch(char) is None)
        hint = f": percent-encode it as %{ord(bad):02X}" if bad.isascii() else ""
        return set(), f"must not contain {bad!r}{hint}"
    names: set[str] = set()
    segments = body[1:].split("/")
    if len(segments) - (segments[-1] == "" and pattern[0] != "=") > MAX_SEGMENTS:   # "/a/" has one
        return names, f"more than {MAX_SEGMENTS} segments"
    for i, segment in enumerate(segments):
        if segment == "" and i != len(segments) - 1:
            return names, "empty path segment ('//')"
        if segment in (".", ".."):
            return names, "'.' and '..' segments are not allowed"
        if "{" in segment or "}" in segment:
            match = re.fullmatch(r"\{([^{}]*)\}", segment)
            if match is None:
                return names, f"parameter must be a whole segment: {segment!r}"
            name = match.group(1)
            if not _is_identifier(name):
                return names, f"parameter name must be an identifier: {{{name}}}"
            if name in names:
                return names, f"duplicate parameter {{{name}}}"
            names.add(name)
    return names, None


def route_match_key(pattern: str) -> str:
    """The spelling-independent form of a *valid* path pattern: two patterns with the same key are
    filed identically by the route trie (litemesh/algo/trie.py) and so match the same requests.

    The trie keeps literal segments verbatim (case, percent-encoding and all), tells prefix,
    exact and regex patterns apart, and treats a prefix's trailing slash as a rule of its own
    (``/a/`` needs more path after ``/a``; ``/a`` also matches ``/a`` itself).  Parameter names
    only label the captured value: ``/u/{id}`` and ``/u/{uid}`` match the same requests.  Regexes
    are compared as written.
    """
    if pattern[:1] == "~" or "{" not in pattern:
        return pattern
    return _PARAM.sub("{}", pattern)


def _match_scope(route: RouteSpec) -> tuple[frozenset[str], frozenset[str], int]:
    """What besides the path decides whether two routes compete: hosts and methods as sets (already
    lowercased/uppercased; empty = any) and the priority."""
    return frozenset(route.hosts), frozenset(route.methods), route.priority


def _check_host_pattern(host: str) -> str | None:
    name = host[2:] if host.startswith("*.") else host
    if ":" in name:
        return "must not include a port"
    if len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in name.split(".")):
        return "must be a DNS name or '*.' followed by one"
    return None


def _check_header_value(value: str) -> str | None:
    if _BAD_VALUE_CHARS.search(value):
        return "must not contain CR, LF or NUL"
    bad = _NOT_FIELD_VALUE.search(value)
    if bad is None:
        return None
    if bad.group() < "\x80":
        return f"must not contain control characters (found {bad.group()!r})"
    return f"must be Latin-1 text: {bad.group()!r} cannot be sent (header values go out as ISO-8859-1 bytes)"


def _valid_host_header(value: str) -> bool:
    """What the gateway itself accepts as a Host header (litemesh/http/headers.py) is what it sends."""
    return value.isascii() and valid_host(value.encode("ascii"))


#: names a request id header must not have: the request reader (litemesh/http/request.py) files
#: these by their meaning (framing, Host, hop-by-hop, forwarding claims) before it looks for a
#: request id, and taking one away from its rule would break it (a request's Transfer-Encoding read
#: as its id while its chunked body still arrives).
_NOT_REQUEST_ID = frozenset({"host", "content-length", "transfer-encoding", "connection", "upgrade", "te",
                             "trailer", "keep-alive", "expect", "forwarded", "via", "x-real-ip"})
_NOT_REQUEST_ID_PREFIXES = ("proxy-", "x-forwarded-")


class _Semantics:
    """Cross-field checks on converted structs; returns normalised copies (lowercased hosts...)."""

    def __init__(self, issues: _Issues) -> None:
        self.issues = issues

    def unique_names(self, data: dict, section: str, default: str | None = None) -> None:
        """Checked on the raw data so that elements failing conversion still take part."""
        raw = data.get(section)
        if not isinstance(raw, list):
            return
        first: dict[str, int] = {}
        for i, item in enumerate(raw):
            name = item.get("name", default) if isinstance(item, dict) else None
            if not isinstance(name, str):
                continue
            if name in first:
                self.issues.add((section, i, "name"),
                                f"duplicate name {name!r} (first used by {section}[{first[name]}])")
            else:
                first[name] = i

    def address(self, path: PathT, address: str, *, allow_port_zero: bool) -> tuple[str, int] | None:
        try:
            return parse_address(address, allow_port_zero=allow_port_zero)
        except ValueError as exc:
            self.issues.add(path, str(exc))
            return None

    def listeners(self, items: list[tuple[int, ListenerSpec]]) -> list[ListenerSpec]:
        seen: dict[tuple[str, int], int] = {}
        out = []
        for i, spec in items:
            parsed = self.address(("listeners", i, "address"), spec.address, allow_port_zero=True)
            if parsed is None:
                continue
            if parsed in seen and parsed[1] != 0:   # several ephemeral (:0) listeners are fine
                self.issues.add(("listeners", i, "address"),
                                f"duplicate address (also used by listeners[{seen[parsed]}])")
            seen.setdefault(parsed, i)
            out.append(msgspec.structs.replace(spec, host=parsed[0], port=parsed[1]))
        return out

    def services(self, items: list[tuple[int, ServiceSpec]]) -> list[ServiceSpec]:
        out = []
        for i, spec in items:
            targets = self.targets(i, spec.targets)
            if spec.host_header is not None and not _valid_host_header(spec.host_header):
                self.issues.add(("services", i, "host_header"), "must be a valid Host value: a host name or "
                                "address, with an optional ':port' (ASCII: an international name in its xn-- form)")
            if targets is not None:
                out.append(msgspec.structs.replace(spec, targets=targets))
        return out

    def targets(self, service_index: int, targets: tuple[TargetSpec, ...]) -> tuple[TargetSpec, ...] | None:
        out, seen, ok = [], {}, True
        for j, target in enumerate(targets):
            path = ("services", service_index, "targets", j)
            try:
                parsed = parse_target(target.address)
            except ValueError as exc:
                self.issues.add(path + ("address",), str(exc))
                ok = False
                continue
            key = target_key(*parsed)   # "http://A:80" and "a:80" are one server
            if key in seen:
                self.issues.add(path + ("address",), f"duplicate target (same as targets[{seen[key]}])")
            seen.setdefault(key, j)
            out.append(msgspec.structs.replace(target, host=parsed[0], port=parsed[1]))
        return tuple(out) if ok else None

    def routes(self, items: list[tuple[int, RouteSpec]], services: set[str]) -> list[RouteSpec]:
        out = []
        seen: dict[str, Any] = {}
        for i, route in items:
            before = len(self.issues.items)
            route = self.route(i, route, services)
            if len(self.issues.items) == before:
                self.duplicate_paths(i, route, seen)
                out.append(route)
        return out

    def duplicate_paths(self, i: int, route: RouteSpec, seen: dict[str, Any]) -> None:
        """Report a path entry that the router files exactly like an earlier route's: one of the
        two can never be picked.  Reported at the later one (see ``route_match_key``).

        ``seen`` maps a path's match key to its first (index, route, pattern); only when a second
        route uses the same path does the entry become a dict by (hosts, methods, priority), so a
        10,000-route table pays one dict lookup per path, not a set-valued key each.
        """
        for j, pattern in enumerate(route.paths):
            key = pattern if "{" not in pattern or pattern[0] == "~" else route_match_key(pattern)
            entry = (i, route, pattern)
            first = seen.setdefault(key, entry)
            if first is entry:
                continue
            if type(first) is tuple:
                first = seen[key] = {_match_scope(first[1]): first}
            first = first.setdefault(_match_scope(route), entry)
            if first[0] == i:
                continue   # new, or a repeat within the same route (harmless: same route either way)
            path = repr(pattern) if pattern == first[2] else f"{pattern!r} (same as {first[2]!r} to the router)"
            self.issues.add(("routes", i, "paths", j), f"duplicate of route {first[1].name!r} (routes[{first[0]}]): "
                                                       f"same hosts, methods, path {path} and priority")

    def route(self, i: int, route: RouteSpec, services: set[str]) -> RouteSpec:
        base: PathT = ("routes", i)
        self.target(base, route, services)
        hosts = self.hosts(base, route.hosts)
        methods = self.methods(base, route.methods)
        params, paths = self.paths(base, route)
        rewrite = route.rewrite
        if rewrite is not None:
            rewrite = self.rewrite(base, rewrite, params)
        if route.respond is not None:
            self.respond(base + ("respond",), route.respond)
        for j, protocol in enumerate(route.upgrades):
            if not _TOKEN.fullmatch(protocol):
                self.issues.add(base + ("upgrades", j), f"invalid protocol name {protocol!r}")
        return msgspec.structs.replace(route, hosts=hosts, methods=methods, paths=paths, rewrite=rewrite)

    def target(self, base: PathT, route: RouteSpec, services: set[str]) -> None:
        if (route.service is None) == (route.respond is None):
            got = "both" if route.service is not None else "neither"
            self.issues.add(base, f"exactly one of 'service' or 'respond' is required (got {got})")
        elif route.service is not None and route.service not in services:
            self.issues.add(base + ("service",), f"unknown service {route.service!r}")
        if route.respond is not None and route.service is None:
            for flag in ("strip_prefix", "rewrite", "preserve_host"):
                if getattr(route, flag) not in (False, None):
                    self.issues.add(base + (flag,), "only applies to routes with a 'service'")
        if route.strip_prefix and route.rewrite is not None:
            self.issues.add(base + ("strip_prefix",), "cannot be combined with 'rewrite'")

    def hosts(self, base: PathT, hosts: tuple[str, ...]) -> tuple[str, ...]:
        for j, host in enumerate(hosts):
            error = _check_host_pattern(host.lower())
            if error:
                self.issues.add(base + ("hosts", j), error)
        return tuple(host.lower() for host in hosts)

    def methods(self, base: PathT, methods: tuple[str, ...]) -> tuple[str, ...]:
        for j, method in enumerate(methods):
            if not _TOKEN.fullmatch(method):
                self.issues.add(base + ("methods", j), f"invalid method {method!r}")
        return tuple(dict.fromkeys(method.upper() for method in methods))   # dedupe, keep order

    def paths(self, base: PathT, route: RouteSpec) -> tuple[list[set[str]], tuple[str, ...]]:
        """The capture names of each path, and the paths in the router's spelling (pathform.py)."""
        params, spelled = [], []
        for j, pattern in enumerate(route.paths):
            try:
                pattern = route_path_form(pattern)
            except ValueError as exc:
                names, error = set(), str(exc)
            else:
                names, error = check_path_pattern(pattern)
            if error:
                self.issues.add(base + ("paths", j), error)
            elif pattern.startswith("~") and route.strip_prefix:
                self.issues.add(base + ("paths", j), "regex paths cannot be used with strip_prefix")
            params.append(names)
            spelled.append(pattern)
        return params, tuple(spelled)

    def rewrite(self, base: PathT, rewrite: str, params: list[set[str]]) -> str:
        """Checks ``rewrite``; returns it with non-ASCII characters percent-encoded (sent upstream)."""
        path = base + ("rewrite",)
        if not rewrite.startswith("/"):
            self.issues.add(path, "must start with '/'")
            return rewrite
        if re.search(r"[\s?#\x00-\x1f\x7f]", rewrite):
            self.issues.add(path, "must be a path without whitespace, query or fragment")
            return rewrite
        if set("{}") & set(_PARAM.sub("", rewrite)):   # braces left over after removing {name}s
            self.issues.add(path, "unbalanced '{' or '}'")
            return rewrite
        for name in _PARAM.findall(rewrite):
            if not _is_identifier(name):
                self.issues.add(path, f"parameter name must be an identifier: {{{name}}}")
            elif not all(name in names for names in params):
                self.issues.add(path, f"uses {{{name}}}, which not every path of the route captures")
        try:
            return encode_non_ascii(rewrite)
        except ValueError as exc:
            self.issues.add(path, str(exc))
            return rewrite

    def respond(self, path: PathT, respond: RespondSpec) -> None:
        if respond.status == 101:
            self.issues.add(path + ("status",), "101 Switching Protocols cannot be a fixed response")
        if respond.body and (respond.status in (204, 304) or respond.status < 200):
            self.issues.add(path + ("body",), f"status {respond.status} must not have a body")
        names = {name.lower() for name in respond.headers}
        for name, value in respond.headers.items():
            header_path = path + ("headers", name)
            if not _TOKEN.fullmatch(name):
                self.issues.add(header_path, "invalid header name", key=True)
            elif name.lower() in _MANAGED_HEADERS:
                self.issues.add(header_path, "is set by the gateway", key=True)
            elif _check_header_value(value):
                self.issues.add(header_path, "header value " + _check_header_value(value))
        if respond.content_type is not None:
            if _check_header_value(respond.content_type):
                self.issues.add(path + ("content_type",), _check_header_value(respond.content_type))
            if "content-type" in names:
                self.issues.add(path + ("content_type",), "conflicts with the Content-Type header")

    def server(self, spec: ServerSpec) -> None:
        for j, network in enumerate(spec.trust_forwarded):
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                self.issues.add(("server", "trust_forwarded", j),
                                f"{network!r} is not an IP network (CIDR such as '10.0.0.0/8') or address")
        if spec.via and not _TOKEN.fullmatch(spec.via):
            self.issues.add(("server", "via"), "must be a token (no spaces)")
        if spec.request_id_header:
            self.request_id_header(spec.request_id_header)
        if _check_header_value(spec.server_header):
            self.issues.add(("server", "server_header"), _check_header_value(spec.server_header))
        self.run_as(spec)

    def request_id_header(self, name: str) -> None:
        path = ("server", "request_id_header")
        lowered = name.lower()
        if name.startswith(":"):
            self.issues.add(path, "a pseudo-header (':...') is not a header name")
        elif not _TOKEN.fullmatch(name):
            self.issues.add(path, "invalid header name")
        elif lowered in _NOT_REQUEST_ID or lowered.startswith(_NOT_REQUEST_ID_PREFIXES):
            self.issues.add(path, f"{name!r} is a header the gateway handles by its meaning (framing, Host, "
                                  "hop-by-hop or forwarding); choose another name, such as X-Request-ID")

    def run_as(self, spec: ServerSpec) -> None:
        """``server.user``/``group`` must name entries of this machine's databases (checked where the
        gateway runs: the workers switch to them after binding)."""
        if spec.group and not spec.user:
            self.issues.add(("server", "group"), "only applies with 'user'")
        if spec.user:
            try:
                pwd.getpwnam(spec.user)
            except KeyError:
                self.issues.add(("server", "user"), f"unknown user {spec.user!r} (not in the user database)")
        if spec.group:
            try:
                grp.getgrnam(spec.group)
            except KeyError:
                self.issues.add(("server", "group"), f"unknown group {spec.group!r} (not in the group database)")

    def admin(self, spec: AdminSpec) -> AdminSpec:
        parsed = self.address(("admin", "address"), spec.address, allow_port_zero=True)
        return spec if parsed is None else msgspec.structs.replace(spec, host=parsed[0], port=parsed[1])


# ---------------------------------------------------------------- assembly

def _raw_service_names(data: dict) -> set[str]:
    # Names of services that failed conversion still count, so routes don't get a second, bogus error.
    raw = data.get("services")
    if not isinstance(raw, list):
        return set()
    return {item["name"] for item in raw if isinstance(item, dict) and isinstance(item.get("name"), str)}


def _section(data: dict, key: str, tp: type, issues: _Issues) -> Any:
    return _convert(data[key], tp, (key,), issues) if key in data else tp()


def _legacy_trust_forwarded(data: dict, issues: _Issues) -> None:
    """``trust_forwarded`` was a bool before it listed networks: ``false`` still means none."""
    server = data.get("server")
    if isinstance(server, dict) and isinstance(server.get("trust_forwarded"), bool):
        if server["trust_forwarded"]:
            issues.add(("server", "trust_forwarded"), "must list the networks of the proxies to trust, "
                       "e.g. ['10.0.0.0/8', '127.0.0.1'] (trusting every client would let any of them "
                       "choose its address)")
        data["server"] = {key: value for key, value in server.items() if key != "trust_forwarded"}


def _build(data: dict, issues: _Issues) -> GatewayConfig | None:
    checks = _Semantics(issues)
    _legacy_trust_forwarded(data, issues)
    limits = _section(data, "limits", LimitsSpec, issues)
    timeouts = _section(data, "timeouts", ServerTimeouts, issues)
    server = _section(data, "server", ServerSpec, issues)
    if server is not _FAILED:
        checks.server(server)
    admin = _section(data, "admin", AdminSpec, issues)
    if admin is not _FAILED:
        admin = checks.admin(admin)

    raw_listeners = _convert_list(data, "listeners", ListenerSpec, issues)
    if isinstance(data.get("listeners"), list) and not data["listeners"]:
        issues.add(("listeners",), "at least one listener is required")
    listeners = checks.listeners(raw_listeners) if raw_listeners is not None else None
    checks.unique_names(data, "listeners", default="main")
    checks.unique_names(data, "services")
    checks.unique_names(data, "routes")
    services = checks.services(_convert_list(data, "services", ServiceSpec, issues) or [])
    known = {service.name for service in services} | _raw_service_names(data)
    routes = checks.routes(_convert_list(data, "routes", RouteSpec, issues) or [], known)

    if issues.items:
        return None
    kwargs: dict[str, Any] = dict(services=tuple(services), routes=tuple(routes),
                                  limits=limits, timeouts=timeouts, server=server, admin=admin)
    if listeners is not None:
        kwargs["listeners"] = tuple(listeners)
    return GatewayConfig(**kwargs)


def load_config_text(text: str, filename: str = "<string>", *, env: Mapping[str, str] | None = None) -> GatewayConfig:
    """Parse and validate YAML text; raise ConfigError listing every issue found."""
    with gc_paused():
        return _load_config_text(text, filename, env)


def _load_config_text(text: str, filename: str, env: Mapping[str, str] | None) -> GatewayConfig:
    issues = _Issues(filename)
    data = _parse_yaml(text, issues)
    if data is None:
        raise ConfigError([ConfigIssue(filename, 1, 1, "", "configuration is empty "
                                       "(expected a mapping with 'listeners', 'services', 'routes', ...)")])
    if not isinstance(data, dict):
        line, col = issues.values.get((), (None, None))
        message = f"top level must be a mapping, got {type(data).__name__}"
        raise ConfigError([ConfigIssue(filename, line, col, "", message)])

    overrides = env_mod.apply_env_overrides(data, os.environ if env is None else env)
    issues.env_sources = overrides.sources
    for var, path, message in overrides.problems:
        issues.items.append(ConfigIssue(f"<env {var}>", None, None, path, message))

    normalised = _Normaliser(issues).struct(overrides.data, GatewayConfig, ())
    config = _build(normalised, issues)
    if config is None:
        raise ConfigError(issues.sorted())
    return config


def load_config(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read and validate a gateway.yaml file; unreadable files are reported as ConfigError too."""
    filename = os.fspath(path)
    try:
        text = Path(filename).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(filename, None, None, "", f"cannot read configuration: {exc}")]) from exc
    return load_config_text(text, filename, env=env)


def locate_issues(text: str, filename: str, found: Iterable[tuple[PathT, str]]) -> list[ConfigIssue]:
    """Position ``(path, message)`` pairs found in a loaded config (warnings such as unresolvable
    target hosts) in its YAML ``text``, like load errors: ``file:line:col: path: message``.
    With no text (a config built from the command line) the issues carry no line."""
    issues = _Issues(filename)
    if text:
        try:
            _parse_yaml(text, issues)
        except ConfigError:
            pass   # the text changed since it was loaded: report without positions
        issues.items.clear()
    for path, message in found:
        issues.add(path, message)
    return issues.sorted()
