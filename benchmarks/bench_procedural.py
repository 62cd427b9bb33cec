"""Procedural vs stored synapses: memory at 10^7..10^9 synapses and time per delivered spike.

A random network of ``--neurons`` neurons in two blocks (80 % excitatory,
20 % inhibitory, as the microcircuit's populations), a fixed total number of
synapses (:class:`~pysnn.connection.RandomConnectivity`, NEST's
``fixed_total_number``), normal weights and delays 1.5 / 0.75 ms with 50 %
spread at dt = 0.1 ms.  For each synapse count, in a fresh process each (so
that the peak RSS is its own):

* ``procedural``: :class:`~pysnn.connection.ProceduralSparse`, synapses
  regenerated at every spike;
* ``stored``: ``Sparse.from_connectivity(..., delivery="queue")``, the same
  synapses stored (built only up to ``--stored-max`` synapses: about 30 bytes
  each, and its construction holds the generated arrays once more);
* ``plain``: a plain-PyTorch reference measured in the same process as
  ``stored``: the same synapses as CSR rows (int32 targets, float32 weights,
  uint8 delays), gathered for the spiking rows and ``index_put_`` into a ring
  buffer.

Each step ``--spikes`` random neurons spike (batch 1); the timed loop is
``--steps`` steps of delivery into the queue plus taking the step's input,
after a warm-up.  Prints the peak RSS, the bytes of the connection's tensors
per synapse, and the time per delivered spike (and per delivered synapse),
with the ratio to the stored mode and to the plain loop.

    python benchmarks/bench_procedural.py                       # 1e7, 1e8, 1e9
    python benchmarks/bench_procedural.py --synapses 1e8 --stored-max 1e8
    python benchmarks/bench_procedural.py --quick               # seconds
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

from pysnn.connection import ProceduralSparse, RandomConnectivity, Sparse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DT = 0.1


def connectivity(neurons: int, synapses: float, seed: int) -> RandomConnectivity:
    exc = int(0.8 * neurons)
    sizes = [exc, neurons - exc]
    total = int(synapses)
    counts = [[round(total * a * b) for b in (0.8, 0.2)] for a in (0.8, 0.2)]
    return RandomConnectivity(
        sizes,
        sizes,
        counts,
        weight=[[87.8, -351.2], [87.8, -351.2]],
        weight_std=[[8.78, 35.12], [8.78, 35.12]],
        delay=[[1.5, 0.75], [1.5, 0.75]],
        delay_std=[[0.75, 0.375], [0.75, 0.375]],
        dt=DT,
        seed=seed,
    )


def tensor_bytes(module: torch.nn.Module) -> int:
    seen, total = set(), 0
    tensors = list(module.parameters()) + list(module.buffers())
    queue = getattr(module, "spike_queue", None)
    if queue is not None:
        tensors += list(queue.buffers()) + [
            v for v in vars(queue).values() if isinstance(v, torch.Tensor)
        ]
    for t in tensors:
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
    return total


def spike_trains(neurons: int, spikes: int, steps: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        x = torch.zeros(1, neurons)
        x[0, torch.randperm(neurons, generator=gen)[:spikes]] = 1.0
        out.append(x)
    return out


def time_connection(conn: torch.nn.Module, trains: list[torch.Tensor], warm: int) -> float:
    conn.reset_state(1)
    for x in trains[:warm]:
        conn(x)
    t0 = time.perf_counter()
    for x in trains[warm:]:
        conn(x)
    return (time.perf_counter() - t0) / (len(trains) - warm)


class PlainRing:
    """The plain-PyTorch reference: CSR rows, gathered per spike, added into a ring buffer."""

    def __init__(self, pre, post, weight, delay, neurons: int) -> None:
        order = torch.argsort(pre, stable=True)
        self.post = post[order].to(torch.int32)
        self.weight = weight[order].to(torch.float32)
        self.delay = delay[order].to(torch.uint8)
        counts = torch.bincount(pre, minlength=neurons)
        self.start = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
        self.length = int(self.delay.max()) + 1
        self.ring = torch.zeros(self.length, neurons)
        self.head = 0

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.post, self.weight, self.delay))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        units = x[0].nonzero().squeeze(1)
        lo, hi = self.start[units], self.start[units + 1]
        n = hi - lo
        idx = torch.repeat_interleave(lo - (n.cumsum(0) - n), n) + torch.arange(int(n.sum()))
        slot = (self.head + self.delay[idx].to(torch.int64)) % self.length
        self.ring.index_put_((slot, self.post[idx].to(torch.int64)), self.weight[idx], True)
        out = self.ring[self.head].clone()
        self.ring[self.head].zero_()
        self.head = (self.head + 1) % self.length
        return out.unsqueeze(0)

    def reset_state(self, batch: int) -> None:
        self.ring.zero_()
        self.head = 0


def one(args: argparse.Namespace) -> dict:
    """One configuration in this process: build, measure memory and time."""
    torch.set_num_threads(args.threads)
    trains = spike_trains(args.neurons, args.spikes, args.steps + args.warmup, args.seed)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    t0 = time.perf_counter()
    conn_spec = connectivity(args.neurons, args.one_synapses, args.seed)
    if args.mode == "procedural":
        conn = ProceduralSparse(conn_spec)
    else:
        conn = Sparse.from_connectivity(conn_spec, delivery="queue")
    build_s = time.perf_counter() - t0
    conn.reset_state(1)
    result = {
        "mode": args.mode,
        "synapses": conn_spec.n_synapses,
        "build_s": build_s,
        "bytes": tensor_bytes(conn),
        "rss_before_mib": rss0,
    }
    result["s_per_step"] = time_connection(conn, trains, args.warmup)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if args.mode == "stored":
        pre, post, weight, delay = conn_spec.all_synapses()
        plain = PlainRing(pre, post, weight, delay, args.neurons)
        del pre, post, weight, delay
        # the same synapses: the same input, step by step (float32 sums in another order)
        conn.reset_state(1)
        for x in trains[: args.warmup]:
            a, _ = conn(x)
            b = plain(x)
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-2), "plain reference differs"
        result["plain_s_per_step"] = time_connection(plain, trains, args.warmup)
        result["plain_bytes"] = plain.nbytes()
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--synapses",
        type=float,
        nargs="+",
        default=[1e7, 1e8, 1e9],
        help="synapse counts to measure",
    )
    p.add_argument("--neurons", type=int, default=100_000, help="neurons (80 %% excitatory)")
    p.add_argument("--stored-max", type=float, default=1e8, help="largest stored network built")
    p.add_argument("--spikes", type=int, default=20, help="spiking neurons per step")
    p.add_argument("--steps", type=int, default=50, help="timed steps")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    p.add_argument("--seed", type=int, default=0, help="seed of connectivity and spikes")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--quick", action="store_true", help="1e5 synapses, 10k neurons (seconds)")
    p.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    p.add_argument("--one-synapses", type=float, default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> list[dict]:
    args = parser().parse_args(argv)
    if args.mode is not None:  # a child: one configuration, JSON on stdout
        print(json.dumps(one(args)))
        return []
    if args.quick:
        args.synapses, args.neurons, args.steps, args.warmup = [1e5], 10_000, 10, 3
    rows = []
    for n_syn in args.synapses:
        for mode in ("procedural", "stored"):
            if mode == "stored" and n_syn > args.stored_max:
                continue
            cmd = [
                sys.executable,
                __file__,
                "--mode",
                mode,
                "--one-synapses",
                str(n_syn),
                "--neurons",
                str(args.neurons),
                "--spikes",
                str(args.spikes),
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
                "--seed",
                str(args.seed),
                "--threads",
                str(args.threads),
            ]
            env = dict(
                os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])
            )
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    stored = {r["synapses"]: r for r in rows if r["mode"] == "stored"}
    print(
        f"{args.neurons:,} neurons, {args.spikes} spikes per step (batch 1), dt {DT} ms, "
        f"{args.threads} thread(s), {args.steps} timed steps"
    )
    print(
        "| synapses | mode | build (s) | peak RSS (MiB) | tensors (B/synapse) | us/spike "
        "| ns/synapse | vs stored | vs plain |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        per_spike = r["s_per_step"] / args.spikes
        per_syn = per_spike / (r["synapses"] / args.neurons)
        ref = stored.get(r["synapses"])
        vs_stored = f"{r['s_per_step'] / ref['s_per_step']:.2f}" if ref else "-"
        vs_plain = f"{r['s_per_step'] / ref['plain_s_per_step']:.2f}" if ref else "-"
        print(
            f"| {r['synapses']:.2e} | {r['mode']} | {r['build_s']:.1f} | {r['peak_rss_mib']:.0f} "
            f"| {r['bytes'] / r['synapses']:.3f} | {per_spike * 1e6:.0f} | {per_syn * 1e9:.0f} "
            f"| {vs_stored} | {vs_plain} |"
        )
    for r in rows:
        if r["mode"] == "stored":
            per_spike = r["plain_s_per_step"] / args.spikes
            print(
                f"| {r['synapses']:.2e} | plain (CSR) | - | - | {r['plain_bytes'] / r['synapses']:.3f} "
                f"| {per_spike * 1e6:.0f} | - | - | 1.00 |"
            )
    return rows


if __name__ == "__main__":
    main()
