#!/usr/bin/env python3
"""Instructions (and syscalls) per proxied request, free of machine noise (``make bench-instr``).

User-space instructions are counted by valgrind (cachegrind without cache simulation), syscalls by
``strace -c -f``, each as the difference of two runs of the same gateway:
``(count(N2 requests) - count(N1 requests)) / (N2 - N1)``, so start-up and shutdown cancel out and
figures repeat within ~0.1% whatever else the machine does.  One keep-alive connection sends GETs
with 4 header fields to ``litemesh run --single-process`` in front of bench/origin.py (a fixed
100-byte body; the backend is not counted).  This is the project's own version of the team's
``instrbench.sh`` (which also measures nginx and a minimal proxy beside it); both count the same way.

usage: python bench/instr.py [--n1 2000] [--n2 12000] [--pure] [--no-syscalls] [--config file.yaml]
       (a config may use @PORT@ and @BACKEND_PORT@)
Needs valgrind and strace (``apt-get install valgrind strace``).  Runs outside the checkout, so the
compiled build is what is measured.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from profile_request import drive, free_port, wait_listening  # noqa: E402  (bench/ is not a package)


def count(kind: str, requests: int, args: argparse.Namespace, work: pathlib.Path, backend_port: int) -> int:
    """User-space instructions (``kind`` "instr") or syscalls ("sys") of a gateway serving ``requests``."""
    port = free_port()
    if args.config:
        config = work / f"gateway-{port}.yaml"
        text = pathlib.Path(args.config).read_text()
        config.write_text(text.replace("@PORT@", str(port)).replace("@BACKEND_PORT@", str(backend_port)))
        gateway = ["-c", str(config)]
    else:
        gateway = ["--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{backend_port}"]
    out = work / f"{kind}-{requests}.out"
    tool = (["valgrind", "-q", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}"]
            if kind == "instr" else ["strace", "-f", "-c", "-o", str(out), "--"])
    env = dict(os.environ, PYTHONHASHSEED="0")
    env.pop("LITEMESH_NO_EXTENSIONS", None)
    if args.pure:
        env["LITEMESH_NO_EXTENSIONS"] = "1"
    process = subprocess.Popen([*tool, sys.executable, "-m", "litemesh", "run", "--single-process",
                                "--log-level", "warning", *gateway], cwd=work, env=env)
    try:
        wait_listening(port, time.monotonic() + 300)
        drive(port, requests, time.monotonic() + 900)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    text = out.read_text()
    if kind == "instr":
        found = re.search(r"^summary:\s+(\d+)", text, re.M)
    else:
        found = re.search(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?total$", text, re.M)
    if found is None:
        sys.exit(f"no {kind} count in {out}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n1", type=int, default=2000)
    parser.add_argument("--n2", type=int, default=12000)
    parser.add_argument("--pure", action="store_true", help="the pure-Python build (LITEMESH_NO_EXTENSIONS=1)")
    parser.add_argument("--no-syscalls", action="store_true", help="instructions only")
    parser.add_argument("--config", help="gateway config with @PORT@ / @BACKEND_PORT@")
    args = parser.parse_args()
    if args.config:
        args.config = str(pathlib.Path(args.config).resolve())
    for tool in ("valgrind", "strace"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install valgrind strace")
    work = pathlib.Path(tempfile.mkdtemp(prefix="lm-instr."))
    backend_port = free_port()
    backend = subprocess.Popen([sys.executable, str(HERE / "origin.py"), "--port", str(backend_port)], cwd=work,
                               stdout=subprocess.DEVNULL)
    try:
        wait_listening(backend_port, time.monotonic() + 30)
        kinds = ["instr"] + ([] if args.no_syscalls else ["sys"])
        results = {}
        for kind in kinds:
            low, high = (count(kind, n, args, work, backend_port) for n in (args.n1, args.n2))
            results[kind] = (high - low) / (args.n2 - args.n1)
        build = "pure" if args.pure else "compiled"
        print(f"litemesh ({build}), 1 connection, {args.n2} - {args.n1} requests:")
        print(f"  instructions/request {results['instr']:,.0f}")
        if "sys" in results:
            print(f"  syscalls/request     {results['sys']:.2f}")
    finally:
        backend.kill()
        backend.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    main()
