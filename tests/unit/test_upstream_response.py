"""The upstream side of the request path, driven without sockets (tests/support/sansio.py): the exact
inputs the fuzzer found (issue 8), each whole and split at every byte."""
from __future__ import annotations

import json

import pytest

from tests.support.sansio import ProxyHarness

GET = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"


def _outcomes(response: bytes, request: bytes = GET) -> list[tuple]:
    """The outcome of ``response`` read whole, byte by byte, and split at every position."""
    splits: list[list[int] | None] = [None, [1] * len(response)]
    splits += [[at] for at in range(1, len(response))]
    results = []
    for pieces in splits:
        harness = ProxyHarness()
        harness.send(request)
        harness.respond(response, pieces)
        results.append(harness.outcome())
    return results


def _one(response: bytes, request: bytes = GET) -> ProxyHarness:
    harness = ProxyHarness()
    harness.send(request)
    harness.respond(response)
    return harness


def test_101_after_a_complete_response_in_the_same_read_never_tunnels():
    response = (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!HTTP/1.1 101 Switching Protocols\r\n"
                b"Connection: upgrade\r\nUpgrade: x\r\n\r\nRAW")
    outcomes = _outcomes(response)
    assert all(outcome == outcomes[0] for outcome in outcomes)
    client, client_closed, tunnelled, pooled = outcomes[0]
    assert client.startswith(b"HTTP/1.1 200 OK\r\n") and client.endswith(b"\r\n\r\n!")
    assert not tunnelled and not pooled and not client_closed
    assert b"RAW" not in client


@pytest.mark.parametrize("status", [b"000", b"099", b"600", b"999"])
def test_status_outside_100_599_is_502(status):
    harness = _one(b"HTTP/1.1 " + status + b"\r\n\r\n!")
    head, body = harness.to_client.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert json.loads(body)["status"] == 502  # the JSON answer and nothing else: no raw upstream byte
    assert not harness.upstream_pooled


@pytest.mark.parametrize("rest", [b"\x00garbage", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", b"HTTP/1.1 2"])
def test_bytes_after_a_complete_response_end_it_normally_whatever_the_split(rest):
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + rest
    outcomes = _outcomes(response)
    assert all(outcome == outcomes[0] for outcome in outcomes)
    client, client_closed, tunnelled, pooled = outcomes[0]
    assert client.startswith(b"HTTP/1.1 200 OK\r\n") and client.endswith(b"\r\n\r\nok")
    assert not pooled  # a connection that sent more than the response is closed


@pytest.mark.parametrize("reason", [b"O\x00K", b"\x01", b"Fine\x7f", b"A\x1bB"])
def test_control_characters_never_reach_the_client_in_the_reason_phrase(reason):
    harness = _one(b"HTTP/1.1 200 " + reason + b"\r\nContent-Length: 0\r\n\r\n")
    assert harness.to_client.startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_clean_custom_reason_phrase_is_kept():
    harness = _one(b"HTTP/1.1 200 All Good\r\nContent-Length: 0\r\n\r\n")
    assert harness.to_client.startswith(b"HTTP/1.1 200 All Good\r\n")


def test_upgrade_request_with_a_body_goes_upstream_as_a_plain_request_with_its_body():
    harness = ProxyHarness()
    harness.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: x\r\nContent-Length: 3\r\n\r\nabcRAW")
    sent = harness.sent_upstream
    assert sent.endswith(b"\r\n\r\nabc") and b"RAW" not in sent
    assert b"upgrade" not in sent.lower()


@pytest.mark.parametrize("interim", [b"100 Continue", b"102 Processing", b"199 Whatever"])
def test_an_interim_response_with_a_body_is_502_and_the_body_never_reaches_the_client(interim):
    harness = _one(b"HTTP/1.1 " + interim + b"\r\nContent-Length: 2\r\n\r\nok")
    head, body = harness.to_client.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 502 Bad Gateway\r\n") and json.loads(body)["status"] == 502


WS_REQUEST = (b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


@pytest.mark.parametrize("connection", [b"Connection:&Upgrade\r\n", b"", b"Connection: close\r\n"])
def test_a_101_without_connection_upgrade_is_502_and_the_client_never_sees_a_101(connection):
    harness = _one(b"HTTP/1.1 101 Switching Protocols\r\n" + connection + b"Upgrade: websocket\r\n\r\nFRAMES",
                   WS_REQUEST)
    assert harness.to_client.startswith(b"HTTP/1.1 502 Bad Gateway\r\n") and not harness.tunnelled


def test_a_proper_101_is_tunnelled_whatever_the_split():
    response = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nFRAMES"
    outcomes = _outcomes(response, WS_REQUEST)
    assert all(outcome == outcomes[0] for outcome in outcomes)
    client, _closed, tunnelled, _pooled = outcomes[0]
    assert tunnelled and client.startswith(b"HTTP/1.1 101 ") and client.endswith(b"\r\n\r\nFRAMES")


@pytest.mark.parametrize("upgrade", [b", websocket", b"websocket ,", b" ,,websocket, "])
def test_a_101_naming_its_protocol_among_empty_list_elements_is_tunnelled_with_the_token_alone(upgrade):
    # found by the 10-minute fuzz run (crash-be947ff7...): the client was sent "Upgrade: , websocket"
    response = (b"HTTP/1.1 101 s\r\nSec-WeCSocket-Accept: x\r\nConnection: Upgrade\r\nUpgrade:" + upgrade
                + b"\r\n\r\nFRA")
    outcomes = _outcomes(response, WS_REQUEST)
    assert all(outcome == outcomes[0] for outcome in outcomes)
    client, _closed, tunnelled, _pooled = outcomes[0]
    head, _, rest = client.partition(b"\r\n\r\n")
    assert tunnelled and head.startswith(b"HTTP/1.1 101 ") and rest == b"FRA"
    assert b"\r\nUpgrade: websocket\r\n" in head + b"\r\n"


HEAD = b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n"


@pytest.mark.parametrize("framing", [b"Transfer-Encoding: chunked", b"Content-Length: 5"])
@pytest.mark.parametrize("after", [b"\n\r\n", b"\r\n", b"\r\n\r\n"])
def test_empty_lines_after_a_response_to_head_keep_the_connection_whatever_the_split(framing, after):
    # found by the final fuzz run: llhttp read the empty lines after the head as the body HEAD never
    # gets (a 502-free close in one read, a pooled connection when split)
    outcomes = _outcomes(b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n\r\n" + after, HEAD)
    assert all(outcome == outcomes[0] for outcome in outcomes)
    client, client_closed, tunnelled, pooled = outcomes[0]
    assert client.startswith(b"HTTP/1.1 200 OK\r\n") and client.endswith(b"\r\n\r\n")
    assert pooled and not client_closed and not tunnelled


@pytest.mark.parametrize("after", [b"hello", b"\r\nHTTP/1.1 200 OK\r\n\r\n"])
def test_bytes_after_a_response_to_head_close_the_connection_whatever_the_split(after):
    outcomes = _outcomes(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + after, HEAD)
    assert all(outcome == outcomes[0] for outcome in outcomes)
    client, client_closed, tunnelled, pooled = outcomes[0]
    assert client.startswith(b"HTTP/1.1 200 OK\r\n") and client.endswith(b"Content-Length: 5\r\n\r\n")
    assert not pooled


@pytest.mark.parametrize("pieces", [None, "bytes"])
def test_response_fields_pass_in_order_and_only_hop_by_hop_ones_are_cut(pieces):
    response = (b"HTTP/1.1 200 OK\r\nServer: s\r\nDate: Tue, 15 Nov 1994 08:12:31 GMT\r\nConnection: keep-alive\r\n"
                b"Content-Type: text/plain\r\nKeep-Alive: timeout=5\r\nX-A: 1\r\nContent-Length: 2\r\n"
                b"Proxy-Authenticate: Basic\r\nX-B:  2 \r\n\r\nok")
    harness = ProxyHarness()
    harness.send(GET)
    harness.respond(response, [1] * len(response) if pieces else None)
    head, body = bytes(harness.client_transport.written).split(b"\r\n\r\n", 1)
    assert body == b"ok"
    assert head.split(b"\r\n") == [
        b"HTTP/1.1 200 OK", b"Server: s", b"Date: Tue, 15 Nov 1994 08:12:31 GMT", b"Content-Type: text/plain",
        b"X-A: 1", b"Content-Length: 2", b"X-B:  2 ",
    ]
    assert harness.upstream_pooled


def test_fields_named_in_connection_are_cut_too():
    harness = _one(b"HTTP/1.1 200 OK\r\nConnection: X-Secret, keep-alive\r\nX-Secret: s\r\nX-Kept: k\r\n"
                   b"Content-Length: 0\r\n\r\n")
    head = bytes(harness.client_transport.written).split(b"\r\n\r\n", 1)[0].lower()
    assert b"x-secret" not in head and b"connection: keep-alive" not in head and b"\r\nx-kept: k" in head
    assert b"\r\ncontent-length: 0" in head and b"\r\ndate: " in head  # a Date is added when the upstream sent none


def test_a_204_loses_its_content_length_and_a_304_keeps_it():
    for status, kept in ((b"204 No Content", False), (b"304 Not Modified", True)):
        harness = _one(b"HTTP/1.1 " + status + b"\r\nContent-Length: 7\r\nETag: e\r\n\r\n")
        head = bytes(harness.client_transport.written).split(b"\r\n\r\n", 1)[0]
        assert (b"\r\nContent-Length: 7" in head) is kept and b"\r\nETag: e" in head
        assert b"Transfer-Encoding" not in head
