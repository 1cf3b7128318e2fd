"""Suite-wide guard: a compiled module older than its source would test yesterday's code."""
from __future__ import annotations

import pathlib

import pytest

from litemesh import _ext

ROOT = pathlib.Path(_ext.__file__).parent


def stale_compiled_modules() -> list[str]:
    """Pure-Python-mode modules whose compiled extension predates their .py or .pxd."""
    stale = []
    for declarations in ROOT.rglob("*.pxd"):
        source = declarations.with_suffix(".py")
        for built in declarations.parent.glob(declarations.stem + ".*.so"):
            if source.exists() and built.stat().st_mtime < max(source.stat().st_mtime, declarations.stat().st_mtime):
                stale.append(str(source.relative_to(ROOT.parent)))
    return sorted(stale)


def pytest_sessionstart(session: pytest.Session) -> None:
    if _ext.NO_EXTENSIONS:
        return
    stale = stale_compiled_modules()
    if stale:
        pytest.exit(f"compiled modules older than their source: {', '.join(stale)}; "
                    "run `make compile` (or `python setup.py build_ext --inplace`)", returncode=4)
