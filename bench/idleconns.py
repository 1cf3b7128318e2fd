#!/usr/bin/env python3
"""Open N idle HTTP/1.1 keep-alive connections to a server (asyncio, stdlib only).

Each connection sends one `GET PATH` and reads the complete answer (Content-Length or
chunked), then stays open and idle. When every connection has answered (or --open-timeout
expired), one line `READY {json}` is printed to stdout; the connections are then held for
--hold seconds (the caller samples the server's memory meanwhile), closed, and a final line
`DONE {json}` is printed. Bounded in count (--count, and by RLIMIT_NOFILE, which is raised as
far as allowed) and in time (--open-timeout + --hold + a few seconds).

usage: idleconns.py --port 8080 [--host 127.0.0.1] [--count 10000] [--rate 2000]
                    [--concurrency 256] [--path /] [--hold 5] [--open-timeout 60]
"""
import argparse
import asyncio
import json
import resource
import sys
import time

FD_RESERVE = 64  # descriptors kept free for the interpreter, stdio, the event loop


def raise_nofile():
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the resulting soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


class Conn(asyncio.Protocol):
    """One client connection: send one request, parse one response, then idle."""

    def __init__(self, request, answered):
        self.request = request
        self.answered = answered   # future set to the status code (or an exception)
        self.transport = None
        self.buf = b""
        self.status = 0
        self.need = None            # remaining body bytes (Content-Length) or None
        self.chunked = False
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data):
        if self.answered.done():
            return  # unexpected extra bytes on an idle connection: ignore
        self.buf += data
        try:
            if self._complete():
                self.answered.set_result(self.status)
        except ValueError as e:
            self.answered.set_exception(e)

    def connection_lost(self, exc):
        self.closed = True
        if not self.answered.done():
            self.answered.set_exception(ConnectionError("closed before the answer"))

    def _complete(self):
        if not self.status:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4:]
            lines = head.split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise ValueError("bad status line: %r" % lines[0][:80])
            self.status = int(parts[1])
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    self.need = int(value.strip())
                elif name == "transfer-encoding" and "chunked" in value.lower():
                    self.chunked = True
            if self.need is None and not self.chunked:
                self.need = 0 if self.status in (204, 304) else None
                if self.need is None:
                    raise ValueError("response without length (not keep-alive)")
        if self.chunked:
            return self._chunked_done()
        return len(self.buf) >= self.need

    def _chunked_done(self):
        buf, pos = self.buf, 0
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return False
            size = int(buf[pos:eol].split(b";")[0], 16)
            if size == 0:
                return buf.find(b"\r\n\r\n", eol) >= 0
            pos = eol + 2 + size + 2
            if pos > len(buf):
                return False


async def open_all(a, count, stats):
    loop = asyncio.get_running_loop()
    request = (f"GET {a.path} HTTP/1.1\r\nHost: {a.host}:{a.port}\r\n"
               f"User-Agent: litemesh-idleconns\r\n\r\n").encode()
    sem = asyncio.Semaphore(a.concurrency)
    conns, errors = [], {}
    interval = 1.0 / a.rate if a.rate > 0 else 0.0

    async def one():
        async with sem:
            fut = loop.create_future()
            try:
                _, proto = await asyncio.wait_for(
                    loop.create_connection(lambda: Conn(request, fut), a.host, a.port),
                    a.connect_timeout)
            except (OSError, asyncio.TimeoutError) as e:
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                return
            conns.append(proto)
            stats["opened"] += 1
            try:
                status = await asyncio.wait_for(fut, a.connect_timeout)
            except (OSError, ValueError, asyncio.TimeoutError) as e:
                key = type(e).__name__
                errors[key] = errors.get(key, 0) + 1
                return
            stats["answered"] += 1
            if status == 200:
                stats["ok"] += 1
            else:
                stats["non_200"] += 1

    tasks = []
    t0 = time.monotonic()
    for i in range(count):
        tasks.append(asyncio.ensure_future(one()))
        if interval:
            delay = t0 + (i + 1) * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if time.monotonic() - t0 > a.open_timeout:
            break
    remaining = max(0.1, a.open_timeout - (time.monotonic() - t0))
    done, pending = await asyncio.wait(tasks, timeout=remaining) if tasks else (set(), set())
    for t in pending:
        t.cancel()
    stats["open_secs"] = round(time.monotonic() - t0, 3)
    stats["errors"] = errors
    stats["timed_out"] = len(pending)
    return conns


def emit(tag, obj):
    sys.stdout.write(f"{tag} {json.dumps(obj, sort_keys=True)}\n")
    sys.stdout.flush()


async def run(a):
    limit = raise_nofile()
    count = min(a.count, max(0, limit - FD_RESERVE))
    stats = {"requested": a.count, "attempted": count, "fd_limit": limit,
             "limited_by_fd": count < a.count, "opened": 0, "answered": 0, "ok": 0,
             "non_200": 0}
    conns = await open_all(a, count, stats)
    stats["still_open"] = sum(1 for c in conns if not c.closed)
    emit("READY", stats)
    await asyncio.sleep(a.hold)
    stats["still_open_after_hold"] = sum(1 for c in conns if not c.closed)
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    await asyncio.sleep(0.2)
    emit("DONE", stats)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--rate", type=float, default=2000.0, help="new connections per second")
    ap.add_argument("--concurrency", type=int, default=256,
                    help="connections being opened/awaiting their answer at once")
    ap.add_argument("--connect-timeout", type=float, default=10.0,
                    help="per connection: connect, then the answer")
    ap.add_argument("--open-timeout", type=float, default=60.0,
                    help="deadline for opening all connections and reading all answers")
    ap.add_argument("--hold", type=float, default=5.0, help="seconds to keep them open")
    a = ap.parse_args(argv)
    a.count = max(0, min(a.count, 1_000_000))
    a.hold = max(0.0, min(a.hold, 3600.0))
    return a


def main(argv=None):
    a = parse_args(argv)
    try:
        asyncio.run(asyncio.wait_for(run(a), a.open_timeout + a.hold + 30))
    except asyncio.TimeoutError:
        emit("DONE", {"error": "overall deadline exceeded"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
