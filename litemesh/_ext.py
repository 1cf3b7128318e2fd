"""The one place that decides whether compiled code may be used.

Compiled code comes in two kinds:

* **twins**: ``litemesh/_speedups/<name>.pyx`` with a pure-Python twin elsewhere; modules call
  :func:`load` and fall back on ImportError;
* **pure-Python mode**: a module ``x.py`` with an augmenting ``x.pxd`` beside it (Cython's pure-Python
  mode) is compiled by setup.py from that same source into an extension of the same name, which
  Python imports before the ``.py``.

``LITEMESH_NO_EXTENSIONS=1`` forces every module to its pure-Python form: the twins are not loaded,
and :func:`prefer_sources` makes the import system take ``x.py`` over the compiled ``x``.  Nothing else
reads the variable.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import pathlib
import sys
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


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds a litemesh module's ``.py`` even where a compiled module of the same name is beside it."""

    def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
        if not fullname.startswith("litemesh.") or fullname.startswith("litemesh._speedups."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            return spec
        source = pathlib.Path(spec.origin).with_name(fullname.rpartition(".")[2] + ".py")  # type: ignore[arg-type]
        return importlib.util.spec_from_file_location(fullname, source) if source.exists() else spec


def prefer_sources() -> None:
    """In the pure build, import litemesh modules from their ``.py`` (before any of them is imported)."""
    if NO_EXTENSIONS and not any(isinstance(finder, _SourcesFirst) for finder in sys.meta_path):
        # just before the path finder it stands in for: a finder placed ahead of it on purpose
        # (atheris's, which instruments the source it is given) still sees the .py
        position = next((index for index, finder in enumerate(sys.meta_path)
                         if finder is importlib.machinery.PathFinder), len(sys.meta_path))
        sys.meta_path.insert(position, _SourcesFirst())


def pure_mode_modules() -> dict[str, bool]:
    """Every pure-Python-mode module (a ``.py`` with a ``.pxd`` beside it), and whether it runs compiled."""
    root = pathlib.Path(__file__).parent
    status: dict[str, bool] = {}
    for declarations in sorted(root.rglob("*.pxd")):
        source = declarations.with_suffix(".py")
        if not source.exists():
            continue
        name = ".".join(("litemesh", *source.relative_to(root).with_suffix("").parts))
        module = importlib.import_module(name)
        status[name] = not (module.__file__ or "").endswith(".py")
    return status
