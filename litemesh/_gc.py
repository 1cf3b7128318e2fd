"""Building a large config allocates ~10^6 long-lived objects; the cyclic GC would re-scan them
dozens of times while they are being made (over half of a 10,000-route load).  Pause it instead."""
from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic collector for the block (re-entrant: only the outermost re-enables)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def freeze_startup_heap() -> None:
    """Move everything built so far (modules, the config snapshot) out of the collector's reach, so
    a full collection while serving does not re-scan a large route table (a latency spike)."""
    gc.collect()
    gc.freeze()


def freeze_new_snapshot() -> None:
    """After a reload: move the new snapshot out of the collector's reach too, without a full
    collection (that would pause the worker for a scan of the whole heap).  Snapshots hold no
    reference cycles, so the replaced one is still freed by reference counting once the last
    request on it finishes, frozen or not (tests/unit/test_snapshot.py checks the acyclicity)."""
    gc.freeze()
