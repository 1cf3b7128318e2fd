"""Command line: ``litemesh run | check | schema | version | demo``.  argv → config → worker; no logic."""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import sys
from pathlib import Path

import click

from ._version import __version__
from .config import EXAMPLE_CONFIG_PATH, ConfigError, GatewayConfig, load_config, load_config_text


def _quick_config(listen: str, upstream: str) -> GatewayConfig:
    """A one-route config: every request on ``listen`` goes to ``upstream`` (benchmarks, smoke tests)."""
    text = (f"listeners: [{{name: main, address: '{listen}'}}]\n"
            f"services: [{{name: upstream, targets: ['{upstream}']}}]\n"
            "routes: [{name: all, paths: ['/'], service: upstream}]\n")
    return load_config_text(text, "<command line>")


def _load_or_exit(path: str) -> GatewayConfig:
    try:
        return load_config(path)
    except ConfigError as error:
        click.echo(str(error), err=True)
        sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """LiteMesh: an API gateway and edge proxy."""


@main.command()
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), help="gateway.yaml to serve.")
@click.option("--listen", help="With --upstream: address to listen on (host:port), no config file needed.")
@click.option("--upstream", help="With --listen: proxy every request to this host:port.")
@click.option("--workers", default=None, help="Worker processes: a number or 'auto' (overrides server.workers).")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
def run(config_path: str | None, listen: str | None, upstream: str | None, workers: str | None, log_level: str) -> None:
    """Run the gateway."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if config_path:
        config = _load_or_exit(config_path)
        reload = lambda: load_config(config_path)  # noqa: E731 - SIGHUP re-reads the same file
    elif listen and upstream:
        try:
            config = _quick_config(listen, upstream)
        except ConfigError as error:
            raise click.UsageError(str(error)) from None
        reload = None
    else:
        raise click.UsageError("give -c FILE, or --listen and --upstream")
    count = _worker_count(workers if workers is not None else config.server.workers)
    _serve(config, count, reload)


def _worker_count(value: object) -> int:
    if value in ("auto", None):
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        count = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise click.BadParameter("workers must be a number or 'auto'") from None
    if count < 1:
        raise click.BadParameter("workers must be at least 1")
    return count


def _serve(config: GatewayConfig, workers: int, reload) -> None:  # type: ignore[no-untyped-def]
    from .server.worker import run_worker

    def announce(worker) -> None:  # type: ignore[no-untyped-def]
        routes = len(config.routes)
        for listener, port in zip(config.listeners, worker.ports):
            click.echo(f"litemesh {__version__} listening on http://{listener.host}:{port} "
                       f"({routes} routes, pid {os.getpid()})", err=True)

    if workers == 1:
        run_worker(config, reload=reload, on_ready=announce)
        return
    # Several workers: each binds its own SO_REUSEPORT socket.  (A supervising master with
    # restarts, shared memory and an admin API is the process model's own piece of work.)
    children = []
    for index in range(workers):
        pid = os.fork()
        if pid == 0:
            try:
                run_worker(config, reload=reload, on_ready=announce if index == 0 else None)
            finally:
                os._exit(0)
        children.append(pid)

    def forward(signum, _frame) -> None:  # type: ignore[no-untyped-def]
        for child in children:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(signum, forward)
    for child in children:
        while True:
            try:
                os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break


@main.command()
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False))
def check(config_path: str) -> None:
    """Validate a config file: every error with file, line and field; exit 1 if any."""
    config = _load_or_exit(config_path)
    click.echo(f"{config_path}: OK ({len(config.listeners)} listeners, {len(config.services)} services, "
               f"{len(config.routes)} routes)")


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

    click.echo(f"python {sys.version.split()[0]}, uvloop {uvloop.__version__}, httptools {httptools.__version__}")
    click.echo(f"extensions {'disabled by LITEMESH_NO_EXTENSIONS' if _ext.NO_EXTENSIONS else 'enabled'}")
    for name, compiled in sorted(_ext.STATUS.items()):
        click.echo(f"  {name}: {'compiled' if compiled else 'pure Python'}")


@main.command()
@click.option("-c", "--config", "config_path", default=str(EXAMPLE_CONFIG_PATH), show_default=True,
              type=click.Path(dir_okay=False))
def demo(config_path: str) -> None:
    """Start the demo upstreams and the gateway on the example config, and print URLs to try."""
    from .demo.upstreams import run_demo_upstreams

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = _load_or_exit(config_path)
    upstreams = multiprocessing.get_context("fork").Process(target=run_demo_upstreams, daemon=True)
    upstreams.start()
    listener = config.listeners[0]
    base = f"http://{listener.host}:{listener.port}"
    click.echo(f"\nLiteMesh demo ({Path(config_path).name}); demo upstreams on 127.0.0.1:9101-9103. Try:\n"
               f"  curl -i {base}/api/users            # strip_prefix, round robin over users-1/users-2\n"
               f"  curl -i {base}/api/users/42         # exact route with a {{id}} param, rewritten to /users/42\n"
               f"  curl -i -X POST -d '{{\"item\":1}}' {base}/api/orders\n"
               f"  curl -i {base}/healthz              # answered by the gateway itself\n"
               f"  curl -i {base}/internal/x           # 403 from a deny route\n"
               f"  curl -i {base}/docs/v1              # 301 redirect\n"
               f"  curl -i {base}/nope                 # 404 as JSON\n"
               "Ctrl-C stops.\n", err=True)
    try:
        _serve(config, _worker_count(config.server.workers), lambda: load_config(config_path))
    finally:
        upstreams.terminate()
        upstreams.join(2)
