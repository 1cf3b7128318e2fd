"""Frozen msgspec Structs describing a validated gateway configuration.

Durations are float seconds and sizes int bytes. In YAML they may also be written as strings
("30s", "1MiB"); the loader converts those before msgspec validates, guided by the `UNIT_KEY`
marker carried in each field's `Meta.extra`. Fields marked `derived` (host/port) are filled by
the loader from `address` and may not be written by users.
"""
from __future__ import annotations

import types
from typing import Annotated, Literal, Mapping

import msgspec
from msgspec import Meta

__all__ = [
    "GatewayConfig", "ListenerSpec", "ServiceSpec", "TargetSpec", "RouteSpec", "RespondSpec",
    "UpstreamTimeouts", "PoolSpec", "LimitsSpec", "ServerTimeouts", "ServerSpec", "UNIT_KEY",
]

# Key in Meta.extra: "duration" / "size" mark human-unit fields, "derived" marks loader-filled ones.
UNIT_KEY = "litemesh"

KiB = 1024
MiB = 1024 * KiB


def _duration(description: str, *, allow_zero: bool = False) -> Meta:
    bound = {"ge": 0} if allow_zero else {"gt": 0}
    return Meta(**bound, description=description, extra={UNIT_KEY: "duration"})


def _size(description: str, *, allow_zero: bool = False) -> Meta:
    return Meta(ge=0 if allow_zero else 1, description=description, extra={UNIT_KEY: "size"})


_DERIVED = Meta(description="Filled by the loader from 'address'; do not set.", extra={UNIT_KEY: "derived"})
Name = Annotated[str, Meta(min_length=1)]


class _Spec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Common options: immutable, keyword-only, unknown keys rejected."""


class ListenerSpec(_Spec, kw_only=True):
    """A socket the gateway accepts client connections on."""

    name: Name = "main"
    address: Annotated[str, Meta(description="'host:port' to bind; port 0 picks a free port.")]
    host: Annotated[str, _DERIVED] = ""
    port: Annotated[int, _DERIVED] = 0
    backlog: Annotated[int, Meta(ge=1, description="listen() backlog.")] = 2048


class LimitsSpec(_Spec, kw_only=True):
    """Per-request size limits enforced while parsing client requests."""

    max_request_line: Annotated[int, _size("Longest request line (method, target, version).")] = 8 * KiB
    max_header_size: Annotated[int, _size("Total bytes of all header lines.")] = 32 * KiB
    max_headers: Annotated[int, Meta(ge=1, description="Most header fields per request.")] = 100
    max_body_size: Annotated[int, _size("Largest request body; 0 = unlimited.", allow_zero=True)] = 64 * MiB


class ServerTimeouts(_Spec, kw_only=True):
    """Client-side timeouts."""

    client_header: Annotated[float, _duration("First byte to end of the request head.")] = 10.0
    client_body: Annotated[float, _duration("Longest idle gap while reading a request body.")] = 60.0
    keepalive: Annotated[float, _duration("Idle keep-alive connection lifetime.")] = 75.0
    send: Annotated[float, _duration("Longest wait for the client to accept response bytes.")] = 60.0
    drain: Annotated[float, _duration("Grace period for in-flight requests at shutdown.",
                                      allow_zero=True)] = 30.0


class ServerSpec(_Spec, kw_only=True):
    """Process-wide settings."""

    workers: Annotated[int, Meta(ge=1)] | Literal["auto"] = 1
    via: Annotated[str, Meta(description="Pseudonym added to Via; '' disables the Via header.")] = "litemesh"
    request_id_header: Annotated[str, Meta(description="Request-ID header name; '' disables it.")] = "X-Request-ID"
    trust_forwarded: Annotated[tuple[str, ...], Meta(
        description="Networks (CIDRs or addresses) of proxies in front of the gateway whose X-Forwarded-*, "
                    "Forwarded and X-Real-IP are believed; [] = none.")] = ()
    emit_forwarded: Annotated[bool, Meta(
        description="Also send an RFC 7239 Forwarded header upstream.")] = False
    merge_slashes: Annotated[bool, Meta(
        description="Merge runs of '/' in request paths before routing and forwarding.")] = True
    allow_trace: Annotated[bool, Meta(
        description="Forward TRACE requests instead of answering 405.")] = False
    server_header: Annotated[str, Meta(description="Server header on gateway responses; '' = none.")] = ""
    cpu_affinity: Annotated[bool, Meta(description="Pin worker i to the i-th usable CPU.")] = False
    pid_file: Annotated[str, Meta(
        description="Master pid file for `litemesh reload/stop`; '' = one per config file in <tmpdir>.")] = ""
    log_file: Annotated[str, Meta(description="Error log file (reopened on SIGUSR1); '' = stderr.")] = ""
    user: Annotated[str, Meta(description="Start as root, bind the listeners, then serve as this user "
                                          "(the master stays root); '' = no switch.")] = ""
    group: Annotated[str, Meta(description="Group to serve as with 'user'; '' = the user's primary group.")] = ""


class AdminSpec(_Spec, kw_only=True):
    """The master's admin listener: status, readiness, metrics, reload."""

    enabled: bool = True
    address: Annotated[str, Meta(description="'host:port' to bind; keep it on loopback or a private network.")] \
        = "127.0.0.1:9901"
    host: Annotated[str, _DERIVED] = ""
    port: Annotated[int, _DERIVED] = 0
    token: Annotated[str, Meta(min_length=16, description="Bearer token required by every endpoint but /ready.")] \
        | None = None


class UpstreamTimeouts(_Spec, kw_only=True):
    """Timeouts towards a service's targets."""

    connect: Annotated[float, _duration("TCP connect to a target.")] = 5.0
    read: Annotated[float, _duration("Wait for the response head, and between body reads.")] = 60.0
    write: Annotated[float, _duration("Longest stall while sending the request upstream.")] = 60.0


class PoolSpec(_Spec, kw_only=True):
    """Upstream keep-alive connection pool, per target and per worker."""

    max_idle: Annotated[int, Meta(ge=0, description="Idle connections kept per target per worker.")] = 1024
    idle_timeout: Annotated[float, _duration("Close idle pooled connections after this long.")] = 60.0
    max_requests: Annotated[int, Meta(ge=0, description="Requests per connection; 0 = unlimited.")] = 0


class TargetSpec(_Spec, kw_only=True):
    """One upstream server; YAML also accepts the bare string ('host:port' or 'http://host[:port]')."""

    address: Annotated[str, Meta(
        description="'host:port' or 'http://host[:port]' (port 80) of the upstream server.")]
    host: Annotated[str, _DERIVED] = ""
    port: Annotated[int, _DERIVED] = 0
    weight: Annotated[int, Meta(ge=1, description="Relative share of requests.")] = 1


class ServiceSpec(_Spec, kw_only=True):
    """A named group of upstream targets that routes forward to."""

    name: Name
    targets: Annotated[tuple[TargetSpec, ...], Meta(min_length=1)]
    balancer: Literal["round_robin"] = "round_robin"
    timeouts: UpstreamTimeouts = msgspec.field(default_factory=UpstreamTimeouts)
    pool: PoolSpec = msgspec.field(default_factory=PoolSpec)
    host_header: Annotated[str, Meta(min_length=1)] | None = None
    resolve_interval: Annotated[float, _duration(
        "How long a target host name's addresses (or a failed lookup) are used before it is resolved again.")] = 30.0


class RespondSpec(_Spec, kw_only=True):
    """A fixed response generated by the gateway itself."""

    status: Annotated[int, Meta(ge=100, le=599)]
    headers: dict[str, str] = {}
    body: str = ""
    content_type: str | None = None


class RouteSpec(_Spec, kw_only=True):
    """Matches requests by host, method and path; forwards to a service or responds directly."""

    name: Name
    hosts: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    paths: Annotated[tuple[str, ...], Meta(min_length=1)] = ("/",)
    priority: Annotated[int, Meta(ge=-(1 << 63), le=(1 << 63) - 1, description=(
        "Higher wins among the routes a request matches; a signed 64-bit integer."))] = 0
    service: str | None = None
    respond: RespondSpec | None = None
    strip_prefix: bool = False
    rewrite: str | None = None
    preserve_host: bool = False
    upgrades: Annotated[tuple[str, ...], Meta(
        description="Protocols a client may switch to through this route (Upgrade); [] = none.")] = ("websocket",)


_DEFAULT_LISTENER = ListenerSpec(address="127.0.0.1:8080", host="127.0.0.1", port=8080)


class GatewayConfig(_Spec, kw_only=True):
    """The whole gateway.yaml."""

    listeners: Annotated[tuple[ListenerSpec, ...], Meta(min_length=1)] = (_DEFAULT_LISTENER,)
    services: tuple[ServiceSpec, ...] = ()
    routes: tuple[RouteSpec, ...] = ()
    limits: LimitsSpec = msgspec.field(default_factory=LimitsSpec)
    timeouts: ServerTimeouts = msgspec.field(default_factory=ServerTimeouts)
    server: ServerSpec = msgspec.field(default_factory=ServerSpec)
    admin: AdminSpec = msgspec.field(default_factory=AdminSpec)

    @property
    def service_by_name(self) -> Mapping[str, ServiceSpec]:
        """Read-only name -> ServiceSpec view (names are unique in a validated config)."""
        return types.MappingProxyType({service.name: service for service in self.services})
