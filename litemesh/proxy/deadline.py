"""A lazily re-armed timer: moving a deadline later costs two float stores, not a timer cancel.

Protocols refresh their deadlines on every read; cancelling and re-creating a loop timer each time
would dominate small requests.  Instead one timer stays scheduled, and when it fires early (the
deadline moved) it re-schedules itself for the new time.
"""
from __future__ import annotations

import asyncio
from typing import Callable, Optional


class Deadline:
    __slots__ = ("_loop", "_clock", "_callback", "_when", "_handle", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None],
                 clock: Optional[Callable[[], float]] = None) -> None:
        """``clock``: ``loop.time`` bound once and shared (the worker's), else bound here."""
        self._loop = loop
        self._clock = clock if clock is not None else loop.time
        self._callback = callback
        self._when = 0.0  # 0: disarmed
        self._handle: asyncio.TimerHandle | None = None
        self._scheduled = 0.0

    def set(self, delay: float) -> None:
        """Fire ``callback`` ``delay`` seconds from now unless set again or cleared before."""
        when = self._clock() + delay
        self._when = when
        if self._handle is None:
            self._scheduled = when
            self._handle = self._loop.call_at(when, self._fire)
        elif self._scheduled > when:
            self._handle.cancel()
            self._scheduled = when
            self._handle = self._loop.call_at(when, self._fire)

    def clear(self) -> None:
        self._when = 0.0

    def cancel(self) -> None:
        """Drop the timer for good (the owner is closing)."""
        self._when = 0.0
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        when = self._when
        if not when:
            return
        if self._clock() < when:
            self._scheduled = when
            self._handle = self._loop.call_at(when, self._fire)
            return
        self._when = 0.0
        self._callback()
