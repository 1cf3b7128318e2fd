"""Which build runs: the compiled modules, or their pure-Python sources (LITEMESH_NO_EXTENSIONS)."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys

from litemesh import _ext

PROBE = """
import importlib.machinery, sys
import litemesh
from litemesh import _ext
finders = sys.meta_path
first = next(i for i, f in enumerate(finders) if isinstance(f, _ext._SourcesFirst)) if _ext.NO_EXTENSIONS else -1
print(first, finders.index(importlib.machinery.PathFinder))
for name, compiled in _ext.pure_mode_modules().items():
    print(name, compiled)
"""


def probe(no_extensions: bool) -> tuple[tuple[int, int], dict[str, bool]]:
    env = dict(os.environ)
    env.pop("LITEMESH_NO_EXTENSIONS", None)
    if no_extensions:
        env["LITEMESH_NO_EXTENSIONS"] = "1"
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True).stdout
    first, *rows = out.splitlines()
    positions = tuple(int(value) for value in first.split())
    return positions, {name: compiled == "True" for name, compiled in (row.split() for row in rows)}  # type: ignore[return-value]


def test_pure_build_imports_every_module_from_its_source():
    (finder, path_finder), modules = probe(no_extensions=True)
    assert "litemesh.proxy.exchange" in modules and "litemesh.http.request" in modules
    assert not any(modules.values()), modules
    # just before the path finder: an import hook placed ahead of it on purpose (atheris, which
    # instruments the sources of the pure build for fuzzing) still sees the sources
    assert finder == path_finder - 1


def test_compiled_build_runs_what_was_built():
    _, modules = probe(no_extensions=False)
    for name, compiled in modules.items():
        built = any(importlib.machinery.EXTENSION_SUFFIXES[0] in entry.name for entry in
                    os.scandir(os.path.dirname(importlib.util.find_spec(name).origin))  # type: ignore[arg-type]
                    if entry.name.startswith(name.rpartition(".")[2] + "."))
        assert compiled == built, name
