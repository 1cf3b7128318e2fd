"""Tests for litemesh.config: units, loading, semantic checks with positions, env, schema."""
from __future__ import annotations

import json
import re
import textwrap
import time

import msgspec
import pytest

from litemesh.config import (EXAMPLE_CONFIG_PATH, ConfigError, ConfigIssue, GatewayConfig, LimitsSpec,
                             ListenerSpec, RespondSpec, RouteSpec, ServerSpec, ServerTimeouts,
                             TargetSpec, json_schema, load_config, load_config_text, parse_address,
                             parse_duration, parse_size)
from litemesh.config.loader import route_match_key
from litemesh.config.pathform import route_path_form
from litemesh.config.units import parse_target

NO_ENV: dict[str, str] = {}

BASE = """\
listeners:
  - address: 127.0.0.1:0
services:
  - name: svc
    targets: [127.0.0.1:9000]
"""


def load(text: str, env: dict[str, str] | None = None) -> GatewayConfig:
    return load_config_text(textwrap.dedent(text), "gw.yaml", env=NO_ENV if env is None else env)


def issues(text: str, env: dict[str, str] | None = None) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        load(text, env)
    return info.value.issues


def only_issue(text: str, env: dict[str, str] | None = None) -> ConfigIssue:
    found = issues(text, env)
    assert len(found) == 1, found
    return found[0]


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing `needle` (after dedent)."""
    lines = textwrap.dedent(text).splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def with_routes(routes: str) -> str:
    return BASE + "routes:\n" + textwrap.indent(textwrap.dedent(routes), "  ")


# ------------------------------------------------------------------ units

@pytest.mark.parametrize("text, seconds", [
    ("250ms", 0.25), ("30s", 30.0), ("1.5s", 1.5), ("2m", 120.0), ("1h", 3600.0), ("500us", 0.0005),
    ("1m30s", 90.0), ("10", 10.0), (" 5s ", 5.0), (3, 3.0), (0.5, 0.5), (0, 0.0),
])
def test_parse_duration_good(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)
    assert isinstance(parse_duration(text), float)


@pytest.mark.parametrize("bad", ["", "s", "5x", "-1s", "1 s", "5sec", "1.2.3s", -1, True, None, float("inf"), "ms5"])
def test_parse_duration_bad(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("text, size", [
    ("1MiB", 1 << 20), ("512KiB", 512 << 10), ("1GiB", 1 << 30), ("10KB", 10_000), ("1MB", 1_000_000),
    ("100", 100), ("7B", 7), ("1.5KiB", 1536), ("2 kib", 2048), (4096, 4096), (1e6, 1_000_000), (0, 0),
])
def test_parse_size_good(text, size):
    assert parse_size(text) == size
    assert type(parse_size(text)) is int


@pytest.mark.parametrize("bad", ["", "MiB", "1XB", "-1KiB", "1.5B", -5, 1.5, False, "1 MiB MiB", None])
def test_parse_size_bad(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:80", ("::1", 80)), ("localhost:80", ("localhost", 80)),
    ("api.example.com:65535", ("api.example.com", 65535)), ("0.0.0.0:1", ("0.0.0.0", 1)),
])
def test_parse_address_good(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("bad", ["127.0.0.1", ":80", "host:", "host:0", "host:65536", "host:-1", "::1:80",
                                 "[::1]80", "[nope]:80", "bad host:80", "host:8o", "-x-:80", 80])
def test_parse_address_bad(bad):
    with pytest.raises(ValueError):
        parse_address(bad)


def test_parse_address_port_zero_only_when_allowed():
    assert parse_address("127.0.0.1:0", allow_port_zero=True) == ("127.0.0.1", 0)
    with pytest.raises(ValueError, match="1..65535"):
        parse_address("127.0.0.1:0")


# ------------------------------------------------------------------ valid configs

FULL = """\
listeners:
  - name: public
    address: 0.0.0.0:8080
    backlog: 512
  - name: admin
    address: "[::1]:9090"
server:
  workers: auto
  via: edge
  request_id_header: X-Trace
  trust_forwarded: [10.0.0.0/8, "::1"]
  server_header: LiteMesh
limits:
  max_request_line: 4KiB
  max_header_size: 16KiB
  max_headers: 50
  max_body_size: 10MB
timeouts:
  client_header: 5s
  client_body: 1m
  keepalive: 500ms
  send: 2.5
  drain: 0
services:
  - name: api
    targets:
      - 10.0.0.1:80
      - address: 10.0.0.2:80
        weight: 3
    timeouts: {connect: 250ms, read: 2m, write: 1m30s}
    pool: {max_idle: 8, idle_timeout: 90s, max_requests: 1000}
    host_header: api.internal
routes:
  - name: items
    hosts: [API.Example.com, "*.example.org"]
    methods: [get, POST, get]
    paths: ["/v1/items/{item}", "=/items/{item}"]
    service: api
    rewrite: /items/{item}
    preserve_host: true
    priority: 5
  - name: regex
    paths: ["~^/v(?P<ver>[0-9]+)/"]
    service: api
    rewrite: /api/{ver}
  - name: teapot
    paths: [/tea]
    respond:
      status: 418
      headers: {X-Kind: teapot}
      body: short and stout
      content_type: text/plain
"""


def test_full_config_round_trip():
    cfg = load(FULL)
    assert [(l.name, l.host, l.port, l.backlog) for l in cfg.listeners] == [
        ("public", "0.0.0.0", 8080, 512), ("admin", "::1", 9090, 2048)]
    assert cfg.server == ServerSpec(workers="auto", via="edge", request_id_header="X-Trace",
                                    trust_forwarded=("10.0.0.0/8", "::1"), server_header="LiteMesh")
    assert cfg.limits == LimitsSpec(max_request_line=4096, max_header_size=16384, max_headers=50,
                                    max_body_size=10_000_000)
    assert cfg.timeouts == ServerTimeouts(client_header=5.0, client_body=60.0, keepalive=0.5, send=2.5, drain=0.0)
    api = cfg.service_by_name["api"]
    assert api.targets == (TargetSpec(address="10.0.0.1:80", host="10.0.0.1", port=80),
                           TargetSpec(address="10.0.0.2:80", host="10.0.0.2", port=80, weight=3))
    assert (api.timeouts.connect, api.timeouts.read, api.timeouts.write) == (0.25, 120.0, 90.0)
    assert (api.pool.max_idle, api.pool.idle_timeout, api.pool.max_requests) == (8, 90.0, 1000)
    assert api.host_header == "api.internal" and api.balancer == "round_robin"
    items, regex, teapot = cfg.routes
    assert items.hosts == ("api.example.com", "*.example.org")
    assert items.methods == ("GET", "POST")
    assert items.paths == ("/v1/items/{item}", "=/items/{item}") and items.priority == 5 and items.preserve_host
    assert regex.rewrite == "/api/{ver}"
    assert teapot.respond == RespondSpec(status=418, headers={"X-Kind": "teapot"}, body="short and stout",
                                         content_type="text/plain")
    # The loaded object survives an encode/decode cycle unchanged.
    assert msgspec.json.decode(msgspec.json.encode(cfg), type=GatewayConfig) == cfg


def test_defaults_for_minimal_config():
    cfg = load("routes: []\n")
    assert cfg.listeners == (ListenerSpec(address="127.0.0.1:8080", host="127.0.0.1", port=8080),)
    assert cfg.services == () and cfg.routes == ()
    assert cfg.limits == LimitsSpec(max_request_line=8192, max_header_size=32768, max_headers=100,
                                    max_body_size=64 << 20)
    assert cfg.timeouts == ServerTimeouts(client_header=10.0, client_body=60.0, keepalive=75.0, send=60.0, drain=30.0)
    assert cfg.server == ServerSpec(workers=1, via="litemesh", request_id_header="X-Request-ID",
                                    trust_forwarded=(), server_header="")
    assert (cfg.server.merge_slashes, cfg.server.allow_trace, cfg.server.emit_forwarded) == (True, False, False)


def test_route_defaults_and_empty_sections_mean_defaults():
    cfg = load(BASE + "server:\nlimits:\nroutes:\n  - name: r\n    service: svc\n")
    route = cfg.routes[0]
    assert route == RouteSpec(name="r", service="svc")
    assert route.paths == ("/",) and route.respond is None and not route.strip_prefix
    assert cfg.server == ServerSpec() and cfg.limits == LimitsSpec()
    assert cfg.services[0].timeouts.connect == 5.0 and cfg.services[0].pool.max_idle == 1024


def test_example_config_loads():
    cfg = load_config(EXAMPLE_CONFIG_PATH, env=NO_ENV)
    assert EXAMPLE_CONFIG_PATH.name == "example.yaml"
    assert (cfg.listeners[0].host, cfg.listeners[0].port) == ("127.0.0.1", 8080)
    assert [t.port for t in cfg.service_by_name["users"].targets] == [9101, 9102]
    assert [t.port for t in cfg.service_by_name["orders"].targets] == [9103]
    routes = {r.name: r for r in cfg.routes}
    assert set(routes) == {"users-api", "user-by-id", "orders", "health", "deny-internal", "old-docs"}
    assert routes["users-api"].strip_prefix and routes["user-by-id"].rewrite == "/users/{id}"
    assert routes["orders"].methods == ("GET", "POST")
    assert routes["health"].respond.status == 200 and json.loads(routes["health"].respond.body) == {"status": "ok"}
    assert routes["deny-internal"].respond.status == 403
    assert routes["old-docs"].respond.status == 301 and "Location" in routes["old-docs"].respond.headers
    assert "maintenance" in EXAMPLE_CONFIG_PATH.read_text()


def test_loaded_objects_are_frozen():
    cfg = load(FULL)
    with pytest.raises(AttributeError):
        cfg.routes = ()
    with pytest.raises(AttributeError):
        cfg.routes[0].name = "x"
    with pytest.raises(AttributeError):
        cfg.services[0].targets[0].port = 1
    with pytest.raises(TypeError):
        cfg.service_by_name["new"] = cfg.services[0]
    assert isinstance(cfg.routes, tuple) and isinstance(cfg.routes[0].paths, tuple)


def test_load_config_reads_os_environ_by_default(tmp_path, monkeypatch):
    path = tmp_path / "gateway.yaml"
    path.write_text(BASE)
    monkeypatch.setenv("LITEMESH_SERVER__WORKERS", "3")
    assert load_config(path).server.workers == 3
    assert load_config(str(path), env={}).server.workers == 1


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml", env=NO_ENV)


# ------------------------------------------------------------------ error reporting

def test_error_string_format():
    err = ConfigError([ConfigIssue("gateway.yaml", 12, 9, "routes[3].paths[0]", "must start with '/'"),
                       ConfigIssue("<env LITEMESH_LISTEN>", None, None, "listeners[0].address", "bad"),
                       ConfigIssue("x.yaml", None, None, "", "configuration is empty")])
    assert str(err).splitlines() == [
        "gateway.yaml:12:9: routes[3].paths[0]: must start with '/'",
        "<env LITEMESH_LISTEN>: listeners[0].address: bad",
        "x.yaml: configuration is empty",
    ]


def test_yaml_syntax_error_has_line():
    text = "listeners:\n  - address: 127.0.0.1:80\nroutes: [\n  - a: b\n"
    issue = only_issue(text)
    assert issue.file == "gw.yaml" and issue.path == ""
    assert "YAML syntax error" in issue.message
    assert issue.line == 4


def test_yaml_bad_indentation_line():
    issue = only_issue("server:\n  workers: 2\n via: x\n")
    assert issue.line == 3 and "YAML" in issue.message


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_file(text):
    issue = only_issue(text)
    assert "empty" in issue.message and (issue.line, issue.column) == (1, 1)   # every issue has a place


def test_top_level_must_be_mapping():
    issue = only_issue("- a\n- b\n")
    assert "mapping" in issue.message and issue.line == 1


def test_unknown_fields_name_the_key_and_all_are_reported():
    text = BASE + "rotues: []\nserver:\n  wokers: 2\n"
    found = issues(text)
    assert [(i.path, i.line, i.message) for i in found] == [
        ("", 6, "unknown field 'rotues' (did you mean 'routes'?)"),
        ("server", 8, "unknown field 'wokers' (did you mean 'workers'?)"),
    ]
    assert found[1].column == 3


def test_unknown_field_in_nested_struct():
    text = with_routes("""\
        - name: r
          service: svc
          respond_with: 200
        """)
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("routes[0]", line_of(text, "respond_with"))
    assert "respond_with" in issue.message


def test_derived_fields_cannot_be_written():
    issue = only_issue("listeners:\n  - address: 127.0.0.1:80\n    port: 81\n")
    assert (issue.path, issue.line) == ("listeners[0].port", 3)


def test_duplicate_yaml_key():
    issue = only_issue(BASE + "server:\n  workers: 2\n  workers: 3\n")
    assert (issue.path, issue.line, issue.message) == ("server.workers", 8, "duplicate key")


def test_wrong_types_use_msgspec_path():
    text = with_routes("""\
        - name: r
          service: svc
          paths: [/a, 5]
          priority: high
        """)
    found = issues(text)
    # msgspec reports one type error per route element.
    assert len(found) == 1
    assert (found[0].path, found[0].line) == ("routes[0].paths[1]", line_of(text, "paths: [/a, 5]"))
    assert "expected str, got int" in found[0].message


def test_type_errors_in_several_elements_are_all_reported():
    text = with_routes("""\
        - name: a
          service: svc
          priority: high
        - name: b
          service: svc
          strip_prefix: maybe
        """)
    found = issues(text)
    assert [(i.path, i.line) for i in found] == [
        ("routes[0].priority", line_of(text, "priority: high")),
        ("routes[1].strip_prefix", line_of(text, "strip_prefix: maybe")),
    ]


def test_missing_required_field_points_at_parent_mapping():
    text = BASE + "routes:\n  - service: svc\n    paths: [/]\n"
    issue = only_issue(text)
    assert issue.path == "routes[0]" and issue.line == 7 and "missing required field 'name'" in issue.message


def test_section_of_wrong_type():
    issue = only_issue(BASE + "limits: 5\n")
    assert (issue.path, issue.line) == ("limits", 6)


def test_bad_durations_and_sizes():
    text = BASE + "limits:\n  max_body_size: 1XB\ntimeouts:\n  keepalive: soon\n  client_header: 0\n"
    found = issues(text)
    assert [(i.path, i.line) for i in found] == [
        ("limits.max_body_size", 7), ("timeouts.keepalive", 9), ("timeouts.client_header", 10)]
    assert "invalid size" in found[0].message and "invalid duration" in found[1].message
    assert "> 0" in found[2].message   # timeouts must be positive


def test_bad_and_duplicate_listener_addresses():
    text = """\
        listeners:
          - name: a
            address: 127.0.0.1:8080
          - name: b
            address: 127.0.0.1:8080
          - name: a
            address: localhost
          - name: c
            address: 127.0.0.1:0
          - name: d
            address: 127.0.0.1:0
        """
    found = issues(text)
    assert [(i.path, i.line) for i in found] == [
        ("listeners[1].address", 5), ("listeners[2].name", 6), ("listeners[2].address", 7)]
    assert "duplicate address" in found[0].message and "duplicate name 'a'" in found[1].message


def test_listeners_must_not_be_empty():
    issue = only_issue("listeners: []\n")
    assert issue.path == "listeners" and issue.line == 1


def test_service_errors():
    text = """\
        services:
          - name: s
            targets: [127.0.0.1:0, 127.0.0.1:90, "127.0.0.1:90"]
          - name: s
            targets: []
          - name: t
            balancer: random
            targets: [{address: 127.0.0.1:1, weight: 0}]
        """
    found = issues(text)
    assert [(i.path, i.line) for i in found] == [
        ("services[0].targets[0].address", 3),
        ("services[0].targets[2].address", 3),
        ("services[1].name", 4),
        ("services[1].targets", 5),
        ("services[2].balancer", 7),
    ]
    assert "duplicate target" in found[1].message


# ------------------------------------------------------------------ targets (issue 7, point 11)

@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)), ("users.internal:9000", ("users.internal", 9000)),
    ("[::1]:80", ("::1", 80)), ("http://users.internal:8080", ("users.internal", 8080)),
    ("http://users.internal", ("users.internal", 80)), ("HTTP://Users.Internal", ("Users.Internal", 80)),
    ("http://127.0.0.1", ("127.0.0.1", 80)), ("http://127.0.0.1:9", ("127.0.0.1", 9)),
    ("http://[::1]", ("::1", 80)), ("http://[fd00::5]:8080", ("fd00::5", 8080)), (" http://a:1 ", ("a", 1)),
])
def test_parse_target_good(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize("bad, message", [
    ("https://api.internal", "https:// targets are not supported yet: upstream TLS is not implemented"),
    ("HTTPS://api.internal:443", "https:// targets are not supported yet: upstream TLS is not implemented"),
    ("ftp://files.internal", "unsupported scheme 'ftp://' (only http:// is supported)"),
    ("ws://a:80", "unsupported scheme 'ws://'"),
    ("http://a:80/", "must not have a path ('/')"),
    ("http://a/api/v1", "must not have a path ('/api/v1')"),
    ("http://a:80?x=1", "must not have a query ('?x=1')"),
    ("http://a#top", "must not have a fragment ('#top')"),
    ("http://user:secret@a:80", "must not have user info"),
    ("http://", "missing host"),
    ("http://:80", "missing host"),
    ("http://a:", "port must be a number"),
    ("http://a:0", "port must be in 1..65535"),
    ("http://a:65536", "port must be in 1..65535"),
    ("http://::1", "IPv6 hosts must be written as '[addr]:port'"),
    ("http://[::1", "expected '[ipv6]:port'"),
    ("http://[nope]", "bad IPv6 address"),
    ("http://bad host", "bad host"),
    ("users.internal", "expected 'host:port'"),
    ("[::1]", "expected '[ipv6]:port'"),
])
def test_parse_target_bad(bad, message):
    with pytest.raises(ValueError) as info:
        parse_target(bad)
    assert message in str(info.value)


def test_target_forms_in_a_config():
    text = """\
        services:
          - name: s
            targets:
              - http://users.internal
              - HTTP://users.internal:8080
              - address: http://[::1]:9000
                weight: 2
              - 10.0.0.1:81
        """
    targets = load(text).services[0].targets
    assert [(t.address, t.host, t.port, t.weight) for t in targets] == [
        ("http://users.internal", "users.internal", 80, 1), ("HTTP://users.internal:8080", "users.internal", 8080, 1),
        ("http://[::1]:9000", "::1", 9000, 2), ("10.0.0.1:81", "10.0.0.1", 81, 1)]


def test_resolve_interval():
    assert load(BASE).services[0].resolve_interval == 30.0
    text = "services:\n  - name: s\n    targets: [a:1]\n    resolve_interval: 2m\n"
    assert load(text).services[0].resolve_interval == 120.0
    issue = only_issue("services:\n  - name: s\n    targets: [a:1]\n    resolve_interval: 0s\n")
    assert (issue.path, issue.line) == ("services[0].resolve_interval", 4)


def test_refused_target_urls_are_located_like_other_errors():
    text = """\
        services:
          - name: s
            targets:
              - https://secure.internal
              - address: https://secure.internal:8443
              - http://a:80/api
        """
    found = issues(text)
    assert [(i.path, i.line, i.column) for i in found] == [
        ("services[0].targets[0].address", 4, 9), ("services[0].targets[1].address", 5, 18),
        ("services[0].targets[2].address", 6, 9)]
    tls = "https:// targets are not supported yet: upstream TLS is not implemented"
    assert found[0].message == found[1].message == tls
    assert str(found[0]) == f"gw.yaml:4:9: services[0].targets[0].address: {tls}"
    assert "must not have a path ('/api')" in found[2].message


@pytest.mark.parametrize("first, second", [
    ("http://a:80", "a:80"), ("http://a", "a:80"), ("http://API.internal", "api.internal:80"),
    ("a:8080", "http://A:8080"), ("[::1]:80", "http://[0:0::1]"), ("http://[::1]", "[::1]:80"),
])
def test_duplicate_targets_whatever_the_spelling(first, second):
    issue = only_issue(f"services:\n  - name: s\n    targets: ['{first}', '{second}']\n")
    assert (issue.path, issue.message) == ("services[0].targets[1].address", "duplicate target (same as targets[0])")


@pytest.mark.parametrize("first, second", [("http://a", "a:8080"), ("http://a", "http://b"), ("[::1]:80", "[::2]:80")])
def test_distinct_targets_are_not_duplicates(first, second):
    assert len(load(f"services:\n  - name: s\n    targets: ['{first}', '{second}']\n").services[0].targets) == 2


# ------------------------------------------------------------------ duplicate routes (issue 7, point 12)

def test_duplicate_route_names_both_routes_at_the_second_ones_line():
    text = with_routes("""\
        - name: health
          paths: [/healthz]
          respond: {status: 200}
        - name: web
          paths: [/web]
          service: svc
        - name: users
          paths: [/api]
          service: svc
        - name: orders
          paths: [/orders]
          service: svc
        - name: legacy
          paths: [/old]
          service: svc
        - name: users-v2
          paths: [/api]
          service: svc
        """)
    issue = only_issue(text)
    assert issue.path == "routes[5].paths[0]"
    assert issue.message == "duplicate of route 'users' (routes[2]): same hosts, methods, path '/api' and priority"
    assert issue.line == line_of(text, "- name: users-v2") + 1
    assert str(issue) == (f"gw.yaml:{issue.line}:{issue.column}: routes[5].paths[0]: duplicate of route 'users' "
                          "(routes[2]): same hosts, methods, path '/api' and priority")


@pytest.mark.parametrize("first, second", [
    # hosts and methods as sets: order, repeats and case do not count
    ("{hosts: [a.example.com, B.example.com], paths: [/api]}",
     "{hosts: [b.example.com, A.example.com, a.example.com], paths: [/api]}"),
    ("{methods: [GET, POST], paths: [/api]}", "{methods: [post, get, GET], paths: [/api]}"),
    ("{hosts: ['*.example.com'], methods: [GET], paths: [/api], priority: 3}",
     "{hosts: ['*.EXAMPLE.com'], methods: [GET], paths: [/api], priority: 3}"),
    # parameter names only label the capture
    ("{paths: ['/users/{id}/orders']}", "{paths: ['/users/{user_id}/orders']}"),
    ("{paths: ['=/users/{id}']}", "{paths: ['=/users/{uid}']}"),
    # the same regex, exact and trailing-slash prefix spellings
    ("{paths: ['~^/v[0-9]+/']}", "{paths: ['~^/v[0-9]+/']}"),
    ("{paths: ['=/api/']}", "{paths: ['=/api/']}"),
    ("{paths: [/api/]}", "{paths: [/api/]}"),
    # the default path "/" written or not
    ("{}", "{paths: [/]}"),
])
def test_duplicate_routes(first, second):
    text = with_routes(f"- {{name: one, service: svc, {first[1:]}\n- {{name: two, service: svc, {second[1:]}\n")
    issue = only_issue(text)
    assert issue.path == "routes[1].paths[0]" and issue.line == line_of(text, "name: two")
    assert issue.message.startswith("duplicate of route 'one' (routes[0]): same hosts, methods, path ")


def test_duplicate_with_another_parameter_name_says_both_spellings():
    text = with_routes("- {name: one, service: svc, paths: ['/u/{id}']}\n"
                       "- {name: two, service: svc, paths: [/other, '/u/{uid}']}\n")
    issue = only_issue(text)
    assert issue.path == "routes[1].paths[1]"
    assert issue.message == ("duplicate of route 'one' (routes[0]): same hosts, methods, path '/u/{uid}' "
                             "(same as '/u/{id}' to the router) and priority")


@pytest.mark.parametrize("first, second", [
    ("{paths: [/api]}", "{paths: [/api], priority: 1}"),              # a deliberate override
    ("{paths: [/api]}", "{paths: [/api], methods: [GET]}"),           # any method vs GET only
    ("{paths: [/api], methods: [GET]}", "{paths: [/api], methods: [GET, HEAD]}"),
    ("{paths: [/api]}", "{paths: [/api], hosts: [a.example.com]}"),   # any host vs one
    ("{paths: [/api], hosts: [a.example.com]}", "{paths: [/api], hosts: ['*.a.example.com']}"),
    ("{paths: [/api]}", "{paths: [/api/]}"),      # /api also matches "/api" itself, /api/ does not
    ("{paths: [/api]}", "{paths: [=/api]}"),      # prefix vs exact
    ("{paths: [=/api]}", "{paths: [=/api/]}"),
    ("{paths: [/api]}", "{paths: [/API]}"),       # literal segments are case-sensitive
    ("{paths: ['/u/{id}']}", "{paths: ['/u/id']}"),   # a parameter is not a literal
    ("{paths: ['~^/api']}", "{paths: ['~^/api$']}"),
    ("{paths: ['/api']}", "{paths: ['~/api']}"),
])
def test_not_duplicate_routes(first, second):
    text = with_routes(f"- {{name: one, service: svc, {first[1:]}\n- {{name: two, service: svc, {second[1:]}\n")
    assert len(load(text).routes) == 2


def test_a_route_repeating_its_own_path_is_not_a_duplicate_route():
    assert load(with_routes("- {name: one, service: svc, paths: [/a, /a, '/u/{x}', '/u/{y}']}\n")).routes


def test_every_duplicate_path_is_reported_and_invalid_routes_take_no_part():
    text = with_routes("""\
        - {name: one, service: svc, paths: [/a, /b]}
        - {name: two, service: nope, paths: [/a]}
        - {name: three, service: svc, paths: [/b, /c, /a]}
        - {name: four, service: svc, paths: [/c]}
        """)
    found = issues(text)
    assert [(i.path, i.message.split(":")[0]) for i in found] == [
        ("routes[1].service", "unknown service 'nope'"),
        ("routes[2].paths[0]", "duplicate of route 'one' (routes[0])"),
        ("routes[2].paths[2]", "duplicate of route 'one' (routes[0])"),
        ("routes[3].paths[0]", "duplicate of route 'three' (routes[2])"),
    ]


TRIE_PROBES = ["/", "/api", "/api/", "/api/x", "/API", "/users/7", "/users/7/", "/users/7/orders", "/u/7", "/u/id",
               "/v2/x", "/x"]


@pytest.mark.parametrize("impl", ["py", "c"])
@pytest.mark.parametrize("a, b", [
    ("/users/{id}", "/users/{user_id}"), ("=/users/{id}", "=/users/{uid}"), ("/users/{a}/orders", "/users/{b}/orders"),
    ("/api/", "/api/"), ("/api", "/api/"), ("/api", "=/api"), ("=/api", "=/api/"), ("/api", "/API"),
    ("/u/{id}", "/u/id"),
    ("/", "=/"), ("~^/v[0-9]+/", "~^/v[0-9]+/"), ("~^/api", "~^/api$"),
])
def test_route_match_key_agrees_with_the_trie(impl, a, b):
    """Two patterns get the same key exactly when the route trie matches them on the same paths."""
    from litemesh.algo.trie import RouteTrieC, RouteTriePy
    trie_cls = RouteTriePy if impl == "py" else RouteTrieC
    if trie_cls is None:
        pytest.skip("compiled trie not built")

    def matched(pattern: str) -> list[bool]:
        trie = trie_cls()
        trie.add(0, pattern)
        return [trie.match("h", "GET", probe) is not None for probe in TRIE_PROBES]

    assert (route_match_key(a) == route_match_key(b)) == (matched(a) == matched(b))


def test_unknown_service_reference():
    text = with_routes("""\
        - name: a
          service: svc
        - name: b
          paths: [/b]
          service: svc
        - name: c
          service: x
        """)
    issue = only_issue(text)
    assert (issue.path, issue.message) == ("routes[2].service", "unknown service 'x'")
    assert issue.line == line_of(text, "service: x") and issue.column == 14
    assert str(issue) == f"gw.yaml:{issue.line}:14: routes[2].service: unknown service 'x'"


def test_route_referencing_a_service_that_failed_validation_is_not_double_reported():
    text = "services:\n  - name: broken\n    targets: [nope]\nroutes:\n  - name: r\n    service: broken\n"
    issue = only_issue(text)
    assert issue.path == "services[0].targets[0].address"


def test_duplicate_route_names_even_if_one_fails_conversion():
    text = with_routes("""\
        - name: r
          service: svc
        - name: r
          service: svc
          priority: x
        """)
    found = issues(text)
    assert [(i.path, i.line) for i in found] == [
        ("routes[1].name", line_of(text, "- name: r") + 2),
        ("routes[1].priority", line_of(text, "priority: x")),
    ]


@pytest.mark.parametrize("route, got", [
    ("- name: r\n", "neither"),
    ("- name: r\n  service: svc\n  respond: {status: 200}\n", "both"),
])
def test_exactly_one_of_service_or_respond(route, got):
    text = with_routes(route)
    issue = only_issue(text)
    assert issue.path == "routes[0]" and got in issue.message
    assert issue.line == line_of(text, "- name: r")


@pytest.mark.parametrize("path, message", [
    ("api", "must start with '/'"),
    ("=api", "must start with '/'"),
    ("/a/{id}x", "whole segment"),
    ("/a/x{id}", "whole segment"),
    ("/a/{id}/{id}", "duplicate parameter"),
    ("/a/{1x}", "identifier"),
    ("/a/{}", "identifier"),
    ("/a//b", "empty path segment"),
    ("/a/../b", "'..'"),
    ("/a b", "whitespace"),
    ("/a?x=1", "'?'"),
    ("~(unclosed", "invalid regex"),
    ("~", "empty regex"),
])
def test_invalid_paths(path, message):
    text = with_routes(f"""\
        - name: r
          service: svc
          paths:
            - /ok
            - "{path}"
        """)
    issue = only_issue(text)
    assert issue.path == "routes[0].paths[1]"
    assert issue.line == line_of(text, f'- "{path}"') and issue.column == 9   # the value, after "- "
    assert message in issue.message


@pytest.mark.parametrize("path", ["/", "/a/b/", "=/a/{x}/b/{y}", "~^/x/(?P<id>\\d+)$", "/{x}", "=/"])
def test_valid_paths(path):
    assert load(with_routes(f'- name: r\n  service: svc\n  paths: [\'{path}\']\n')).routes[0].paths == (path,)


def test_strip_prefix_rules():
    text = with_routes("""\
        - name: ok
          service: svc
          paths: ["/a/{x}", "=/b"]
          strip_prefix: true
        - name: regex
          service: svc
          paths: [/c, "~^/d"]
          strip_prefix: true
        - name: both
          service: svc
          strip_prefix: true
          rewrite: /x
        """)
    found = issues(text)
    assert [(i.path, i.line) for i in found] == [
        ("routes[1].paths[1]", line_of(text, '"~^/d"')),
        ("routes[2].strip_prefix", line_of(text, "rewrite: /x") - 1),
    ]


@pytest.mark.parametrize("paths, rewrite, message", [
    ('["/a/{id}", "/b"]', "/x/{id}", "not every path"),
    ('["/a/{id}"]', "/x/{other}", "not every path"),
    ('["~^/a/(?P<n>.*)"]', "/x/{m}", "not every path"),
    ('["/a"]', "x/y", "must start with '/'"),
    ('["/a"]', "/x?y=1", "query"),
    ('["/a/{id}"]', "/x/{id", "unbalanced"),
])
def test_invalid_rewrite(paths, rewrite, message):
    text = with_routes(f'- name: r\n  service: svc\n  paths: {paths}\n  rewrite: "{rewrite}"\n')
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("routes[0].rewrite", line_of(text, "rewrite:"))
    assert message in issue.message


def test_valid_rewrites():
    text = with_routes("""\
        - name: a
          service: svc
          paths: ["/a/{id}", "=/b/{id}", "~^/c/(?P<id>[0-9]+)"]
          rewrite: /items/{id}.json
        - name: b
          service: svc
          paths: [/static]
          rewrite: /
        """)
    assert [r.rewrite for r in load(text).routes] == ["/items/{id}.json", "/"]


def test_invalid_hosts_and_methods():
    text = with_routes("""\
        - name: r
          service: svc
          hosts: [good.example, "bad host", "*.ok.example", "*", "x.example:80", "-x.example"]
          methods: [get, "BAD METHOD", ""]
        """)
    found = issues(text)
    host_line, method_line = line_of(text, "hosts:"), line_of(text, "methods:")
    assert [(i.path, i.line) for i in found] == [
        ("routes[0].hosts[1]", host_line), ("routes[0].hosts[3]", host_line),
        ("routes[0].hosts[4]", host_line), ("routes[0].hosts[5]", host_line),
        ("routes[0].methods[1]", method_line), ("routes[0].methods[2]", method_line),
    ]
    assert "port" in found[2].message


def test_respond_checks():
    text = with_routes("""\
        - name: a
          respond: {status: 101}
        - name: b
          respond: {status: 600}
        - name: c
          respond:
            status: 204
            body: nope
        - name: d
          respond:
            status: 200
            content_type: text/plain
            headers:
              Content-Type: text/html
              Content-Length: "3"
              "Bad Name": x
              X-Ok: "a\\r\\nInjected: 1"
        - name: e
          respond: {status: 200}
          strip_prefix: true
        """)
    found = issues(text)
    assert [(i.path, i.line) for i in found] == [
        ("routes[0].respond.status", line_of(text, "status: 101")),
        ("routes[1].respond.status", line_of(text, "status: 600")),
        ("routes[2].respond.body", line_of(text, "body: nope")),
        ("routes[3].respond.content_type", line_of(text, "content_type: text/plain")),
        ("routes[3].respond.headers.Content-Length", line_of(text, "Content-Length")),
        ("routes[3].respond.headers['Bad Name']", line_of(text, "Bad Name")),
        ("routes[3].respond.headers.X-Ok", line_of(text, "X-Ok")),
        ("routes[4].strip_prefix", line_of(text, "strip_prefix: true")),
    ]
    assert "<= 599" in found[1].message and "CR" in found[6].message


def test_server_header_checks():
    text = BASE + 'server:\n  via: "two words"\n  request_id_header: "X Id"\n  server_header: "a\\nb"\n'
    assert [(i.path, i.line) for i in issues(text)] == [
        ("server.via", 7), ("server.request_id_header", 8), ("server.server_header", 9)]


def test_many_different_errors_collected_at_once():
    text = """\
        listeners:
          - address: nowhere
        services:
          - name: s
            targets: [127.0.0.1:1]
            timeouts: {connect: -1s}
        routes:
          - name: r1
            service: ghost
          - name: r2
            service: s
            paths: [nope]
          - name: r2
            respond: {status: 200}
        limits:
          max_headers: 0
        """
    found = issues(text)
    assert [(i.path, i.line) for i in found] == [
        ("listeners[0].address", 2),
        ("services[0].timeouts.connect", 6),
        ("routes[0].service", 9),
        ("routes[1].paths[0]", 12),
        ("routes[2].name", 13),
        ("limits.max_headers", 16),
    ]
    assert len(str(ConfigError(found)).splitlines()) == 6


# ------------------------------------------------------------------ environment overrides

def test_env_overrides_apply():
    env = {
        "LITEMESH_LIMITS__MAX_BODY_SIZE": "1MiB",
        "LITEMESH_SERVER__WORKERS": "4",
        "LITEMESH_SERVER__TRUST_FORWARDED": "10.0.0.0/8, 127.0.0.1",
        "LITEMESH_SERVER__VIA": "123",          # str field: kept verbatim, not parsed as a number
        "LITEMESH_TIMEOUTS__KEEPALIVE": "5s",
        "LITEMESH_LISTEN": "0.0.0.0:9999",
        "LITEMESH_DEBUG": "1",                  # not ours: ignored
        "LITEMESH_NO_EXTENSIONS": "1",
        "OTHER__THING": "x",
    }
    cfg = load(BASE, env)
    assert cfg.limits.max_body_size == 1 << 20
    assert cfg.server.workers == 4 and cfg.server.trust_forwarded == ("10.0.0.0/8", "127.0.0.1") \
        and cfg.server.via == "123"
    assert cfg.timeouts.keepalive == 5.0
    assert (cfg.listeners[0].host, cfg.listeners[0].port) == ("0.0.0.0", 9999)


def test_env_listen_without_listeners_section():
    cfg = load("routes: []\n", {"LITEMESH_LISTEN": "[::]:8443", "LITEMESH_SERVER__WORKERS": "auto"})
    assert (cfg.listeners[0].host, cfg.listeners[0].port) == ("::", 8443) and cfg.server.workers == "auto"


def test_env_override_beats_file_and_keeps_other_listeners():
    text = "listeners:\n  - address: 127.0.0.1:1\n  - name: b\n    address: 127.0.0.1:2\n"
    cfg = load(text, {"LITEMESH_LISTEN": "127.0.0.1:3"})
    assert [l.port for l in cfg.listeners] == [3, 2]


def test_invalid_env_overrides_are_reported_against_the_variable():
    env = {
        "LITEMESH_LIMITS__MAX_BODY_SIZE": "huge",
        "LITEMESH_SERVER__WORKERS": "0",
        "LITEMESH_LISTEN": "nowhere",
        "LITEMESH_SERVER__NOPE": "1",
        "LITEMESH_BOGUS__X": "1",
    }
    found = issues(BASE, env)
    by_file = {i.file: i for i in found}
    assert len(found) == 5 and all(i.line is None for i in found)
    assert by_file["<env LITEMESH_LIMITS__MAX_BODY_SIZE>"].path == "limits.max_body_size"
    assert by_file["<env LITEMESH_SERVER__WORKERS>"].path == "server.workers"
    assert by_file["<env LITEMESH_LISTEN>"].path == "listeners[0].address"
    assert "unknown field 'nope'" in by_file["<env LITEMESH_SERVER__NOPE>"].message
    assert "unknown section 'bogus'" in by_file["<env LITEMESH_BOGUS__X>"].message


def test_env_and_file_errors_together():
    found = issues(BASE + "limits:\n  max_headers: -1\n", {"LITEMESH_TIMEOUTS__SEND": "later"})
    assert [(i.file, i.path, i.line) for i in found] == [
        ("<env LITEMESH_TIMEOUTS__SEND>", "timeouts.send", None), ("gw.yaml", "limits.max_headers", 7)]


# ------------------------------------------------------------------ JSON Schema

def test_json_schema_shape():
    schema = json_schema()
    json.dumps(schema)   # plain JSON
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    defs = schema["$defs"]
    top = defs[schema["$ref"].rsplit("/", 1)[1]]["properties"]
    assert {"listeners", "services", "routes", "limits", "timeouts", "server"} <= set(top)
    assert top["routes"]["items"] == {"$ref": "#/$defs/RouteSpec"}
    assert "paths" in defs["RouteSpec"]["properties"] and "targets" in defs["ServiceSpec"]["properties"]
    # Durations and sizes accept numbers or strings; derived fields are hidden.
    keepalive = defs["ServerTimeouts"]["properties"]["keepalive"]
    assert {s["type"] for s in keepalive["anyOf"]} == {"number", "string"}
    pattern = next(s["pattern"] for s in defs["LimitsSpec"]["properties"]["max_body_size"]["anyOf"]
                   if s["type"] == "string")
    assert re.match(pattern, "64MiB") and not re.match(pattern, "64 apples")
    assert "port" not in defs["ListenerSpec"]["properties"] and "host" not in defs["TargetSpec"]["properties"]
    target_items = defs["ServiceSpec"]["properties"]["targets"]["items"]["anyOf"]
    assert {"type": "string", "description": "'host:port' or 'http://host[:port]' shorthand"} in target_items
    assert defs["RouteSpec"]["additionalProperties"] is False


def test_json_schema_validates_example_config():
    jsonschema = pytest.importorskip("jsonschema")
    import yaml
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors(yaml.safe_load(EXAMPLE_CONFIG_PATH.read_text())))
    assert not list(validator.iter_errors(yaml.safe_load(FULL)))
    assert list(validator.iter_errors({"routes": [{"name": "r", "bogus": 1}]}))


# ------------------------------------------------------------------ edge settings (issue 7)

def test_trust_forwarded_lists_networks():
    cfg = load("server:\n  trust_forwarded: [10.0.0.0/8, 192.168.1.7, '2001:db8::/32']\n")
    assert cfg.server.trust_forwarded == ("10.0.0.0/8", "192.168.1.7", "2001:db8::/32")
    assert load("server:\n  trust_forwarded: false\n").server.trust_forwarded == ()  # the old bool spelling


def test_trust_forwarded_true_is_refused_with_the_new_form():
    errors = issues("server:\n  trust_forwarded: true\n")
    assert len(errors) == 1 and errors[0].path == "server.trust_forwarded" and errors[0].line == 2
    assert "10.0.0.0/8" in errors[0].message


def test_trust_forwarded_entries_must_be_networks():
    errors = issues("server:\n  trust_forwarded: [10.0.0.0/8, not-a-net, 10.0.0.0/33]\n")
    assert [(e.path, e.line) for e in errors] == [("server.trust_forwarded[1]", 2), ("server.trust_forwarded[2]", 2)]


def test_route_upgrades_default_and_validation():
    cfg = load("services: [{name: s, targets: ['127.0.0.1:1']}]\n"
               "routes: [{name: a, paths: ['/a'], service: s}, {name: b, paths: ['/b'], service: s, upgrades: []}]\n")
    assert [r.upgrades for r in cfg.routes] == [("websocket",), ()]
    errors = issues("services: [{name: s, targets: ['127.0.0.1:1']}]\n"
                    "routes: [{name: a, paths: ['/a'], service: s, upgrades: ['web socket']}]\n")
    assert [e.path for e in errors] == ["routes[0].upgrades[0]"]


# ------------------------------------------------------------------ YAML edge cases (issue 8, points 8-10)

# 7 levels of 8 aliases: 278 bytes that stand for 2.4 million nodes (issue 8, point 9)
ALIAS_BOMB = "a0: &a0 [x,x,x,x,x,x,x,x]\n" + "".join(
    f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 8)}]\n" for i in range(1, 7))


@pytest.mark.parametrize("value", ["!!int x", "!!int ''", "!!float x", "!!bool x", "!!timestamp x"])
def test_tagged_values_yaml_cannot_read_are_config_errors(value):
    issue = only_issue(BASE + f"server:\n  workers: {value}\n")
    assert (issue.line, issue.column) == (7, 12)
    assert "YAML" in issue.message and f"invalid {value.split()[0]} value" in issue.message


def test_tagged_value_error_on_the_slow_path_is_located_too():
    # a merge key takes PyYAML's own constructor (not the plain fast path)
    text = BASE + "base: &b {via: x}\nserver:\n  <<: *b\n  workers: !!int x\n"
    found = issues(text)
    assert [(i.line, i.column) for i in found] == [(9, 12)] and "invalid !!int value 'x'" in found[0].message


@pytest.mark.parametrize("value", ["!!int x", "!!timestamp x", "!!bool maybe"])
def test_tagged_env_value_yaml_cannot_read_is_reported_against_the_variable(value):
    issue = only_issue(BASE, {"LITEMESH_SERVER__WORKERS": value})
    assert (issue.file, issue.path) == ("<env LITEMESH_SERVER__WORKERS>", "server.workers")


@pytest.mark.parametrize("text, line, column", [
    ("a: \x01\n", 1, 4),
    ("é: b\nc: \x01\n", 2, 4),         # libyaml counts bytes (the é is two): reported in characters
    ("a: b\r\nc: d\r\nef: \x7f\n", 3, 5),
    ("a: 'x\x00y'\n", 1, 6),
    ("a: \ufffe\n", 1, 4),
    ("a: \ud800\n", 1, 4),             # a lone surrogate: not even encodable for libyaml
])
def test_characters_yaml_refuses_have_a_line_and_column(text, line, column):
    issue = only_issue(text)
    assert (issue.file, issue.line, issue.column) == ("gw.yaml", line, column), issue
    assert "unacceptable character" in issue.message and "<unicode string>" not in issue.message


def test_alias_bomb_is_refused_quickly_with_a_line():
    started = time.monotonic()
    issue = only_issue(ALIAS_BOMB)
    assert time.monotonic() - started < 5   # ~1 ms; it took ~10 s to expand
    assert "aliases expand" in issue.message and "alias bomb" in issue.message
    assert (issue.path, issue.line) == ("a6[0]", 7)


def test_alias_bomb_through_merge_keys_is_refused():
    text = "a0: &a0 {k0: x, k1: x, k2: x, k3: x, k4: x, k5: x, k6: x, k7: x}\n" + "".join(
        f"a{i}: &a{i} {{<<: [{','.join([f'*a{i - 1}'] * 8)}]}}\n" for i in range(1, 8))
    issue = only_issue(text)
    assert "aliases expand" in issue.message and issue.line == 8


def test_aliases_within_bounds_load_and_share_one_walk():
    routes = "".join(f"  - {{name: r{i}, paths: ['/r{i}'], respond: *ok}}\n" for i in range(3000))
    text = BASE + "ok: &ok {status: 200, headers: {X-A: a, X-B: b}, body: fine}\nroutes:\n" + routes
    found = issues(text)   # the anchor's own key is unknown; the 3000 aliases are fine
    assert [(i.path, i.line) for i in found] == [("", 6)]
    cfg = load(BASE + "routes:\n  - {name: r0, paths: [/r0], respond: &ok {status: 200, body: fine}}\n"
               + routes.replace("r0,", "x0,", 1).replace("'/r0'", "'/x0'", 1))
    assert len(cfg.routes) == 3001 and {r.respond.body for r in cfg.routes} == {"fine"}


def test_errors_under_an_alias_point_into_the_anchored_node():
    text = """\
        services:
          - name: a
            targets: [127.0.0.1:1]
            timeouts: &t
              connect: 1s
              read: -2s
          - name: b
            targets: [127.0.0.1:2]
            timeouts: *t
          - name: c
            targets: [127.0.0.1:3]
            pool: &p {max_idle: 1, bogus: 2}
          - name: d
            targets: [127.0.0.1:4]
            pool: *p
        """
    found = issues(text)
    assert [(i.path, i.line) for i in found] == [
        ("services[0].timeouts.read", 6), ("services[1].timeouts.read", 6),
        ("services[2].pool", 12), ("services[3].pool", 12)]


@pytest.mark.parametrize("text", ["a: " + "[" * 100 + "]" * 100, "a: !!seq " + "[" * 900 + "]" * 900,
                                  "".join(" " * i + "k:\n" for i in range(200)) + " " * 200 + "x\n"])
def test_deep_nesting_is_a_config_error(text):
    issue = only_issue(text)
    assert "nested more than" in issue.message and issue.line is not None


def test_recursive_aliases_still_load():
    found = issues(BASE + "x: &x [1, *x]\ny: &y {a: *y}\n")
    assert [i.message for i in found] == ["unknown field 'x'", "unknown field 'y'"]


# ------------------------------------------------------------------ request id header (issue 8, point 6)

@pytest.mark.parametrize("name", [
    "Transfer-Encoding", "content-length", "Host", "Connection", "Upgrade", "TE", "Trailer", "Keep-Alive",
    "Proxy-Connection", "Proxy-Authorization", "Proxy-Anything", "Expect", "X-Forwarded-For", "X-Forwarded-Port",
    "Forwarded", "X-Real-IP", "Via", ":path"])
def test_request_id_header_must_not_be_a_header_with_a_meaning(name):
    text = BASE + f"server:\n  request_id_header: '{name}'\n"
    issue = only_issue(text)
    assert (issue.path, issue.line, issue.column) == ("server.request_id_header", 7, 22)


def test_request_id_header_refuses_every_name_the_request_reader_files_by_meaning():
    from litemesh.http.request import _BASE_SPECIAL
    for name in _BASE_SPECIAL:
        issue = only_issue(BASE, {"LITEMESH_SERVER__REQUEST_ID_HEADER": name.decode().upper()})
        assert issue.file == "<env LITEMESH_SERVER__REQUEST_ID_HEADER>", name


@pytest.mark.parametrize("name", ["X-Request-ID", "X-Correlation-ID", "Request-Id", "X-Trace", ""])
def test_request_id_header_ordinary_names(name):
    assert load(BASE + f"server:\n  request_id_header: '{name}'\n").server.request_id_header == name


# ------------------------------------------------------------------ what check accepts compiles (issue 8, point 11)

@pytest.mark.parametrize("written, routed", [
    ("/é", "/%C3%A9"), ("=/café/{id}", "=/caf%C3%A9/{id}"), ("/caf%c3%a9", "/caf%C3%A9"),
    ("/%7Euser/%41", "/~user/A"), ("/a%2fb", "/a%2Fb"), ("/日本", "/%E6%97%A5%E6%9C%AC"),
    ("~^/é$", "~^/é$"),   # regexes are left as written (they see the normalized path)
])
def test_paths_take_the_spelling_requests_are_routed_by(written, routed):
    assert route_path_form(written) == routed
    cfg = load(with_routes(f"- name: r\n  respond: {{status: 200}}\n  paths: ['{written}']\n"))
    assert cfg.routes[0].paths == (routed,)


def test_non_ascii_path_matches_the_normalized_request_path():
    from litemesh.http.target import normalize_path
    for request in (b"/%c3%a9/42", b"/%C3%A9/42"):
        routed = normalize_path(request).decode("ascii")
        assert routed == "/%C3%A9/42"
        assert route_path_form("/é/42") == routed


def test_two_spellings_of_one_path_are_duplicates():
    text = with_routes("""\
        - {name: a, paths: [/é], respond: {status: 200}}
        - {name: b, paths: ['/%c3%a9'], respond: {status: 200}}
        """)
    issue = only_issue(text)
    assert issue.path == "routes[1].paths[0]" and "duplicate of route 'a'" in issue.message


@pytest.mark.parametrize("path, message", [
    ("/%zz", "invalid percent-encoding '%zz'"), ("/a%", "invalid percent-encoding '%'"),
    ("/a%4", "invalid percent-encoding '%4'"), ("/%00", "NUL"), ("/a/%2E%2E/b", "'..'"), ("/%2e", "'.'"),
    ("/a|b", "'|': percent-encode it as %7C"), ('/a"b', "%22"), ("/a\\b", "%5C"), ("/a^b", "%5E"),
    ("/a`b", "%60"), ("/a<b>", "%3C"),
    ("/" + "a/" * 128 + "b", "more than 128 segments"), ("/" + "a" * 8192, "longer than 8192 characters"),
    ("~" + "a" * 8192, "longer than 8192 characters"),
])
def test_paths_the_router_cannot_compile_are_refused(path, message):
    issue = only_issue(with_routes(f"- name: r\n  respond: {{status: 200}}\n  paths: {json.dumps([path])}\n"))
    assert issue.path == "routes[0].paths[0]" and message in issue.message, issue


def test_the_longest_and_deepest_paths_the_router_takes_are_accepted():
    paths = ["/" + "a/" * 127 + "b", "/" + "a/" * 128, "/" + "a" * 8191, "~" + "a" * 8191]
    cfg = load(with_routes(f"- name: r\n  respond: {{status: 200}}\n  paths: {json.dumps(paths)}\n"))
    assert cfg.routes[0].paths == tuple(paths)


@pytest.mark.parametrize("field, value, message", [
    ("headers: {X-A: '€'}", "€", "Latin-1"), ("content_type: '€'", "€", "Latin-1"),
    ("headers: {X-A: \"a\\x01b\"}", "", "control characters"), ("headers: {X-A: \"a\\x7fb\"}", "", "control"),
    ("content_type: \"text/plain\\x1b\"", "", "control"),
])
def test_respond_header_values_must_be_latin1_without_controls(field, value, message):
    issue = only_issue(with_routes(f"- name: r\n  respond:\n    status: 200\n    {field}\n"))
    assert message in issue.message and issue.line == 10
    assert value in issue.message


def test_latin1_and_tabs_in_header_values_are_fine():
    cfg = load(with_routes("- name: r\n  respond: {status: 200, headers: {X-A: \"caf\\xe9\\tok\"}, "
                           "content_type: 'text/plain; x=\u00ff'}\n"))
    assert cfg.routes[0].respond.headers == {"X-A": "café\tok"}


@pytest.mark.parametrize("value", ["é.example", "a b", "a\\x01", "a/b", "a@b", "[::1", "a:99999", "a:"])
def test_host_header_must_be_a_host_value(value):
    text = f'services:\n  - name: s\n    targets: [127.0.0.1:1]\n    host_header: "{value}"\n'
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("services[0].host_header", 4) and "Host" in issue.message


@pytest.mark.parametrize("value", ["api.internal", "API.internal:8080", "10.0.0.1", "[::1]:80", "xn--caf-dma.example"])
def test_host_header_valid(value):
    text = f'services:\n  - name: s\n    targets: [127.0.0.1:1]\n    host_header: "{value}"\n'
    assert load(text).services[0].host_header == value


@pytest.mark.parametrize("priority, ok", [(-(1 << 63), True), ((1 << 63) - 1, True), (1 << 63, False),
                                          (-(1 << 63) - 1, False), (10 ** 30, False)])
def test_priority_is_a_signed_64_bit_integer(priority, ok):
    text = with_routes(f"- name: r\n  respond: {{status: 200}}\n  priority: {priority}\n")
    if ok:
        assert load(text).routes[0].priority == priority
    else:
        assert only_issue(text).path == "routes[0].priority"


@pytest.mark.parametrize("address, ok", [("[fe80::1%eth0]:80", True), ("[fe80::1%2]:80", True),
                                         ("[fe80::1%é]:80", False), ("[fe80::1%a b]:80", False),
                                         ("[fe80::1%a\u0085]:80", False)])
def test_ipv6_zone_is_an_interface_name(address, ok):
    if ok:
        assert parse_target(address)[0].startswith("fe80::1%")
    else:
        with pytest.raises(ValueError, match="zone"):
            parse_target(address)
