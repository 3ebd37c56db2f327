"""Runs the coverage-guided fuzzers, each for --seconds, and says what they did.

The engine's libFuzzer targets (engine/fuzz, built in engine/build-fuzz) and the atheris
targets over the C extensions (tests/fuzz/*_fuzz.py, the extensions built by clang with
libFuzzer's coverage, ASan and UBSan in build/fuzz-py) all start from their seed corpus
in the repository and keep what they learn in build/fuzz/corpus/<target>. An input that
crashes one is saved in build/fuzz/crashes/<target>/ and fails the run. Prints JSON: per
target, executions, executions/s, coverage, corpus size and crashes. As many targets run
at once as there are CPUs (--jobs), each a single process on its own core.

    python tests/fuzz/run.py --seconds 1800 [--only journal snapshot] [--jobs N]
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE_FUZZ = ROOT / "engine" / "build-fuzz"
FUZZ_PY = ROOT / "build" / "fuzz-py"
WORK = ROOT / "build" / "fuzz"
ENGINE_TARGETS = ("command_batch", "journal", "snapshot")
PYTHON_TARGETS = ("orderwire", "reportwire")
SANITIZERS = {"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1:allocator_may_return_null=1",
              "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}


def _atheris_preload() -> str:
    """atheris's ASan runtime with libFuzzer linked in (made when atheris is built from
    source): preloaded, so the extensions' coverage reaches libFuzzer."""
    import atheris
    preload = Path(atheris.path()) / "asan_with_fuzzer.so"
    if not preload.exists():
        raise SystemExit(f"{preload} is missing: atheris must be built from source with "
                         "clang (make fuzz-build)")
    return str(preload)


def command(target: str) -> tuple[list[str], Path, dict[str, str]]:
    """The argv, seed corpus and environment of one target."""
    if target in ENGINE_TARGETS:
        return ([str(ENGINE_FUZZ / f"fuzz_{target}")], ROOT / "engine" / "fuzz" / "corpus" /
                target, dict(os.environ, **SANITIZERS))
    env = dict(os.environ, **SANITIZERS, LD_PRELOAD=_atheris_preload(),
               PYTHONPATH=str(FUZZ_PY))
    return ([sys.executable, str(ROOT / "tests" / "fuzz" / f"{target}_fuzz.py")],
            ROOT / "tests" / "fuzz" / "corpus" / target, env)


_FINAL = re.compile(r"stat::(\w+):\s+(\d+)")
_PROGRESS = re.compile(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)")


def fuzz(target: str, seconds: int) -> dict:
    argv, seeds, env = command(target)
    corpus, crashes = WORK / "corpus" / target, WORK / "crashes" / target
    log = WORK / "logs" / f"{target}.log"
    for directory in (corpus, crashes, log.parent):
        directory.mkdir(parents=True, exist_ok=True)
    before = set(crashes.iterdir())
    started = time.monotonic()
    with log.open("w") as out:
        code = subprocess.run(
            [*argv, f"-max_total_time={seconds}", "-print_final_stats=1", "-timeout=10",
             "-rss_limit_mb=2048", "-malloc_limit_mb=1024", f"-artifact_prefix={crashes}/",
             str(corpus), str(seeds)], env=env, stdout=out, stderr=subprocess.STDOUT,
            cwd=ROOT).returncode
    text = log.read_text(errors="replace")
    final = {name: int(value) for name, value in _FINAL.findall(text)}
    progress = _PROGRESS.findall(text)
    found = sorted(str(p.relative_to(ROOT)) for p in set(crashes.iterdir()) - before)
    executions = final.get("number_of_executed_units", int(progress[-1][0]) if progress else 0)
    elapsed = time.monotonic() - started
    return {"target": target, "seconds": round(elapsed, 1), "executions": executions,
            "executions_per_s": round(executions / elapsed) if elapsed else 0,
            "coverage": int(progress[-1][1]) if progress else None,
            "features": int(progress[-1][2]) if progress else None,
            "corpus": len(list(corpus.iterdir())), "peak_rss_mb": final.get("peak_rss_mb"),
            "exit_code": code, "crashes": found, "log": str(log.relative_to(ROOT))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60, help="seconds per target")
    parser.add_argument("--only", nargs="+", choices=ENGINE_TARGETS + PYTHON_TARGETS)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="targets run at once (default: one per CPU)")
    args = parser.parse_args()
    targets = args.only or ENGINE_TARGETS + PYTHON_TARGETS
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(lambda target: fuzz(target, args.seconds), targets))
    print(json.dumps(results, indent=2))
    failed = [r for r in results if r["crashes"] or r["exit_code"] != 0]
    for result in failed:
        print(f"{result['target']}: exit {result['exit_code']}, crashes {result['crashes']}; "
              f"see {result['log']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
