"""Long-run benchmark: flat memory and no slowdown over a million timesteps.

A recurrent network of ``--neurons`` LIF neurons (default 1000) driven by
``--inputs`` Poisson inputs (``--rate`` Hz) through a ``Linear`` projection,
with a recurrent ``Sparse`` connection of ``--in-degree`` random inputs per
neuron whose per-synapse delays are drawn uniformly from 1..5 ms, and pair
STDP on the recurrent weights (pairing the neurons' own traces, tau 20 ms).  The network runs ``--steps`` timesteps of
``dt = 1 ms`` without a reset (the delay line's ring buffers, the traces and
the rule's state run the whole time), and the script reports, for the first
and the last window of ``--window`` steps:

* the time per step (ms, wall clock over the window),
* the process's resident memory (``VmRSS`` from ``/proc/self/status``, or the
  peak RSS of :func:`resource.getrusage` where ``/proc`` is missing),
* the bytes of every tensor the network and the rule hold (parameters,
  buffers, and the connection caches),

and the ratios last/first.  A leak shows as growing tensor bytes or RSS, a
slowdown (e.g. a growing cache or history) as a ratio of the time per step
well above 1.  The run also checks that the weights stay finite and within
the STDP bounds.

    python benchmarks/long_run.py                # 10**6 steps (about 1.5 h at ~5 ms per step)
    python benchmarks/long_run.py --smoke        # 1000 steps of a 100-neuron network, seconds
    python benchmarks/long_run.py --steps 200000 --window 10000
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time

import torch

from pysnn.connection import Linear, Sparse
from pysnn.learning import STDP
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron

DT = 1.0  # ms
#: bound of the summed recurrent weights of one neuron (STDP keeps w in [0, W_MAX_TOTAL / in_degree])
W_MAX_TOTAL = 5.0


class LongRunNet(SNNNetwork):
    """Poisson inputs -> Linear -> LIF <-> recurrent Sparse with per-synapse delays 1..5 ms."""

    def __init__(self, n_neurons: int, n_inputs: int, in_degree: int, seed: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.inp = Input((n_inputs,), dt=DT, tau_t=20.0, integrator="exact")
        self.lif = LIFNeuron(
            (n_neurons,),
            thresh=1.0,
            v_rest=0.0,
            dt=DT,
            duration_refrac=2.0,
            tau_v=20.0,
            tau_t=20.0,
            integrator="exact",
        )
        self.ff = Linear(n_inputs, n_neurons, dt=DT)
        self.ff.reset_weights("uniform", a=0.0, b=1.5)
        n_syn = n_neurons * in_degree
        delay = torch.randint(1, 6, (n_syn,), generator=gen).to(torch.float64) * DT
        self.rec = Sparse.fixed_in_degree(
            n_neurons, n_neurons, in_degree, seed=seed, dt=DT, delay=delay
        )
        self.rec.reset_weights("uniform", a=0.0, b=W_MAX_TOTAL / in_degree)
        self.connect(self.inp, self.ff, self.lif)
        self.connect(self.lif, self.rec, self.lif)


def rss_bytes() -> int:
    """Resident memory of this process now (VmRSS), or its peak where /proc is missing."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def tensor_bytes(*modules: torch.nn.Module) -> int:
    """Bytes of every distinct tensor the modules hold (parameters, buffers, delay caches)."""
    seen: dict[int, int] = {}

    def add(t: torch.Tensor | None) -> None:
        if isinstance(t, torch.Tensor):
            seen.setdefault(id(t), t.numel() * t.element_size())

    for module in modules:
        for t in module.parameters():
            add(t)
        for t in module.buffers():
            add(t)
        for sub in module.modules():
            cache = getattr(sub, "stack_cache", None)
            if cache is not None:
                add(cache[1])
                add(cache[2])
            for name in ("pre_spikes", "pre_trace"):
                add(sub.__dict__.get(name))
    return sum(seen.values())


def run(args: argparse.Namespace) -> dict[str, float]:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    net = LongRunNet(args.neurons, args.inputs, args.in_degree, args.seed)
    rule = STDP(
        [net.layers["rec"]],
        lr=1e-4,
        a_plus=1.0,
        a_minus=1.05,
        w_min=0.0,
        w_max=W_MAX_TOTAL / args.in_degree,
    )
    w_max = W_MAX_TOTAL / args.in_degree
    net.reset_state(args.batch)
    p_spike = args.rate * DT / 1000.0
    gen = torch.Generator().manual_seed(args.seed + 1)
    window = min(args.window, args.steps // 2)
    first_end, last_start = window, args.steps - window
    marks: dict[str, float] = {}
    spikes_total = torch.zeros(())
    t0 = time.perf_counter()
    for step in range(args.steps):
        if step == last_start:
            marks["last_t0"] = time.perf_counter()
            marks["last_rss0"] = rss_bytes()
        x = torch.rand(args.batch, args.inputs, generator=gen) < p_spike
        spikes = net(x)
        rule.step()
        spikes_total += spikes.sum()
        if step + 1 == first_end:
            marks["first_s"] = time.perf_counter() - t0
            marks["first_rss"] = rss_bytes()
            marks["first_bytes"] = tensor_bytes(net, rule)
    marks["last_s"] = time.perf_counter() - marks["last_t0"]
    marks["last_rss"] = rss_bytes()
    marks["last_bytes"] = tensor_bytes(net, rule)
    weight = net.rec.weight
    if not bool(torch.isfinite(weight).all()):
        raise RuntimeError("recurrent weights became non-finite")
    if float(weight.min()) < 0.0 or float(weight.max()) > w_max * (1 + 1e-6):
        raise RuntimeError("recurrent weights left the STDP bounds")
    marks["rate_hz"] = float(spikes_total) / args.steps / args.batch / args.neurons / DT * 1000.0
    marks["window"] = window
    return marks


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--window", type=int, default=10_000, help="steps per measured window")
    parser.add_argument("--neurons", type=int, default=1000)
    parser.add_argument("--inputs", type=int, default=100)
    parser.add_argument("--in-degree", type=int, default=100, help="recurrent inputs per neuron")
    parser.add_argument("--rate", type=float, default=20.0, help="Poisson input rate (Hz)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (small ops: 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="about 1000 steps (seconds)")
    args = parser.parse_args(argv)
    if args.smoke:  # seconds: the full-size network costs tens of ms per step with STDP
        args.steps, args.window = 1000, 200
        args.neurons, args.inputs, args.in_degree = 100, 50, 10
    if args.steps < 2:
        parser.error("--steps must be at least 2")
    print(
        f"long run: {args.neurons} LIF, recurrent Sparse (in-degree {args.in_degree}, delays "
        f"1..5 ms), {args.inputs} Poisson inputs at {args.rate} Hz, pair STDP; batch "
        f"{args.batch}, {args.steps} steps; torch {torch.__version__}, {args.threads} threads, "
        f"{platform.machine()}"
    )
    m = run(args)
    window = int(m["window"])
    rows = [
        ("ms/step", 1e3 * m["first_s"] / window, 1e3 * m["last_s"] / window),
        ("RSS MB", m["first_rss"] / 2**20, m["last_rss"] / 2**20),
        ("tensor MB", m["first_bytes"] / 2**20, m["last_bytes"] / 2**20),
    ]
    print(f"| quantity | first {window} steps | last {window} steps | last/first |")
    print("| --- | ---: | ---: | ---: |")
    for name, first, last in rows:
        print(f"| {name} | {first:.4f} | {last:.4f} | {last / first:.3f} |")
    print(f"mean rate of the recurrent population: {m['rate_hz']:.1f} Hz")
    return m


if __name__ == "__main__":
    main()
