"""Lazily checked deadlines on a timer wheel: one loop timer for every connection of a worker.

Protocols refresh their deadlines on every read, and most never fire (a keep-alive connection is
reused long before its idle timeout).  So moving a deadline later costs two float stores, and no
connection holds a loop timer of its own: a :class:`Deadline` sits in a slot of its
:class:`TimerWheel` (``RESOLUTION`` seconds wide); the wheel's one loop timer fires at its earliest
occupied slot, and a deadline found there that was moved later goes to a later slot then.  A
deadline fires at most ``RESOLUTION`` after its time, never before it.  An idle connection costs a
reference in a slot's list, not a loop timer (about 0.6 KiB each under uvloop).
"""
from __future__ import annotations

import asyncio
import heapq
from typing import Callable, Optional

#: seconds per slot: how late after its time a deadline may fire
RESOLUTION = 0.01
SLOT_SECONDS = RESOLUTION  # (the same, seen from Python: compiled, RESOLUTION is a C constant)


class TimerWheel:
    """The deadlines of one event loop (a worker's connections, a pool's upstream connections)."""

    __slots__ = ("clock", "_loop", "_slots", "_keys", "_handle", "_armed")

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Optional[Callable[[], float]] = None) -> None:
        self._loop = loop
        self.clock = clock if clock is not None else loop.time  # (bound once, shared by every deadline)
        self._slots: dict[int, list[Deadline]] = {}  # slot number -> deadlines waiting in it
        self._keys: list[int] = []  # the occupied slot numbers, a heap
        self._handle: asyncio.TimerHandle | None = None
        self._armed = 0  # the slot the loop timer fires for (0: none)

    def add(self, deadline: "Deadline", when: float) -> int:
        """Put ``deadline`` in the first slot ending at or after ``when``; that slot's number."""
        key = int(when / RESOLUTION) + 1
        waiting = self._slots.get(key)
        if waiting is None:
            waiting = self._slots[key] = []
            heapq.heappush(self._keys, key)
        waiting.append(deadline)
        if not self._armed or key < self._armed:
            self._arm(key)
        return key

    def discard(self, deadline: "Deadline", key: int) -> None:
        """Take ``deadline`` out of slot ``key`` (its owner is closing: nothing keeps it then)."""
        waiting = self._slots.get(key)
        if waiting is not None:
            for index in range(len(waiting)):  # (a slot holds the few deadlines of 10 ms)
                if waiting[index] is deadline:
                    del waiting[index]
                    return

    def __len__(self) -> int:
        """Deadlines waiting in slots (some of them moved or cleared since)."""
        return sum(len(waiting) for waiting in self._slots.values())

    def _arm(self, key: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed = key
        self._handle = self._loop.call_at(key * RESOLUTION, self._tick)

    def _tick(self) -> None:
        self._handle = None
        self._armed = 0
        now = self.clock()
        keys = self._keys
        while keys and keys[0] * RESOLUTION <= now:
            key = heapq.heappop(keys)
            for deadline in self._slots.pop(key):
                deadline._due(key, now)
        if keys and keys[0] != self._armed:  # (a deadline moved to a later slot may have armed for it)
            self._arm(keys[0])


class Deadline:
    __slots__ = ("_wheel", "_callback", "_when", "_slot")

    def __init__(self, wheel: TimerWheel, callback: Callable[[], None]) -> None:
        self._wheel = wheel
        self._callback: Callable[[], None] | None = callback
        self._when = 0.0  # 0: disarmed
        self._slot = 0  # the wheel slot this deadline waits in (0: none); entries in other slots are stale

    def set(self, delay: float) -> None:
        """Fire ``callback`` ``delay`` seconds from now unless set again or cleared before."""
        wheel = self._wheel
        when = wheel.clock() + delay
        self._when = when
        if not self._slot or self._slot * RESOLUTION > when + RESOLUTION:  # not waiting, or too late
            self._slot = wheel.add(self, when)

    def clear(self) -> None:
        self._when = 0.0

    def cancel(self) -> None:
        """Disarm for good (the owner is closing): out of the wheel, and holding no owner."""
        if self._slot:
            self._wheel.discard(self, self._slot)
        self._when = 0.0
        self._slot = 0
        self._callback = None

    def _due(self, key: int, now: float) -> None:
        """The wheel reached slot ``key``, where this deadline waited (or used to)."""
        if key != self._slot:
            return  # a slot it left for an earlier one
        self._slot = 0
        when = self._when
        if not when:
            return
        if now < when:  # moved later meanwhile: wait in a later slot
            self._slot = self._wheel.add(self, when)
            return
        self._when = 0.0
        callback = self._callback
        if callback is not None:
            callback()
