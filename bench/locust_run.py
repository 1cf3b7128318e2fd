#!/usr/bin/env python3
"""`make bench-locust`: bench/locustfile.py headless for a bounded time; exit 1 on any failure.

  python bench/locust_run.py [--host http://127.0.0.1:8080] [--time 20s] [--users 20] [--spawn-rate 10]
                             [--mix demo|origin] [--start-timeout 30]

If a gateway already answers at --host like the mix's setup (`make run` in another terminal,
for the demo mix), it is used as it is.  Otherwise this starts one on --host's address and
stops it at the end: `litemesh demo` for the demo mix (its admin API and upstreams on free
ports, so a shared machine's 9901 and 9101-9103 do not matter), `bench/origin.py` on a free port
behind `litemesh run --listen ... --upstream ...` for the origin mix.

Then locust runs headless under a deadline (--time plus a margin).  The exit status is 1 when
locust reports any failure (or no request at all, or does not finish), 2 for setup errors.
Each process started here runs in its own process group, which is stopped (SIGTERM, then
SIGKILL) on every way out, Ctrl-C included.
"""
from __future__ import annotations

import argparse
import csv
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
#: a request each mix's setup must answer 200 before the load starts (the gateway and its upstreams are up)
PROBES = {"demo": ("/healthz", "/api/users"), "origin": ("/",)}


class SetupError(Exception):
    pass


def log(message: str) -> None:
    print(f"[bench-locust] {message}", file=sys.stderr, flush=True)


def seconds(text: str) -> float:
    """locust's -t syntax: '20s', '2m', '1h30m', or plain seconds."""
    if text.isdigit():
        return float(text)
    parts = re.findall(r"(\d+)\s*([hms])", text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise SetupError(f"invalid --time {text!r} (e.g. 20s, 2m, 1h30m)")
    return float(sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_of(host: str, port: int, path: str) -> int | None:
    try:
        conn = http.client.HTTPConnection(host, port, timeout=2)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status
    except (OSError, http.client.HTTPException):
        return None


def answers(host: str, port: int, mix: str) -> bool:
    return all(status_of(host, port, path) == 200 for path in PROBES[mix])


class Started:
    """Processes this run started, each in its own process group; stopped in reverse order."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        out = open(self.logdir / f"{name}.log", "wb")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)
        out.close()
        self.procs.append((name, proc))
        log(f"started {name} (pid {proc.pid}): {' '.join(argv)}")
        return proc

    def tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join((self.logdir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.poll() is not None:
                continue
            for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
            log(f"stopped {name} (exit {proc.returncode})")
        self.procs.clear()


def start_setup(args: argparse.Namespace, host: str, port: int, started: Started) -> None:
    py = sys.executable
    if args.mix == "demo":
        started.start("demo", [py, "-m", "litemesh", "demo", "--listen", f"{host}:{port}",
                               "--admin", "127.0.0.1:0", "--upstream-ports", "0,0,0"])
    else:
        origin = free_port()
        started.start("origin", [py, str(REPO / "bench" / "origin.py"), "--port", str(origin)])
        started.start("gateway", [py, "-m", "litemesh", "run", "--listen", f"{host}:{port}",
                                  "--upstream", f"127.0.0.1:{origin}"])
    deadline = time.monotonic() + args.start_timeout
    while not answers(host, port, args.mix):
        for name, proc in started.procs:
            if proc.poll() is not None:
                raise SetupError(f"{name} exited with {proc.returncode} at start-up:\n{started.tail(name)}")
        if time.monotonic() > deadline:
            raise SetupError(f"no answer on {host}:{port} within {args.start_timeout:.0f} s")
        time.sleep(0.1)


def run_locust(args: argparse.Namespace, url: str, workdir: Path) -> tuple[int, int, int]:
    """(locust's exit status, requests, failures).  The exit status is the verdict (locust sets it
    from every failure); the counts come from its CSV, written once a second, so they may miss the
    last second (the summary locust prints is exact)."""
    prefix = workdir / "locust"
    argv = [sys.executable, "-m", "locust", "-f", str(REPO / "bench" / "locustfile.py"), "--host", url,
            "--headless", "-u", str(args.users), "-r", str(args.spawn_rate), "-t", args.time,
            "--mix", args.mix, "--only-summary", "--csv", str(prefix), "--exit-code-on-error", "1",
            "--stop-timeout", "5", "--loglevel", "WARNING"]
    log(f"running: {' '.join(argv)}")
    try:
        code = subprocess.run(argv, cwd=REPO, timeout=seconds(args.time) + 60).returncode
    except subprocess.TimeoutExpired:
        log("locust did not finish within --time + 60 s")
        return 1, 0, 0
    requests = failures = 0
    try:
        with open(f"{prefix}_stats.csv", newline="") as f:
            for row in csv.DictReader(f):
                if row["Name"] == "Aggregated":
                    requests, failures = int(row["Request Count"]), int(row["Failure Count"])
    except (OSError, KeyError, ValueError) as error:
        log(f"cannot read locust's statistics: {error}")
        return code or 1, 0, 0
    if failures:
        try:
            log("failures:\n" + Path(f"{prefix}_failures.csv").read_text())
        except OSError:
            pass
    return code, requests, failures


def _interrupt(signum: int, frame: object) -> None:
    # a SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so main's finally stops what was started
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="http://127.0.0.1:8080", help="gateway URL (default: %(default)s)")
    ap.add_argument("--time", default="20s", help="locust run time (default: %(default)s)")
    ap.add_argument("--users", type=int, default=20, help="simulated users (default: %(default)s)")
    ap.add_argument("--spawn-rate", type=float, default=10, help="users started per second (default: %(default)s)")
    ap.add_argument("--mix", choices=sorted(PROBES), default="demo", help="request mix (default: %(default)s)")
    ap.add_argument("--start-timeout", type=float, default=30.0, help="seconds for a started gateway to answer")
    args = ap.parse_args(argv)

    url = urlsplit(args.host)
    if url.scheme != "http" or not url.hostname:
        log(f"--host must be an http:// URL, got {args.host!r}")
        return 2
    host, port = url.hostname, url.port or 80
    try:
        seconds(args.time)
        import locust  # noqa: F401 - fail early, with the fix
    except ImportError:
        log(f"locust is not installed for {sys.executable}: pip install -e '.[bench]' (make bench-locust does)")
        return 2
    except SetupError as error:
        log(str(error))
        return 2

    signal.signal(signal.SIGTERM, _interrupt)
    with tempfile.TemporaryDirectory(prefix="litemesh-locust-") as tmp:
        started = Started(Path(tmp))
        try:
            if answers(host, port, args.mix):
                log(f"using the gateway already answering at {args.host}")
            else:
                start_setup(args, host, port, started)
            code, requests, failures = run_locust(args, args.host, Path(tmp))
        except SetupError as error:
            log(str(error))
            return 2
        except KeyboardInterrupt:
            log("interrupted")
            return 130
        finally:
            started.stop()
    verdict = "OK" if code == 0 and requests and not failures else "FAILED"
    log(f"{verdict}: locust exit {code}; last statistics snapshot: {requests} requests, {failures} failures")
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
