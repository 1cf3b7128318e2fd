"""The one place that decides whether compiled speedups may be used.

``LITEMESH_NO_EXTENSIONS=1`` forces every accelerated module to its pure-Python twin.
Nothing else reads the variable; modules call :func:`load` and fall back on ImportError.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

NO_EXTENSIONS: bool = os.environ.get("LITEMESH_NO_EXTENSIONS", "").strip().lower() not in ("", "0", "false", "no")

#: compiled module name -> True when the compiled build was loaded (for ``litemesh version --verbose``)
STATUS: dict[str, bool] = {}


def load(name: str) -> ModuleType | None:
    """Import ``litemesh._speedups.<name>`` unless extensions are disabled or it was not built."""
    if NO_EXTENSIONS:
        STATUS[name] = False
        return None
    try:
        module = importlib.import_module(f"litemesh._speedups.{name}")
    except ImportError:
        STATUS[name] = False
        return None
    STATUS[name] = True
    return module
