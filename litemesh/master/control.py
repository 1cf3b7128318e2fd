"""Messages between the master and its workers over a Unix socketpair.

Frames are a 4-byte big-endian length and a msgpack body (msgspec, typed): a 10,000-route config
encodes in ~4 ms and decodes straight into the frozen config structs, with no pickle involved.
"""
from __future__ import annotations

import asyncio
import struct
from typing import Callable, Union

import msgspec

from ..config import GatewayConfig

MAX_FRAME = 256 << 20
_LENGTH = struct.Struct(">I")


class ApplyConfig(msgspec.Struct, tag="config", frozen=True):
    """Master -> worker: serve this config from now on (the first one starts the worker)."""

    generation: int
    config: GatewayConfig
    route_slots: dict[str, int]  # route name -> metrics slot in shared memory
    target_slots: dict[str, int]  # "service/host:port" -> in-flight counter slot


class Ready(msgspec.Struct, tag="ready", frozen=True):
    """Worker -> master: listening and serving ``generation``."""

    pid: int
    generation: int
    ports: list[int]


class Applied(msgspec.Struct, tag="applied", frozen=True):
    """Worker -> master: ``generation`` is live (or could not be applied: ``error``)."""

    generation: int
    error: str | None = None


class StartFailed(msgspec.Struct, tag="start_failed", frozen=True):
    """Worker -> master, instead of ``Ready``: this worker cannot serve its first config (a listener
    address is taken, the config cannot be applied) and exits.  Only this report fails a start-up;
    a worker that dies without it (killed, crashed) is restarted like at any other time."""

    pid: int
    error: str


Message = Union[ApplyConfig, Ready, Applied, StartFailed]
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


def decode(body: bytes) -> Message:
    return _decoder.decode(body)


def encode(message: Message) -> bytes:
    body = _encoder.encode(message)
    return _LENGTH.pack(len(body)) + body


class ControlProtocol(asyncio.Protocol):
    """Frames in, decoded messages out to ``on_message``; ``on_lost`` when the peer is gone."""

    def __init__(self, on_message: Callable[[Message], None], on_lost: Callable[[], None]) -> None:
        self._on_message = on_message
        self._on_lost = on_lost
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 4:
            (length,) = _LENGTH.unpack_from(buffer)
            if length > MAX_FRAME:
                raise ValueError(f"control frame of {length} bytes")
            if len(buffer) < 4 + length:
                return
            body = bytes(buffer[4:4 + length])
            del buffer[:4 + length]
            self._on_message(decode(body))

    def send(self, message: Message) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode(message))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._on_lost()
