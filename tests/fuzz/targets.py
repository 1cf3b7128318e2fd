"""The fuzz targets and where their inputs live.

A target is a module ``tests/fuzz/fuzz_<name>.py`` with one function, ``check(data: bytes) -> None``,
that returns for every input the code handles as designed and raises (AssertionError for a broken
invariant, anything else for a crash) on a finding.  The same function serves two masters:

* ``python tests/fuzz/fuzz_<name>.py [libFuzzer options] CORPUS...`` runs it under atheris
  (``main()`` below), coverage-guided; ``tests/fuzz/run.py`` (``make fuzz``) runs every target for a
  bounded time in both builds.
* ``tests/fuzz/test_replay.py`` feeds it every file of ``corpus/<name>/`` (small seeds, checked in)
  and ``crashes/<name>/`` (every reproducer a fuzzing run ever wrote, kept once fixed) as an
  ordinary test, so ``make test`` guards the findings without fuzzing.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
CRASHES = HERE / "crashes"

#: every target, by name: each module tests/fuzz/fuzz_<name>.py
TARGETS = tuple(sorted(path.stem[len("fuzz_"):] for path in HERE.glob("fuzz_*.py")))


def load(name: str) -> ModuleType:
    return importlib.import_module(f"tests.fuzz.fuzz_{name}")


def inputs(name: str) -> list[Path]:
    """The seed corpus and the crash reproducers of ``name``, in a stable order."""
    files: list[Path] = []
    for folder in (CORPUS / name, CRASHES / name):
        if folder.is_dir():
            files += sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return files


def main(check: Callable[[bytes], None]) -> None:
    """Run ``check`` under atheris with ``sys.argv`` as libFuzzer options and corpus folders."""
    import atheris

    atheris.Setup(sys.argv, check)
    atheris.Fuzz()
