#!/usr/bin/env python3
"""Tiny HTTP/1.1 keep-alive origin for LiteMesh benchmarks and demos (asyncio + httptools).

Answers:
  GET  /            the fixed 100-byte body (same bytes as the nginx backend of bench/run.py)
  GET  /10k         a 10 KiB body
  GET  /api/...     a small JSON document naming the path (for routes with path parameters)
  POST /api/...     a small JSON document with the number of request-body bytes received
  anything else     404

Keep-alive on every connection, pipelined requests answered in order, Content-Length and
chunked request bodies (httptools does the parsing). uvloop is used when installed.

usage: origin.py [--host 127.0.0.1] [--port 8080] [--workers 1]
                 [--small-file F] [--file-10k F]   # serve these bytes instead of the defaults
"""
import argparse
import asyncio
import json
import os
import signal
import socket
import sys

SMALL_BODY = (b"litemesh bench origin: fixed 100-byte body, keep-alive, 127.0.0.1 only."
              .ljust(100, b"."))
assert len(SMALL_BODY) == 100


def default_10k_body():
    """10,240 printable bytes: deterministic lines of 64 characters + newline."""
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
    out = bytearray()
    while len(out) < 10240:
        out += line + b"\n"
    return bytes(out[:10240])


def response(status, body, ctype=b"text/plain", keep_alive=True, head=False):
    reason = {200: b"OK", 404: b"Not Found", 400: b"Bad Request"}.get(status, b"OK")
    hdr = (b"HTTP/1.1 %d %s\r\nServer: litemesh-bench-origin\r\nContent-Type: %s\r\n"
           b"Content-Length: %d\r\n" % (status, reason, ctype, len(body)))
    if not keep_alive:
        hdr += b"Connection: close\r\n"
    return hdr + b"\r\n" + (b"" if head else body)


class Responses:
    """Pre-built answers for the two fixed paths (the benchmark hot path)."""

    def __init__(self, small, ten_k):
        self.small, self.ten_k = small, ten_k
        self.fixed = {b"/": response(200, small), b"/10k": response(200, ten_k)}

    def build(self, method, path, body_len, keep_alive):
        head = method == b"HEAD"
        if keep_alive and method == b"GET" and path in self.fixed:
            return self.fixed[path]
        if path == b"/":
            return response(200, self.small, keep_alive=keep_alive, head=head)
        if path == b"/10k":
            return response(200, self.ten_k, keep_alive=keep_alive, head=head)
        if path.startswith(b"/api/"):
            doc = {"path": path.decode("latin-1"), "method": method.decode("latin-1")}
            if method in (b"POST", b"PUT", b"PATCH"):
                doc["received_bytes"] = body_len
            return response(200, json.dumps(doc).encode(), b"application/json",
                            keep_alive, head)
        return response(404, b"not found\n", keep_alive=keep_alive, head=head)


class OriginProtocol(asyncio.Protocol):
    def __init__(self, responses, httptools):
        self.responses = responses
        self.parser = httptools.HttpRequestParser(self)
        self.error_cls = httptools.HttpParserError
        self.transport = None
        self.url = b""
        self.body_len = 0

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def data_received(self, data):
        try:
            self.parser.feed_data(data)
        except self.error_cls:
            self.transport.write(response(400, b"bad request\n", keep_alive=False))
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self):
        self.url, self.body_len = b"", 0

    def on_url(self, url):
        self.url += url

    def on_body(self, body):
        self.body_len += len(body)

    def on_message_complete(self):
        path = self.url.split(b"?", 1)[0]
        keep = self.parser.should_keep_alive()
        method = self.parser.get_method()
        self.transport.write(self.responses.build(method, path, self.body_len, keep))
        if not keep:
            self.transport.close()


def listen_socket(host, port, reuse_port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def serve(sock, responses):
    import httptools
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass

    async def main():
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        server = await loop.create_server(lambda: OriginProtocol(responses, httptools),
                                          sock=sock, backlog=4096)
        await stop
        server.close()

    asyncio.run(main())


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--workers", type=int, default=1, help="processes (SO_REUSEPORT)")
    ap.add_argument("--small-file", help="bytes served at / (default: built-in 100 bytes)")
    ap.add_argument("--file-10k", help="bytes served at /10k (default: built-in 10 KiB)")
    return ap.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    small = open(a.small_file, "rb").read() if a.small_file else SMALL_BODY
    ten_k = open(a.file_10k, "rb").read() if a.file_10k else default_10k_body()
    responses = Responses(small, ten_k)
    multi = a.workers > 1
    children = []
    for _ in range(a.workers - 1):
        pid = os.fork()
        if pid == 0:
            serve(listen_socket(a.host, a.port, True), responses)
            os._exit(0)
        children.append(pid)
    print(f"origin listening on http://{a.host}:{a.port} ({a.workers} worker(s))",
          file=sys.stderr, flush=True)
    try:
        serve(listen_socket(a.host, a.port, multi), responses)
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except OSError:
                pass


if __name__ == "__main__":
    main()
