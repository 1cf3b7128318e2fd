"""Run every fuzz target for a bounded time, in the compiled and the pure build (``make fuzz``).

    python tests/fuzz/run.py [--seconds 60] [--jobs 2] [--builds compiled,pure] [--merge] [TARGET ...]

Each run is ``python tests/fuzz/fuzz_<name>.py`` under atheris (libFuzzer) with
``-max_total_time``: new inputs go to a scratch folder (the checked-in seeds are read, never
written), crash reproducers to ``tests/fuzz/crashes/<name>/`` (keep them: ``test_replay.py`` replays
them in ``make test`` once fixed).  ``--merge`` adds the new inputs that bring new coverage to the
seed corpus (libFuzzer ``-merge=1``); do that rarely, the corpus is meant to stay small.
Prints a table (executions, executions per second, new inputs, crashes) and exits 1 if any target
crashed or broke an invariant.  ``FUZZ_SECONDS`` sets the default time per target and build.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from tests.fuzz.targets import CORPUS, CRASHES, TARGETS  # noqa: E402

_EXECUTED = re.compile(rb"stat::number_of_executed_units:\s*(\d+)")
_WRITTEN = re.compile(rb"Test unit written to (\S+)")
_DONE = re.compile(rb"#(\d+)\s+DONE")


def run_one(name: str, build: str, seconds: int, merge: bool) -> dict[str, object]:
    crashes = CRASHES / name
    crashes.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONHASHSEED="0")
    if build == "pure":
        env["LITEMESH_NO_EXTENSIONS"] = "1"
    else:
        env.pop("LITEMESH_NO_EXTENSIONS", None)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as scratch:
        command = [sys.executable, str(HERE / f"fuzz_{name}.py"), scratch, str(CORPUS / name),
                   f"-max_total_time={seconds}", "-timeout=20", "-rss_limit_mb=3072", "-print_final_stats=1",
                   f"-artifact_prefix={crashes}/"]
        started = time.monotonic()
        # a target's own time limit, plus start-up; never longer
        proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, timeout=seconds + 120)
        elapsed = time.monotonic() - started
        new_inputs = len(os.listdir(scratch))
        if merge and new_inputs:
            subprocess.run([sys.executable, str(HERE / f"fuzz_{name}.py"), "-merge=1", str(CORPUS / name), scratch],
                           cwd=REPO, env=env, capture_output=True, timeout=600)
    output = proc.stdout + proc.stderr
    found = _EXECUTED.search(output) or _DONE.search(output)
    executions = int(found.group(1)) if found else 0
    # this run's reproducers, by what libFuzzer says it wrote (runs in parallel share the folder)
    new_crashes = sorted(Path(m.decode()) for m in _WRITTEN.findall(output))
    return {"target": name, "build": build, "executions": executions, "seconds": round(elapsed),
            "rate": round(executions / max(elapsed, 1e-9)), "new_inputs": new_inputs,
            "crashes": [str(p.relative_to(REPO)) for p in new_crashes], "exit": proc.returncode,
            "tail": output[-3000:].decode("utf-8", "replace") if new_crashes or proc.returncode not in (0,) else ""}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", default=[], help=f"targets (default: all of {', '.join(TARGETS)})")
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "60")),
                        help="fuzzing time per target and build (default FUZZ_SECONDS or 60)")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2)),
                        help="targets fuzzed at once (default: one per CPU)")
    parser.add_argument("--builds", default="compiled,pure", help="comma-separated: compiled, pure")
    parser.add_argument("--merge", action="store_true", help="add inputs with new coverage to the seed corpus")
    args = parser.parse_args(argv)
    names = args.targets or list(TARGETS)
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        parser.error(f"unknown targets: {', '.join(unknown)} (known: {', '.join(TARGETS)})")
    builds = [b for b in args.builds.split(",") if b]
    runs = [(name, build) for build in builds for name in names]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda nb: run_one(nb[0], nb[1], args.seconds, args.merge), runs))
    print(f"{'target':<20} {'build':<9} {'executions':>11} {'exec/s':>8} {'new inputs':>10}  crashes")
    failed = False
    for r in results:
        print(f"{r['target']:<20} {r['build']:<9} {r['executions']:>11} {r['rate']:>8} {r['new_inputs']:>10}  "
              f"{len(r['crashes'])}")
        if r["crashes"] or r["exit"] != 0:
            failed = True
            print(f"  exit {r['exit']}; reproducers: {', '.join(r['crashes']) or '-'}\n{r['tail']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
