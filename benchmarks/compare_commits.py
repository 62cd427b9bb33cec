"""Before/after timings of two commits, measured in one run.

Checks out ``--base`` into a temporary git worktree and runs the benchmark
scripts of both trees alternately (base, head, base, head, ...), so that both
see the same machine load; each cell keeps its fastest run.  Prints one table
per script with the base and head times (ms per timestep) and head/base.

    python benchmarks/compare_commits.py --base HEAD~3
    python benchmarks/compare_commits.py --base 67c8dc6 --rounds 3 \\
        --suite-args "--no-fused --only W1 W2" --stdp-args "--samples 5"

A refactor should leave every cell within noise (this VM drifts by 10-40 % within
seconds, see benchmarks/README.md; compare the fastest of several rounds).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# cell key -> pattern; a matching line gives (key parts..., ms)
PATTERNS = {
    # workload, size, batch, mode, then the six numbers (pysnn ms first)
    "suite.py": re.compile(r"^(W\d)\s+(\S+)\s+(\d+)\s+(.+?)\s+(\d+\.\d+)(?:\s+\d+\.\d+){5}\s*$"),
    "bench_stdp.py": re.compile(r"^\s+pysnn (\w+)\s+([0-9.]+) ms/step"),
}


def run(tree: Path, script: str, args: str) -> dict[str, float]:
    """Run ``benchmarks/<script>`` of ``tree``; returns cell -> ms per timestep."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / script), *shlex.split(args)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cells: dict[str, float] = {}
    batch = ""
    for line in out.splitlines():
        if script == "bench_stdp.py" and line.startswith(("batch ", "N=")) and ":" in line:
            batch = line.split(":")[0]  # "N=400 batch 32" (or "batch 32" in older versions)
        match = PATTERNS[script].match(line)
        if match:
            *key, ms = match.groups()
            name = " ".join(part.strip() for part in ([batch] if batch else []) + key)
            cells[name] = float(ms)
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="commit to compare against")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per tree")
    parser.add_argument("--suite-args", default="--no-fused", help="arguments of suite.py")
    parser.add_argument("--stdp-args", default="--samples 5", help="arguments of bench_stdp.py")
    parser.add_argument("--skip-suite", action="store_true")
    parser.add_argument("--skip-stdp", action="store_true")
    args = parser.parse_args()
    scripts = []
    if not args.skip_suite:
        scripts.append(("suite.py", args.suite_args))
    if not args.skip_stdp:
        scripts.append(("bench_stdp.py", args.stdp_args))
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base), args.base],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            for script, script_args in scripts:
                best: dict[str, dict[str, float]] = {"base": {}, "head": {}}
                for _ in range(args.rounds):
                    for label, tree in (("base", base), ("head", ROOT)):
                        for cell, ms in run(tree, script, script_args).items():
                            best[label][cell] = min(ms, best[label].get(cell, float("inf")))
                print(f"\n{script} {script_args}  (fastest of {args.rounds} alternating rounds)")
                print(f"{'cell':<44}{'base':>9}{'head':>9}{'head/base':>11}")
                for cell, ms in best["head"].items():
                    before = best["base"].get(cell)
                    ratio = f"{ms / before:>11.2f}" if before else f"{'-':>11}"
                    print(f"{cell:<44}{before or float('nan'):>9.3f}{ms:>9.3f}{ratio}", flush=True)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False
            )


if __name__ == "__main__":
    main()
