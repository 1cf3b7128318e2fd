"""Shared memory between the master and its workers: per-worker metric slots and in-flight counters.

``layout`` defines the bytes, ``segment`` creates/attaches/reads it, ``view`` picks the compiled or
pure writer, ``names`` assigns stable slots to route and target names, ``prometheus`` renders it.
"""
from .layout import Layout
from .names import Assignment, SlotNames
from .segment import RouteTotals, Segment, Totals, WorkerStats
from .view import WorkerMetrics

__all__ = [
    "Segment", "WorkerMetrics",  # the master creates, workers attach and write
    "Totals", "RouteTotals", "WorkerStats",  # what the master reads
    "SlotNames", "Assignment",  # stable name -> slot
    "Layout",
]
