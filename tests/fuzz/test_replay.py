"""Every saved fuzz input (seed corpus and crash reproducers) replayed through its target's check:
deterministic and fast, so ``make test`` guards what fuzzing found without running a fuzzer."""
from __future__ import annotations

import pytest

from tests.fuzz.targets import TARGETS, inputs, load

CASES = [(name, path) for name in TARGETS for path in inputs(name)]


@pytest.mark.parametrize("name,path", CASES, ids=[f"{n}/{p.parent.name}/{p.name}" for n, p in CASES])
def test_saved_input(name, path):  # type: ignore[no-untyped-def]
    load(name).check(path.read_bytes())


def test_every_target_has_seeds():
    for name in TARGETS:
        assert any(p.parent.name == name for p in inputs(name)), f"no seed corpus for {name}"
