"""Core engine benchmark: Input(784) -> Linear -> LIF(400), ms per timestep.

Compares PySNN with a plain-PyTorch loop doing the same math (input trace,
matmul, LIF linear update with refractory period, reset), measured in the same
run: without delay, with a scalar delay of 3 steps and with per-synapse delays
in 0..8 steps.  Reports the median of several repetitions after a warm-up.

    python benchmarks/bench_core.py            # full: T=1000, 5 repetitions
    python benchmarks/bench_core.py --quick    # smoke run, seconds
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pysnn.connection import Linear
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron

N_IN, N_OUT = 784, 400
DECAY_T, DECAY_V, THRESH, REFRAC = 0.9, 0.9, 1.0, 2


class Net(SNNNetwork):
    def __init__(self, delay) -> None:
        super().__init__()
        self.inp = Input((N_IN,), 1.0, 1.0, DECAY_T)
        self.fc = Linear(N_IN, N_OUT, None, 1.0, delay)
        self.lif = LIFNeuron((N_OUT,), THRESH, 0.0, 1.0, 1.0, 1.0, float(REFRAC), DECAY_V, DECAY_T)
        self.add_layer("fc", self.fc, self.lif)

    def forward(self, x):
        s, t = self.inp(x)
        s, t = self.fc(s, t)
        return self.lif(s)[0]


def run_pysnn(net: Net, spikes: torch.Tensor) -> torch.Tensor:
    return net.run(spikes)


@torch.no_grad()
def run_plain(weight: torch.Tensor, delay, spikes: torch.Tensor) -> torch.Tensor:
    """Plain PyTorch: the same equations written inline, with a ring buffer for delays."""
    steps, batch, _ = spikes.shape
    dtype = weight.dtype
    x_in = torch.zeros(batch, N_IN, dtype=dtype)
    v = torch.zeros(batch, N_OUT, dtype=dtype)
    refrac = torch.zeros(batch, N_OUT, dtype=dtype)
    x_out = torch.zeros(batch, N_OUT, dtype=dtype)
    per_synapse = isinstance(delay, torch.Tensor)
    d_max = int(delay.max()) if per_synapse else int(delay)
    hist = torch.zeros(d_max + 1, batch, N_IN, dtype=dtype)
    masked = [weight * (delay == d) for d in range(d_max + 1)] if per_synapse else None
    out = torch.empty(steps, batch, N_OUT, dtype=dtype)
    for t in range(steps):
        s_in = spikes[t].to(dtype)
        x_in = x_in * DECAY_T + s_in
        if d_max == 0:
            current = s_in @ weight.T
        else:
            hist[t % (d_max + 1)] = s_in
            if per_synapse:
                current = sum(hist[(t - d) % (d_max + 1)] @ masked[d].T for d in range(d_max + 1))
            else:
                current = hist[(t - d_max) % (d_max + 1)] @ weight.T
        v = (v * DECAY_V + current) * (refrac == 0)
        s = (v >= THRESH).float()
        x_out = x_out * DECAY_T + s
        refrac = (refrac - 1).clamp(min=0) + REFRAC * s
        v = torch.where(s > 0, torch.zeros_like(v), v)
        out[t] = s
    return out


def median_ms(fn, args: tuple, steps: int, reps: int) -> float:
    fn(*args)  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - start) * 1e3 / steps)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rate", type=float, default=0.05, help="input spike probability/step")
    parser.add_argument("--quick", action="store_true", help="T=50, 1 repetition")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.reps = 50, 1

    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, T={args.steps}")
    print(f"{'delay':<22}{'batch':>6}{'pysnn ms/step':>15}{'plain ms/step':>15}{'ratio':>8}")
    delays = {
        "none": 0,
        "scalar 3": 3,
        "per-synapse 0..8": torch.randint(0, 9, (N_OUT, N_IN)),
    }
    for name, delay in delays.items():
        for batch in (1, 32):
            spikes = torch.rand(args.steps, batch, N_IN) < args.rate
            net = Net(delay)
            with torch.no_grad():
                net.fc.weight.uniform_(0, 0.05)
            weight = net.fc.weight.detach().clone()
            # Same spikes, checked in float64 (float32 sums in another order may
            # flip a spike that lands exactly on the threshold).
            check = spikes[:200]
            ours = run_pysnn(net.double(), check.double())
            ref = run_plain(weight.double(), delay, check)
            if not torch.equal(ours, ref):
                raise AssertionError(f"pysnn and plain loop disagree for delay={name}")
            net.float()
            t_ours = median_ms(run_pysnn, (net, spikes), args.steps, args.reps)
            t_ref = median_ms(run_plain, (weight, delay, spikes), args.steps, args.reps)
            print(f"{name:<22}{batch:>6}{t_ours:>15.3f}{t_ref:>15.3f}{t_ours / t_ref:>8.2f}")


if __name__ == "__main__":
    main()
