#!/usr/bin/env python3
"""A burst of slow clients whose request heads all complete at once, and a latency probe
(stdlib only).

1. Opens --count connections to 127.0.0.1:--port (non-blocking connects, at most
   --concurrency in progress; RLIMIT_NOFILE raised as far as allowed). Each sends the head of
   `GET --path HTTP/1.1` without the final blank line, and waits.
2. Starts the probe: this file in `probe` mode, a process of its own (so this process's CPU
   does not delay it). It sends one `GET --path` every --probe-interval seconds on one
   keep-alive connection (the next one right away when an answer took longer) and records
   each request's send time (CLOCK_MONOTONIC, shared by the processes) and latency.
3. After --settle seconds (the target has read the partial heads; the probe has a baseline),
   the burst: every connection sends the missing CRLF, evenly spread over --window seconds,
   and reads its answer (Content-Length, chunked or until close). The burst ends when every
   answer arrived or --timeout seconds after its first send.
4. --tail seconds later the probe is stopped; the connections are closed.

One line `RESULT {json}` goes to stdout: burst completion (first send -> last answer),
per-client latency (its CRLF -> its full answer), errors by kind, and the probe: max, p50 and
p99 latency of the probe requests that overlap the burst window (from --pre seconds before the
first send until --tail seconds after the last answer), its baseline before the window, and
its slowest requests with their offset from the first send. Everything is bounded: --count
(and the fd limit), --open-timeout, --timeout, --probe-max-secs.

usage: burst.py --port 8080 [--count 2000] [--window 0.1] [--probe-interval 0.005]
       burst.py probe --port 8080 [--interval 0.005] [--max-secs 120]   (started by the above)
"""
import argparse
import errno
import json
import math
import os
import select
import selectors
import socket
import statistics
import subprocess
import sys
import time

from idleconns import raise_nofile  # same folder: one copy of the rlimit dance

FD_RESERVE = 64            # descriptors kept free for the interpreter, stdio, the probe pipes
UNTIL_CLOSE = -1           # response_end(): the body runs until the connection closes


def response_end(buf):
    """-> (status, end) of the first complete response in buf (end: offset just after it, or
    UNTIL_CLOSE), or None while incomplete. Skips 1xx interim answers. ValueError if bad."""
    start = 0
    while True:
        he = buf.find(b"\r\n\r\n", start)
        if he < 0:
            return None
        lines = buf[start:he].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ValueError("bad status line: %r" % lines[0][:80])
        status = int(parts[1])
        pos = he + 4
        if 100 <= status < 200 and status != 101:
            start = pos
            continue
        length, chunked = None, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if chunked:
            return _chunked_end(buf, pos, status)
        if length is None:
            return (status, pos) if status in (204, 304) else (status, UNTIL_CLOSE)
        return (status, pos + length) if len(buf) >= pos + length else None


def _chunked_end(buf, pos, status):
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(buf[pos:eol].split(b";")[0].strip() or b"x", 16)
        if size == 0:
            if buf[eol + 2:eol + 4] == b"\r\n":
                return status, eol + 4
            end = buf.find(b"\r\n\r\n", eol + 2)
            return (status, end + 4) if end >= 0 else None
        pos = eol + 2 + size + 2
        if pos > len(buf):
            return None


def pct(values, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100.0 * len(s)) - 1))]


def emit(tag, obj):
    sys.stdout.write(f"{tag} {json.dumps(obj, sort_keys=True)}\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# probe (its own process)
# ---------------------------------------------------------------------------------------------

def probe_main(a):
    """GET every a.interval s on one keep-alive connection until stdin has a line or EOF (or
    a.max_secs, a.max_samples). Prints `READY {}` after the first 200, then `SAMPLES {json}`:
    samples = [[send time, latency s, status (0 = error)], ...], errors by kind."""
    request = (f"GET {a.path} HTTP/1.1\r\nHost: {a.host}:{a.port}\r\n"
               f"User-Agent: litemesh-burst-probe\r\n\r\n").encode()
    samples, errors, sock, ready = [], {}, None, False
    end = time.monotonic() + a.max_secs
    nxt = time.monotonic()
    stdin = sys.stdin.fileno()
    while time.monotonic() < end and len(samples) < a.max_samples:
        r, _, _ = select.select([stdin], [], [], max(0.0, nxt - time.monotonic()))
        if r:
            break   # a stop line, or EOF: the burst client is done (or gone)
        t0 = time.monotonic()
        status = 0
        try:
            if sock is None:
                sock = socket.create_connection((a.host, a.port), timeout=a.timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(a.timeout)
            sock.sendall(request)
            buf = b""
            while True:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("closed before the answer")
                buf += data
                got = response_end(buf)
                if got is not None:
                    if got[1] == UNTIL_CLOSE:
                        raise ValueError("answer without length on keep-alive")
                    status = got[0]
                    break
        except (OSError, ValueError) as e:
            key = "timeout" if isinstance(e, socket.timeout) else type(e).__name__
            errors[key] = errors.get(key, 0) + 1
            if sock is not None:
                sock.close()
            sock = None
        t1 = time.monotonic()
        samples.append([round(t0, 6), round(t1 - t0, 6), status])
        if status != 200 and status:
            errors["non200"] = errors.get("non200", 0) + 1
        if status == 200 and not ready:
            ready = True
            emit("READY", {})
        nxt = max(t0 + a.interval, t1)
    if sock is not None:
        sock.close()
    emit("SAMPLES", {"samples": samples, "errors": errors})
    return 0


# ---------------------------------------------------------------------------------------------
# burst client
# ---------------------------------------------------------------------------------------------

class Client:
    __slots__ = ("sock", "buf", "t_send", "t_done", "status", "state")

    def __init__(self, sock):
        self.sock, self.buf = sock, b""
        self.t_send = self.t_done = None
        self.status = 0
        self.state = "waiting"   # waiting -> sent -> done | failed


def open_clients(a, count, partial, errors):
    """Connect up to `count` sockets (non-blocking, a.concurrency at once) and send each the
    partial head. -> list of Client."""
    sel = selectors.DefaultSelector()
    clients, pending, started = [], 0, 0
    deadline = time.monotonic() + a.open_timeout
    while (started < count or pending) and time.monotonic() < deadline:
        while started < count and pending < a.concurrency:
            started += 1
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            except OSError:
                errors["connect"] += 1
                continue
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = s.connect_ex((a.host, a.port))
            if err not in (0, errno.EINPROGRESS):
                errors["connect"] += 1
                s.close()
                continue
            sel.register(s, selectors.EVENT_WRITE)
            pending += 1
        for key, _ in sel.select(timeout=min(0.5, max(0.0, deadline - time.monotonic()))):
            s = key.fileobj
            sel.unregister(s)
            pending -= 1
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                errors["connect"] += 1
                s.close()
                continue
            try:
                if s.send(partial) != len(partial):
                    raise OSError("partial head not sent at once")
            except OSError:
                errors["connect"] += 1
                s.close()
                continue
            clients.append(Client(s))
    for key in list(sel.get_map().values()):   # connects still in progress at the deadline
        errors["connect"] += 1
        key.fileobj.close()
    sel.close()
    errors["connect"] += count - started
    return clients


def start_probe(a):
    argv = [sys.executable, os.path.abspath(__file__), "probe", "--host", a.host,
            "--port", str(a.port), "--path", a.path, "--interval", str(a.probe_interval),
            "--max-secs", str(a.probe_max_secs), "--timeout", str(a.timeout)]
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def wait_ready(proc, deadline):
    poll = select.poll()   # not select(): this process's descriptors go past FD_SETSIZE
    poll.register(proc.stdout, select.POLLIN)
    while time.monotonic() < deadline:
        if not poll.poll(max(0.0, deadline - time.monotonic()) * 1e3):
            break
        line = proc.stdout.readline()
        if not line:
            return False
        if line.startswith(b"READY"):
            return True
    return False


def stop_probe(proc, timeout):
    """Tell the probe to stop; -> its SAMPLES dict (no samples on failure)."""
    try:
        out, _ = proc.communicate(b"stop\n", timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("SAMPLES "):
            return json.loads(line[len("SAMPLES "):])
    return {"samples": [], "errors": {"no_samples": 1}}


def burst(a, clients, sel, errors):
    """Send every client's final CRLF over a.window seconds and read the answers. -> (first
    send, last send, end of the burst)."""
    n, done = len(clients), 0
    t_first = time.monotonic()
    deadline = t_first + a.timeout
    nxt = 0

    def finish(c, state):
        nonlocal done
        c.state = state
        c.t_done = time.monotonic()
        sel.unregister(c.sock)
        done += 1

    while done < n:
        now = time.monotonic()
        if now >= deadline:
            break
        while nxt < n and t_first + a.window * nxt / n <= now:
            c = clients[nxt]
            nxt += 1
            if c.state != "waiting":
                continue
            c.t_send = time.monotonic()
            try:
                c.sock.send(b"\r\n")
                c.state = "sent"
            except OSError:
                errors["send"] += 1
                finish(c, "failed")
        wait = (t_first + a.window * nxt / n - time.monotonic()) if nxt < n else 0.2
        for key, _ in sel.select(timeout=max(0.0, min(wait, deadline - time.monotonic()))):
            c = key.data
            try:
                data = c.sock.recv(65536)
            except OSError:
                data = None
            if not data:
                # closed (or reset): an answer read until close is complete now
                if data is not None and c.buf:
                    try:
                        got = response_end(c.buf)
                    except ValueError:
                        got = None
                    if got is not None and got[1] == UNTIL_CLOSE:
                        c.status = got[0]
                        if c.status != 200:
                            errors["non200"] += 1
                        finish(c, "done")
                        continue
                errors["closed" if c.state == "sent" else "closed_early"] += 1
                finish(c, "failed")
                continue
            c.buf += data
            try:
                got = response_end(c.buf)
            except ValueError:
                errors["bad_answer"] += 1
                finish(c, "failed")
                continue
            if got is not None and got[1] != UNTIL_CLOSE:
                c.status = got[0]
                if c.state == "waiting":           # answered before its head was complete
                    errors["early_answer"] += 1
                    finish(c, "failed")
                    continue
                if c.status != 200:
                    errors["non200"] += 1
                finish(c, "done")
    t_last_send = max((c.t_send for c in clients if c.t_send is not None), default=t_first)
    errors["timeout"] += sum(1 for c in clients if c.state in ("waiting", "sent"))
    return t_first, t_last_send, time.monotonic()


def ms(x):
    return round(x * 1e3, 3) if x is not None else None


def probe_stats(samples, win_start, win_end, t_first):
    """Probe requests overlapping [win_start, win_end] vs those that ended before it."""
    inside = [s for s in samples if s[0] <= win_end and s[0] + s[1] >= win_start]
    before = [s for s in samples if s[0] + s[1] < win_start]
    r = {"probe_n": len(inside), "probe_baseline_n": len(before),
         "probe_errors_in_window": sum(1 for s in inside if s[2] != 200)}
    if inside:
        lat = [s[1] for s in inside]
        r.update(probe_max_ms=ms(max(lat)), probe_p50_ms=ms(statistics.median(lat)),
                 probe_p99_ms=ms(pct(lat, 99)))
        slow = sorted(inside, key=lambda s: -s[1])[:5]
        r["probe_slowest"] = [[ms(s[0] - t_first), ms(s[1])] for s in slow]  # [offset, latency]
    if before:
        lat = [s[1] for s in before]
        r.update(probe_baseline_p50_ms=ms(statistics.median(lat)),
                 probe_baseline_max_ms=ms(max(lat)))
    return r


def burst_main(a):
    limit = raise_nofile()
    count = min(a.count, max(0, limit - FD_RESERVE))
    errors = dict.fromkeys(("connect", "send", "closed_early", "early_answer", "closed",
                            "bad_answer", "non200", "timeout"), 0)
    res = {"requested": a.count, "attempted": count, "fd_limit": limit,
           "limited_by_fd": count < a.count, "window_s": a.window}
    partial = (f"GET {a.path} HTTP/1.1\r\nHost: {a.host}:{a.port}\r\n"
               f"User-Agent: litemesh-burst\r\nAccept: */*\r\n").encode()
    t0 = time.monotonic()
    clients = open_clients(a, count, partial, errors)
    res["opened"] = len(clients)
    res["open_secs"] = round(time.monotonic() - t0, 3)
    probe = start_probe(a)
    sel = selectors.DefaultSelector()
    try:
        if not wait_ready(probe, time.monotonic() + 15):
            samples = stop_probe(probe, 5)
            res.update(error="the probe got no 200 answer", probe_errors=samples.get("errors"))
            return res
        for c in clients:
            sel.register(c.sock, selectors.EVENT_READ, c)
        # settle: the target reads the partial heads; the probe gets its baseline; a
        # connection closed or answered now is an error
        settle_end = time.monotonic() + a.settle
        while time.monotonic() < settle_end:
            for key, _ in sel.select(timeout=max(0.0, settle_end - time.monotonic())):
                c = key.data
                try:
                    data = c.sock.recv(65536)
                except OSError:
                    data = b""
                errors["closed_early" if not data else "early_answer"] += 1
                c.state = "failed"
                sel.unregister(c.sock)
        live = [c for c in clients if c.state == "waiting"]
        t_first, t_last_send, t_end = burst(a, live, sel, errors)
        done = [c for c in live if c.state == "done"]
        t_last = max((c.t_done for c in done), default=None)
        win_start = t_first - a.pre
        win_end = (t_last if t_last is not None else t_end) + a.tail
        time.sleep(max(0.0, win_end - time.monotonic()))
        samples = stop_probe(probe, a.timeout + 10)
        lat = [c.t_done - c.t_send for c in done]
        res.update(answered=len(done), answered_200=sum(1 for c in done if c.status == 200),
                   send_spread_ms=ms(t_last_send - t_first),
                   completion_ms=ms(t_last - t_first) if t_last is not None else None,
                   client_p50_ms=ms(statistics.median(lat)) if lat else None,
                   client_p99_ms=ms(pct(lat, 99)) if lat else None,
                   client_max_ms=ms(max(lat)) if lat else None,
                   probe_errors=samples.get("errors", {}),
                   window_ms=ms(win_end - win_start))
        res.update(probe_stats(samples.get("samples", []), win_start, win_end, t_first))
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait()
        sel.close()
        for c in clients:
            c.sock.close()
    res["errors"] = errors
    res["errors_total"] = sum(errors.values())
    return res


def parse_args(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    probe = bool(argv) and argv[0] == "probe"
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="burst: deadline for every answer after the first send; probe: per "
                         "request")
    if probe:
        ap.add_argument("--interval", type=float, default=0.005)
        ap.add_argument("--max-secs", type=float, default=120.0)
        ap.add_argument("--max-samples", type=int, default=100000)
        a = ap.parse_args(argv[1:])
        a.probe = True
        a.interval = max(0.0005, a.interval)
        a.max_secs = max(1.0, min(a.max_secs, 3600.0))
        return a
    ap.add_argument("--count", type=int, default=2000, help="slow clients in the burst")
    ap.add_argument("--window", type=float, default=0.1,
                    help="seconds over which the clients complete their heads")
    ap.add_argument("--concurrency", type=int, default=256, help="connects in progress at once")
    ap.add_argument("--open-timeout", type=float, default=30.0,
                    help="deadline for opening every connection")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds between the partial heads (and probe start) and the burst")
    ap.add_argument("--probe-interval", type=float, default=0.005)
    ap.add_argument("--pre", type=float, default=0.05,
                    help="the probe window starts this long before the first send")
    ap.add_argument("--tail", type=float, default=0.2,
                    help="the probe window ends this long after the last answer")
    a = ap.parse_args(argv)
    a.probe = False
    a.count = max(1, min(a.count, 100000))
    a.window = max(0.0, min(a.window, 60.0))
    a.timeout = max(1.0, min(a.timeout, 600.0))
    a.settle = max(0.0, min(a.settle, 60.0))
    a.probe_max_secs = a.open_timeout + 15 + a.settle + a.timeout + a.tail + 30
    return a


def main(argv=None):
    a = parse_args(argv)
    if a.probe:
        return probe_main(a)
    res = burst_main(a)
    emit("RESULT", res)
    return 1 if res.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
