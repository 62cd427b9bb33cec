"""Core engine benchmark: Input(784) -> Linear -> LIF(400), ms per timestep.

Compares PySNN with a plain-PyTorch loop doing the same math (input trace,
matmul, LIF linear update with a 2-step refractory period, reset), measured in
the same run: without delay, with a scalar delay of 3 steps and with
per-synapse delays in 0..8 steps.  Reports the median of several repetitions
after a warm-up; the spikes are first checked to be identical (in float64).

    python benchmarks/bench_core.py            # full: T=1000, 5 repetitions
    python benchmarks/bench_core.py --quick    # smoke run, seconds
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from suite import FeedForward, median_ms, plain_feedforward  # noqa: E402

N_IN, N_OUT, REFRAC = 784, 400, 2


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
            net = FeedForward(N_IN, N_OUT, delay, REFRAC)
            with torch.no_grad():
                net.fc.weight.uniform_(0, 0.05)
            weight = net.fc.weight.detach().clone()
            # same spikes, checked in float64 (float32 sums in another order may
            # flip a spike that lands exactly on the threshold)
            check = spikes[:200]
            ours = net.double().run(check.double())
            ref = plain_feedforward(weight.double(), delay, check, REFRAC)
            if not torch.equal(ours, ref):
                raise AssertionError(f"pysnn and plain loop disagree for delay={name}")
            net.float()
            t_ours = median_ms(lambda n=net, s=spikes: n.run(s), args.steps, args.reps)
            t_ref = median_ms(
                lambda w=weight, d=delay, s=spikes: plain_feedforward(w, d, s, REFRAC),
                args.steps,
                args.reps,
            )
            print(f"{name:<22}{batch:>6}{t_ours:>15.3f}{t_ref:>15.3f}{t_ours / t_ref:>8.2f}")


if __name__ == "__main__":
    main()
