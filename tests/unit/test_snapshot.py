"""Snapshot compilation: the sliced (reload) path builds exactly what the one-shot path builds."""
from __future__ import annotations

import asyncio
import json
import random

from litemesh.config import load_config_text
from litemesh.proxy import snapshot as snapshot_mod
from litemesh.proxy.pool import PoolRegistry
from litemesh.proxy.snapshot import compile_snapshot, compile_snapshot_sliced, target_key


def _config(routes: int):  # type: ignore[no-untyped-def]
    lines = ["services: [{name: s, targets: ['127.0.0.1:9', '[::1]:10']}]", "routes:"]
    for i in range(routes):
        lines.append(f"  - {{name: r{i}, paths: ['/v{i % 3}/svc{i}/{{id}}', '=/exact{i}'], service: s, priority: {i % 5}}}")
    lines.append("  - {name: all, paths: ['/'], respond: {status: 404}}")
    return load_config_text("\n".join(lines) + "\n")


def test_sliced_compile_matches_and_yields(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(snapshot_mod, "ROUTES_PER_SLICE", 7)
    config = _config(60)
    loop = asyncio.new_event_loop()
    try:
        slots = {f"r{i}": i + 1 for i in range(60)}
        one_shot = compile_snapshot(config, PoolRegistry(loop), 2, route_slots=slots)
        turns = 0

        async def other_task() -> None:  # counts how often the loop got control back
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        async def sliced_with_company():  # type: ignore[no-untyped-def]
            task = asyncio.ensure_future(other_task())
            result = await compile_snapshot_sliced(config, PoolRegistry(loop), 2, route_slots=slots)
            task.cancel()
            return result

        sliced = loop.run_until_complete(sliced_with_company())
    finally:
        loop.close()
    assert turns >= 60 // 7
    assert sliced.generation == one_shot.generation == 2
    for host, method, path in [("a", "GET", "/v1/svc7/42"), ("a", "GET", "/exact13"), ("a", "POST", "/nope"),
                               ("a", "GET", "/v0/svc0/x/y")]:
        a, b = one_shot.router.match(host, method, path), sliced.router.match(host, method, path)
        assert (a[0].route.name, a[1]) == (b[0].route.name, b[1])
        assert a[0].route.metric_slot == b[0].route.metric_slot
    assert one_shot.router.match("a", "GET", "/exact13")[0].route.metric_slot == 14


def test_target_slots_reach_targets() -> None:
    config = _config(1)
    loop = asyncio.new_event_loop()
    try:
        snap = compile_snapshot(config, PoolRegistry(loop), target_slots={target_key("s", "::1", 10): 5})
    finally:
        loop.close()
    slots = {t.address: t.inflight_slot for t in snap.services["s"].targets}
    assert slots == {"127.0.0.1:9": -1, "::1:10": 5}


def test_snapshots_hold_no_reference_cycles() -> None:
    """Workers gc.freeze() each new snapshot; that is leak-free only while dropping a snapshot
    frees it by reference counting alone."""
    import gc

    loop = asyncio.new_event_loop()
    try:
        pools = PoolRegistry(loop)
        config = _config(50)
        compile_snapshot(config, pools)  # warm caches shared across snapshots
        gc.collect()
        gc.disable()
        try:
            snap = compile_snapshot(config, pools, route_slots={"r1": 2})
            assert snap.router.match("a", "GET", "/exact1") is not None
            del snap
            assert gc.collect() == 0
        finally:
            gc.enable()
    finally:
        loop.close()


# --- what `litemesh check` accepts compiles (issue 8, point 11) ---------------------------------

ACCEPTED_EDGES = """\
services:
  - {name: s, targets: ['[fe80::1%eth0]:80', '127.0.0.1:9'], host_header: 'xn--caf-dma.example:8080'}
routes:
  - {name: accent, paths: ['/é/{id}', '=/caf%c3%a9', '/%7Euser'], respond: {status: 200, body: é,
     headers: {X-Name: "caf\\xe9", X-Tab: "a\\tb"}, content_type: "text/plain; charset=iso-8859-1"}}
  - {name: low, paths: [/low], service: s, priority: -9223372036854775808, rewrite: /ünï/x}
  - {name: high, paths: ['~^/r/(?P<n>é|x)$'], service: s, priority: 9223372036854775807}
  - {name: deep, paths: ['/DEEP', '/LONG'], respond: {status: 204}}
""".replace("DEEP", "a/" * 127 + "b").replace("LONG", "c" * 8191)


def _compiled(text: str):  # type: ignore[no-untyped-def]
    config = load_config_text(text, env={})
    loop = asyncio.new_event_loop()
    try:
        return compile_snapshot(config, PoolRegistry(loop))
    finally:
        loop.close()


def test_accepted_edge_values_compile_and_serve() -> None:
    snap = _compiled(ACCEPTED_EDGES)
    found = snap.router.match("h", "GET", "/%C3%A9/42")   # how a request for /é/42 is routed
    assert found is not None and found[0].route.name == "accent" and found[1] == {"id": "42"}
    assert snap.router.match("h", "GET", "/caf%C3%A9")[0].route.name == "accent"
    assert snap.router.match("h", "GET", "/~user")[0].route.name == "accent"
    reply = snap.router.match("h", "GET", "/~user")[0].route.reply
    assert (b"X-Name", b"caf\xe9") in reply.headers and reply.body == "é".encode()
    assert snap.router.match("h", "GET", "/low")[0].request_filters[0].parts == [b"/%C3%BCn%C3%AF/x"]
    assert [t.host_header for t in snap.services["s"].targets] == [b"xn--caf-dma.example:8080"] * 2


def test_every_path_the_loader_accepts_compiles_in_both_twins() -> None:
    """Random paths over an alphabet of everything that matters to either rule set; each one the
    loader accepts must go into both trie twins (with the loader's spelling) without an error."""
    from litemesh import _ext
    from litemesh.algo.trie import RouteTrieC, RouteTriePy
    from litemesh.config import ConfigError

    twins = [RouteTriePy] + ([] if _ext.NO_EXTENSIONS or RouteTrieC is None else [RouteTrieC])
    alphabet = list("/ab{}%.~=-_|\"\\^`<>[]:@!$&'()*+,;?# \t") + ["é", "%c3", "%2e", "%00", "{x}", "{1}", "//", "€"]
    rng = random.Random(8)
    accepted = 0
    for _ in range(1500):
        path = rng.choice(["/", "=/", "~", ""]) + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        text = "routes:\n  - name: r\n    respond: {status: 200}\n    paths: [%s]\n" % json.dumps(path)
        try:
            config = load_config_text(text, env={})
        except ConfigError:
            continue
        accepted += 1
        for twin in twins:
            twin().add(0, config.routes[0].paths[0])   # raises RoutePatternError if the rules disagree
    assert accepted > 100
