"""The balanced random networks of Brette et al. (2007), benchmarks 1 (COBA) and 2 (CUBA).

Brette, R. et al. (2007), "Simulation of networks of spiking neurons: a review of
tools and strategies", J. Comput. Neurosci. 23: 349-398, after Vogels & Abbott (2005).
``N`` LIF neurons, 80 % excitatory, 20 % inhibitory, random connectivity with
probability 0.02 at N = 4000 (in-degree 80, kept fixed for other N;
:class:`~pysnn.connection.Sparse`, event-driven), dt = 0.1 ms, as published:

* membrane: tau_m = 20 ms, threshold -50 mV, reset -60 mV, refractory 5 ms;
* **CUBA** (``--model cuba``, benchmark 2): rest -49 mV (above threshold: the
  cells are intrinsically active), exponential current synapses
  (:class:`~pysnn.synapse.ExponentialSynapse`) that make the current jump by
  +1.62 mV (excitatory, tau 5 ms) and -9 mV (inhibitory, tau 10 ms) per spike;
  ``integrator="exact"``: the membrane and the synaptic currents are advanced
  together exactly (Brian2's ``method="exact"``); initial voltages uniform in
  [-60, -50] mV, no initial current;
* **COBA** (``--model coba``, benchmark 1): rest -60 mV, conductance synapses
  (:class:`~pysnn.synapse.ConductanceSynapse`) with reversal potentials 0 and
  -80 mV, increments 0.6 and 6.7 leak conductances (6 and 67 nS for a 10 nS
  leak), tau 5 and 10 ms, forward Euler for the membrane and the conductances
  (the published Brian script); initial state as published: v ~ N(-65, 5) mV,
  g_exc ~ N(4, 1.5) and g_inh ~ N(20, 12) leak conductances (40 +- 15 nS and
  200 +- 120 nS).  The network then keeps itself active without external input.

``--kick`` (COBA only) runs the **kicked variant** instead, not the published
setup: initial voltages uniform in [-60, -50] mV, zero conductances, and during
the first 50 ms each neuron receives excitatory Poisson input from 100 sources
at 100 Hz connected with probability 0.1.

The script prints the mean firing rate, the mean coefficient of variation of
the inter-spike intervals (neurons with at least 3 spikes) and the Fano factor
of the population spike count in 1 ms bins over the simulated time, and saves
a raster with rate and CV histograms.  ``benchmarks/brette_brian2.py`` runs the
same published setups in Brian2 and ``benchmarks/brette_compare.py`` compares
the two over seeds; ``benchmarks/brette_replay.py`` replays one Brian2 run
spike by spike.

    python examples/brette2007.py --model cuba            # also: examples/brette_cuba.py
    python examples/brette2007.py --model coba --seed 3   # also: examples/brette_coba.py
    python examples/brette2007.py --model coba --kick     # the kicked variant
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from pysnn.connection import Sparse
from pysnn.network import SNNNetwork
from pysnn.neuron import LIFNeuron
from pysnn.synapse import ConductanceSynapse, ExponentialSynapse

IN_DEGREE = 80  # p = 0.02 at N = 4000
KICK_MS, KICK_SOURCES, KICK_HZ, KICK_P = 50.0, 100, 100.0, 0.1  # the kicked COBA variant
PARAMS = {
    "cuba": dict(v_rest=-49.0, w_exc=1.62, w_inh=-9.0, integrator="exact"),
    "coba": dict(v_rest=-60.0, w_exc=0.6, w_inh=6.7, integrator="euler"),
}
TAU_EXC, TAU_INH = 5.0, 10.0  # ms


class BalancedNetwork(SNNNetwork):
    """``n`` LIF neurons with random excitatory and inhibitory recurrent connections.

    Parameters
    ----------
    model : {"cuba", "coba"}
        Benchmark 2 (current synapses) or 1 (conductance synapses).
    n : int
        Number of neurons (80 % excitatory).
    dt : float
        Timestep in ms.
    seed : int
        Seed of the random connectivity.
    kick : bool
        COBA only: add the 100 Poisson sources of the kicked variant.
    connectivity : tuple of (Tensor, Tensor), optional
        ``(exc, inh)`` synapse indices ``(2, S)`` as ``(post, pre)`` rows, the
        presynaptic index counted within its group (e.g. Brian2's ``i`` and
        ``j`` of the two ``Synapses``); drawn with ``seed`` when not given.
    """

    def __init__(
        self,
        model: str,
        n: int = 4000,
        dt: float = 0.1,
        seed: int = 0,
        kick: bool = False,
        connectivity: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        if model not in PARAMS:
            raise ValueError(f"model must be one of {sorted(PARAMS)}, got {model!r}")
        if kick and model != "coba":
            raise ValueError("kick is the kicked COBA variant (model='coba')")
        p = PARAMS[model]
        self.model, self.n_exc, self.kicked = model, int(0.8 * n), bool(kick)
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
        n_inh = n - self.n_exc
        if connectivity is None:
            prob = min(1.0, IN_DEGREE / n)
            self.exc = Sparse.fixed_probability(self.n_exc, n, prob, gen, weight=p["w_exc"], dt=dt)
            self.inh = Sparse.fixed_probability(n_inh, n, prob, gen, weight=p["w_inh"], dt=dt)
        else:
            exc, inh = connectivity
            self.exc = Sparse(self.n_exc, n, exc, weight=p["w_exc"], dt=dt)
            self.inh = Sparse(n_inh, n, inh, weight=p["w_inh"], dt=dt)
        integrator = p["integrator"]
        if model == "cuba":
            self.syn_exc = ExponentialSynapse((n,), TAU_EXC, dt, integrator=integrator)
            self.syn_inh = ExponentialSynapse((n,), TAU_INH, dt, integrator=integrator)
        else:
            self.syn_exc = ConductanceSynapse((n,), TAU_EXC, 0.0, dt, integrator=integrator)
            self.syn_inh = ConductanceSynapse((n,), TAU_INH, -80.0, dt, integrator=integrator)
        if self.kicked:
            self.kick = Sparse.fixed_probability(
                KICK_SOURCES, n, KICK_P, gen, weight=p["w_exc"], dt=dt
            )

    def initialize(
        self, v: torch.Tensor, exc: torch.Tensor | None = None, inh: torch.Tensor | None = None
    ) -> None:
        """Reset to batch 1 and set the voltages and the synaptic variables the first step sees.

        ``v`` in mV; ``exc``/``inh`` the synaptic currents (CUBA, mV) or
        conductances (COBA, leak conductances) at the start of the first step
        (default 0).  A synapse decays its state before adding the step's
        input, so the state is set to the value divided by its decay factor.
        """
        self.reset_state(1)
        with torch.no_grad():
            self.neurons.v_cell.copy_(v.reshape(1, -1))
            for syn, value in ((self.syn_exc, exc), (self.syn_inh, inh)):
                if value is not None:
                    state = syn.current if self.model == "cuba" else syn.g
                    state.copy_(value.reshape(1, -1).to(state) / syn._decay())

    def forward(self, kick_spikes: torch.Tensor | None = None) -> torch.Tensor:
        """One step; recurrent input comes from the spikes of the previous step.

        ``kick_spikes`` ``(1, KICK_SOURCES)`` drives the kicked variant; ``None``
        or an empty ``(1, 0)`` tensor (what :func:`simulate` passes to
        ``net.run`` for the published models) is no external input.
        """
        neurons = self.neurons
        spikes = neurons.spikes
        x_exc, _ = self.exc(spikes[:, : self.n_exc])
        x_inh, _ = self.inh(spikes[:, self.n_exc :])
        if kick_spikes is not None and kick_spikes.shape[-1]:
            x_exc = x_exc + self.kick(kick_spikes)[0]
        if self.model == "cuba":
            # post=...: the exact coupled (v, I) propagator of the LIF membrane
            currents = [self.syn_exc(x_exc, post=neurons), self.syn_inh(x_inh, post=neurons)]
        else:
            v = neurons.v_cell  # voltage at the start of the step
            currents = [self.syn_exc(x_exc, v), self.syn_inh(x_inh, v)]
        return neurons(currents)[0]


#: steps per call of ``net.run`` in :func:`simulate` (its spikes are collected after each);
#: one eager first step and whole compiled chunks of 32 steps
RUN_PART = 1 + 32 * 32


def initial_state(model: str, n: int, gen: torch.Generator, kick: bool = False) -> dict:
    """The published initial state (or the kicked variant's), drawn with ``gen``."""
    if model == "coba" and not kick:
        return dict(
            v=-65.0 + 5.0 * torch.randn(n, generator=gen, dtype=torch.float64),
            exc=4.0 + 1.5 * torch.randn(n, generator=gen, dtype=torch.float64),
            inh=20.0 + 12.0 * torch.randn(n, generator=gen, dtype=torch.float64),
        )
    return dict(v=-60.0 + 10.0 * torch.rand(n, generator=gen, dtype=torch.float64))


def simulate(
    model: str,
    n: int,
    duration_ms: float,
    dt: float,
    seed: int,
    compile: bool = False,
    kick: bool = False,
    dtype: torch.dtype = torch.float32,
    connectivity: tuple[torch.Tensor, torch.Tensor] | None = None,
    initial: dict | None = None,
) -> dict:
    """Build and run one network; returns spike times/indices, statistics and run time.

    The network runs with :meth:`~pysnn.network.SNNNetwork.run` (the step
    strategy, or after ``compile=True`` the compiled one: chunks of steps, each
    one compiled graph, :mod:`pysnn.compiled`), in parts of
    :data:`RUN_PART` steps whose spikes are collected after each part.  With
    ``compile=True`` a warm-up run compiles first, the state is set again and
    the timed run starts; the compilation time is reported as ``compile_s``.
    ``connectivity`` and ``initial``
    (``v``, and ``exc``/``inh``, see :meth:`BalancedNetwork.initialize`)
    replace the random ones (``benchmarks/brette_replay.py`` passes Brian2's).
    """
    torch.manual_seed(seed)
    net = BalancedNetwork(model, n, dt, seed, kick, connectivity).to(dtype)
    gen = torch.Generator().manual_seed(seed + 1000)
    if initial is None:
        initial = initial_state(model, n, gen, kick)
    steps, kick_steps = int(round(duration_ms / dt)), int(round(KICK_MS / dt))
    kick_p = KICK_HZ * dt / 1000.0
    drive = torch.zeros(steps, 1, KICK_SOURCES if kick else 0, dtype=dtype)
    if kick:
        kicks = torch.rand(min(kick_steps, steps), 1, KICK_SOURCES, generator=gen) < kick_p
        drive[: kicks.shape[0]] = kicks.to(dtype)
    strategy = "compiled" if compile else "step"
    parts = [drive[first : first + RUN_PART] for first in range(0, steps, RUN_PART)]
    compile_s = 0.0
    if compile:
        net.compile()
        start = time.perf_counter()
        with torch.no_grad():  # compiles the chunks of every part length the timed run takes
            for length in sorted({int(part.shape[0]) for part in parts}):
                net.initialize(**initial)
                net.run(parts[0][:length], reset=False, strategy=strategy, warn_silent=False)
        compile_s = time.perf_counter() - start
    net.initialize(**initial)
    times, cells = [], []
    start = time.perf_counter()
    with torch.no_grad():
        for first, part in zip(range(0, steps, RUN_PART), parts):
            out = net.run(part, reset=False, strategy=strategy, warn_silent=False)
            t, i = out[:, 0].nonzero(as_tuple=True)
            times.append(t + first)
            cells.append(i)
    run_s = time.perf_counter() - start
    spike_i = torch.cat(cells).numpy()
    spike_step = torch.cat(times).numpy()
    spike_t = spike_step * dt
    rate, cv, fano = statistics(spike_i, spike_t, n, duration_ms)
    synapses = net.exc.n_synapses + net.inh.n_synapses
    return dict(
        simulator="pysnn",
        model=model + ("-kick" if kick else ""),
        n=n,
        seed=seed,
        rate_hz=rate,
        cv_isi=cv,
        fano_1ms=fano,
        run_s=run_s,
        compile_s=compile_s,
        synapses=synapses,
        spike_i=spike_i,
        spike_t=spike_t,
        spike_step=spike_step,
    )


def statistics(
    spike_i: np.ndarray, spike_t_ms: np.ndarray, n: int, duration_ms: float
) -> tuple[float, float, float]:
    """Mean rate (Hz), mean ISI CV (neurons with >= 3 spikes), population Fano factor (1 ms bins).

    The Fano factor is the variance over the mean of the number of spikes of
    the whole population per 1 ms bin, over ``duration_ms``: 1 for
    independent Poisson neurons, larger when the population fires in bursts.
    """
    rate = len(spike_i) / n / (duration_ms / 1000.0)
    cvs = isi_cvs(spike_i, spike_t_ms)
    counts = np.bincount(
        np.floor(np.round(spike_t_ms, 6)).astype(np.int64), minlength=int(round(duration_ms))
    ).astype(np.float64)
    fano = float(counts.var() / counts.mean()) if counts.mean() > 0 else float("nan")
    return rate, float(np.mean(cvs)) if cvs else float("nan"), fano


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


def parser(model: str | None = None) -> argparse.ArgumentParser:
    """The command line; ``model`` fixes the model (``brette_cuba.py``, ``brette_coba.py``)."""
    if model is None:
        description = __doc__.split("\n")[0]
    else:
        number = {"coba": 1, "cuba": 2}[model]
        kind = {"coba": "conductance", "cuba": "current-based exponential"}[model]
        description = (
            f"Brette et al. (2007) benchmark {number} ({model.upper()}): {kind} synapses, "
            "the published setup"
        )
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    if model is None:
        p.add_argument(
            "--model",
            choices=("cuba", "coba"),
            default="cuba",
            help="CUBA (current-based, exact) or COBA (conductances, forward Euler)",
        )
    if model in (None, "coba"):
        p.add_argument(
            "--kick",
            action="store_true",
            help="COBA: the kicked variant (uniform initial voltages, zero conductances, "
            "50 ms of Poisson input) instead of the published initial state",
        )
    p.add_argument("--neurons", type=int, default=4000, help="network size (80 %% excitatory)")
    p.add_argument("--duration", type=float, default=1000.0, help="simulated time (ms)")
    p.add_argument("--dt", type=float, default=0.1, help="timestep (ms)")
    p.add_argument("--seed", type=int, default=0, help="seed of the connectivity and state")
    p.add_argument("--double", action="store_true", help="simulate in float64")
    p.add_argument(
        "--compile",
        action="store_true",
        help="compiled runs (net.compile(): chunks of steps, each one compiled graph)",
    )
    p.add_argument("--quick", action="store_true", help="1000 neurons, 200 ms (seconds)")
    p.add_argument(
        "--save",
        default=None,
        help="figure path (None: brette_<model>.png in the working directory)",
    )
    return p


def main(argv: list[str] | None = None, model: str | None = None) -> dict:
    args = parser(model).parse_args(argv)
    model = model or args.model
    kick = bool(getattr(args, "kick", False))
    if kick and model != "coba":
        raise SystemExit("--kick is the kicked COBA variant (--model coba)")
    if args.quick:
        args.neurons, args.duration = 1000, 200.0
    dtype = torch.float64 if args.double else torch.float32
    result = simulate(
        model, args.neurons, args.duration, args.dt, args.seed, args.compile, kick, dtype
    )
    label = model.upper() + (" (kicked variant)" if kick else "")
    print(
        f"{label} N={args.neurons} seed={args.seed}: {result['synapses']:,} synapses, "
        f"rate {result['rate_hz']:.2f} Hz, mean ISI CV {result['cv_isi']:.3f}, "
        f"Fano (1 ms) {result['fano_1ms']:.2f}, "
        f"{args.duration:.0f} ms simulated in {result['run_s']:.2f} s"
    )
    if args.quick:
        print(
            "--quick: a reduced run that only shows that the pipeline runs; its numbers are "
            "not results (run without --quick for those)"
        )
    path = Path(args.save or f"brette_{result['model']}.png")
    try:
        plot(result, int(0.8 * args.neurons), path)
        print(f"figure saved to {path}")
    except ImportError:  # matplotlib is optional
        print("matplotlib is not installed: no figure")
    return {k: v for k, v in result.items() if k not in ("spike_i", "spike_t", "spike_step")}


if __name__ == "__main__":
    main()
