"""PySNN vs Brian2 on the Brette et al. (2007) CUBA and COBA networks, in one run.

For each model and size, runs ``examples/brette2007.py``'s network in PySNN and
``benchmarks/brette_brian2.py`` in Brian2 (cython target, in its own virtual
environment) for the same seeds, both with the published setup (``coba-kick``:
the kicked COBA variant), and prints the population statistics (mean rate, mean
ISI CV, Fano factor of the population spike count in 1 ms bins; mean and
standard deviation over the seeds) and the wall time of 1 s simulated (build
and compilation excluded) with the PySNN / Brian2 ratio.  The two simulators
draw different random networks and initial states from the same seed number,
so the statistics, not the spikes, are compared (``brette_replay.py`` replays
one Brian2 network spike by spike).
PySNN runs eagerly in float32 (``pysnn``), with ``--double`` also in float64
(``pysnn-f64``, the precision of Brian2), and with ``--compiled`` also with each
step as one compiled graph (``pysnn-c``, :func:`pysnn.fusion.compile_step`; its
compilation time is printed separately)::

    python benchmarks/brette_compare.py --models cuba coba --seeds 0 1 2 3 4 5 6 7 8 9
    python benchmarks/brette_compare.py --models cuba coba --neurons 4000 16000 64000 --seeds 0
    python benchmarks/brette_compare.py --compiled ...

``--brian2-python`` names the interpreter of the Brian2 environment (default
``/opt/brian2-venv/bin/python``; see ``brette_brian2.py`` for how to create it).
Without it, only PySNN runs.  ``--smoke`` runs tiny networks for a few ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from brette2007 import simulate  # noqa: E402


def brian2_runs(python: str, model: str, sizes: list[int], seeds: list[int], duration: float):
    base, kick = model.split("-")[0], model.endswith("-kick")
    cmd = [python, str(ROOT / "benchmarks" / "brette_brian2.py"), "--model", base]
    cmd += ["--kick"] if kick else []
    cmd += ["--neurons", *map(str, sizes), "--seeds", *map(str, seeds)]
    cmd += ["--duration", str(duration)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def summary(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models", nargs="+", default=["cuba", "coba"], choices=("cuba", "coba", "coba-kick")
    )
    parser.add_argument("--neurons", type=int, nargs="+", default=[4000])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated ms")
    parser.add_argument("--brian2-python", default="/opt/brian2-venv/bin/python")
    parser.add_argument("--compiled", action="store_true", help="also time compiled steps")
    parser.add_argument("--double", action="store_true", help="also run PySNN in float64")
    parser.add_argument("--smoke", action="store_true", help="N=500, 20 ms, PySNN only")
    args = parser.parse_args()
    if args.smoke:
        args.neurons, args.duration, args.seeds, args.brian2_python = [500], 20.0, [0], ""
    have_brian2 = bool(args.brian2_python) and Path(args.brian2_python).exists()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.duration} ms")
    header = (
        f"{'model':<10}{'N':>7} {'simulator':<9}{'rate (Hz)':>18}{'CV ISI':>18}"
        f"{'Fano 1 ms':>18}{'run (s)':>16}"
    )
    print(header)
    print("-" * len(header))
    for model in args.models:
        base, kick = model.split("-")[0], model.endswith("-kick")
        rows: dict[tuple[int, str], list[dict]] = {}
        for n in args.neurons:
            simulate(base, n, min(args.duration, 20.0), 0.1, 0, kick=kick)  # warm-up, not timed
            variants = [("pysnn", False, torch.float32)]
            variants += [("pysnn-f64", False, torch.float64)] if args.double else []
            variants += [("pysnn-c", True, torch.float32)] if args.compiled else []
            for sim, compiled, dtype in variants:
                rows[(n, sim)] = [
                    simulate(base, n, args.duration, 0.1, seed, compiled, kick, dtype)
                    for seed in args.seeds
                ]
        if have_brian2:
            for run in brian2_runs(
                args.brian2_python, model, args.neurons, args.seeds, args.duration
            ):
                rows.setdefault((run["n"], "brian2"), []).append(run)
        for n in args.neurons:
            times = {}
            for sim in ("pysnn", "pysnn-f64", "pysnn-c", "brian2"):
                runs = rows.get((n, sim))
                if not runs:
                    continue
                times[sim] = statistics.mean(r["run_s"] for r in runs)
                print(
                    f"{model:<10}{n:>7} {sim:<9}{summary([r['rate_hz'] for r in runs]):>18}"
                    f"{summary([r['cv_isi'] for r in runs]):>18}"
                    f"{summary([r['fano_1ms'] for r in runs]):>18}"
                    f"{summary([r['run_s'] for r in runs]):>16}",
                    flush=True,
                )
            for sim in ("pysnn", "pysnn-c"):
                if sim in times and "brian2" in times:
                    print(f"{'':<18}{sim} / brian2 run time: {times[sim] / times['brian2']:.2f}")
            if (n, "pysnn-c") in rows:
                compile_s = statistics.mean(r["compile_s"] for r in rows[(n, "pysnn-c")])
                print(f"{'':<18}pysnn-c compilation: {compile_s:.1f} s")


if __name__ == "__main__":
    main()
