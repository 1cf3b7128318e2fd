#!/usr/bin/env python3
"""LiteMesh process-model benchmark: worker sweep and reloads under load.

Shares the helpers of bench/run.py (process groups, backend, wrk parsing, configs, /proc
CPU accounting) and adds two parts:

  sweep      for workers N in 1, 2, 4, ... up to 2 x usable CPUs (--workers), wrk GET / (100
             bytes, keep-alive, -c 64*N) against nginx with `worker_processes N` (listen
             ... reuseport) and against `litemesh run --workers N`: rps, p50/p99, CPU µs/req
             of the whole process group (master + workers), ratios to nginx at the same N,
             CPU µs/req relative to the same target at 1 worker, per-worker CPU (and, for
             LiteMesh, request) split.
  reload     LiteMesh with workers = usable CPUs; a bounded wrk runs while K reloads are done
             (the config file alternates between two versions that differ in one route,
             then POST /reload): wrk errors, requests, apply_ms from each answer, the wall
             time of the POST, and the propagation time (until the route only the new
             config has answers 200 on 20 consecutive fresh connections).
  reload10k  the same with a 10,000-route config (run.py's extra_routes()).

stdlib only; needs wrk, nginx, timeout (and taskset with --pin auto).
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as rb  # noqa: E402  (bench/run.py: the shared helpers)
from run import BenchError, Group, fmt, log, md_table  # noqa: E402

PARTS = ("sweep", "reload", "reload10k")
SWEEP_TARGETS = ("nginx", "litemesh", "litemesh-pure")
PROBE = {"a": "/probe-a", "b": "/probe-b"}
PROBE_BODY = "probe ok"


# ---------------------------------------------------------------------------------------------
# CPUs and pinning
# ---------------------------------------------------------------------------------------------

def usable_cpus(python):
    """What `litemesh run --workers auto` would start (affinity capped by a cgroup quota)."""
    try:
        p = subprocess.run([python, "-c", "from litemesh.master.cpus import usable_cpus; "
                            "print(usable_cpus())"], capture_output=True, timeout=30,
                           cwd=str(rb.REPO))
        return max(1, int(p.stdout.decode().strip()))
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return max(1, len(os.sched_getaffinity(0)))


def default_workers(cpus):
    out, n = [], 1
    while n <= 2 * cpus:
        out.append(n)
        n *= 2
    return sorted(set(out) | {cpus, 2 * cpus})


def row_layout(mode, n):
    """role -> CPU list for a row with n proxy workers. `auto` pins like run.py when n workers
    leave at least one CPU for wrk and the backend; otherwise nothing is pinned."""
    cpus = sorted(os.sched_getaffinity(0))
    if mode != "auto" or n >= len(cpus):
        return {}
    proxy, load = cpus[:n], cpus[n:]
    as_list = lambda c: ",".join(map(str, c))  # noqa: E731
    return {"proxy": as_list(proxy), "load": as_list(load), "backend": as_list(load)}


def layout_label(layout):
    if not layout:
        return "none"
    return f"proxy {layout['proxy']}; wrk+backend {layout['load']}"


def set_group_affinity(pgid, cpus):
    """Re-pin every thread of every process in a running group (the shared backend)."""
    mask = {int(c) for c in cpus.split(",")} if cpus else set(os.sched_getaffinity(0))
    for pid in rb.group_pids(pgid):
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(tid, mask)
            except OSError:
                pass


class WCtx(rb.Ctx):
    """run.py's context with a per-row CPU layout instead of the fixed cpu0/cpu1 split."""

    def __init__(self, args, rundir, nofile):
        super().__init__(args, rundir, nofile)
        self.layout = {}

    def cpus(self, role):
        return self.layout.get(role)

    def use_layout(self, layout):
        self.layout = layout
        if self.backend is not None:
            set_group_affinity(self.backend.pgid, layout.get("backend"))

    def target_life(self):
        a = self.a
        return a.start_timeout + a.warmup + max(a.duration, a.reload_duration) * 4 + 300


# ---------------------------------------------------------------------------------------------
# /proc and admin API helpers
# ---------------------------------------------------------------------------------------------

def pid_ticks(pgid):
    return {pid: int(f[11]) + int(f[12]) for pid, f in rb._proc_stats() if int(f[2]) == pgid}


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def admin_call(port, method, path, timeout=10.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=b"" if method == "POST" else None,
                     headers={"User-Agent": "litemesh-bench"})
        resp = conn.getresponse()
        body = resp.read()
        try:
            return resp.status, json.loads(body)
        except ValueError:
            return resp.status, {"raw": body.decode(errors="replace")[:300]}
    finally:
        conn.close()


def wait_ready(admin_port, n, group, timeout):
    """/ready answers 200 and /status lists n ready workers, all in the group (else the CPU sum
    would miss them)."""
    deadline, last = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        if not group.alive():
            raise BenchError(f"{group.name} exited:\n{group.log_tail()}")
        try:
            code, st = admin_call(admin_port, "GET", "/status", timeout=2.0)
            live = [w for w in st.get("workers", []) if w.get("pid") and w.get("ready")]
            if code == 200 and st.get("ready") and len(live) == n:
                outside = {w["pid"] for w in live} - set(rb.group_pids(group.pgid))
                if outside:
                    raise BenchError(f"{group.name}: workers {sorted(outside)} are not in the "
                                     "process group: the CPU sum would miss them")
                return st
            last = f"HTTP {code}, ready={st.get('ready')}, {len(live)}/{n} workers ready"
        except (OSError, http.client.HTTPException, ValueError) as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.1)
    raise BenchError(f"{group.name} not ready within {timeout:.0f}s: {last}")


def get_status(admin_port):
    try:
        code, st = admin_call(admin_port, "GET", "/status", timeout=5.0)
        return st if code == 200 else {}
    except (OSError, http.client.HTTPException):
        return {}


def lm_env(target):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITEMESH_")}
    if target == "litemesh-pure":
        env["LITEMESH_NO_EXTENSIONS"] = "1"
    return env


def start_litemesh(ctx, name, target, conf, n, port, admin_port, life):
    argv = ([ctx.a.python, "-m", "litemesh", "run", "-c", str(conf), "--workers", str(n)]
            + ctx.a.litemesh_arg)
    t0 = time.monotonic()
    g = Group(name, argv, life, cpus=ctx.cpus("proxy"), logfile=ctx.logpath(name),
              env=lm_env(target), cwd=str(rb.REPO))
    try:
        rb.wait_listen(port, g, ctx.a.start_timeout)
        st = wait_ready(admin_port, n, g, ctx.a.start_timeout)
    except BenchError:
        g.stop()
        raise
    return g, st, time.monotonic() - t0


# ---------------------------------------------------------------------------------------------
# part 1: worker sweep
# ---------------------------------------------------------------------------------------------

def wrk_threads(a, n):
    return a.wrk_threads or max(1, min(n, a.cpus // 2))


def split(deltas):
    total = sum(deltas)
    return "/".join(f"{100.0 * d / total:.0f}" for d in deltas) if total else "–"


def sweep_row(ctx, target, n):
    a = ctx.a
    layout = row_layout(a.pin_mode, n)
    ctx.use_layout(layout)
    name, port = f"{target}-w{n}", rb.free_port()
    admin_port, st0 = None, None
    if target == "nginx":
        conf = ctx.rundir / f"{name}.conf"
        conf.write_text(rb.nginx_proxy_conf(ctx.rundir, name, port, ctx.backend_port, ctx.nofile,
                                            workers=n, reuseport=True))
        argv = [rb.tool("nginx"), "-e", str(ctx.rundir / "logs" / f"{name}-startup.log"),
                "-p", str(ctx.rundir), "-c", str(conf)]
        g = Group(name, argv, ctx.target_life(), cpus=ctx.cpus("proxy"),
                  logfile=ctx.logpath(name))
        try:
            rb.wait_listen(port, g, a.start_timeout)
        except BenchError:
            g.stop()
            raise
    else:
        admin_port = rb.free_port()
        conf = ctx.rundir / f"{name}.yaml"
        conf.write_text(rb.litemesh_config(port, f"127.0.0.1:{ctx.backend_port}", [], workers=n,
                                           admin=f"127.0.0.1:{admin_port}"))
        g, _, _ = start_litemesh(ctx, name, target, conf, n, port, admin_port, ctx.target_life())
    try:
        rb.verify_answer(port, "/", rb.SMALL_BODY, target)
        conns, threads = a.conns_per_worker * n, wrk_threads(a, n)
        rb.warm_up(ctx, port, "/", conns, threads)
        if admin_port:
            st0 = get_status(admin_port)
        mid = {}
        timer = threading.Timer(a.duration / 2, lambda: mid.update(get_status(admin_port))) \
            if admin_port else None
        p0 = pid_ticks(g.pgid)
        if timer:
            timer.start()
        r = rb.measure_wrk(ctx, port, g.pgid, "/", conns, threads)
        p1 = pid_ticks(g.pgid)
        if timer:
            timer.join()
        if target == "nginx":
            wpids = sorted(p for p in p1 if cmdline(p).startswith("nginx: worker process"))
        else:
            st1 = get_status(admin_port)
            wpids = [w["pid"] for w in st1.get("workers", []) if w.get("pid")]
            req0 = {w["index"]: w.get("requests", 0) for w in st0.get("workers", [])}
            reqs = [w.get("requests", 0) - req0.get(w["index"], 0) for w in st1.get("workers", [])]
            r["worker_requests"] = reqs
            r["req_split"] = split(reqs)
            r["worker_conns_mid_run"] = [w.get("connections", 0) for w in mid.get("workers", [])]
            r["conn_split"] = "/".join(map(str, r["worker_conns_mid_run"])) or "–"
            r["restarts"] = sum(w.get("restarts", 0) for w in st1.get("workers", []))
            if r["restarts"]:
                raise BenchError(f"{name}: {r['restarts']} worker restart(s) during the run")
        if len(wpids) != n:
            raise BenchError(f"{name}: {len(wpids)} worker processes found, expected {n}")
        wd = [p1.get(p, 0) - p0.get(p, 0) for p in wpids]
        other = sum(p1.values()) - sum(p0.get(p, 0) for p in p1) - sum(wd)
        total = sum(wd) + other
        r.update(workers=n, conns=conns, wrk_threads=threads, pinning=layout_label(layout),
                 worker_ticks=wd, other_ticks=other, cpu_split=split(wd),
                 other_cpu_pct=round(100.0 * other / total, 1) if total else None)
        return r
    finally:
        g.stop()


def run_sweep(ctx, results, failures):
    a = ctx.a
    for n in a.workers:
        for target in a.targets:
            log(f"sweep: {target} --workers {n} ...")
            rec = {"part": "sweep", "target": target, "workers": n}
            try:
                rec.update(sweep_row(ctx, target, n), ok=True)
                log("    " + rb.summary({**rec, "scenario": "small"}))
            except BenchError as e:
                rec.update(ok=False, error=str(e))
                failures.append(f"sweep {target} workers={n}: {rb.short_error(e)}")
                log(f"    FAILED: {e}")
            results.append(rec)
    ctx.use_layout({})
    idx = {(r["target"], r["workers"]): r for r in results if r.get("ok")}
    for (target, n), r in idx.items():
        ng, one = idx.get(("nginx", n)), idx.get((target, 1))
        r["rps_ratio_nginx"] = rb._ratio(r["rps"], ng and ng["rps"])
        r["cpu_ratio_nginx"] = rb._ratio(r["cpu_us_per_req"], ng and ng["cpu_us_per_req"])
        r["p99_ratio_nginx"] = rb._ratio(r["p99_ms"], ng and ng["p99_ms"])
        r["cpu_vs_1_worker"] = rb._ratio(r["cpu_us_per_req"], one and one["cpu_us_per_req"])


def sweep_table(results, ncpu):
    header = ["workers", "target", "pinned", "wrk", "rps", "p50 ms", "p99 ms", "CPU µs/req",
              "errors", "rps/nginx", "CPU/nginx", "p99/nginx", "CPU vs 1 worker",
              "worker CPU split %", "req split %", "conns per worker", "busy% " + "/".join(
                  f"cpu{i}" for i in range(ncpu))]
    rows = []
    for r in results:
        if not r.get("ok"):
            rows.append([r["workers"], r["target"], "FAILED (see failures)"] + ["–"] * 14)
            continue
        cpu_split = r["cpu_split"]
        if r.get("other_cpu_pct"):
            cpu_split += f" (+{r['other_cpu_pct']:.0f}% master)"
        rows.append([r["workers"], r["target"], r["pinning"],
                     f"-t{r['wrk_threads']} -c{r['conns']}", fmt(r["rps"], ",.0f"),
                     fmt(r["p50_ms"]), fmt(r["p99_ms"]), fmt(r["cpu_us_per_req"], ".1f"),
                     fmt(r["errors_total"], ".0f"), fmt(r.get("rps_ratio_nginx")),
                     fmt(r.get("cpu_ratio_nginx")), fmt(r.get("p99_ratio_nginx")),
                     fmt(r.get("cpu_vs_1_worker")), cpu_split, r.get("req_split", "–"),
                     r.get("conn_split", "–"), rb.busy_str(r)])
    return md_table(header, rows, left=4)


# ---------------------------------------------------------------------------------------------
# part 2: reloads under load
# ---------------------------------------------------------------------------------------------

def probe_once(port, path, timeout=5.0):
    """GET on a fresh connection (Connection: close): the status, or None on an error."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close", "User-Agent": "litemesh-probe"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def write_atomic(path, text):
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def timed_reload(admin_port, port, new_path, streak, limit):
    """POST /reload while a second thread probes new_path on fresh connections. Returns the
    answer, its wall time, and the propagation time: until new_path answered 200 `streak`
    times in a row (ms to the first 200 of that streak, and to its last)."""
    samples, probe_state = [], {}
    t0 = time.monotonic()

    def prober():
        run, first = 0, None
        while time.monotonic() - t0 < limit:
            ts = time.monotonic()
            status = probe_once(port, new_path)
            te = time.monotonic()
            samples.append((ts - t0, te - t0, status))
            if status == 200:
                first = te - t0 if run == 0 else first
                run += 1
                if run >= streak:
                    probe_state.update(first=first, done=te - t0)
                    return
            else:
                run, first = 0, None
                time.sleep(0.001)

    th = threading.Thread(target=prober, daemon=True)
    th.start()
    try:
        code, ans = admin_call(admin_port, "POST", "/reload", timeout=limit)
    except (OSError, http.client.HTTPException) as e:
        code, ans = None, {"ok": False, "error": f"{type(e).__name__}: {e}"}
    t_ack = time.monotonic() - t0
    th.join(limit + 10)
    stale = sum(1 for ts, _, st in samples if ts > t_ack and st != 200)
    errors = sum(1 for _, _, st in samples if st is None)
    out = {"http": code, "answer": ans, "ok": bool(code == 200 and ans.get("ok")),
           "apply_ms": ans.get("apply_ms"), "answer_ms": round(t_ack * 1000, 1),
           "probes": len(samples), "probe_errors": errors, "stale_after_ack": stale,
           "propagation_ms": None, "streak_done_ms": None}
    if "first" in probe_state:
        out["propagation_ms"] = round(probe_state["first"] * 1000, 1)
        out["streak_done_ms"] = round(probe_state["done"] * 1000, 1)
    return out


def reload_configs(ctx, port, admin_port, n, extra):
    backend = f"127.0.0.1:{ctx.backend_port}"
    return {side: rb.litemesh_config(port, backend, extra + [
                {"name": "probe", "paths": [f"={path}"],
                 "respond": {"status": 200, "body": PROBE_BODY}}],
                workers=n, admin=f"127.0.0.1:{admin_port}")
            for side, path in PROBE.items()}


def mmm(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"min": min(vals), "median": statistics.median(vals), "max": max(vals)}


def latency_max_ms(text):
    import re
    m = re.search(r"^\s*Latency\s+[\d.]+\w+\s+[\d.]+\w+\s+([\d.]+)(us|ms|s|m|h)\s", text, re.M)
    return rb.to_ms(m.group(1), m.group(2)) if m else None


def reload_run(ctx, label, routes_total):
    a = ctx.a
    n, k = a.reload_workers, a.reloads
    extra = ctx.routes[:max(0, routes_total - 2)] if routes_total > 2 else []
    port, admin_port = rb.free_port(), rb.free_port()
    conf = ctx.rundir / f"reload-{label}.yaml"
    texts = reload_configs(ctx, port, admin_port, n, extra)
    write_atomic(conf, texts["a"])
    nroutes = len(extra) + 2
    rec = {"part": label, "workers": n, "routes": nroutes, "reloads_wanted": k}
    g, st, start_s = start_litemesh(ctx, f"litemesh-{label}", "litemesh", conf, n, port,
                                    admin_port, ctx.target_life() + 40 * k)
    rec["start_s"] = round(start_s, 2)
    try:
        rb.verify_answer(port, "/", rb.SMALL_BODY, "litemesh")
        if probe_once(port, PROBE["a"]) != 200 or probe_once(port, PROBE["b"]) == 200:
            raise BenchError(f"{label}: {PROBE['a']} should answer 200 and {PROBE['b']} not")
        # one reload without load (a -> b): a baseline, and the time budget for the loaded run
        write_atomic(conf, texts["b"])
        idle = timed_reload(admin_port, port, PROBE["b"], a.streak, a.reload_timeout)
        rec["idle_reload"] = idle
        if not idle["ok"] or idle["propagation_ms"] is None:
            raise BenchError(f"{label}: reload without load failed: {idle['answer']}")
        step = max(a.reload_interval, 3.0 * max(idle["answer_ms"], idle["streak_done_ms"]) / 1e3)
        duration = min(a.reload_max_duration, max(a.reload_duration, 2.0 + k * step))
        step = (duration - 2.0) / k
        rec.update(wrk_duration=duration, conns=a.reload_conns,
                   wrk_threads=wrk_threads(a, n))
        rb.warm_up(ctx, port, "/", a.reload_conns, rec["wrk_threads"])
        st0 = get_status(admin_port)
        argv = rb.wrk_argv(f"http://127.0.0.1:{port}/", a.reload_conns, duration,
                           threads=rec["wrk_threads"])
        out = {}
        t0, ticks0 = time.monotonic(), rb.group_ticks(g.pgid)
        wrk = threading.Thread(target=lambda: out.update(
            zip(("text", "rc"), rb.run_bounded("wrk", argv, duration + 20))), daemon=True)
        wrk.start()
        reloads, side = [], "a"
        for i in range(k):
            wait = t0 + 1.0 + i * step - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            write_atomic(conf, texts[side])
            one = timed_reload(admin_port, port, PROBE[side], a.streak, a.reload_timeout)
            one["at_s"] = round(time.monotonic() - t0, 2)
            one["during_wrk"] = wrk.is_alive()
            stn = get_status(admin_port)
            gens = {w.get("generation") for w in stn.get("workers", [])}
            one["workers_at_generation"] = gens == {one["answer"].get("generation")}
            reloads.append(one)
            log(f"    reload {i + 1}/{k}: ok={one['ok']} apply {one['apply_ms']} ms, answer "
                f"{one['answer_ms']} ms, propagation {one['propagation_ms']} ms, "
                f"stale {one['stale_after_ack']}")
            side = "b" if side == "a" else "a"
        wrk.join(duration + 40)
        ticks = rb.group_ticks(g.pgid) - ticks0
        text = out.get("text", "")
        with open(ctx.rundir / "wrk-raw.txt", "a") as f:
            f.write(f"$ {' '.join(argv)}\n{text}\n")
        w = rb.parse_wrk(text)
        if w["requests"] <= 0:
            raise BenchError(f"{label}: wrk completed no requests: {text.strip()[-300:]}")
        st1 = get_status(admin_port)
        rec.update({key: w[key] for key in ("requests", "rps", "p50_ms", "p99_ms", "errors",
                                            "errors_total")})
        rec["lat_max_ms"] = latency_max_ms(text)
        rec["cpu_us_per_req"] = ticks * 1e6 / rb.HZ / w["requests"]
        rec["reloads"] = reloads
        rec["reloads_ok"] = sum(1 for r in reloads if r["ok"])
        rec["reloads_during_wrk"] = sum(1 for r in reloads if r["during_wrk"])
        rec["apply_ms"] = mmm([r["apply_ms"] for r in reloads])
        rec["answer_ms"] = mmm([r["answer_ms"] for r in reloads])
        rec["propagation_ms"] = mmm([r["propagation_ms"] for r in reloads])
        rec["stale_after_ack"] = sum(r["stale_after_ack"] for r in reloads)
        rec["never_visible"] = sum(1 for r in reloads if r["propagation_ms"] is None)
        rec["generation_mismatch"] = sum(1 for r in reloads if not r["workers_at_generation"])
        rec["worker_restarts"] = sum(x.get("restarts", 0) for x in st1.get("workers", []))
        req0 = {x["index"]: x.get("requests", 0) for x in st0.get("workers", [])}
        rec["req_split"] = split([x.get("requests", 0) - req0.get(x["index"], 0)
                                  for x in st1.get("workers", [])])
        rec["worker_rss_mib"] = {"before": [round(x.get("rss_bytes", 0) / 2**20, 1)
                                            for x in st0.get("workers", [])],
                                 "after": [round(x.get("rss_bytes", 0) / 2**20, 1)
                                           for x in st1.get("workers", [])]}
        problems = []
        if rec["reloads_ok"] < k:
            problems.append(f"{k - rec['reloads_ok']} reload(s) not ok")
        if rec["errors_total"]:
            problems.append(f"wrk errors {rec['errors']}")
        for key, what in (("stale_after_ack", "probe answers not 200 after the reload answer"),
                          ("never_visible", "reload(s) whose route never became visible"),
                          ("generation_mismatch", "reload(s) with workers at another generation"),
                          ("worker_restarts", "worker restart(s)")):
            if rec[key]:
                problems.append(f"{rec[key]} {what}")
        if rec["reloads_during_wrk"] < k:
            problems.append(f"only {rec['reloads_during_wrk']}/{k} reloads while wrk ran")
        rec["problems"] = problems
        return rec
    finally:
        g.stop()


def run_reloads(ctx, results, failures):
    a = ctx.a
    for label in a.parts:
        if label == "sweep":
            continue
        routes = 2 if label == "reload" else a.routes
        log(f"{label}: litemesh --workers {a.reload_workers}, {routes} routes, {a.reloads} reloads")
        try:
            rec = reload_run(ctx, label, routes)
            rec["ok"] = True
            failures += [f"{label}: {p}" for p in rec["problems"]]
        except BenchError as e:
            rec = {"part": label, "ok": False, "error": str(e)}
            failures.append(f"{label}: {rb.short_error(e)}")
            log(f"    FAILED: {e}")
        results.append(rec)


def _mmm_str(m, spec=".1f"):
    return "–" if not m else "/".join(fmt(m[k], spec) for k in ("min", "median", "max"))


def reload_table(results):
    header = ["config", "workers", "start s", "reloads ok", "wrk s", "requests", "rps",
              "p99 ms", "max ms", "wrk errors (conn/read/write/timeout/non2xx)",
              "apply_ms min/med/max", "answer ms min/med/max", "propagation ms min/med/max",
              "stale after ack", "req split %", "idle reload apply/answer/propagation ms"]
    rows = []
    for r in results:
        if not r.get("ok"):
            rows.append([r["part"], "FAILED (see failures)"] + ["–"] * 14)
            continue
        e, idle = r["errors"], r["idle_reload"]
        rows.append([f"{r['routes']:,} routes", r["workers"], fmt(r["start_s"]),
                     f"{r['reloads_ok']}/{r['reloads_wanted']}", fmt(r["wrk_duration"], ".0f"),
                     f"{r['requests']:,}", fmt(r["rps"], ",.0f"), fmt(r["p99_ms"]),
                     fmt(r["lat_max_ms"]),
                     f"{r['errors_total']} (" + "/".join(str(e[x]) for x in
                                                          ("connect", "read", "write", "timeout",
                                                           "non2xx")) + ")",
                     _mmm_str(r["apply_ms"]), _mmm_str(r["answer_ms"]),
                     _mmm_str(r["propagation_ms"]), r["stale_after_ack"], r["req_split"],
                     f"{fmt(idle['apply_ms'], '.1f')}/{fmt(idle['answer_ms'], '.1f')}/"
                     f"{fmt(idle['propagation_ms'], '.1f')}"])
    return md_table(header, rows, left=1)


# ---------------------------------------------------------------------------------------------
# report, CLI
# ---------------------------------------------------------------------------------------------

def render(meta, sweep, reloads, failures):
    a = meta["args"]
    out = [f"# LiteMesh process-model bench {meta['started']}", "",
           f"sweep: wrk {a['duration']}s per measurement (warm-up {a['warmup']}s), GET / "
           f"(100 bytes), keep-alive, {a['conns_per_worker']} connections per worker; "
           f"nginx: `worker_processes N`, `listen … reuseport`; backend {meta['backend']} "
           f"(1 worker)",
           f"usable CPUs: {a['cpus']} (what `--workers auto` starts); pinning: "
           f"{meta['pinning']}",
           f"host: {meta['host']}", f"versions: {meta['versions']}", ""]
    if sweep:
        out += ["## Worker sweep", "", sweep_table(sweep, os.cpu_count() or 1), ""]
        one = {r["target"]: r for r in sweep if r.get("ok") and r["workers"] == 1}
        for r in sweep:
            if r.get("ok") and r["target"] != "nginx" and r["workers"] == a["cpus"] \
                    and r["target"] in one:
                ng = next((x for x in sweep if x.get("ok") and x["target"] == "nginx"
                           and x["workers"] == a["cpus"]), None)
                verdict = "ok" if r["cpu_vs_1_worker"] <= 1.05 else "ABOVE the target"
                ref = (f"; nginx: {ng['cpu_vs_1_worker']:.2f}" if ng and
                       ng.get("cpu_vs_1_worker") else "")
                out.append(f"{r['target']}: CPU µs/req at workers = cores ({a['cpus']}) ÷ 1 "
                           f"worker = **{r['cpu_vs_1_worker']:.2f}** (target ≤ 1.05: {verdict})"
                           f"{ref}")
        out += ["", "CPU µs/req = utime+stime of every process in the group (master + workers) "
                "over the measured window ÷ requests. worker CPU split = each worker's share of "
                "the workers' CPU (+ the master's share of the group). req split = each "
                "LiteMesh worker's share of the requests, conns per worker = its open client "
                "connections half-way through (/status). Unpinned rows share the CPUs with wrk "
                "and the backend.", ""]
    if reloads:
        out += ["## Reload under load", "",
                f"LiteMesh `--workers {a['reload_workers']}`; wrk -c{a['reload_conns']} GET / "
                f"while {a['reloads']} reloads alternate two config files that differ in one "
                f"route (`=/probe-a` / `=/probe-b`, rewrite + POST /reload).", "",
                reload_table(reloads), "",
                "apply_ms = the reload answer's field (roll-out to every worker; the master's "
                "read + validate time is not in it). answer ms = wall time of POST /reload. "
                f"propagation ms = from sending the reload until the new route's first 200 of "
                f"{a['streak']} consecutive 200s on fresh connections. stale after ack = probe "
                "answers other than 200 to requests sent after the reload answer arrived "
                "(must be 0). idle reload = one reload before wrk started.", ""]
    if failures:
        out += ["## failures", ""] + [f"- {f}" for f in failures] + [""]
    return "\n".join(out)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="LiteMesh process-model bench: worker sweep vs "
                                             "nginx, and reloads under load.")
    ap.add_argument("--parts", type=rb.csv_list, default=list(PARTS),
                    help="comma list of: " + ",".join(PARTS))
    ap.add_argument("--workers", type=lambda s: [int(x) for x in rb.csv_list(s)],
                    help="worker counts for the sweep (default 1,2,4,… up to 2 × usable CPUs)")
    ap.add_argument("--targets", type=rb.csv_list, default=["nginx", "litemesh"],
                    help="sweep targets: " + ",".join(SWEEP_TARGETS))
    ap.add_argument("--duration", type=float, default=4.0, help="seconds per sweep measurement")
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds (not measured)")
    ap.add_argument("--conns-per-worker", type=int, default=64)
    ap.add_argument("--wrk-threads", type=int, default=0,
                    help="wrk threads (default min(workers, usable CPUs / 2), at least 1)")
    ap.add_argument("--pin", dest="pin_mode", choices=("off", "auto"), default="off",
                    help="auto: rows whose workers leave a CPU free are pinned as in run.py "
                         "(proxy on the first N CPUs, wrk + backend on the rest); off (default):"
                         " nothing pinned, the same layout in every row")
    ap.add_argument("--reloads", type=int, default=10, help="reloads per reload run (K)")
    ap.add_argument("--reload-duration", type=float, default=10.0,
                    help="wrk seconds in a reload run (longer if K reloads need it)")
    ap.add_argument("--reload-max-duration", type=float, default=60.0)
    ap.add_argument("--reload-interval", type=float, default=0.5,
                    help="least seconds between reload starts")
    ap.add_argument("--reload-conns", type=int, default=64)
    ap.add_argument("--reload-workers", type=int, default=0,
                    help="LiteMesh workers in the reload runs (default: usable CPUs)")
    ap.add_argument("--reload-timeout", type=float, default=60.0,
                    help="seconds a reload (answer and propagation) may take")
    ap.add_argument("--streak", type=int, default=20,
                    help="consecutive 200s on fresh connections that count as propagated")
    ap.add_argument("--routes", type=int, default=10000, help="routes in reload10k")
    ap.add_argument("--python", default=sys.executable, help="python that runs LiteMesh")
    ap.add_argument("--litemesh-arg", action="append", default=[], metavar="ARG")
    ap.add_argument("--backend", choices=("nginx", "python"), default="nginx")
    ap.add_argument("--start-timeout", type=float, default=30.0)
    ap.add_argument("--json", metavar="FILE", help="write all raw numbers as JSON")
    a = ap.parse_args(argv)
    bad = [p for p in a.parts if p not in PARTS]
    if bad:
        ap.error(f"unknown part(s): {', '.join(bad)}")
    bad = [t for t in a.targets if t not in SWEEP_TARGETS]
    if bad:
        ap.error(f"unknown target(s): {', '.join(bad)}")
    a.cpus = usable_cpus(a.python)
    a.workers = sorted(set(a.workers or default_workers(a.cpus)))
    if not a.workers or min(a.workers) < 1:
        ap.error("--workers wants positive numbers")
    a.reload_workers = a.reload_workers or a.cpus
    a.duration, a.warmup = max(1.0, a.duration), max(0.0, a.warmup)
    a.reloads, a.streak = max(1, a.reloads), max(1, a.streak)
    a.routes = max(3, a.routes)
    a.pin = a.pin_mode == "auto"  # run.py's check_tools wants taskset then
    # run.py's Ctx/check_tools read these
    a.idle_hold, a.repeat, a.gateways = 0, 1, {}
    return a


def estimate_secs(a):
    sweep = len(a.workers) * len(a.targets) * (a.warmup + a.duration + 4) if "sweep" in a.parts \
        else 0
    reload = sum(a.reload_duration + a.warmup + 8 for p in a.parts if p != "sweep")
    return sweep + reload


def main(argv=None):
    a = parse_args(argv)
    rb.install_signal_handlers()
    rb.check_tools(a, a.targets if "sweep" in a.parts else ["litemesh"])
    nofile = rb.raise_nofile()
    rundir = Path(tempfile.mkdtemp(prefix="litemesh-bench-workers."))
    ctx = WCtx(a, rundir, nofile)
    rb.prepare_rundir(ctx)
    pin = ("off (nothing pinned in any row)" if a.pin_mode == "off" else
           "auto (per row, see `pinned`; rows with workers ≥ CPUs are not pinned)")
    meta = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "args": {k: v for k, v in vars(a).items() if k != "gateways"},
            "host": rb.host_info(), "versions": rb.versions(a, a.targets + ["litemesh"]),
            "rundir": str(rundir), "rlimit_nofile": nofile, "hz": rb.HZ, "pinning": pin,
            "backend": a.backend}
    log(f"rundir {rundir}; parts {','.join(a.parts)}; workers {a.workers}; "
        f"~{estimate_secs(a):.0f}s")
    sweep, reloads, failures, interrupted = [], [], [], None
    try:
        rb.start_backend(ctx, estimate_secs(a) * 3 + 900)
        if "sweep" in a.parts:
            run_sweep(ctx, sweep, failures)
        run_reloads(ctx, reloads, failures)
    except (KeyboardInterrupt, SystemExit) as e:
        interrupted = e
        failures.append("interrupted: the tables are partial")
    finally:
        Group.stop_all()
    print(render(meta, sweep, reloads, failures))
    if a.json:
        Path(a.json).write_text(json.dumps({"meta": meta, "sweep": sweep, "reload": reloads,
                                            "failures": failures}, indent=2, default=str))
        log(f"raw numbers: {a.json}")
    log(f"logs and raw wrk output: {rundir}")
    if interrupted is not None:
        return interrupted.code if isinstance(interrupted, SystemExit) else 130
    return 1 if failures else 0


if __name__ == "__main__":
    rb.run_cli(main)
