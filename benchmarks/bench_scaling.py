"""Strong and weak scaling of the model-parallel microcircuit over 1, 2, ... processes (torchrun, gloo).

Runs ``examples/microcircuit.py --parallel`` under ``torchrun
--nproc_per_node P`` for each ``P`` in ``--procs``:

* **strong** scaling: the same network (``--scale``) on ``P`` processes;
* **weak** scaling: ``--weak-scale * P`` neurons on ``P`` processes with
  the in-degrees fixed (``--k-scale``), so each process holds about the same
  number of neurons and synapses.

Prints the wall time per simulated second, the speed-up (strong) or
efficiency (weak) against ``P = 1`` and the peak RSS per process.  Every
process runs ``--threads`` torch threads; with more processes times threads
than cores the processes share cores (oversubscription): say so when you
report numbers.

    python benchmarks/bench_scaling.py                      # P = 1, 2 at scale 0.1 / 0.05 per process
    python benchmarks/bench_scaling.py --procs 1 2 4 --time 100
    python benchmarks/bench_scaling.py --quick              # seconds
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "microcircuit.py"
PATTERN = re.compile(r"in ([0-9.]+) s: ([0-9.]+) s per simulated second.*peak RSS ([0-9]+) MiB")


def run(procs: int, scale: float, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(procs),
        str(EXAMPLE),
        "--parallel",
        "--scale",
        str(scale),
        "--k-scale",
        str(args.k_scale),
        "--time",
        str(args.time),
        "--warmup",
        str(args.warmup),
        "--seed",
        str(args.seed),
        "--threads",
        str(args.threads),
        "--out",
        "",
    ] + (["--stored"] if args.stored else [])
    path = os.pathsep.join([str(EXAMPLE.parent.parent), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=path)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    match = PATTERN.search(out.stdout)
    if match is None:
        raise RuntimeError(f"no timing line in the output:\n{out.stdout}")
    neurons = re.search(r"([0-9,]+) neurons, ([0-9,]+) synapses", out.stdout)
    return {
        "procs": procs,
        "scale": scale,
        "neurons": neurons.group(1),
        "synapses": neurons.group(2),
        "run_s": float(match.group(1)),
        "s_per_sim_s": float(match.group(2)),
        "rss_mib": float(match.group(3)),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2], help="process counts")
    p.add_argument("--scale", type=float, default=0.1, help="network of the strong scaling")
    p.add_argument(
        "--weak-scale", type=float, default=0.05, help="network per process (weak scaling)"
    )
    p.add_argument(
        "--k-scale", type=float, default=0.1, help="in-degree scale of every run (weak: fixed)"
    )
    p.add_argument("--time", type=float, default=200.0, help="recorded simulated time (ms)")
    p.add_argument("--warmup", type=float, default=50.0, help="simulated time before (ms)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--seed", type=int, default=0, help="seed of the network")
    p.add_argument("--stored", action="store_true", help="stored synapses (default: procedural)")
    p.add_argument("--quick", action="store_true", help="scale 0.01, 20 ms (seconds)")
    return p


def main(argv: list[str] | None = None) -> list[dict]:
    args = parser().parse_args(argv)
    if args.quick:
        args.scale, args.weak_scale, args.k_scale, args.time, args.warmup = 0.01, 0.01, 0.01, 20, 0
    print(
        f"microcircuit ({'stored' if args.stored else 'procedural'} synapses), "
        f"{args.warmup:g} + {args.time:g} ms simulated, {args.threads} thread(s) "
        f"per process, {os.cpu_count()} CPU cores on this machine"
    )
    rows = []
    print(
        "| scaling | processes | scale | neurons | synapses | s / simulated s | vs 1 | RSS/process (MiB) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind in ("strong", "weak"):
        base = None
        for procs in args.procs:
            scale = args.scale if kind == "strong" else min(1.0, args.weak_scale * procs)
            r = run(procs, scale, args)
            r["kind"] = kind
            rows.append(r)
            base = base or r
            ratio = base["s_per_sim_s"] / r["s_per_sim_s"]
            label = "speed-up" if kind == "strong" else "efficiency"
            print(
                f"| {kind} | {procs} | {scale:g} | {r['neurons']} | {r['synapses']} "
                f"| {r['s_per_sim_s']:.1f} | {label} {ratio:.2f} | {r['rss_mib']:.0f} |"
            )
    return rows


if __name__ == "__main__":
    main()
