"""The balanced random networks of Brette et al. (2007), benchmarks 1 (COBA) and 2 (CUBA).

Brette, R. et al. (2007), "Simulation of networks of spiking neurons: a review of
tools and strategies", J. Comput. Neurosci. 23: 349-398, after Vogels & Abbott (2005).
``N`` LIF neurons, 80 % excitatory, 20 % inhibitory, random connectivity with
probability 0.02 at N = 4000 (in-degree 80, kept fixed for other N;
:class:`~pysnn.connection.Sparse`, event-driven), dt = 0.1 ms:

* membrane: tau_m = 20 ms, threshold -50 mV, reset -60 mV, refractory 5 ms;
* **CUBA** (``--model cuba``): rest -49 mV (above threshold: the cells are
  intrinsically active), exponential current synapses
  (:class:`~pysnn.synapse.ExponentialSynapse`) that move the voltage by
  +1.62 mV (excitatory, tau 5 ms) and -9 mV (inhibitory, tau 10 ms) per spike,
  exact integration;
* **COBA** (``--model coba``): rest -60 mV, conductance synapses
  (:class:`~pysnn.synapse.ConductanceSynapse`) with reversal potentials 0 and
  -80 mV, increments 0.6 and 6.7 leak conductances (6 and 67 nS for a 10 nS
  leak), tau 5 and 10 ms, forward Euler; the network is silent without a kick,
  so during the first 50 ms each neuron receives excitatory Poisson input from
  100 sources at 100 Hz connected with probability 0.1.

Initial voltages are uniform in [-60, -50] mV.  The script prints the mean
firing rate and the mean coefficient of variation of the inter-spike intervals
(neurons with at least 3 spikes) over the simulated time, and saves a raster with
rate and CV histograms.  ``benchmarks/brette_brian2.py`` runs the same networks
in Brian2 and ``benchmarks/brette_compare.py`` compares the two.

    python examples/brette2007.py --model cuba            # also: examples/brette_cuba.py
    python examples/brette2007.py --model coba --seed 3   # also: examples/brette_coba.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from pysnn.connection import Sparse
from pysnn.fusion import compile_step
from pysnn.network import SNNNetwork
from pysnn.neuron import LIFNeuron
from pysnn.synapse import ConductanceSynapse, ExponentialSynapse

IN_DEGREE = 80  # p = 0.02 at N = 4000
KICK_MS, KICK_SOURCES, KICK_HZ, KICK_P = 50.0, 100, 100.0, 0.1  # COBA's initial kick
PARAMS = {
    "cuba": dict(v_rest=-49.0, w_exc=1.62, w_inh=-9.0, integrator="exact"),
    "coba": dict(v_rest=-60.0, w_exc=0.6, w_inh=6.7, integrator="euler"),
}


class BalancedNetwork(SNNNetwork):
    """``n`` LIF neurons with random excitatory and inhibitory recurrent connections."""

    def __init__(self, model: str, n: int = 4000, dt: float = 0.1, seed: int = 0) -> None:
        super().__init__()
        p = PARAMS[model]
        self.model, self.n_exc = model, int(0.8 * n)
        gen = torch.Generator().manual_seed(seed)
        self.neurons = LIFNeuron(
            (n,),
            thresh=-50.0,
            v_rest=p["v_rest"],
            v_reset=-60.0,
            dt=dt,
            # PySNN blocks duration_refrac/dt steps after the spike step; Brian2 and
            # NEST one step fewer for the same value: 4.9 ms here is their 5 ms
            duration_refrac=round(5.0 - dt, 6),
            tau_v=20.0,
            integrator=p["integrator"],
        )
        prob = min(1.0, IN_DEGREE / n)
        self.exc = Sparse.fixed_probability(self.n_exc, n, prob, gen, weight=p["w_exc"], dt=dt)
        self.inh = Sparse.fixed_probability(n - self.n_exc, n, prob, gen, weight=p["w_inh"], dt=dt)
        if model == "cuba":
            self.syn_exc = ExponentialSynapse((n,), 5.0, dt)
            self.syn_inh = ExponentialSynapse((n,), 10.0, dt)
        else:
            self.syn_exc = ConductanceSynapse((n,), 5.0, 0.0, dt)
            self.syn_inh = ConductanceSynapse((n,), 10.0, -80.0, dt)
            self.kick = Sparse.fixed_probability(
                KICK_SOURCES, n, KICK_P, gen, weight=p["w_exc"], dt=dt
            )

    def forward(self, kick_spikes: torch.Tensor | None = None) -> torch.Tensor:
        """One step; recurrent input comes from the spikes of the previous step."""
        spikes = self.neurons.spikes
        x_exc, _ = self.exc(spikes[:, : self.n_exc])
        x_inh, _ = self.inh(spikes[:, self.n_exc :])
        if self.model == "cuba":
            currents = [self.syn_exc(x_exc), self.syn_inh(x_inh)]
        else:
            if kick_spikes is not None:
                x_exc = x_exc + self.kick(kick_spikes)[0]
            v = self.neurons.v_cell  # voltage at the start of the step
            currents = [self.syn_exc(x_exc, v), self.syn_inh(x_inh, v)]
        return self.neurons(currents)[0]


def simulate(
    model: str, n: int, duration_ms: float, dt: float, seed: int, compile: bool = False
) -> dict:
    """Build and run one network; returns spike times/indices, statistics and run time.

    ``compile=True`` runs each step as one compiled graph
    (:func:`pysnn.fusion.compile_step`); it compiles on two warm-up steps
    before the state is reset and the timed run starts, and reports the
    compilation time as ``compile_s``.
    """
    torch.manual_seed(seed)
    net = BalancedNetwork(model, n, dt, seed)
    step, compile_s = net, 0.0
    if compile:
        start = time.perf_counter()
        step = compile_step(net.forward)
        kicks = [torch.zeros(1, KICK_SOURCES)] * 2 if model == "coba" else []
        with torch.no_grad():  # first and later steps after a reset, with and without a kick
            for _ in range(2):
                net.reset_state(1)
                for kick in kicks + [None, None]:
                    step(kick)
        compile_s = time.perf_counter() - start
    gen = torch.Generator().manual_seed(seed + 1000)
    net.reset_state(1)
    with torch.no_grad():
        net.neurons.v_cell.uniform_(-60.0, -50.0, generator=gen)
    steps, kick_steps = int(round(duration_ms / dt)), int(round(KICK_MS / dt))
    kick_p = KICK_HZ * dt / 1000.0
    kick = (torch.rand(kick_steps, 1, KICK_SOURCES, generator=gen) < kick_p).float()
    times, cells = [], []
    start = time.perf_counter()
    with torch.no_grad():
        for t in range(steps):
            spikes = step(kick[t] if model == "coba" and t < kick_steps else None)
            fired = spikes[0].nonzero().flatten()
            if fired.numel():
                cells.append(fired)
                times.append(torch.full_like(fired, t))
    run_s = time.perf_counter() - start
    spike_i = torch.cat(cells).numpy() if cells else np.zeros(0, dtype=np.int64)
    spike_t = torch.cat(times).numpy() * dt if times else np.zeros(0)
    rate, cv = statistics(spike_i, spike_t, n, duration_ms)
    synapses = net.exc.n_synapses + net.inh.n_synapses
    return dict(
        simulator="pysnn",
        model=model,
        n=n,
        seed=seed,
        rate_hz=rate,
        cv_isi=cv,
        run_s=run_s,
        compile_s=compile_s,
        synapses=synapses,
        spike_i=spike_i,
        spike_t=spike_t,
    )


def statistics(spike_i: np.ndarray, spike_t_ms: np.ndarray, n: int, duration_ms: float):
    """Mean rate (Hz) over all neurons and mean ISI CV over neurons with >= 3 spikes."""
    rate = len(spike_i) / n / (duration_ms / 1000.0)
    cvs = isi_cvs(spike_i, spike_t_ms)
    return rate, float(np.mean(cvs)) if cvs else float("nan")


def isi_cvs(spike_i: np.ndarray, spike_t_ms: np.ndarray) -> list[float]:
    """CV of the inter-spike intervals of every neuron with at least 3 spikes."""
    cvs = []
    for k in np.unique(spike_i):
        isi = np.diff(np.sort(spike_t_ms[spike_i == k]))
        if len(isi) >= 2 and isi.mean() > 0:
            cvs.append(isi.std() / isi.mean())
    return cvs


def plot(result: dict, n_exc: int, path: Path) -> None:
    """Raster of the first 500 neurons, per-neuron rates and ISI CVs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spike_i, spike_t, n = result["spike_i"], result["spike_t"], result["n"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), gridspec_kw=dict(width_ratios=[2, 1, 1]))
    shown = spike_i < 500
    colors = np.where(spike_i[shown] < n_exc, "k", "r")
    axes[0].scatter(spike_t[shown], spike_i[shown], s=0.5, c=colors)
    axes[0].set(xlabel="time (ms)", ylabel="neuron", title=f"{result['model'].upper()} raster")
    duration_s = max(spike_t.max() if len(spike_t) else 1.0, 1.0) / 1000.0
    rates = np.bincount(spike_i, minlength=n) / duration_s
    axes[1].hist(rates, bins=40)
    axes[1].set(xlabel="rate (Hz)", ylabel="neurons", title=f"mean {result['rate_hz']:.2f} Hz")
    axes[2].hist(isi_cvs(spike_i, spike_t), bins=40)
    axes[2].set(xlabel="CV of ISI", title=f"mean {result['cv_isi']:.2f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("cuba", "coba"), default="cuba")
    parser.add_argument("--neurons", type=int, default=4000)
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated ms")
    parser.add_argument("--dt", type=float, default=0.1, help="ms")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true", help="one compiled graph per step")
    parser.add_argument("--quick", action="store_true", help="1000 neurons, 200 ms")
    parser.add_argument("--save", default=None, help="figure path (default brette_<model>.png)")
    args = parser.parse_args(argv)
    if args.quick:
        args.neurons, args.duration = 1000, 200.0
    torch.set_num_threads(max(1, torch.get_num_threads()))
    result = simulate(args.model, args.neurons, args.duration, args.dt, args.seed, args.compile)
    print(
        f"{args.model.upper()} N={args.neurons} seed={args.seed}: {result['synapses']:,} synapses, "
        f"rate {result['rate_hz']:.2f} Hz, mean ISI CV {result['cv_isi']:.3f}, "
        f"{args.duration:.0f} ms simulated in {result['run_s']:.2f} s"
    )
    path = Path(args.save or f"brette_{args.model}.png")
    try:
        plot(result, int(0.8 * args.neurons), path)
    except ImportError:  # matplotlib is optional
        pass
    return {k: v for k, v in result.items() if k not in ("spike_i", "spike_t")}


if __name__ == "__main__":
    main()
