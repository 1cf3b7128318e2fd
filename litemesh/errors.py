"""One error vocabulary for the whole request path.

A :class:`GatewayError` says what went wrong (``kind``), whose fault it is (``source``), whether
another attempt could succeed (``retryable``) and the status to answer with.  Exactly one function,
:func:`litemesh.http.writer.error_response`, turns it into bytes on the wire, so every error answer
has the same JSON shape: ``{"error": ..., "status": ..., "request_id": ...}``.
"""
from __future__ import annotations

import enum


class Source(enum.Enum):
    DOWNSTREAM = "downstream"  # the client misbehaved (4xx)
    UPSTREAM = "upstream"  # the upstream failed or misbehaved (502/504)
    INTERNAL = "internal"  # our bug or our limits (500)


class GatewayError(Exception):
    """An error with enough context to answer the client and to decide on a retry."""

    def __init__(self, status: int, kind: str, message: str, *, source: Source, retryable: bool = False,
                 headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.source = source
        self.retryable = retryable
        self.headers = headers  # extra response fields the status requires (Allow for 405, ...)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.kind!r}, {self.message!r})"


class ClientError(GatewayError):
    """The request is malformed or over a limit: answer and close the connection."""

    def __init__(self, status: int, kind: str, message: str, *,
                 headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        super().__init__(status, kind, message, source=Source.DOWNSTREAM, headers=headers)


class UpstreamError(GatewayError):
    """The upstream could not be reached or answered badly.

    ``logged``: whoever raised it has logged it already, at a rate of its own (an unresolvable host
    is logged once per lookup, not once per request), so the request path must not log it again.
    """

    def __init__(self, status: int, kind: str, message: str, *, retryable: bool = False,
                 logged: bool = False) -> None:
        super().__init__(status, kind, message, source=Source.UPSTREAM, retryable=retryable)
        self.logged = logged


def bad_request(message: str) -> ClientError:
    return ClientError(400, "bad_request", message)


def internal_error(message: str = "internal error") -> GatewayError:
    return GatewayError(500, "internal", message, source=Source.INTERNAL)
