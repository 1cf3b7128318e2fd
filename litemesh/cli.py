"""Command line: ``litemesh run | check | schema | version | demo``.  argv → config → worker; no logic."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import click

from ._version import __version__
from .config import EXAMPLE_CONFIG_PATH, ConfigError, GatewayConfig, load_config, load_config_text
from .config.hostcheck import log_target_warnings, target_warnings
from .logs import setup_logging
from .master.cpus import worker_count
from .master.master import Master
from .master.pidfile import PidFileError, alive, default_pid_file, default_pid_file_for, find_running
from .plural import plural
from .server.privileges import PrivilegeError, RunAs, check_can_switch, resolve
from .server.worker import run_worker


def _quick_config(listen: str, upstream: str) -> GatewayConfig:
    """A one-route config: every request on ``listen`` goes to ``upstream`` (benchmarks, smoke tests)."""
    text = (f"listeners: [{{name: main, address: '{listen}'}}]\n"
            f"services: [{{name: upstream, targets: ['{upstream}']}}]\n"
            "routes: [{name: all, paths: ['/'], service: upstream}]\n"
            # several quick gateways may run side by side (benchmarks): the admin API takes any free
            # port, printed in the start-up banner
            "admin: {address: '127.0.0.1:0'}\n")
    return load_config_text(text, "<command line>")


def _run_as_or_exit(config: GatewayConfig) -> RunAs | None:
    """``server.user``/``group`` resolved, after checking that this process can switch to them."""
    if not config.server.user:
        return None
    try:
        run_as = resolve(config.server.user, config.server.group)
        check_can_switch(run_as)
    except PrivilegeError as error:
        click.echo(f"litemesh: {error}", err=True)
        sys.exit(1)
    return run_as


def _load_or_exit(path: str) -> GatewayConfig:
    try:
        return load_config(path)
    except ConfigError as error:
        click.echo(str(error), err=True)
        sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="litemesh", message="%(prog)s %(version)s",
                      help="Print the version and exit (`litemesh version -v` says more).")
def main() -> None:
    """LiteMesh: an API gateway and edge proxy."""


@main.command()
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), help="gateway.yaml to serve.")
@click.option("--listen", help="With --upstream: address to listen on (host:port), no config file needed.")
@click.option("--upstream", help="With --listen: proxy every request to this host:port.")
@click.option("--workers", default=None, help="Worker processes: a number or 'auto' (overrides server.workers).")
@click.option("--cpu-affinity/--no-cpu-affinity", default=None, help="Pin worker i to the i-th usable CPU.")
@click.option("--pid-file", default=None,
              help="Master pid file (default: server.pid_file, or one per config file in $TMPDIR).")
@click.option("--log-file", default=None, help="Log to this file (reopened on SIGUSR1) instead of stderr.")
@click.option("--single-process", is_flag=True,
              help="Debugging: serve in this one process (no master, admin API or shared memory).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="Least severe messages logged.")
def run(config_path: str | None, listen: str | None, upstream: str | None, workers: str | None,
        cpu_affinity: bool | None, pid_file: str | None, log_file: str | None, single_process: bool,
        log_level: str) -> None:
    """Run the gateway: a master process and its workers."""
    text = ""
    if config_path:
        config = _load_or_exit(config_path)
        text = Path(config_path).read_text(encoding="utf-8")  # for the hash in /status
    elif listen and upstream:
        try:
            config = _quick_config(listen, upstream)
        except ConfigError as error:
            raise click.UsageError(str(error)) from None
    else:
        raise click.UsageError("give -c FILE, or --listen and --upstream")
    run_as = _run_as_or_exit(config)
    log_file_option = log_file
    log_file = log_file if log_file is not None else config.server.log_file
    setup_logging(log_level, log_file, owner=(run_as.uid, run_as.gid) if run_as else None)
    log_target_warnings(config, text, config_path or "<command line>")  # unresolvable hosts, in the background
    if single_process:
        _run_single_process(config, config_path, run_as)
        return
    try:
        count = worker_count(workers if workers is not None else config.server.workers)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--workers") from None
    # a reload leaves what the command line set alone (and says so)
    options = {"server.workers": (workers, "--workers"), "server.pid_file": (pid_file, "--pid-file"),
               "server.log_file": (log_file_option, "--log-file"),
               "server.cpu_affinity": (cpu_affinity, "--cpu-affinity" if cpu_affinity else "--no-cpu-affinity")}
    master = Master(config, config_path=config_path, config_text=text, workers=count,
                    cpu_affinity=config.server.cpu_affinity if cpu_affinity is None else cpu_affinity,
                    pid_file=pid_file if pid_file is not None else default_pid_file(config, config_path),
                    log_level=log_level, log_file=log_file,
                    announce=lambda m: _announce(m.config, [l.port for l in m.config.listeners], m, count),
                    fixed={field: option for field, (value, option) in options.items() if value is not None})
    try:
        code = master.run()
    except PidFileError as error:
        click.echo(f"litemesh: {error}", err=True)
        sys.exit(1)
    if code and master.start_error and log_file:  # the log went to the file: say why here too
        click.echo(f"litemesh: {master.start_error}", err=True)
    sys.exit(code)


def _run_single_process(config: GatewayConfig, config_path: str | None, run_as: RunAs | None) -> None:
    from .master.claims import AddressClaims
    from .server.listener import ListenerError

    claims = AddressClaims()  # the same check as the master's: never join another process's listeners
    try:
        config = claims.claim(config)
    except ListenerError as error:
        click.echo(f"litemesh: cannot start: {error}", err=True)
        sys.exit(1)
    reload = (lambda: load_config(config_path)) if config_path else None  # noqa: E731
    try:
        run_worker(config, reload=reload, on_ready=lambda worker: _announce(config, worker.ports, None, 1),
                   run_as=run_as)
    except ListenerError as error:
        click.echo(f"litemesh: cannot start: {error}", err=True)
        sys.exit(1)
    except PrivilegeError as error:
        click.echo(f"litemesh: {error}", err=True)
        sys.exit(1)
    finally:
        claims.close()


def _announce(config: GatewayConfig, ports: list[int], master: "Master | None", workers: int) -> None:
    pid = os.getpid()
    where = f"master pid {pid}, {plural(workers, 'worker')}" if master else f"pid {pid}"
    for listener, port in zip(config.listeners, ports):
        click.echo(f"litemesh {__version__} listening on http://{listener.host}:{port} "
                   f"({plural(len(config.routes), 'route')}, {where})", err=True)
    if master is not None and master.admin_port:
        click.echo(f"admin API on http://{config.admin.host}:{master.admin_port} (/status /ready /metrics /reload)",
                   err=True)


def _signal_running(config_path: str | None, pid_file: str | None, signum: int) -> int:
    """Find the master (see ``master/pidfile.py``) and signal it; exit 1 if none runs."""
    if pid_file is not None:
        candidates = [pid_file]
    elif config_path is not None:
        candidates = _pid_file_candidates(config_path)
    else:
        raise click.UsageError("give -c FILE (to find its pid file) or --pid-file")
    found = find_running(candidates)
    if found is None:
        click.echo(f"litemesh: no running gateway ({' or '.join(candidates)} missing or stale)", err=True)
        sys.exit(1)
    os.kill(found[0], signum)
    return found[0]


def _pid_file_candidates(config_path: str) -> list[str]:
    """The file's ``server.pid_file`` as it is now (a reload that changed it moved the pid file
    there), then the default for this config file.  An invalid file (the master still runs the
    last valid one) is read leniently, for that one field."""
    try:
        configured = load_config(config_path).server.pid_file
    except ConfigError:
        configured = _lenient_pid_file(config_path)
    candidates = [configured] if configured else []
    return candidates + [default_pid_file_for(config_path)]


def _lenient_pid_file(config_path: str) -> str:
    import yaml

    for name, value in os.environ.items():  # LITEMESH_SERVER__PID_FILE wins, as when loading
        if name.upper() == "LITEMESH_SERVER__PID_FILE":
            return value
    try:
        data = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
        value = data["server"]["pid_file"]
    except Exception:  # noqa: BLE001 - unreadable, not YAML, no such key: no configured pid file
        return ""
    return value if isinstance(value, str) else ""


@main.command()
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), help="The running gateway's config.")
@click.option("--pid-file", default=None, help="The running master's pid file (instead of finding it from -c).")
def reload(config_path: str | None, pid_file: str | None) -> None:
    """Reload a running gateway's config (SIGHUP to its master); errors go to its log and /status."""
    if config_path is not None:
        _load_or_exit(config_path)  # an invalid file: say why here, and leave the gateway alone
    pid = _signal_running(config_path, pid_file, signal.SIGHUP)
    click.echo(f"reload requested (master pid {pid})")


@main.command()
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), help="The running gateway's config.")
@click.option("--pid-file", default=None, help="The running master's pid file (instead of finding it from -c).")
@click.option("--fast", is_flag=True, help="Do not drain: stop at once (SIGINT).")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the master to exit.")
def stop(config_path: str | None, pid_file: str | None, fast: bool, timeout: float) -> None:
    """Stop a running gateway: drain in-flight requests (SIGTERM), or --fast."""
    pid = _signal_running(config_path, pid_file, signal.SIGINT if fast else signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        click.echo(f"litemesh: master pid {pid} still running after {timeout:.0f} s", err=True)
        sys.exit(1)
    click.echo(f"stopped (master pid {pid})")


@main.command()
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="gateway.yaml to validate.")
def check(config_path: str) -> None:
    """Validate a config file: every error with file, line and field; exit 1 if any.  Target host
    names that do not resolve are printed as warnings (exit 0: the config itself is valid)."""
    config = _load_or_exit(config_path)
    warnings = target_warnings(config, Path(config_path).read_text(encoding="utf-8"), config_path)
    for warning in warnings:
        click.echo(str(warning), err=True)
    noted = f", {plural(len(warnings), 'warning')}" if warnings else ""
    click.echo(f"{config_path}: OK ({plural(len(config.listeners), 'listener')}, "
               f"{plural(len(config.services), 'service')}, {plural(len(config.routes), 'route')}{noted})")


@main.command()
def schema() -> None:
    """Print the JSON Schema of gateway.yaml (for editors)."""
    from .config import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@main.command()
@click.option("--verbose", "-v", is_flag=True, help="Also list dependencies and which modules are compiled.")
def version(verbose: bool) -> None:
    """Print the version."""
    click.echo(f"litemesh {__version__}")
    if not verbose:
        return
    import httptools
    import uvloop

    from . import _ext
    from .algo import trie  # noqa: F401 - importing decides compiled vs pure
    from .shm import view  # noqa: F401

    click.echo(f"python {sys.version.split()[0]}, uvloop {uvloop.__version__}, httptools {httptools.__version__}")
    click.echo(f"extensions {'disabled by LITEMESH_NO_EXTENSIONS' if _ext.NO_EXTENSIONS else 'enabled'}")
    for name, compiled in sorted(_ext.STATUS.items()):
        click.echo(f"  {name}: {'compiled' if compiled else 'pure Python'}")
    for name, compiled in _ext.pure_mode_modules().items():
        click.echo(f"  {name}: {'compiled' if compiled else 'pure Python'}")


@main.command()
@click.option("-c", "--config", "config_path", default=str(EXAMPLE_CONFIG_PATH),
              show_default="litemesh/config/example.yaml", type=click.Path(dir_okay=False),
              help="Gateway config to serve in front of the demo upstreams.")
@click.option("--listen", metavar="HOST:PORT", help="Move the first listener here (port 0 = any free port).")
@click.option("--admin", metavar="HOST:PORT", help="Move the admin API here (port 0 = any free port).")
@click.option("--upstream-ports", metavar="P1,P2,P3",
              help="Ports of the demo upstreams users-1, users-2, orders-1 (default 9101,9102,9103; "
                   "0 = any free port); the config's targets follow them.")
def demo(config_path: str, listen: str | None, admin: str | None, upstream_ports: str | None) -> None:
    """Start the demo upstreams and the gateway on the example config, and print URLs to try."""
    from .demo.upstreams import DEMO_PORTS

    setup_logging("info")
    ports = dict(DEMO_PORTS)
    if upstream_ports:
        from .demo.ports import parse_port_list

        try:
            ports = dict(zip(DEMO_PORTS, parse_port_list(upstream_ports, len(DEMO_PORTS))))
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--upstream-ports") from None
    upstreams, bound = _start_demo_upstreams(ports)
    try:
        with tempfile.TemporaryDirectory(prefix="litemesh-demo-") as directory:
            if listen or admin or bound != DEMO_PORTS:
                config_path = _relocated_demo_config(config_path, directory, listen, admin, bound)
            _run_demo(config_path, bound)
    finally:
        upstreams.terminate()
        upstreams.join(2)


def _start_demo_upstreams(ports: dict[str, int]) -> tuple[multiprocessing.process.BaseProcess, dict[str, int]]:
    """Fork the demo upstreams and wait until they listen: the gateway starts with its targets up."""
    from .demo.upstreams import run_demo_upstreams

    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    upstreams = context.Process(target=run_demo_upstreams, args=(ports, sender), daemon=True)
    upstreams.start()
    sender.close()  # ours: the child's copy is the only writer left, so its exit reads as EOF
    try:
        answer = receiver.recv() if receiver.poll(30) else {"error": "demo upstreams did not start within 30 s"}
    except EOFError:
        answer = {"error": "demo upstreams exited at start-up"}
    if "error" in answer:
        upstreams.terminate()
        click.echo(f"litemesh: {answer['error']}", err=True)
        sys.exit(1)
    return upstreams, answer["ports"]


def _relocated_demo_config(config_path: str, directory: str, listen: str | None, admin: str | None,
                           bound: dict[str, int]) -> str:
    from .demo.ports import relocated_config
    from .demo.upstreams import DEMO_PORTS

    moves = {DEMO_PORTS[name]: port for name, port in bound.items()}
    try:
        text = Path(config_path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        click.echo(f"{config_path}: cannot read configuration: {error}", err=True)
        sys.exit(1)
    relocated = Path(directory) / "gateway.yaml"
    relocated.write_text(relocated_config(text, listen=listen, admin=admin, upstream_moves=moves), encoding="utf-8")
    click.echo(f"demo config {config_path} moved to other ports: {relocated}", err=True)
    return str(relocated)


def _run_demo(config_path: str, upstreams: dict[str, int]) -> None:
    config = _load_or_exit(config_path)
    listener = config.listeners[0]
    base = f"http://{listener.host}:{listener.port}"
    where = ", ".join(f"{name} 127.0.0.1:{port}" for name, port in upstreams.items())
    click.echo(f"\nLiteMesh demo ({Path(config_path).name}); demo upstreams {where}. Try:\n"
               f"  curl -i {base}/api/users            # strip_prefix, round robin over users-1/users-2\n"
               f"  curl -i {base}/api/users/42         # exact route with a {{id}} param, rewritten to /users/42\n"
               f"  curl -i -X POST -d '{{\"item\":1}}' {base}/api/orders\n"
               f"  curl -i {base}/healthz              # answered by the gateway itself\n"
               f"  curl -i {base}/internal/x           # 403 from a deny route\n"
               f"  curl -i {base}/docs/v1              # 301 redirect\n"
               f"  curl -i {base}/nope                 # 404 as JSON\n"
               f"  curl -s http://{config.admin.host}:{config.admin.port}/status    # admin API: status, "
               "/metrics, /ready, POST /reload\n"
               "Ctrl-C stops.\n", err=True)
    count = worker_count(config.server.workers)
    master = Master(config, config_path=config_path, config_text=Path(config_path).read_text(encoding="utf-8"),
                    workers=count, pid_file=default_pid_file(config, config_path),
                    announce=lambda m: _announce(m.config, [l.port for l in m.config.listeners], m, count))
    master.run()
