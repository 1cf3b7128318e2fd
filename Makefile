# LiteMesh developer commands.  `make run` and `make test` work on a fresh machine: they create
# .venv, install the package with its Cython speedups compiled, and then run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTEST_ARGS ?=

.PHONY: all install compile debug run test test-compiled test-pure test-stress fuzz bench bench-instr bench-workers bench-locust bench-micro clean distclean

all: install

# compiled sources: the .pyx speedups, and every module written in pure-Python mode (x.py + x.pxd)
# (a .pxd without a .py beside it, as http/bytescan.pxd, holds inline C helpers: no module of its own)
PURE_MODE := $(foreach pxd,$(shell find litemesh -name '*.pxd' -not -path '*/_speedups/*'),$(pxd) $(wildcard $(pxd:.pxd=.py)))

$(VENV)/.installed: pyproject.toml setup.py $(wildcard litemesh/_speedups/*.pyx litemesh/_speedups/*.pxd) $(PURE_MODE)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel "Cython>=3.0,<4"
	$(PIP) install -q -e ".[test]"
	$(PY) setup.py -q build_ext --inplace --cython-always
	touch $@

install: $(VENV)/.installed

compile: install
	$(PY) setup.py -q build_ext --inplace --cython-always

debug: install
	LITEMESH_DEBUG=1 $(PY) setup.py -q build_ext --inplace --cython-always --cython-annotate

run: install
	$(PY) -m litemesh demo

test: install
	$(MAKE) test-compiled test-pure

test-compiled: install
	$(PY) setup.py -q build_ext --inplace  # incremental: recompiles what changed since the install
	! $(PY) -m litemesh version --verbose | grep "pure Python"
	$(PY) -m litemesh version --verbose | grep -q "trie: compiled"
	$(PY) -m litemesh version --verbose | grep -q "shm: compiled"
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-pure: install
	LITEMESH_NO_EXTENSIONS=1 $(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

# The suite with twice as many CPU hogs as cores beside it: a test that fails only then is a bug
# in the test or in the gateway (waits must be on readiness signals, deadlines generous).
test-stress: install
	command -v stress-ng >/dev/null || apt-get install -y -qq stress-ng >/dev/null \
		|| (apt-get update -qq && apt-get install -y -qq stress-ng >/dev/null)
	stress-ng --cpu $$(( 2 * $$(nproc) )) --timeout 3600s >/dev/null 2>&1 & hog=$$!; \
		$(MAKE) test; status=$$?; kill $$hog; exit $$status

# Every fuzz target (tests/fuzz/fuzz_*.py) under atheris for FUZZ_SECONDS each (default 60), in the
# compiled and the pure build; crash reproducers land in tests/fuzz/crashes/ and make test replays them.
FUZZ_SECONDS ?= 60
fuzz: install
	$(PIP) install -q atheris
	$(PY) tests/fuzz/run.py --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)

bench: install
	bash bench/install-deps.sh
	$(PY) bench/run.py $(BENCH_ARGS)

# instructions and syscalls per proxied request (valgrind + strace, noise-free): BENCH_ARGS="--pure", "--config F"
bench-instr: install
	command -v valgrind >/dev/null && command -v strace >/dev/null || apt-get install -y -qq valgrind strace >/dev/null \
		|| (apt-get update -qq && apt-get install -y -qq valgrind strace >/dev/null)
	$(PY) bench/instr.py $(BENCH_ARGS)

bench-workers: install
	bash bench/install-deps.sh
	$(PY) bench/workers.py $(BENCH_ARGS)

# locust (the `bench` extra) against the demo: BENCH_ARGS="--time 60s --users 50", "--host URL", "--mix origin"
bench-locust: install
	$(PIP) install -q -e ".[bench]"
	$(PY) bench/locust_run.py $(BENCH_ARGS)

bench-micro: install
	$(PIP) install -q pytest-benchmark
	$(PY) -m pytest bench/micro --benchmark-only -q
	LITEMESH_NO_EXTENSIONS=1 $(PY) -m pytest bench/micro --benchmark-only -q

clean:
	rm -rf build dist *.egg-info .pytest_cache .benchmarks
	find litemesh -name '*.so' -delete -o -name '*.c' -delete -o -name '*.html' -delete

distclean: clean
	rm -rf $(VENV)
