"""Pair-STDP benchmark: 784 Poisson inputs -> Linear -> LIF(400), ms per timestep.

Rate-coded inputs: each sample is a random sparse "image" (about 20% of the
pixels on, intensities in [0, 1]) whose pixels fire as Poisson processes of rate
``intensity * 63.75`` Hz with dt = 1 ms (as in Diehl & Cook 2015).  Each sample
runs 350 steps; the network is reset between samples.

Compared in the same run, on the same spike trains:

* ``pysnn dense``: :class:`pysnn.learning.STDP` with ``event_driven=False``,
* ``pysnn event``: ``event_driven=True`` (only rows/columns of spiking neurons),
* ``pysnn auto``: the automatic choice (``event_driven=None``),
* ``plain``: a plain-PyTorch loop with the same equations (exact input and
  output traces, exact LIF update with refractory period, reset) and a dense
  outer-product STDP update every step,
  ``W += lr/B * (A+ s_post^T x_pre - A- x_post^T s_pre)``, clamped to [0, 1].

Only the simulation/learning loop is timed (the Poisson spikes are drawn
beforehand); both loops also accumulate the fraction of active neurons.  Prints ms/step and the ratio to the plain loop, plus the mean
fraction of active postsynaptic neurons per step.

    python benchmarks/bench_stdp.py                 # 350 steps x 20 samples, batch 1 and 32
    python benchmarks/bench_stdp.py --samples 5
    python benchmarks/bench_stdp.py --neurons 100 400 1600   # N_out values (default 400)
    python benchmarks/bench_stdp.py --quick         # 2 samples x 50 steps (smoke test)
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from pysnn.connection import Linear
from pysnn.learning import STDP
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron

N_IN, N_OUT = 784, 400
DT, MAX_RATE = 1.0, 63.75  # ms, Hz
TAU_PRE, TAU_POST, TAU_V = 20.0, 20.0, 20.0  # ms
THRESH, ALPHA_V, REFRAC = 1.0, 1.5, 5.0  # voltage units, -, ms
LR, A_PLUS, A_MINUS = 1e-3, 1.0, 1.05
W_INIT_MAX = 0.3


class Net(SNNNetwork):
    def __init__(self, n_out: int = N_OUT) -> None:
        super().__init__()
        self.inp = Input((N_IN,), DT, 1.0, TAU_PRE, "exact")
        self.fc = Linear(N_IN, n_out, None, DT, 0)
        self.lif = LIFNeuron(
            (n_out,), THRESH, 0.0, ALPHA_V, 1.0, DT, REFRAC, TAU_V, TAU_POST, "exact"
        )
        self.add_layer("fc", self.fc, self.lif)

    def forward(self, x):
        s, t = self.inp(x)
        s, t = self.fc(s, t)
        return self.lif(s)[0]


def poisson_sample(steps: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    """(steps, batch, 784) bool spikes from random sparse images."""
    image = torch.rand(batch, N_IN, generator=gen) * (torch.rand(batch, N_IN, generator=gen) < 0.2)
    prob = image * MAX_RATE * DT / 1000.0
    return torch.rand(steps, batch, N_IN, generator=gen) < prob


def sync(device: torch.device) -> None:
    """Wait for the device's queued kernels (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_pysnn(
    weight0: torch.Tensor,
    samples: list[torch.Tensor],
    mode,
    fused: bool = False,
    device: torch.device | str = "cpu",
) -> tuple[float, float]:
    device = torch.device(device)
    net = Net(weight0.shape[0]).to(device)
    samples = [s.to(device) for s in samples]
    if fused:
        net.fuse()
    with torch.no_grad():
        net.fc.weight.copy_(weight0)
    rule = STDP(
        net.layers, lr=LR, a_plus=A_PLUS, a_minus=A_MINUS, w_min=0.0, w_max=1.0, event_driven=mode
    )
    steps, elapsed = 0, 0.0
    active = torch.zeros((), device=device)
    with torch.no_grad():
        for spikes in samples:
            net.reset_state()
            rule.reset_state()
            sync(device)
            start = time.perf_counter()
            for t in range(spikes.shape[0]):
                out = net(spikes[t])
                rule.step()
                active += out.any(0).float().mean()
            sync(device)
            elapsed += time.perf_counter() - start
            steps += spikes.shape[0]
    return 1000.0 * elapsed / steps, float(active) / steps


@torch.no_grad()
def time_plain(
    weight0: torch.Tensor, samples: list[torch.Tensor], device: torch.device | str = "cpu"
) -> float:
    device = torch.device(device)
    weight = weight0.to(device, copy=True)
    samples = [s.to(device) for s in samples]
    lam_pre, lam_post = math.exp(-DT / TAU_PRE), math.exp(-DT / TAU_POST)
    lam_v = math.exp(-DT / TAU_V)
    refrac_steps = int(round(REFRAC / DT))
    steps, elapsed = 0, 0.0
    active = torch.zeros((), device=device)  # same bookkeeping as time_pysnn
    for spikes in samples:
        batch = spikes.shape[1]
        x_pre = torch.zeros(batch, N_IN, device=device)
        n_out = weight.shape[0]
        x_post = torch.zeros(batch, n_out, device=device)
        v = torch.zeros(batch, n_out, device=device)
        refrac = torch.zeros(batch, n_out, device=device)
        sync(device)
        start = time.perf_counter()
        for t in range(spikes.shape[0]):
            s_pre = spikes[t].float()
            x_pre = x_pre * lam_pre + s_pre
            current = s_pre @ weight.t()
            free = (refrac == 0).float()
            v = v + (ALPHA_V * current - v) * (1 - lam_v) * free
            s_post = (v >= THRESH).float()
            x_post = x_post * lam_post + s_post
            refrac = (refrac - 1).clamp(min=0) + s_post * refrac_steps
            v = v * (1 - s_post)
            dw = A_PLUS * (s_post.t() @ x_pre) - A_MINUS * (x_post.t() @ s_pre)
            weight += (LR / batch) * dw
            weight.clamp_(0.0, 1.0)
            active += s_post.any(0).float().mean()
        sync(device)
        elapsed += time.perf_counter() - start
        steps += spikes.shape[0]
    return 1000.0 * elapsed / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=20, help="samples per batch size")
    parser.add_argument("--steps", type=int, default=350, help="timesteps per sample")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--neurons", type=int, nargs="+", default=[N_OUT], help="N_out values")
    parser.add_argument("--quick", action="store_true", help="2 samples x 50 steps")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.steps = 2, 50
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{args.samples} samples x {args.steps} steps"
    )
    for n_out, batch in [(n, b) for n in args.neurons for b in args.batches]:
        gen = torch.Generator().manual_seed(batch)
        weight0 = torch.rand(n_out, N_IN, generator=gen) * W_INIT_MAX
        samples = [poisson_sample(args.steps, batch, gen) for _ in range(args.samples)]
        warm = [s[: min(20, args.steps)] for s in samples[:1]]
        time_plain(weight0, warm)
        for mode in (False, True, None):
            time_pysnn(weight0, warm, mode)
        plain = time_plain(weight0, samples)
        print(f"N={n_out} batch {batch}: plain PyTorch loop {plain:.3f} ms/step")
        for label, mode in (("dense", False), ("event", True), ("auto", None)):
            ms, active = time_pysnn(weight0, samples, mode)
            print(
                f"  pysnn {label:5s} {ms:.3f} ms/step  ratio {ms / plain:.2f}x  "
                f"(active post neurons/step {100 * active:.1f}%)"
            )


if __name__ == "__main__":
    main()
