"""Stable name -> slot assignment for the segment's route and target slots, kept by the master.

A counter slot must keep meaning the same thing across config reloads, or Prometheus sees a
route's totals jump. So:

1. A name keeps its slot for as long as it exists, and gets the same slot back if it returns
   before the slot was reused (a rename back and forth does not lose history).
2. New names take never-used slots first (in the order given, so the result is deterministic).
3. Only when those run out is a *retired* slot (its name left the config) reused, oldest first;
   ``reset(slot)`` (e.g. ``Segment.clear_route``) zeroes its counters before the new name gets it.
4. When nothing is left, a name maps to slot 0, shared with "no route matched", and is listed
   in :attr:`Assignment.overflow` so the master can report it.

Slot 0 is never assigned. For targets pass no ``reset``: in-flight gauges return to zero by
themselves, and zeroing one under live requests would make it go negative.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Callable, Optional

__all__ = ["SlotNames", "Assignment"]


@dataclass(frozen=True)
class Assignment:
    slots: Mapping[str, int]  # every name passed to assign(), overflow names -> 0
    overflow: tuple[str, ...]  # names that did not fit, in the order given


class SlotNames:
    """Slots 1..capacity-1 handed out to names; see the module docstring for the rules."""

    def __init__(self, capacity: int, reset: Optional[Callable[[int], None]] = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1 (slot 0 is reserved)")
        self.capacity = capacity
        self._reset = reset
        self._slots: dict[str, int] = {}  # live and retired names -> slot
        self._live: dict[str, None] = {}  # ordered sets
        self._retired: dict[str, None] = {}  # oldest retirement first
        self._next = 1  # slots [_next, capacity) were never used

    def assign(self, names: Iterable[str]) -> Assignment:
        """Make ``names`` the live set (duplicates ignored) and return every name's slot."""
        wanted = dict.fromkeys(names)
        for name in [name for name in self._live if name not in wanted]:
            del self._live[name]
            self._retired[name] = None
        for name in wanted:  # returning names first, so a new name cannot take their slot
            if name in self._retired:
                del self._retired[name]
                self._live[name] = None
        overflow: list[str] = []
        for name in wanted:
            if name not in self._slots:
                slot = self._take()
                if slot:
                    self._slots[name] = slot
                    self._live[name] = None
                else:
                    overflow.append(name)
        return Assignment({name: self._slots.get(name, 0) for name in wanted}, tuple(overflow))

    def _take(self) -> int:
        if self._next < self.capacity:
            self._next += 1
            return self._next - 1
        if self._retired:
            name = next(iter(self._retired))
            del self._retired[name]
            slot = self._slots.pop(name)
            if self._reset is not None:
                self._reset(slot)
            return slot
        return 0

    def __getitem__(self, name: str) -> int:
        """The slot of a live name; 0 for an unknown, retired or overflowed one."""
        return self._slots[name] if name in self._live else 0

    def by_slot(self) -> dict[int, str]:
        """slot -> name for every slot holding counters: live names and retired ones not yet reused.

        Pass this to ``prometheus.render`` so a removed route's totals stay labelled until its
        slot is reused.
        """
        return {slot: name for name, slot in self._slots.items()}

    def live(self) -> dict[str, int]:
        """name -> slot of the live names."""
        return {name: self._slots[name] for name in self._live}
