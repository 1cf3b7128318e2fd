#!/usr/bin/env python3
"""LiteMesh benchmark runner: LiteMesh vs nginx vs HAProxy vs the backend itself, one table.

Starts on 127.0.0.1 (free ports): a backend (nginx, 1 worker: a fixed 100-byte body at `/`,
a 10 KiB file at `/10k`, keep-alive; or bench/origin.py with --backend python), and one at a
time each target: `direct` (wrk straight to the backend), `nginx` (reverse proxy, 1 worker,
upstream keepalive), `haproxy` (http mode, 1 thread, http-reuse always), `litemesh`
(`PYTHON -m litemesh run -c CONFIG`, config written here), `litemesh-pure` (same with
LITEMESH_NO_EXTENSIONS=1; --pure adds it) and custom --gateway commands. Every scenario is
measured for every target, in the same order, after a warm-up:

  small      GET /     (100 bytes) wrk -t1 -c64
  routes10k  GET /     as small, LiteMesh with 9,999 never-matching routes + the catch-all
             (nginx with the same paths as locations); reported relative to its `small`
  10k        GET /10k  (10 KiB)    wrk -t1 -c64
  c1000      GET /     wrk -t1 -c1000, errors by kind
  idle10k    10,000 idle keep-alive connections (bench/idleconns.py): RSS increase in MiB
  burst      2,000 slow clients complete their request heads within 100 ms (bench/burst.py)
             while a probe sends GET / every 5 ms: probe max/p50 latency, burst completion

Metrics: rps, p50/p99 latency (wrk --latency), CPU µs/request of the target's whole process
group (utime+stime of every process in the group from /proc/PID/stat, before/after the
measured window, / requests completed), errors, and ratios to nginx in the same run.

stdlib only; needs wrk, nginx (unless --backend python and no nginx target), haproxy (for
that target), timeout, taskset (for pinning). Run `make bench` (or bench/install-deps.sh).
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

SMALL_BODY = (b"litemesh bench backend: fixed 100-byte body, return 200, keep-alive, 127.0.0.1"
              .ljust(100, b"."))
assert len(SMALL_BODY) == 100

SCENARIOS = {
    "small": {"path": "/", "conns": 64, "kind": "wrk",
              "title": "100-byte body, GET /, wrk -t1 -c64"},
    "routes10k": {"path": "/", "conns": 64, "kind": "wrk", "routes": 10000,
                  "title": "as small, LiteMesh with 10,000 routes (nginx: same paths as "
                           "locations; others: their plain config)"},
    "10k": {"path": "/10k", "conns": 64, "kind": "wrk",
            "title": "10 KiB body, GET /10k, wrk -t1 -c64"},
    "c1000": {"path": "/", "conns": 1000, "kind": "wrk",
              "title": "100-byte body, GET /, wrk -t1 -c1000"},
    "idle10k": {"path": "/", "conns": 64, "kind": "idle",
                "title": "idle keep-alive connections (one GET each, then held open)"},
    "burst": {"path": "/", "conns": 64, "kind": "burst",
              "title": "slow clients whose heads complete at once, probe GET / every 5 ms"},
}
BUILTIN_TARGETS = ("direct", "nginx", "haproxy", "litemesh", "litemesh-pure")
INSTALL_HINT = "run `make bench`, which installs them (or `bash bench/install-deps.sh`)"


class BenchError(Exception):
    pass


SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def tool(name):
    """Absolute path of a binary: PATH first, then the sbin directories (nginx, haproxy)."""
    found = shutil.which(name)
    if found is None:
        found = shutil.which(name, path=os.pathsep.join(SBIN_DIRS))
    return found or name


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# /proc helpers
# ---------------------------------------------------------------------------------------------

def _proc_stats():
    """Yield (pid, fields-after-comm) for every live process."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        yield int(d), s[s.rfind(")") + 2:].split()


def group_pids(pgid, include_zombies=False):
    return [pid for pid, f in _proc_stats()
            if int(f[2]) == pgid and (include_zombies or f[0] != "Z")]


def group_ticks(pgid):
    """utime+stime (clock ticks) summed over every process of process group pgid."""
    return sum(int(f[11]) + int(f[12]) for _, f in _proc_stats() if int(f[2]) == pgid)


def group_rss_bytes(pgid):
    total = 0
    for pid in group_pids(pgid):
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
    return total


def cpu_times():
    """{'cpu0': (busy, total), ...} from /proc/stat."""
    res = {}
    with open("/proc/stat") as f:
        for line in f:
            p = line.split()
            if p and p[0].startswith("cpu") and p[0] != "cpu":
                v = [int(x) for x in p[1:9]]
                res[p[0]] = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7], sum(v))
    return res


def cpu_busy_pct(before, after):
    out = {}
    for k in sorted(before, key=lambda c: int(c[3:])):
        db, dt = after[k][0] - before[k][0], after[k][1] - before[k][1]
        out[k] = round(100.0 * db / dt, 1) if dt > 0 else 0.0
    return out


from idleconns import raise_nofile  # noqa: E402  (same folder: one copy of the rlimit dance)


# ---------------------------------------------------------------------------------------------
# process groups: everything runs under `timeout`, in its own process group, killed on exit
# ---------------------------------------------------------------------------------------------

class Group:
    """A command started as `[taskset -c CPUS] timeout -k 5 LIFE CMD...` in a new process
    group (pgid == pid of `timeout`). stop() terminates exactly that group."""

    registry = []

    def __init__(self, name, argv, life, cpus=None, logfile=None, env=None, cwd=None,
                 stdout=None):
        pre = ["taskset", "-c", cpus] if cpus else []
        cmd = pre + ["timeout", "-k", "5", str(int(life))] + list(argv)
        self.name, self.cmd = name, cmd
        self.logfile = logfile
        out = stdout if stdout is not None else (open(logfile, "ab") if logfile else
                                                 subprocess.DEVNULL)
        self.popen = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT if logfile
                                      or stdout is not None else subprocess.DEVNULL,
                                      stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                      process_group=0)
        if out not in (subprocess.DEVNULL, stdout):
            out.close()
        self.pgid = self.popen.pid
        Group.registry.append(self)

    def alive(self):
        return self.popen.poll() is None

    def stop(self, grace=5.0):
        if self not in Group.registry:
            return
        try:
            os.killpg(self.pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            self.popen.poll()
            if not group_pids(self.pgid):
                break
            time.sleep(0.05)
        for pid in group_pids(self.pgid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        Group.registry.remove(self)

    def log_tail(self, n=20):
        if not self.logfile:
            return ""
        try:
            return "\n".join(Path(self.logfile).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    @classmethod
    def stop_all(cls):
        for g in list(reversed(cls.registry)):
            g.stop(grace=3.0)


def install_signal_handlers():
    def handler(signum, _frame):
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def run_bounded(name, argv, life, cpus=None):
    """Run a short command (wrk) under `timeout` in its own group; return its output."""
    g = Group(name, argv, life, cpus=cpus, stdout=subprocess.PIPE)
    try:
        out, _ = g.popen.communicate(timeout=life + 10)
    except subprocess.TimeoutExpired:
        g.stop(grace=1.0)
        out = b""
    g.stop(grace=1.0)
    return out.decode(errors="replace"), g.popen.returncode


# ---------------------------------------------------------------------------------------------
# network helpers
# ---------------------------------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listen(port, group, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if group is not None and not group.alive():
            raise BenchError(f"{group.name} exited before listening on {port}:\n"
                             f"{group.log_tail()}")
        time.sleep(0.1)
    raise BenchError(f"{group.name if group else 'server'} did not listen on 127.0.0.1:{port}"
                     f" within {timeout:.0f}s:\n{group.log_tail() if group else ''}")


def http_get(port, path, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "litemesh-bench-check"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def verify_answer(port, path, expected, name, timeout=5.0):
    """The target must answer 200 with exactly the expected body (retried briefly)."""
    deadline, last = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        try:
            status, body = http_get(port, path)
            if status == 200 and body == expected:
                return
            last = f"HTTP {status}, {len(body)} bytes (expected 200, {len(expected)} bytes)"
        except (OSError, http.client.HTTPException) as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.2)
    raise BenchError(f"{name} answers GET {path} wrongly: {last}")


# ---------------------------------------------------------------------------------------------
# wrk
# ---------------------------------------------------------------------------------------------

_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}


def to_ms(value, unit):
    return float(value) * _UNITS_MS[unit]


def parse_wrk(text):
    """Parse wrk's output (with --latency). Missing fields come back as None / 0."""
    r = {"requests": 0, "secs": None, "rps": 0.0, "p50_ms": None, "p75_ms": None,
         "p90_ms": None, "p99_ms": None, "lat_avg_ms": None,
         "errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0, "non2xx": 0}}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)\b", text)
    if m:
        r["requests"] = int(m.group(1))
        r["secs"] = to_ms(m.group(2), m.group(3)) / 1e3
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"^\s*Latency\s+([\d.]+)(us|ms|s|m|h)\s", text, re.M)
    if m:
        r["lat_avg_ms"] = to_ms(m.group(1), m.group(2))
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s*{pct}(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
        if m:
            r[f"p{pct}_ms"] = to_ms(m.group(1), m.group(2))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        for k, v in zip(("connect", "read", "write", "timeout"), m.groups()):
            r["errors"][k] = int(v)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        r["errors"]["non2xx"] = int(m.group(1))
    r["errors_total"] = sum(r["errors"].values())
    return r


def wrk_argv(url, conns, duration, latency=True, timeout="5s", threads=1):
    argv = [tool("wrk"), f"-t{threads}", f"-c{conns}", f"-d{max(1, int(round(duration)))}s",
            "--timeout", timeout]
    return argv + (["--latency"] if latency else []) + [url]


# ---------------------------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------------------------

def ten_k_body():
    """10,240 deterministic printable bytes (lines of 99 chars + newline)."""
    import hashlib
    out, i = bytearray(), 0
    while len(out) < 10240:
        out += hashlib.sha256(str(i).encode()).hexdigest().encode()[:33] * 3 + b"\n"
        i += 1
    return bytes(out[:10240])


NGINX_COMMON = """worker_processes {workers};
worker_rlimit_nofile {nofile};
daemon off;
master_process on;
pid {rundir}/{name}.pid;
error_log {rundir}/logs/{name}-error.log warn;
events {{ worker_connections {wconns}; }}
"""

NGINX_TEMPS = """    client_body_temp_path {rundir}/tmp/{name}-body;
    proxy_temp_path {rundir}/tmp/{name}-proxy;
    fastcgi_temp_path {rundir}/tmp/{name}-fastcgi;
    uwsgi_temp_path {rundir}/tmp/{name}-uwsgi;
    scgi_temp_path {rundir}/tmp/{name}-scgi;
"""


def nginx_backend_conf(rundir, name, port, nofile):
    v = dict(rundir=rundir, name=name, nofile=nofile, wconns=max(1024, nofile - 100), workers=1)
    return (NGINX_COMMON.format(**v) + "http {\n"
            "    access_log off;\n    server_tokens off;\n    default_type text/plain;\n"
            "    sendfile on;\n    tcp_nopush on;\n    tcp_nodelay on;\n"
            "    keepalive_timeout 300s;\n    keepalive_requests 100000000;\n"
            "    open_file_cache max=16 inactive=600s;\n    open_file_cache_valid 600s;\n"
            + NGINX_TEMPS.format(**v) +
            f"    server {{\n        listen 127.0.0.1:{port} backlog=4096;\n"
            f"        location = / {{ return 200 \"{SMALL_BODY.decode()}\"; }}\n"
            f"        location = /10k {{ root {rundir}/www; }}\n"
            "    }\n}\n")


def nginx_proxy_conf(rundir, name, port, backend_port, nofile, routes=None, workers=1,
                     reuseport=False):
    """Reverse proxy to the backend; `workers` worker processes (with `reuseport`: one listen
    socket per worker, as LiteMesh's SO_REUSEPORT workers)."""
    v = dict(rundir=rundir, name=name, nofile=nofile, wconns=max(1024, nofile - 100),
             workers=workers)
    extra = "".join(f"        location {loc} {{ proxy_pass http://backend; }}\n"
                    for loc in nginx_locations(routes or []))
    return (NGINX_COMMON.format(**v) + "http {\n"
            "    access_log off;\n    server_tokens off;\n"
            "    keepalive_timeout 300s;\n    keepalive_requests 100000000;\n"
            + NGINX_TEMPS.format(**v) +
            f"    upstream backend {{\n        server 127.0.0.1:{backend_port};\n"
            "        keepalive 1024;\n        keepalive_requests 100000000;\n"
            "        keepalive_timeout 300s;\n    }\n"
            f"    server {{\n        listen 127.0.0.1:{port} backlog=4096"
            f"{' reuseport' if reuseport else ''};\n"
            "        proxy_http_version 1.1;\n        proxy_set_header Connection \"\";\n"
            + extra +
            "        location / { proxy_pass http://backend; }\n    }\n}\n")


def haproxy_conf(rundir, name, port, backend_port, maxconn):
    return f"""global
    nbthread 1
    maxconn {maxconn}
    no strict-limits
    pidfile {rundir}/{name}.pid

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
    maxconn {maxconn}

frontend fe
    bind 127.0.0.1:{port}
    default_backend be

backend be
    server s1 127.0.0.1:{backend_port}
"""


RESOURCES = ("items", "orders", "users", "carts", "invoices", "payments", "products",
             "reviews", "sessions", "tokens")


def extra_routes(n):
    """n realistic, distinct routes under /api/ that the bench requests (/, /10k) never match."""
    routes = []
    for i in range(n):
        res, ver, kind = RESOURCES[i % len(RESOURCES)], 1 + i % 3, (i // 7) % 10
        base = f"/api/v{ver}/svc{i}/{res}"
        r = {"name": f"r{i:05d}-svc{i}-{res}"}
        if i % 500 == 0:
            r["paths"] = [f"~^/api/v3/svc{i}/files/[0-9a-f]+$"]
        elif kind <= 2:
            r["paths"] = [base]
        elif kind == 3:
            r["paths"] = [f"={base}/health"]
        elif kind == 4:
            r["paths"] = [f"{base}/{{id}}"]
        elif kind == 5:
            r["paths"] = [f"/api/v{ver}/svc{i}/users/{{user_id}}/{res}/{{item_id}}"]
        elif kind == 6:
            r["paths"], r["hosts"] = [base], [f"svc{i}.internal.example.com"]
        elif kind == 7:
            r["paths"], r["methods"] = [f"={base}/status"], ["GET", "HEAD"]
        elif kind == 8:
            r["paths"], r["methods"] = [base], ["POST", "PUT", "PATCH"]
        else:
            r["paths"] = [f"{base}/search", f"={base}/count"]
            r["hosts"] = [f"api{i % 50}.example.com", f"*.svc{i}.example.com"]
        routes.append(r)
    return routes


def nginx_locations(routes):
    """Translate route paths to unique nginx location specifiers (hosts/methods ignored)."""
    seen, out = set(), []
    for r in routes:
        for p in r["paths"]:
            if p.startswith("="):
                loc = f"= {p[1:]}"
            elif p.startswith("~"):
                loc = "~ " + json.dumps(p[1:])
            else:
                loc = p.split("{", 1)[0]
            if loc not in seen:
                seen.add(loc)
                out.append(loc)
    return out


def yaml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def litemesh_config(port, backend, routes, workers=1, admin="127.0.0.1:0"):
    """LiteMesh YAML config: listener, `workers` workers, the admin API on `admin` (port 0 =
    ephemeral: the default 127.0.0.1:9901 may be taken on a shared box), one service, `routes`
    + the catch-all. A route with a `respond` mapping answers itself instead of proxying."""
    lines = ["listeners:", "  - name: main", f"    address: 127.0.0.1:{port}",
             "server:", f"  workers: {workers}", "admin:", f"  address: {admin}",
             "services:", "  - name: backend", f"    targets: [\"{backend}\"]",
             "    pool: {max_idle: 1024}  # as nginx's upstream keepalive 1024", "routes:"]
    for r in routes + [{"name": "all", "paths": ["/"]}]:
        lines.append(f"  - name: {json.dumps(r['name'])}")
        lines.append(f"    paths: {yaml_list(r['paths'])}")
        for key in ("hosts", "methods"):
            if key in r:
                lines.append(f"    {key}: {yaml_list(r[key])}")
        if "respond" in r:
            lines.append(f"    respond: {json.dumps(r['respond'])}")
        else:
            lines.append("    service: backend")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# context, backend, targets
# ---------------------------------------------------------------------------------------------

class Ctx:
    def __init__(self, args, rundir, nofile):
        self.a, self.rundir, self.nofile = args, rundir, nofile
        self.pin = args.pin
        self.backend = None
        self.backend_port = None
        self.bodies = {"/": SMALL_BODY, "/10k": ten_k_body()}
        self.routes = extra_routes(args.routes - 1)

    def cpus(self, role):
        if not self.pin:
            return None
        return {"proxy": "0", "load": "1", "backend": "1"}[role]

    def logpath(self, name):
        return str(self.rundir / "logs" / f"{name}.log")

    def target_life(self):
        a = self.a
        return a.start_timeout + 2 * a.warmup + a.duration + a.idle_hold + 180


def prepare_rundir(ctx):
    for d in ("logs", "tmp", "www"):
        (ctx.rundir / d).mkdir(parents=True, exist_ok=True)
    (ctx.rundir / "www" / "10k").write_bytes(ctx.bodies["/10k"])
    (ctx.rundir / "www" / "small").write_bytes(SMALL_BODY)
    os.chmod(ctx.rundir, 0o755)
    for p in (ctx.rundir / "www").iterdir():
        os.chmod(p, 0o644)
    (ctx.rundir / "www").chmod(0o755)


def start_backend(ctx, life):
    port = free_port()
    if ctx.a.backend == "nginx":
        conf = ctx.rundir / "backend.conf"
        conf.write_text(nginx_backend_conf(ctx.rundir, "backend", port, ctx.nofile))
        argv = [tool("nginx"), "-e", str(ctx.rundir / "logs" / "backend-startup.log"),
                "-p", str(ctx.rundir), "-c", str(conf)]
    else:
        argv = [ctx.a.python, str(HERE / "origin.py"), "--port", str(port),
                "--small-file", str(ctx.rundir / "www" / "small"),
                "--file-10k", str(ctx.rundir / "www" / "10k")]
    g = Group("backend", argv, life, cpus=ctx.cpus("backend"), logfile=ctx.logpath("backend"))
    wait_listen(port, g, ctx.a.start_timeout)
    for path, body in ctx.bodies.items():
        verify_answer(port, path, body, "backend")
    ctx.backend, ctx.backend_port = g, port


def gateway_command(template, port, ctx, config):
    backend = f"127.0.0.1:{ctx.backend_port}"
    repl = {"{PORT}": str(port), "{BACKEND}": backend, "{BACKEND_HOST}": "127.0.0.1",
            "{BACKEND_PORT}": str(ctx.backend_port), "{PYTHON}": ctx.a.python,
            "{CONFIG}": str(config)}
    for k, v in repl.items():
        template = template.replace(k, v)
    return template


def target_argv(ctx, target, port, scen):
    """-> (argv, env, cwd, config note) for a target that needs its own process."""
    name, routes = f"{target}-{scen}", scen == "routes10k"
    rd = ctx.rundir
    if target == "nginx":
        conf = rd / f"{name}.conf"
        conf.write_text(nginx_proxy_conf(rd, name, port, ctx.backend_port, ctx.nofile,
                                         ctx.routes if routes else None))
        note = f"{len(nginx_locations(ctx.routes)) + 1} locations" if routes else "plain"
        return ([tool("nginx"), "-e", str(rd / "logs" / f"{name}-startup.log"), "-p", str(rd),
                 "-c", str(conf)], None, None, note)
    if target == "haproxy":
        conf = rd / f"{name}.cfg"
        maxconn = max(2000, ctx.a.idle_conns + 500, ctx.a.burst_conns + 500)
        conf.write_text(haproxy_conf(rd, name, port, ctx.backend_port, maxconn))
        return [tool("haproxy"), "-db", "-f", str(conf)], None, None, "plain"
    conf = rd / f"{name}.yaml"
    conf.write_text(litemesh_config(port, f"127.0.0.1:{ctx.backend_port}",
                                     ctx.routes if routes else []))
    note = f"{len(ctx.routes) + 1} routes" if routes else "1 route"
    if target in ("litemesh", "litemesh-pure"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("LITEMESH_")}
        if target == "litemesh-pure":
            env["LITEMESH_NO_EXTENSIONS"] = "1"
        else:
            env.pop("LITEMESH_NO_EXTENSIONS", None)
        argv = [ctx.a.python, "-m", "litemesh", "run", "-c", str(conf)] + ctx.a.litemesh_arg
        return argv, env, str(REPO), note
    template = ctx.a.gateways[target]
    cmd = gateway_command(template, port, ctx, conf)
    env = dict(os.environ, BENCH_PORT=str(port), BENCH_BACKEND=f"127.0.0.1:{ctx.backend_port}",
               BENCH_CONFIG=str(conf), BENCH_PYTHON=ctx.a.python)
    if "{CONFIG}" not in template:
        note = "plain (no {CONFIG})" if routes else "plain"
    return ["bash", "-c", cmd], env, str(REPO), note


def start_target(ctx, target, scen):
    """-> (group or None for direct, port, pgid, config note)."""
    if target == "direct":
        return None, ctx.backend_port, ctx.backend.pgid, "backend itself"
    port = free_port()
    argv, env, cwd, note = target_argv(ctx, target, port, scen)
    g = Group(f"{target}-{scen}", argv, ctx.target_life(), cpus=ctx.cpus("proxy"),
              logfile=ctx.logpath(f"{target}-{scen}"), env=env, cwd=cwd)
    try:
        wait_listen(port, g, ctx.a.start_timeout)
    except BenchError:
        g.stop()
        raise
    return g, port, g.pgid, note


# ---------------------------------------------------------------------------------------------
# measurements
# ---------------------------------------------------------------------------------------------

def warm_up(ctx, port, path, conns, threads=1):
    if ctx.a.warmup <= 0:
        return
    url = f"http://127.0.0.1:{port}{path}"
    run_bounded("wrk-warmup", wrk_argv(url, conns, ctx.a.warmup, latency=False, threads=threads),
                ctx.a.warmup + 15, cpus=ctx.cpus("load"))


def measure_wrk(ctx, port, pgid, path, conns, threads=1):
    url = f"http://127.0.0.1:{port}{path}"
    argv = wrk_argv(url, conns, ctx.a.duration, threads=threads)
    c0, t0, w0 = cpu_times(), group_ticks(pgid), time.monotonic()
    text, rc = run_bounded("wrk", argv, ctx.a.duration + 20, cpus=ctx.cpus("load"))
    t1, c1, elapsed = group_ticks(pgid), cpu_times(), time.monotonic() - w0
    with open(ctx.rundir / "wrk-raw.txt", "a") as f:
        f.write(f"$ {' '.join(argv)}\n{text}\n")
    r = parse_wrk(text)
    if r["requests"] <= 0:
        raise BenchError(f"wrk completed no requests (rc={rc}): {text.strip()[-300:]}")
    ticks = t1 - t0
    r.update(wrk_rc=rc, tgt_ticks=ticks, elapsed_s=round(elapsed, 3),
             cpu_us_per_req=ticks * 1e6 / HZ / r["requests"],
             cpu_busy_pct=cpu_busy_pct(c0, c1))
    return r


def read_tagged_line(proc, tag, deadline, other=None):
    """Read proc's stdout until a line starting with `tag `; -> parsed JSON (or None). Other
    lines are appended to the list `other` if given."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, min(0.5, deadline - time.monotonic()))):
                if proc.poll() is not None:
                    return None
                continue
            line = proc.stdout.readline()
            if not line:
                return None
            text = line.decode(errors="replace").strip()
            if text.startswith(tag + " "):
                return json.loads(text[len(tag) + 1:])
            if other is not None:
                other.append(text)
    finally:
        sel.unregister(proc.stdout)
    return None


def measure_idle(ctx, port, pgid):
    a = ctx.a
    time.sleep(0.5)
    rss0 = group_rss_bytes(pgid)
    open_timeout = max(30.0, a.idle_conns / a.idle_rate * 3 + 10)
    argv = [sys.executable, str(HERE / "idleconns.py"), "--port", str(port),
            "--count", str(a.idle_conns), "--rate", str(a.idle_rate),
            "--hold", str(a.idle_hold), "--open-timeout", str(open_timeout)]
    g = Group("idleconns", argv, open_timeout + a.idle_hold + 40, cpus=ctx.cpus("load"),
              stdout=subprocess.PIPE)
    try:
        ready = read_tagged_line(g.popen, "READY", time.monotonic() + open_timeout + 20)
        if ready is None:
            raise BenchError("idleconns.py did not report READY")
        samples, end = [], time.monotonic() + max(0.5, a.idle_hold - 0.5)
        while time.monotonic() < end:
            samples.append(group_rss_bytes(pgid))
            time.sleep(0.25)
        done = read_tagged_line(g.popen, "DONE", time.monotonic() + a.idle_hold + 20) or {}
    finally:
        g.stop(grace=2.0)
    # Memory must come back once the connections are gone: the target's RSS AFTER_CLOSE seconds
    # after the idle client (and so every connection) closed
    time.sleep(AFTER_CLOSE)
    return idle_result(ready, done, rss0, samples, group_rss_bytes(pgid))


#: seconds after the idle connections closed at which the target's RSS is read again
AFTER_CLOSE = 5.0


def idle_result(ready, done, rss0, samples, rss_after=None):
    peak = max(samples) if samples else rss0
    mib = 1024 * 1024
    held = min(ready.get("ok", 0), done.get("still_open_after_hold", ready.get("ok", 0)))
    inc = (peak - rss0) / mib
    return {"requested": ready.get("requested"), "attempted": ready.get("attempted"),
            "opened": ready.get("opened"), "answered_200": ready.get("ok"),
            "non_200": ready.get("non_200"), "conn_errors": ready.get("errors"),
            "timed_out": ready.get("timed_out"), "still_open": ready.get("still_open"),
            "still_open_after_hold": done.get("still_open_after_hold"),
            "limited_by_fd": ready.get("limited_by_fd"), "client_fd_limit": ready.get("fd_limit"),
            "open_secs": ready.get("open_secs"), "rss_before_mib": rss0 / mib,
            "rss_peak_mib": peak / mib, "rss_increase_mib": inc,
            "kib_per_conn": inc * 1024 / held if held else None,
            "rss_after_close_mib": rss_after / mib if rss_after is not None else None,
            "kept_after_close_mib": (rss_after - rss0) / mib if rss_after is not None else None,
            "errors_total": (ready.get("attempted", 0) or 0) - (ready.get("ok", 0) or 0)}


def burst_secs(a):
    """Upper bound of one bench/burst.py run (open, probe start, settle, answers, tail)."""
    return 30 + 15 + 1 + a.burst_timeout + 5


def measure_burst(ctx, port, pgid):
    a = ctx.a
    argv = [sys.executable, str(HERE / "burst.py"), "--port", str(port),
            "--count", str(a.burst_conns), "--window", str(a.burst_window),
            "--timeout", str(a.burst_timeout), "--open-timeout", "30", "--settle", "1"]
    t0 = group_ticks(pgid)
    g = Group("burst", argv, burst_secs(a) + 30, cpus=ctx.cpus("load"), stdout=subprocess.PIPE)
    other = []   # its stderr too (a traceback)
    try:
        r = read_tagged_line(g.popen, "RESULT", time.monotonic() + burst_secs(a) + 20, other)
    finally:
        g.stop(grace=2.0)
    if r is None:
        raise BenchError("burst.py did not report RESULT:\n" + "\n".join(other[-10:]))
    if r.get("error"):
        raise BenchError(f"burst.py: {r['error']}")
    r["tgt_ticks"] = group_ticks(pgid) - t0   # the whole burst.py run, set-up included
    r["tgt_cpu_ms"] = r["tgt_ticks"] * 1e3 / HZ
    return r


def run_one(ctx, scen, target):
    spec = SCENARIOS[scen]
    path, conns = spec["path"], spec["conns"]
    g, port, pgid, note = start_target(ctx, target, scen)
    try:
        verify_answer(port, path, ctx.bodies[path], target)
        warm_up(ctx, port, path, conns)
        if spec["kind"] == "idle":
            r = measure_idle(ctx, port, pgid)
        elif spec["kind"] == "burst":
            r = measure_burst(ctx, port, pgid)
        else:
            r = measure_wrk(ctx, port, pgid, path, conns)
        r["config"] = note
        return r
    finally:
        if g is not None:
            g.stop()


# ---------------------------------------------------------------------------------------------
# ratios, medians
# ---------------------------------------------------------------------------------------------

def _ratio(x, y):
    return x / y if x is not None and y not in (None, 0) else None


def add_ratios(results):
    """Per repetition: ratios to nginx (same scenario) and routes10k vs the target's small."""
    idx = {(r["rep"], r["scenario"], r["target"]): r for r in results if r.get("ok")}
    for r in idx.values():
        ng = idx.get((r["rep"], r["scenario"], "nginx"))
        if r["scenario"] == "idle10k":
            r["rss_ratio_nginx"] = _ratio(r.get("rss_increase_mib"),
                                          ng and ng.get("rss_increase_mib"))
            continue
        if SCENARIOS[r["scenario"]]["kind"] == "burst":
            for k in ("probe_max_ms", "probe_p50_ms", "completion_ms"):
                r[k.replace("_ms", "_ratio_nginx")] = _ratio(r.get(k), ng and ng.get(k))
            continue
        r["rps_ratio_nginx"] = _ratio(r.get("rps"), ng and ng.get("rps"))
        r["cpu_ratio_nginx"] = _ratio(r.get("cpu_us_per_req"), ng and ng.get("cpu_us_per_req"))
        r["p99_ratio_nginx"] = _ratio(r.get("p99_ms"), ng and ng.get("p99_ms"))
        if r["scenario"] == "routes10k":
            sm = idx.get((r["rep"], "small", r["target"]))
            r["rps_vs_small"] = _ratio(r.get("rps"), sm and sm.get("rps"))


def _median(values):
    vals = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return statistics.median(vals) if vals else None


def medians(results, scenarios, targets):
    out = []
    for scen in scenarios:
        for tgt in targets:
            rs = [r for r in results if r["scenario"] == scen and r["target"] == tgt]
            ok = [r for r in rs if r.get("ok")]
            m = {"scenario": scen, "target": tgt, "runs": len(rs), "ok_runs": len(ok)}
            if ok:
                keys = {k for r in ok for k, v in r.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)}
                for k in sorted(keys - {"rep"}):
                    m[k] = _median([r.get(k) for r in ok])
                for k in ("errors", "conn_errors", "config", "cpu_busy_pct", "limited_by_fd"):
                    if k in ok[-1]:
                        m[k] = ok[-1][k]
                if "errors" in ok[0]:
                    m["errors"] = {k: _median([r["errors"][k] for r in ok])
                                   for k in ok[0]["errors"]}
            else:
                m["failure"] = rs[-1].get("error") if rs else "not run"
            out.append(m)
    return out


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------

def fmt(v, spec=".2f"):
    if v is None:
        return "–"
    return format(v, spec)


def md_table(header, rows, left=2):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(":---" if i < left else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def busy_str(m):
    b = m.get("cpu_busy_pct") or {}
    return "/".join(f"{v:.0f}" for v in b.values()) if b else "–"


def failed_label(m):
    return "not run" if not m.get("runs") else "FAILED (see failures)"


def wrk_row(m, scen):
    if m.get("failure") or not m.get("ok_runs"):
        width = 10 if scen == "routes10k" else 9
        return [m["target"], failed_label(m)] + ["–"] * width
    e = m.get("errors") or {}
    errs = fmt(m.get("errors_total"), ".0f")
    if scen == "c1000":
        errs += " ({})".format("/".join(fmt(e.get(k), ".0f") for k in
                                        ("connect", "read", "write", "timeout", "non2xx")))
    row = [m["target"], m.get("config", ""), fmt(m.get("rps"), ",.0f"), fmt(m.get("p50_ms")),
           fmt(m.get("p99_ms")), fmt(m.get("cpu_us_per_req"), ".1f"), errs,
           fmt(m.get("rps_ratio_nginx")), fmt(m.get("cpu_ratio_nginx")),
           fmt(m.get("p99_ratio_nginx")), busy_str(m)]
    if scen == "routes10k":
        row.insert(3, fmt(m.get("rps_vs_small")))
    return row


def wrk_table(meds, scen):
    header = ["target", "config", "rps", "p50 ms", "p99 ms", "CPU µs/req", "errors",
              "rps/nginx", "CPU/nginx", "p99/nginx", "busy% " + "/".join(
                  f"cpu{i}" for i in range(os.cpu_count() or 1))]
    if scen == "c1000":
        header[6] = "errors (conn/read/write/timeout/non2xx)"
    if scen == "routes10k":
        header.insert(3, "rps vs own small")
    return md_table(header, [wrk_row(m, scen) for m in meds])


def idle_table(meds):
    header = ["target", "opened", "answered 200", "RSS before MiB", "RSS peak MiB",
              "increase MiB", "KiB/conn", "increase/nginx", f"kept {AFTER_CLOSE:.0f} s after close MiB", "note"]
    rows = []
    for m in meds:
        if m.get("failure") or not m.get("ok_runs"):
            rows.append([m["target"], failed_label(m)] + ["–"] * 8)
            continue
        note = []
        if m.get("limited_by_fd"):
            note.append(f"fd limit {fmt(m.get('client_fd_limit'), '.0f')}")
        if m.get("conn_errors"):
            note.append("errors " + ", ".join(f"{k}={v}" for k, v in m["conn_errors"].items()))
        rows.append([m["target"], fmt(m.get("opened"), ".0f"), fmt(m.get("answered_200"), ".0f"),
                     fmt(m.get("rss_before_mib"), ".1f"), fmt(m.get("rss_peak_mib"), ".1f"),
                     fmt(m.get("rss_increase_mib"), ".1f"), fmt(m.get("kib_per_conn"), ".2f"),
                     fmt(m.get("rss_ratio_nginx")), fmt(m.get("kept_after_close_mib"), ".1f"),
                     "; ".join(note) or ""])
    return md_table(header, rows, left=1)


def burst_table(meds):
    header = ["target", "clients", "answered 200", "probe max ms", "probe p50 ms",
              "probe baseline p50 ms", "completion ms", "client p99 ms",
              "errors", "probe max/nginx", "completion/nginx", "target CPU ms"]
    rows = []
    for m in meds:
        if m.get("failure") or not m.get("ok_runs"):
            rows.append([m["target"], failed_label(m)] + ["–"] * (len(header) - 2))
            continue
        e = {k: v for k, v in (m.get("errors") or {}).items() if v}
        errs = fmt(m.get("errors_total"), ".0f")
        if e:
            errs += " (" + ", ".join(f"{k} {v:g}" for k, v in e.items()) + ")"
        if m.get("limited_by_fd"):
            errs += f"; fd limit {fmt(m.get('fd_limit'), '.0f')}"
        rows.append([m["target"], fmt(m.get("opened"), ".0f"), fmt(m.get("answered_200"), ".0f"),
                     fmt(m.get("probe_max_ms"), ".1f"), fmt(m.get("probe_p50_ms")),
                     fmt(m.get("probe_baseline_p50_ms")),
                     fmt(m.get("completion_ms"), ".1f"), fmt(m.get("client_p99_ms"), ".1f"),
                     errs, fmt(m.get("probe_max_ratio_nginx")),
                     fmt(m.get("completion_ratio_nginx")), fmt(m.get("tgt_cpu_ms"), ".0f")])
    return md_table(header, rows, left=1)


def render(meta, meds, scenarios, failures):
    a = meta["args"]
    out = [f"# LiteMesh bench {meta['started']}", "",
           f"wrk {a['duration']}s per measurement (warm-up {a['warmup']}s), "
           f"{'median of ' + str(a['repeat']) + ' runs' if a['repeat'] > 1 else '1 run'}; "
           f"backend {meta['backend']}; pinning: {meta['pinning']}",
           f"host: {meta['host']}", f"versions: {meta['versions']}", ""]
    for scen in scenarios:
        sm = [m for m in meds if m["scenario"] == scen]
        title = SCENARIOS[scen]["title"]
        if scen == "idle10k":
            title = f"{a['idle_conns']:,} {title}"
        if scen == "burst":
            title = (f"{a['burst_conns']:,} {title}; heads completed within "
                     f"{a['burst_window'] * 1e3:.0f} ms")
        table = (idle_table(sm) if scen == "idle10k" else burst_table(sm) if scen == "burst"
                 else wrk_table(sm, scen))
        out += [f"## {scen} — {title}", "", table, ""]
        if scen == "burst":
            out += ["probe = GET / every 5 ms on its own keep-alive connection (own process); "
                    "its max/p50/p99 cover the requests overlapping the burst window (50 ms "
                    "before the first CRLF until 200 ms after the last answer); baseline = "
                    "its requests before that. completion = first CRLF sent -> last answer; "
                    "client p99 = each client's CRLF -> its whole answer. target CPU = the "
                    "whole burst.py run (connects included). Goal: probe max/nginx ≤ 2.", ""]
    if failures:
        out += ["## failures", ""] + [f"- {f}" for f in failures] + [""]
    out.append("CPU µs/req = (utime+stime of every process in the target's process group, "
               "/proc/PID/stat, over the measured window) / requests completed. "
               "Ratios are within one run (median over runs with --repeat).")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# setup, CLI
# ---------------------------------------------------------------------------------------------

def tool_version(argv):
    try:
        p = subprocess.run(argv, capture_output=True, timeout=10, cwd=str(REPO))
        return (p.stdout + p.stderr).decode(errors="replace").strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "?"


def versions(a, targets):
    v = [tool_version(["wrk", "-v"]).split(" [")[0]]
    if a.backend == "nginx" or "nginx" in targets:
        v.append(tool_version([tool("nginx"), "-v"]).replace("nginx version: ", ""))
    if "haproxy" in targets:
        v.append(" ".join(tool_version([tool("haproxy"), "-v"]).split()[:3]))
    if any(t.startswith("litemesh") for t in targets):
        v.append(tool_version([a.python, "-c", "import sys; print('python', sys.version.split()"
                               "[0])"]))
        v.append("litemesh " + tool_version([a.python, "-c", "import litemesh; "
                                             "print(getattr(litemesh, '__version__', '?'))"]))
    return "; ".join(v)


def host_info():
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model}, kernel {os.uname().release}"


def check_tools(a, targets):
    need = {"wrk", "timeout"}
    if a.backend == "nginx" or "nginx" in targets:
        need.add("nginx")
    if "haproxy" in targets:
        need.add("haproxy")
    if a.pin:
        need.add("taskset")
    missing = sorted(t for t in need if not os.path.isabs(tool(t)))
    if missing:
        raise BenchError(f"missing: {', '.join(missing)} — {INSTALL_HINT}")


def parse_gateway(spec):
    if "=" not in spec:
        raise argparse.ArgumentTypeError("--gateway wants NAME=CMD")
    name, cmd = spec.split("=", 1)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name in BUILTIN_TARGETS:
        raise argparse.ArgumentTypeError(f"bad or reserved gateway name: {name!r}")
    if "{PORT}" not in cmd:
        raise argparse.ArgumentTypeError("--gateway CMD must contain {PORT}")
    return name, cmd


def csv_list(s):
    return [x.strip() for x in s.split(",") if x.strip()]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="LiteMesh benchmark runner (wrk; nginx/HAProxy/direct anchors).",
        epilog="Placeholders in --gateway CMD: {PORT} {BACKEND} {BACKEND_HOST} {BACKEND_PORT} "
               "{PYTHON} {CONFIG} (the LiteMesh YAML written for the scenario).")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    ap.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds (not measured)")
    ap.add_argument("--scenarios", type=csv_list, default=list(SCENARIOS),
                    help="comma list of: " + ",".join(SCENARIOS))
    ap.add_argument("--targets", type=csv_list, default=["direct", "nginx", "haproxy", "litemesh"],
                    help="comma list of: " + ",".join(BUILTIN_TARGETS))
    ap.add_argument("--pure", action="store_true",
                    help="also bench the pure-Python build (LITEMESH_NO_EXTENSIONS=1)")
    ap.add_argument("--python", default=sys.executable, help="python that runs LiteMesh")
    ap.add_argument("--litemesh-arg", action="append", default=[], metavar="ARG",
                    help="extra argument appended to `litemesh run -c CONFIG` (repeatable)")
    ap.add_argument("--gateway", action="append", type=parse_gateway, default=[],
                    metavar="NAME=CMD", help="extra target command (repeatable)")
    ap.add_argument("--repeat", type=int, default=1, help="repeat the sweep; report medians")
    ap.add_argument("--backend", choices=("nginx", "python"), default="nginx",
                    help="backend server (python = bench/origin.py)")
    ap.add_argument("--no-pin", dest="pin", action="store_false",
                    help="no taskset (default with 2+ CPUs: proxy cpu0; wrk+backend cpu1)")
    ap.add_argument("--routes", type=int, default=10000, help="routes in routes10k")
    ap.add_argument("--idle-conns", type=int, default=10000, help="connections in idle10k")
    ap.add_argument("--idle-rate", type=float, default=2000.0, help="new idle conns per second")
    ap.add_argument("--idle-hold", type=float, default=3.0, help="seconds idle conns are held")
    ap.add_argument("--burst-conns", type=int, default=2000, help="slow clients in burst")
    ap.add_argument("--burst-window", type=float, default=0.1,
                    help="seconds over which the burst clients complete their heads")
    ap.add_argument("--burst-timeout", type=float, default=30.0,
                    help="deadline for every burst answer after the first send")
    ap.add_argument("--start-timeout", type=float, default=30.0,
                    help="seconds a target gets to start listening")
    ap.add_argument("--json", metavar="FILE", help="write all raw numbers as JSON")
    a = ap.parse_args(argv)
    bad = [s for s in a.scenarios if s not in SCENARIOS]
    if bad:
        ap.error(f"unknown scenario(s): {', '.join(bad)}")
    a.gateways = dict(a.gateway)
    bad = [t for t in a.targets if t not in BUILTIN_TARGETS and t not in a.gateways]
    if bad:
        ap.error(f"unknown target(s): {', '.join(bad)}")
    if a.pure and "litemesh-pure" not in a.targets:
        a.targets.append("litemesh-pure")
    a.targets += [g for g in a.gateways if g not in a.targets]
    a.duration, a.warmup = max(1.0, a.duration), max(0.0, a.warmup)
    a.repeat, a.routes = max(1, a.repeat), max(1, a.routes)
    a.idle_conns = max(1, min(a.idle_conns, 100000))
    a.idle_rate, a.idle_hold = max(1.0, a.idle_rate), max(1.0, min(a.idle_hold, 600.0))
    a.burst_conns = max(1, min(a.burst_conns, 100000))
    a.burst_window = max(0.0, min(a.burst_window, 60.0))
    a.burst_timeout = max(1.0, min(a.burst_timeout, 600.0))
    if a.pin and (os.cpu_count() or 1) < 2:
        log("1 CPU: not pinning")
        a.pin = False
    if a.pin and shutil.which("taskset") is None:
        log("taskset missing: not pinning")
        a.pin = False
    return a


def estimate_secs(a):
    per = {"idle": a.warmup + a.idle_conns / a.idle_rate + a.idle_hold + 4,
           "wrk": a.warmup + a.duration + 2,
           "burst": a.warmup + a.burst_conns / 2000 + 6}
    return a.repeat * len(a.targets) * sum(per[SCENARIOS[s]["kind"]] for s in a.scenarios)


def run_sweep(ctx, results, failures):
    a = ctx.a
    for rep in range(1, a.repeat + 1):
        for scen in a.scenarios:
            for tgt in a.targets:
                log(f"[{rep}/{a.repeat}] {scen:9s} {tgt} ...")
                rec = {"rep": rep, "scenario": scen, "target": tgt}
                try:
                    rec.update(run_one(ctx, scen, tgt), ok=True)
                    log("    " + summary(rec))
                except BenchError as e:
                    rec.update(ok=False, error=str(e))
                    failures.append(f"run {rep} {scen} {tgt}: {short_error(e)}")
                    log(f"    FAILED: {e}")
                results.append(rec)


def short_error(e):
    """First line of the error, plus the last line of the log tail it carries."""
    lines = [x.strip() for x in str(e).splitlines() if x.strip()]
    if not lines:
        return type(e).__name__
    return lines[0].rstrip(":") + (f" … {lines[-1]}" if len(lines) > 1 else "")


def summary(r):
    if SCENARIOS[r["scenario"]]["kind"] == "burst":
        return (f"probe max {fmt(r.get('probe_max_ms'), '.1f')} ms p50 "
                f"{fmt(r.get('probe_p50_ms'))} ms; completion {fmt(r.get('completion_ms'), '.1f')}"
                f" ms; answered {r.get('answered_200')}/{r.get('attempted')}; errors "
                f"{r.get('errors_total')}; slowest probes [offset, ms] {r.get('probe_slowest')}")
    if r["scenario"] == "idle10k":
        return (f"opened {r['opened']} answered {r['answered_200']} "
                f"RSS +{r['rss_increase_mib']:.1f} MiB, +{r['kept_after_close_mib']:.1f} MiB {AFTER_CLOSE:.0f} s after close")
    return (f"{r['rps']:,.0f} rps  p50 {fmt(r['p50_ms'])} ms  p99 {fmt(r['p99_ms'])} ms  "
            f"{r['cpu_us_per_req']:.1f} µs/req  errors {r['errors_total']}")


def main(argv=None):
    a = parse_args(argv)
    install_signal_handlers()
    check_tools(a, a.targets)
    nofile = raise_nofile()
    if nofile < a.idle_conns + 1000 and "idle10k" in a.scenarios:
        log(f"note: RLIMIT_NOFILE is {nofile}; idle10k may open fewer than {a.idle_conns}")
    rundir = Path(tempfile.mkdtemp(prefix="litemesh-bench."))
    ctx = Ctx(a, rundir, nofile)
    prepare_rundir(ctx)
    meta = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "args": {k: v for k, v in vars(a).items() if k != "gateway"},
            "host": host_info(), "versions": versions(a, a.targets), "rundir": str(rundir),
            "rlimit_nofile": nofile, "hz": HZ,
            "pinning": ("proxy cpu0; wrk, idle and burst clients and backend cpu1" if a.pin
                        else "off"),
            "backend": a.backend}
    log(f"rundir {rundir}; targets {','.join(a.targets)}; scenarios {','.join(a.scenarios)}; "
        f"~{estimate_secs(a):.0f}s")
    results, failures, interrupted = [], [], None
    try:
        start_backend(ctx, estimate_secs(a) * 2 + 600)
        run_sweep(ctx, results, failures)
    except (KeyboardInterrupt, SystemExit) as e:
        interrupted = e   # still print what was measured
        failures.append("interrupted: the tables are partial")
    finally:
        Group.stop_all()
    add_ratios(results)
    meds = medians(results, a.scenarios, a.targets)
    print(render(meta, meds, a.scenarios, failures))
    if a.json:
        Path(a.json).write_text(json.dumps({"meta": meta, "results": results, "medians": meds,
                                            "failures": failures}, indent=2, default=str))
        log(f"raw numbers: {a.json}")
    log(f"logs and raw wrk output: {rundir}")
    if interrupted is not None:
        return interrupted.code if isinstance(interrupted, SystemExit) else 130
    return 1 if failures else 0


def run_cli(main):
    """Run a bench entry point: exit with its code; stop every started process on any way out."""
    try:
        sys.exit(main())
    except BenchError as e:
        Group.stop_all()
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        Group.stop_all()
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    run_cli(main)
