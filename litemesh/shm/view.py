"""The one switch point between the compiled segment view and its pure-Python twin.

``impl`` is the module :class:`~litemesh.shm.segment.Segment` uses: ``litemesh._speedups.shm``
when it was built and extensions are allowed, else :mod:`litemesh.shm._view_py`. Both export
``WorkerMetrics``, ``atomic_add`` and ``accumulate`` with the same signatures. ``PY`` and ``C``
(None if unavailable) are for tests and benchmarks.
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Optional

from .. import _ext
from . import _view_py

PY: ModuleType = _view_py
C: Optional[ModuleType] = _ext.load("shm")
impl: ModuleType = C if C is not None else PY

WorkerMetricsPy = _view_py.WorkerMetrics
WorkerMetricsC = C.WorkerMetrics if C is not None else None
if TYPE_CHECKING:  # the pure twin is the typed reference; both have the same methods
    from ._view_py import WorkerMetrics as WorkerMetrics
else:
    WorkerMetrics = impl.WorkerMetrics
