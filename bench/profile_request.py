#!/usr/bin/env python3
"""Where a proxied request's Python time goes: the gateway under cProfile, calls per request.

Starts bench/origin.py (100-byte body) and ``litemesh run --single-process`` under cProfile, both on
127.0.0.1, sends N keep-alive GETs on one connection (the instrbench request), stops the gateway
with SIGINT and prints the functions by total time with their calls per request.  Compiled code
shows only where it calls back into Python (or not at all): profile the pure build
(``LITEMESH_NO_EXTENSIONS=1``) to see the whole path, the compiled one to see what is left.

usage: python bench/profile_request.py [-n 20000] [--top 30] [--config file.yaml]
       (a config may use @PORT@ and @BACKEND_PORT@, as instrbench's LM_CONFIG)
"""
from __future__ import annotations

import argparse
import os
import pathlib
import pstats
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: instr-per-req\r\nAccept: */*\r\n\r\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on 127.0.0.1:{port}")


def drive(port: int, count: int, deadline: float) -> None:
    """``count`` requests one after another on one keep-alive connection, each answer read whole."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        for _ in range(count):
            if time.monotonic() > deadline:
                sys.exit("the load did not finish in time")
            sock.sendall(REQUEST)
            while True:
                end = buffer.find(b"\r\n\r\n")
                if end >= 0:
                    head = buffer[:end].lower()
                    at = head.find(b"\r\ncontent-length:")
                    length = int(head[at + 17:].split(b"\r\n", 1)[0]) if at >= 0 else 0
                    if len(buffer) >= end + 4 + length:
                        if not head.startswith(b"http/1.1 200 "):
                            sys.exit(f"unexpected answer: {head[:60]!r}")
                        buffer = buffer[end + 4 + length:]
                        break
                data = sock.recv(65536)
                if not data:
                    sys.exit("the gateway closed the connection")
                buffer += data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20000, help="requests (default 20000)")
    parser.add_argument("--top", type=int, default=30, help="functions to list (default 30)")
    parser.add_argument("--config", help="gateway config with @PORT@ / @BACKEND_PORT@")
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="lm-profile."))
    backend_port, port = free_port(), free_port()
    processes: list[subprocess.Popen] = []
    try:
        processes.append(subprocess.Popen([sys.executable, str(HERE / "origin.py"), "--port", str(backend_port)],
                                          cwd=work, stdout=subprocess.DEVNULL))
        wait_listening(backend_port, time.monotonic() + 20)
        if args.config:
            text = pathlib.Path(args.config).read_text()
            config = work / "gateway.yaml"
            config.write_text(text.replace("@PORT@", str(port)).replace("@BACKEND_PORT@", str(backend_port)))
            gateway_args = ["-c", str(config)]
        else:
            gateway_args = ["--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{backend_port}"]
        out = work / "gateway.prof"
        # run outside the checkout: python would otherwise import the uncompiled source tree
        gateway = subprocess.Popen([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "litemesh", "run",
                                    "--single-process", "--log-level", "warning", *gateway_args], cwd=work)
        processes.append(gateway)
        wait_listening(port, time.monotonic() + 30)
        drive(port, 500, time.monotonic() + 60)  # warm-up: caches, pools, specialised bytecode
        started = time.monotonic()
        drive(port, args.n, time.monotonic() + 600)
        elapsed = time.monotonic() - started
        gateway.send_signal(signal.SIGINT)
        gateway.wait(60)
        stats = pstats.Stats(str(out))
        total = args.n + 500
        rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:args.top]  # type: ignore[attr-defined]
        print(f"{args.n} requests in {elapsed:.1f} s under cProfile ({args.n / elapsed:.0f} rps); per request:")
        print(f"{'calls':>7} {'own µs':>8} {'cum µs':>8}  function")
        for (path, line, name), (_, calls, own, cumulative, _) in rows:
            print(f"{calls / total:7.2f} {own / total * 1e6:8.2f} {cumulative / total * 1e6:8.2f}  "
                  f"{os.path.relpath(path) if path.startswith('/') else path}:{line}({name})")
        calls = sum(row[1] for row in stats.stats.values())  # type: ignore[attr-defined]
        print(f"Python-visible calls per request: {calls / total:.1f}")
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.kill()
                process.wait()


if __name__ == "__main__":
    main()
