"""Data flows one way: server → proxy core → filters → http (and the shared helpers below them).

Each package may import (or cimport, in a .pxd) only from the packages below it, at run time or
for type checking alike: a filter never reaches the exchange, the protocol or a transport, and the
proxy core never reaches the server that drives it.
"""
from __future__ import annotations

import ast
import pathlib
import re

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "litemesh"
#: what each layer may not import
FORBIDDEN = {
    "http": {"filters", "proxy", "server", "master", "admin", "shm"},
    "filters": {"proxy", "server", "master", "admin", "shm"},
    "proxy": {"server", "master", "admin"},
    "server": {"admin"},  # (a worker speaks the master's control protocol: master.control)
}
_CIMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+cimport|cimport\s+([\w.]+))", re.MULTILINE)


def _imported_packages(path: pathlib.Path, layer: str) -> set[str]:
    """The litemesh sub-packages a module or .pxd names in its imports."""
    modules: set[str] = set()
    if path.suffix == ".pxd":
        modules = {a or b for a, b in _CIMPORT.findall(path.read_text())}
    else:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    modules.add(node.module or "")
                else:  # relative: resolve against litemesh.<layer>
                    base = ".".join(["litemesh", layer][:max(0, 3 - node.level)])
                    if node.module:
                        modules.add(f"{base}.{node.module}")
                    else:  # "from .. import server": the names are modules
                        modules.update(f"{base}.{alias.name}" for alias in node.names)
    return {name.split(".")[1] for name in modules if name.startswith("litemesh.") and name.count(".") >= 1}


def _sources(layer: str) -> list[pathlib.Path]:
    return sorted(p for p in (PACKAGE / layer).iterdir() if p.suffix in (".py", ".pxd"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    wrong = {
        f"{path.relative_to(PACKAGE.parent)} imports litemesh.{package}"
        for path in _sources(layer)
        for package in _imported_packages(path, layer) & FORBIDDEN[layer]
    }
    assert not wrong, sorted(wrong)


def test_the_rule_sees_relative_imports_and_cimports(tmp_path: pathlib.Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from ..proxy.exchange import Exchange\nfrom . import context\nimport litemesh.server.protocol\n"
                      "from .. import admin\n")
    assert _imported_packages(module, "filters") == {"proxy", "filters", "server", "admin"}
    declarations = tmp_path / "m.pxd"
    declarations.write_text("from litemesh.server.protocol cimport DownstreamProtocol\n")
    assert _imported_packages(declarations, "proxy") == {"server"}
