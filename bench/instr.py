#!/usr/bin/env python3
"""Instructions (and syscalls) per proxied request, free of machine noise (``make bench-instr``).

User-space instructions are counted by valgrind (cachegrind without cache simulation), syscalls by
``strace -c -f``, each as the difference of two runs of the same gateway:
``(count(N2 requests) - count(N1 requests)) / (N2 - N1)``, so start-up and shutdown cancel out and
figures repeat within ~0.1% whatever else the machine does.  One keep-alive connection sends GETs
with 4 header fields to ``litemesh run --single-process`` in front of bench/origin.py (a fixed
100-byte body; the backend is not counted).  This is the project's own version of the team's
``instrbench.sh`` (which also measures nginx and a minimal proxy beside it); both count the same way.

``--master`` runs ``litemesh run --workers 1`` instead: the master spawns one worker (a fresh
interpreter, ``python -m litemesh.server.worker_main``) with the shared-memory metrics on, and
only that worker is counted: valgrind follows the children (``--trace-children=yes``, one out
file per pid, the worker's is the one whose ``cmd:`` is worker_main), strace writes one file per
thread (``-ff``) and the worker's are its own and those of the threads it cloned.  The master is
stopped with SIGTERM (it drains, then ends its worker and waits for it), so both tools see the
worker exit normally and write its counts.

``--routes N`` writes the gateway config itself: N - 1 routes that never match ``GET /`` (the
realistic mix of bench/run.py's routes10k scenario: prefixes, exact paths, parameters, 20 regexes,
hosts, methods) and the catch-all route to the backend, as bench/run.py does.  Compare
``--routes 10000`` with ``--routes 1`` (the same config with the catch-all alone).

usage: python bench/instr.py [--n1 2000] [--n2 12000] [--pure] [--no-syscalls] [--master] [--keep]
                             [--config file.yaml | --routes N]
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

WORKER_MODULE = "litemesh.server.worker_main"


def gateway_args(args: argparse.Namespace, work: pathlib.Path, port: int, backend_port: int) -> list[str]:
    if args.routes:
        from run import extra_routes, litemesh_config  # bench/run.py: the routes10k scenario's config

        config = work / f"gateway-{port}.yaml"
        config.write_text(litemesh_config(port, f"127.0.0.1:{backend_port}", extra_routes(args.routes - 1)))
        return ["-c", str(config)]
    if args.config:
        config = work / f"gateway-{port}.yaml"
        text = pathlib.Path(args.config).read_text()
        config.write_text(text.replace("@PORT@", str(port)).replace("@BACKEND_PORT@", str(backend_port)))
        return ["-c", str(config)]
    return ["--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{backend_port}"]


def child_of(pid: int) -> int | None:
    """The (first) child process of ``pid``: the gateway that strace started."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                return int(entry)
    return None


def count(kind: str, requests: int, args: argparse.Namespace, work: pathlib.Path, backend_port: int) -> int:
    """User-space instructions (``kind`` "instr") or syscalls ("sys") of a gateway serving ``requests``
    (with ``--master``: of its one worker)."""
    port = free_port()
    gateway = gateway_args(args, work, port, backend_port)
    tag = work / f"{kind}-{requests}"
    if kind == "instr":
        tool = ["valgrind", "-q", "--tool=cachegrind", "--cache-sim=no"]
        tool += ["--trace-children=yes", f"--cachegrind-out-file={tag}-%p.out"] if args.master else \
            [f"--cachegrind-out-file={tag}.out"]
    else:  # strace -c would add up every process: with --master, one file per thread instead
        tool = ["strace", "-ff", "-o", str(tag), "--"] if args.master else \
            ["strace", "-f", "-c", "-o", f"{tag}.out", "--"]
    mode = ["--workers", "1", "--pid-file", str(work / f"master-{port}.pid")] if args.master else ["--single-process"]
    env = dict(os.environ, PYTHONHASHSEED="0")
    env.pop("LITEMESH_NO_EXTENSIONS", None)
    if args.pure:
        env["LITEMESH_NO_EXTENSIONS"] = "1"
    process = subprocess.Popen([*tool, sys.executable, "-m", "litemesh", "run", *mode,
                                "--log-level", "warning", *gateway], cwd=work, env=env)
    try:
        wait_listening(port, time.monotonic() + 300)
        drive(port, requests, time.monotonic() + 900)
    finally:
        stop(process, kind, args.master)
    if kind == "instr":
        return instructions(tag, args.master)
    return syscalls(tag, args.master)


def stop(process: subprocess.Popen, kind: str, master: bool) -> None:
    """Stop the gateway itself, not strace: strace running a command blocks SIGINT and SIGTERM (its
    default ``-I3``), and a shell's background job may even run with SIGINT ignored.  valgrind runs
    the gateway in its own process.  The single process stops at once (SIGINT); the master drains
    (SIGTERM) and so waits up to ``timeouts.drain`` + 5 s for its worker, slowed down by the tool, to
    exit: with SIGINT it would give it 5 s and then kill it, and its counts would be lost."""
    gateway = (process.pid if kind == "instr" else child_of(process.pid)) or process.pid
    try:
        if process.poll() is None:
            os.kill(gateway, signal.SIGTERM if master else signal.SIGINT)
        process.wait(180)
    except subprocess.TimeoutExpired:
        try:
            os.kill(gateway, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.kill()
        process.wait()
        sys.exit("the gateway did not stop within 180 s: no counts")


def instructions(tag: pathlib.Path, master: bool) -> int:
    if not master:
        return summary(pathlib.Path(f"{tag}.out"))
    workers = []
    for out in sorted(tag.parent.glob(f"{tag.name}-*.out")):
        command = re.search(r"^cmd:\s*(.*)$", out.read_text(), re.M)
        if command is not None and WORKER_MODULE in command.group(1).split():
            workers.append(out)
    if len(workers) != 1:
        sys.exit(f"{len(workers)} worker out files ({tag}-*.out): expected exactly one (was the worker restarted?)")
    return summary(workers[0])


def summary(out: pathlib.Path) -> int:
    found = re.search(r"^summary:\s+(\d+)", out.read_text(), re.M)
    if found is None:
        sys.exit(f"no instruction count in {out}")
    return int(found.group(1))


def syscalls(tag: pathlib.Path, master: bool) -> int:
    if not master:
        out = pathlib.Path(f"{tag}.out")
        found = re.search(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?total$", out.read_text(), re.M)
        if found is None:
            sys.exit(f"no syscall count in {out}")
        return int(found.group(1))
    # strace -ff: one file per thread, PREFIX.TID.  The worker's own file is the one that execs
    # worker_main; its threads are the CLONE_THREAD clones it (or they) made.
    texts = {int(path.suffix[1:]): path.read_text() for path in tag.parent.glob(f"{tag.name}.*")
             if path.suffix[1:].isdigit()}
    workers = [tid for tid, text in texts.items()
               if re.search(rf'^execve\("[^"]*", \[[^\]]*"{re.escape(WORKER_MODULE)}"', text, re.M)]
    if len(workers) != 1:
        sys.exit(f"{len(workers)} worker trace files ({tag}.*): expected exactly one (was the worker restarted?)")
    threads, todo = set(), workers
    while todo:
        tid = todo.pop()
        threads.add(tid)
        todo += [int(child) for child in re.findall(r"^clone3?\(.*CLONE_THREAD.*\) = (\d+)$", texts.get(tid, ""), re.M)
                 if int(child) not in threads]
    # every line is one system call, except signals (--- SIGTERM ... ---) and the exit (+++ ... +++);
    # the worker's file starts in the master's fork, before the exec: the same in every run
    return sum(1 for tid in threads for line in texts.get(tid, "").splitlines()
               if line and not line.startswith(("---", "+++")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n1", type=int, default=2000)
    parser.add_argument("--n2", type=int, default=12000)
    parser.add_argument("--pure", action="store_true", help="the pure-Python build (LITEMESH_NO_EXTENSIONS=1)")
    parser.add_argument("--no-syscalls", action="store_true", help="instructions only")
    parser.add_argument("--master", action="store_true",
                        help="litemesh run --workers 1 (master + 1 worker, shared-memory metrics); count the worker")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", help="gateway config with @PORT@ / @BACKEND_PORT@")
    source.add_argument("--routes", type=int, metavar="N",
                        help="write a config: N - 1 never-matching routes (run.py's routes10k mix) + the catch-all")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (the tools' outputs)")
    args = parser.parse_args()
    if args.routes is not None and args.routes < 1:
        parser.error("--routes must be at least 1")
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
        how = "master + 1 worker (the worker counted)" if args.master else "single process"
        routes = (f", {args.routes:,} route{'s' if args.routes > 1 else ''}" if args.routes
                  else f", config {args.config}" if args.config else "")
        print(f"litemesh ({build}, {how}{routes}), 1 connection, {args.n2} - {args.n1} requests:")
        print(f"  instructions/request {results['instr']:,.0f}")
        if "sys" in results:
            print(f"  syscalls/request     {results['sys']:.2f}")
    finally:
        backend.kill()
        backend.wait()
        if args.keep:
            print(f"  outputs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    main()
