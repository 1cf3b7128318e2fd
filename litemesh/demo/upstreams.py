"""Tiny JSON services behind the demo config: ``users`` (two instances) and ``orders``.

They exist so ``make run`` shows real proxying on a fresh machine: each answer echoes the method,
path and proxy headers it received and says which instance served it, so path rewrites and round
robin are visible with a few curls.
"""
from __future__ import annotations

import asyncio
from multiprocessing.connection import Connection

import httptools
import orjson

class _DemoHandler(asyncio.Protocol):
    def __init__(self, instance: str) -> None:
        self.instance = instance
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._send(400, {"error": "bad request"}, keep_alive=False)

    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []
        self.seen: dict[str, str] = {}

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"x-request-id", b"x-forwarded-for", b"via", b"host"):
            self.seen[name.decode().lower()] = value.decode("latin-1")

    def on_message_complete(self) -> None:
        url = httptools.parse_url(self.url)
        payload: dict = {
            "served_by": self.instance,
            "method": self.parser.get_method().decode(),
            "path": url.path.decode("latin-1"),
            "query": (url.query or b"").decode("latin-1"),
            "headers": self.seen,
        }
        if self.body:
            try:
                payload["json"] = orjson.loads(b"".join(self.body))
            except orjson.JSONDecodeError:
                payload["body_bytes"] = sum(map(len, self.body))
        self._send(200, payload, keep_alive=self.parser.should_keep_alive())

    def _send(self, status: int, payload: dict, keep_alive: bool) -> None:
        body = orjson.dumps(payload)
        head = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n" % (
            status, b"OK" if status < 300 else b"Error", len(body), b"" if keep_alive else b"Connection: close\r\n")
        self.transport.write(head + body)
        if not keep_alive:
            self.transport.close()


async def serve_demo(ports: dict[str, int]) -> list[asyncio.base_events.Server]:
    """Start one demo instance per ``{"users-1": 9101, ...}`` entry (name prefix picks the service)."""
    loop = asyncio.get_running_loop()
    servers = []
    for instance, port in ports.items():
        servers.append(await loop.create_server(lambda i=instance: _DemoHandler(i), "127.0.0.1", port))
    return servers


DEMO_PORTS = {"users-1": 9101, "users-2": 9102, "orders-1": 9103}


def run_demo_upstreams(ports: dict[str, int] = DEMO_PORTS, report: Connection | None = None) -> None:
    """Blocking: serve the demo upstreams until killed (run in a child process).  Port 0 picks a
    free port; ``report`` receives ``{"ports": {instance: port}}`` once every instance listens, or
    ``{"error": message}`` if one cannot."""
    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        servers = loop.run_until_complete(serve_demo(ports))
    except OSError as error:
        if report is None:
            raise
        report.send({"error": f"demo upstreams cannot listen: {error}"})
        return
    if report is not None:
        report.send({"ports": {name: server.sockets[0].getsockname()[1] for name, server in zip(ports, servers)}})
        report.close()
    loop.run_forever()


