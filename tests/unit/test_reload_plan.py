"""Which config fields a reload applies, which the master applies, which need a restart."""
from __future__ import annotations

import msgspec

from litemesh.config import GatewayConfig, load_config_text
from litemesh.master.reload_plan import LIVE, MASTER, RESTART, RULES, _derived_fields, plan_reload, rule

BASE = "listeners: [{address: '127.0.0.1:18080'}]\n"


def _config(text: str = "") -> GatewayConfig:
    return load_config_text(BASE + text, "<test>", env={})


def test_every_config_field_has_a_reload_rule() -> None:
    """A new field must be classified here (live, applied by the master, or restart-only); until it
    is, a reload reports it as needing a restart rather than guessing."""
    missing = []
    for name in GatewayConfig.__struct_fields__:
        if name in RULES:
            continue
        section = getattr(GatewayConfig(), name)
        assert isinstance(section, msgspec.Struct), f"top-level field {name!r} has no rule"
        for sub in type(section).__struct_fields__:
            if sub not in _derived_fields(type(section)) and f"{name}.{sub}" not in RULES:
                missing.append(f"{name}.{sub}")
    assert missing == [], f"classify these in litemesh/master/reload_plan.py RULES: {missing}"
    assert set(RULES.values()) <= {LIVE, MASTER, RESTART}


def test_unknown_fields_default_to_restart() -> None:
    assert rule("server.some_future_setting") == RESTART
    assert rule("routes") == LIVE


def test_live_changes_need_nothing_from_the_master() -> None:
    plan = plan_reload(_config(), _config("routes: [{name: r, paths: [/], respond: {status: 204}}]\n"
                                          "server: {via: edge}\ntimeouts: {drain: 1s}\n"))
    assert (plan.master, plan.restart, plan.overridden) == ([], [], [])
    assert plan.config.server.via == "edge"


def test_restart_only_fields_keep_their_running_value_and_are_reported() -> None:
    running = _config()
    plan = plan_reload(running, _config("server: {log_file: /var/log/gw.log}\n"
                                        "admin: {address: '127.0.0.1:19999'}\n"))
    assert [(c.field, c.running, c.file) for c in plan.restart] == [
        ("server.log_file", "", "/var/log/gw.log"), ("admin.address", "127.0.0.1:9901", "127.0.0.1:19999")]
    # what runs stays what /status shows: address and the host/port derived from it
    assert plan.config.admin == running.admin
    assert plan.config.server.log_file == ""


def test_master_fields_and_command_line_overrides() -> None:
    plan = plan_reload(_config("server: {workers: 1}\n"),
                       _config("server: {workers: 3, cpu_affinity: true}\n"),
                       {"server.cpu_affinity": ("--no-cpu-affinity", False)})
    assert [(c.field, c.running, c.file) for c in plan.master] == [("server.workers", 1, 3)]
    assert [(c.field, c.running, c.file, option) for c, option in plan.overridden] == [
        ("server.cpu_affinity", False, True, "--no-cpu-affinity")]
    assert plan.config.server.cpu_affinity is False and plan.config.server.workers == 3


def test_tokens_are_never_shown() -> None:
    plan = plan_reload(_config(), _config("admin: {token: 'secret-secret-secret'}\n"))
    assert [c.as_json() for c in plan.master] == [{"field": "admin.token", "running": None, "file": "<hidden>"}]
