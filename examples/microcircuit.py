r"""The Potjans & Diesmann (2014) cortical microcircuit, at any scale, on one or many processes.

The model of one square millimetre of early sensory cortex: 77,169 leaky
integrate-and-fire neurons in 8 populations (layers 2/3, 4, 5 and 6, each an
excitatory and an inhibitory population) joined by about 0.3 billion
synapses drawn with the layer-specific connection probabilities of the
paper's Table 5, exponential current synapses, normally distributed weights
and delays, and a Poisson (or DC) background.  At full scale it fires
asynchronously and irregularly at the population-specific rates that made it
the field's reference network (low in L2/3e and L6e, highest in L5).

Sources (numbers only; no code was copied):

* T. C. Potjans and M. Diesmann (2014), "The cell-type specific cortical
  microcircuit: relating structure and activity in a full-scale spiking
  network model", Cerebral Cortex 24(3): 785-806, doi:10.1093/cercor/bhs358
  (population sizes, connection probabilities, external in-degrees,
  PSP 0.15 mV with 10 % spread, g = -4, L4e -> L2/3e doubled, delays
  1.5 / 0.75 ms with 50 % spread, 8 Hz background, the neuron model);
* NEST's PyNEST microcircuit example (``pynest/examples/Potjans_2014``:
  ``network_params.py``, ``sim_params.py``, ``stimulus_params.py``,
  ``helpers.py``; H. Rothe, H. Bos, S. van Albada, J. Senk et al.): the
  conversion of the PSP to a current (0.15 mV -> 87.8 pA), the fixed total
  number of synapses :math:`K = \ln(1-p)/\ln(1 - 1/(N_{pre}N_{post}))`, the
  redrawn weights (sign kept) and delays (at least ``dt/2``, i.e. one step),
  the population-specific initial voltages, the in-degree scaling with its
  correction and the full-scale rates used as the reference below (NEST's
  ``full_mean_rates``: 0.903, 2.965, 4.414, 5.876, 7.569, 8.633, 1.105,
  7.829 spikes/s);
* C. Romaro, F. A. Najman, W. W. Lytton, A. C. Roque, S. Dura-Bernal (2021),
  "NetPyNE implementation and scaling of the Potjans-Diesmann cortical
  microcircuit model", Neural Computation 33(7): 1993-2032, Table A.3: the
  ISI CVs of the full-scale model with Poisson input (60 s simulated), used
  as the CV reference (0.938, 0.916, 0.891, 0.873, 0.847, 0.809, 0.924,
  0.819).  Short runs give lower CVs: a neuron at 1 spike/s has few
  intervals in a second.

**Scaling** (``--scale`` for the number of neurons :math:`N` and the
in-degrees :math:`K`, ``--k-scale`` for :math:`K` alone): the number of
synapses of each projection is :math:`K_{full} \cdot s_N \cdot s_K`.  With
fewer inputs per neuron, NEST's correction (van Albada, Helias & Diesmann
2015, PLoS Comput. Biol. 11: e1004490) keeps the mean and the variance of
the input: every weight (recurrent and external) is divided by
:math:`\sqrt{s_K}` and the lost mean is added as a DC current

.. math:: I_{DC,a} \mathrel{+}= 10^{-3}\, \tau_{syn} (1 - \sqrt{s_K})
          \Big(\sum_b J_{ab} K^{full}_{ab} \nu_b + J_{ext} K_{ext,a} \nu_{bg}\Big)

(:math:`\nu_b` the full-scale rates in spikes/s, :math:`J` in pA,
:math:`\tau_{syn}` in ms; the external term only with a Poisson
background).  ``--background dc`` replaces the Poisson input by its mean,
:math:`I = 10^{-3} \nu_{bg} K_{ext} J_{ext} \tau_{syn}`.

**Memory.**  ``--procedural`` (default) uses
:class:`~pysnn.connection.ProceduralSparse`: the synapses of a neuron are
regenerated from the seed when it spikes, so the full-scale network needs
no per-synapse memory; ``--stored`` keeps them
(:meth:`Sparse.from_connectivity <pysnn.connection.Sparse.from_connectivity>`,
the same synapses and spikes, tens of bytes per synapse).

**Many processes.**  Under ``torchrun`` with ``--parallel`` every process
simulates a share of every population (:mod:`pysnn.parallel`, gloo) and the
spikes are exchanged once per minimum delay::

    torchrun --nproc_per_node 2 examples/microcircuit.py --parallel --scale 0.1

Run::

    python examples/microcircuit.py --scale 0.1 --time 1000      # 7,717 neurons, 3 M synapses
    python examples/microcircuit.py --scale 1 --time 200         # the full model, procedural
    python examples/microcircuit.py --quick                       # seconds

Prints per-population rates and ISI CVs next to the reference values, the
peak memory (RSS) and the wall time per simulated second, and saves a
figure (raster, rates and CVs).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as dist

from pysnn import parallel
from pysnn.connection import ProceduralSparse, RandomConnectivity, Sparse
from pysnn.drive import PoissonDrive
from pysnn.network import SNNNetwork
from pysnn.neuron import LIFNeuron
from pysnn.synapse import ExponentialSynapse

POPULATIONS = ("L2/3e", "L2/3i", "L4e", "L4i", "L5e", "L5i", "L6e", "L6i")
#: full-scale population sizes (Potjans & Diesmann 2014, Table 5)
N_FULL = np.array([20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948])
#: connection probabilities, [target, source] (Table 5)
CONN_PROBS = np.array(
    [
        [0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0],
        [0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0],
        [0.0077, 0.0059, 0.0497, 0.1350, 0.0067, 0.0003, 0.0453, 0.0],
        [0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0],
        [0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0],
        [0.0548, 0.0269, 0.0257, 0.0022, 0.0600, 0.3158, 0.0086, 0.0],
        [0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252],
        [0.0364, 0.0010, 0.0034, 0.0005, 0.0277, 0.0080, 0.0658, 0.1443],
    ]
)
#: external (cortico-cortical background) in-degrees (Table 5)
K_EXT = np.array([1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100])
#: full-scale rates in spikes/s: the reference (NEST's ``full_mean_rates``) and the scaling correction
REFERENCE_RATES = np.array([0.903, 2.965, 4.414, 5.876, 7.569, 8.633, 1.105, 7.829])
#: full-scale mean ISI CVs (Romaro et al. 2021, Table A.3, NetPyNE, Poisson input, 60 s)
REFERENCE_CVS = np.array([0.938, 0.916, 0.891, 0.873, 0.847, 0.809, 0.924, 0.819])
#: initial voltages, mean and std per population in mV (NEST's ``V0_type = "optimized"``)
V0_MEAN = np.array([-68.28, -63.16, -63.33, -63.45, -63.11, -61.66, -66.72, -61.43])
V0_STD = np.array([5.36, 4.57, 4.74, 4.94, 4.94, 4.55, 5.46, 4.48])

DT = 0.1  # ms
C_M, TAU_M, TAU_SYN = 250.0, 10.0, 0.5  # pF, ms, ms
E_L, V_TH, V_RESET, T_REF = -65.0, -50.0, -65.0, 2.0  # mV, mV, mV, ms
PSP_E, PSP_REL_STD, G = 0.15, 0.1, -4.0  # mV, relative, inhibitory / excitatory
DELAY_E, DELAY_I, DELAY_REL_STD = 1.5, 0.75, 0.5  # ms, ms, relative
BG_RATE = 8.0  # spikes/s per external input


def psc_per_psp(c_m: float = C_M, tau_m: float = TAU_M, tau_syn: float = TAU_SYN) -> float:
    r"""pA of a current jump whose PSP (exponential current into the membrane) peaks at 1 mV.

    The PSP of a current :math:`J e^{-t/\tau_s}` peaks at
    :math:`\frac{J \tau_m \tau_s}{C (\tau_s - \tau_m)}
    \big(f^{\tau_m} - f^{\tau_s}\big)` with
    :math:`f = (\tau_m/\tau_s)^{1/(\tau_s - \tau_m)}`; 0.15 mV -> 87.8 pA.
    """
    sub = 1.0 / (tau_syn - tau_m)
    frac = (tau_m / tau_syn) ** sub
    return 1.0 / (tau_m * tau_syn / c_m * sub * (frac**tau_m - frac**tau_syn))


class Parameters(NamedTuple):
    """The derived parameters of one scale (``derive``); matrices are [target, source]."""

    sizes: np.ndarray  # neurons per population
    synapses: np.ndarray  # synapses per projection
    weight: np.ndarray  # mean weight per projection (pA), after the K correction
    weight_std: np.ndarray  # pA
    delay: np.ndarray  # mean delay (ms)
    delay_std: np.ndarray  # ms
    ext_rate: np.ndarray  # Poisson rate into each neuron of a population (spikes/s)
    ext_weight: float  # pA, after the K correction
    dc: np.ndarray  # DC current per population (pA)


def full_synapses() -> np.ndarray:
    """Synapses per projection at full scale: :math:`\\ln(1-p)/\\ln(1 - 1/(N_{pre} N_{post}))`."""
    pairs = np.outer(N_FULL, N_FULL).astype(np.float64)
    return np.log1p(-CONN_PROBS) / np.log1p(-1.0 / pairs)


def derive(scale: float, k_scale: float | None = None, background: str = "poisson") -> Parameters:
    """The model's parameters with neurons scaled by ``scale`` and in-degrees by ``k_scale``."""
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale!r}")
    k_scale = scale if k_scale is None else k_scale
    if not 0 < k_scale <= 1:
        raise ValueError(f"k_scale must be in (0, 1], got {k_scale!r}")
    if background not in ("poisson", "dc"):
        raise ValueError(f"background must be 'poisson' or 'dc', got {background!r}")
    full = full_synapses()
    sizes = np.maximum(1, np.round(N_FULL * scale)).astype(np.int64)
    synapses = np.round(full * scale * k_scale).astype(np.int64)
    j = PSP_E * psc_per_psp()  # 87.8 pA
    weight = np.where(np.arange(8) % 2 == 0, j, G * j)[None, :].repeat(8, 0)
    weight[0, 2] *= 2.0  # L4e -> L2/3e doubled
    delay = np.where(np.arange(8) % 2 == 0, DELAY_E, DELAY_I)[None, :].repeat(8, 0)
    # the in-degree correction: weights / sqrt(k), the lost mean input as DC
    k_ext = np.round(K_EXT * k_scale)
    root = math.sqrt(k_scale)
    recurrent = (weight * full / N_FULL[:, None] * REFERENCE_RATES[None, :]).sum(1)
    dc = 1e-3 * TAU_SYN * (1.0 - root) * recurrent
    if background == "poisson":
        dc = dc + 1e-3 * TAU_SYN * (1.0 - root) * j * K_EXT * BG_RATE
        ext_rate = BG_RATE * k_ext
    else:
        dc = dc + 1e-3 * TAU_SYN * BG_RATE * K_EXT * j  # the mean of the full Poisson input
        ext_rate = np.zeros(8)
    weight = weight / root
    return Parameters(
        sizes=sizes,
        synapses=synapses,
        weight=weight,
        weight_std=np.abs(weight) * PSP_REL_STD,
        delay=delay,
        delay_std=delay * DELAY_REL_STD,
        ext_rate=ext_rate,
        ext_weight=j / root,
        dc=dc,
    )


def connectivity(params: Parameters, seed: int) -> RandomConnectivity:
    """The recurrent synapses (fixed total number per projection, redrawn weights and delays)."""
    sizes = params.sizes.tolist()
    return RandomConnectivity(
        sizes,
        sizes,
        params.synapses.tolist(),
        weight=params.weight.tolist(),
        weight_std=params.weight_std.tolist(),
        delay=params.delay.tolist(),
        delay_std=params.delay_std.tolist(),
        dt=DT,
        seed=seed,
    )


class Microcircuit(SNNNetwork):
    """The neurons ``mine`` (global indices; all by default) of the microcircuit; one step per call.

    One LIF population of every neuron (the 8 populations are blocks of it:
    the neuron parameters are shared), one exponential current synapse, the
    recurrent projection, the Poisson drive and the DC current.
    """

    def __init__(
        self,
        params: Parameters,
        seed: int = 0,
        mode: str = "procedural",
        mine: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        total = int(params.sizes.sum())
        mine = torch.arange(total) if mine is None else mine
        n = int(mine.numel())
        self.params, self.mine = params, mine
        block = torch.repeat_interleave(torch.arange(8), torch.as_tensor(params.sizes))[mine]
        self.neurons = LIFNeuron(
            (n,),
            thresh=V_TH,
            v_rest=E_L,
            v_reset=V_RESET,
            alpha_v=TAU_M / C_M,  # mV per pA: v -> E_L + R I
            tau_v=TAU_M,
            duration_refrac=T_REF - DT,  # NEST's t_ref counts the step of the spike
            dt=DT,
        )
        self.syn = ExponentialSynapse((n,), tau_syn=TAU_SYN, dt=DT)
        conn = connectivity(params, seed)
        post = None if n == total else mine
        if mode == "procedural":
            self.rec = ProceduralSparse(conn, post=post)
        elif mode == "stored":
            self.rec = Sparse.from_connectivity(conn, post=post, delivery="queue")
        else:
            raise ValueError(f"mode must be 'procedural' or 'stored', got {mode!r}")
        rates = torch.as_tensor(params.ext_rate, dtype=torch.float64)[block]
        self.drive = PoissonDrive(rates, n, dt=DT, seed=seed + 1, index=mine)
        self.has_drive = bool((rates > 0).any())
        self.register_buffer("dc", torch.as_tensor(params.dc, dtype=torch.float32)[block])
        self.ext_weight = float(params.ext_weight)
        self.add_layer("rec", self.rec, self.neurons, self.neurons, synapse=self.syn)
        gen = torch.Generator().manual_seed(seed + 2)
        block_all = torch.repeat_interleave(torch.arange(8), torch.as_tensor(params.sizes))
        v0 = torch.as_tensor(V0_MEAN, dtype=torch.float32)[block_all] + torch.as_tensor(
            V0_STD, dtype=torch.float32
        )[block_all] * torch.randn(total, generator=gen)
        self.v0 = v0[mine]

    def start(self) -> None:
        """A new run of one sample from the initial voltages."""
        self.reset_state(1)
        self.neurons.reset_state(1)
        with torch.no_grad():
            self.neurons.v_cell.copy_(self.v0.expand(1, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        recurrent, _ = self.rec(self.neurons.spikes, self.neurons.trace)
        if self.has_drive:
            recurrent = recurrent + self.drive(int(x.shape[0])) * self.ext_weight
        current = self.syn(recurrent, post=self.neurons) + self.dc
        return self.neurons(current)[0]


def simulate(
    params: Parameters,
    time_ms: float,
    warmup_ms: float = 0.0,
    seed: int = 0,
    mode: str = "procedural",
    distributed: bool = False,
    chunk_steps: int = 200,
) -> dict[str, Any]:
    """Build and run the network; returns the recorded spikes and the costs.

    ``distributed``: this process is one rank of an initialised
    :mod:`torch.distributed` group; the neurons are split among the ranks and
    the spikes gathered.  Spikes of the ``warmup_ms`` before the recording
    are dropped.
    """
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    split = parallel.Split(params.sizes.tolist(), world)
    mine = split.owned(rank) if distributed else None
    t0 = time.perf_counter()
    net = Microcircuit(params, seed, mode, mine)
    handle = parallel.model_parallel(net, {net.neurons: split}) if distributed else None
    net.start()
    build_s = time.perf_counter() - t0
    warm_steps, steps = round(warmup_ms / DT), round(time_ms / DT)
    spike_step, spike_unit = [], []
    if distributed:
        dist.barrier()
    t1 = time.perf_counter()
    done = 0
    while done < warm_steps + steps:
        n = min(chunk_steps, warm_steps + steps - done)
        out = net.run(torch.zeros(n, 1, 0), reset=False, warn_silent=False)
        if handle is not None:
            out = handle.gather(out, net.neurons)
        step, _, unit = out.nonzero(as_tuple=True)
        keep = step + done >= warm_steps
        spike_step.append(step[keep] + done - warm_steps)
        spike_unit.append(unit[keep])
        done += n
    if distributed:
        dist.barrier()
    run_s = time.perf_counter() - t1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # MiB (Linux: KiB)
    peaks = torch.tensor([peak], dtype=torch.float64)
    if distributed:
        gathered = [torch.zeros(1, dtype=torch.float64) for _ in range(world)]
        dist.all_gather(gathered, peaks)
        peaks = torch.cat(gathered)
    return {
        "spike_step": torch.cat(spike_step).numpy(),
        "spike_unit": torch.cat(spike_unit).numpy(),
        "steps": steps,
        "warm_steps": warm_steps,
        "build_s": build_s,
        "run_s": run_s,
        "s_per_sim_s": run_s / ((warm_steps + steps) * DT / 1000.0),
        "peak_rss_mib": peaks.tolist(),
        "neurons": int(params.sizes.sum()),
        "synapses": int(params.synapses.sum()),
        "world": world,
    }


def statistics(params: Parameters, spike_step: np.ndarray, spike_unit: np.ndarray, steps: int):
    """Per population: rate (spikes/s over all its neurons) and mean ISI CV (neurons with >= 3 spikes)."""
    offsets = np.concatenate([[0], np.cumsum(params.sizes)])
    seconds = steps * DT / 1000.0
    rates, cvs = np.zeros(8), np.full(8, np.nan)
    order = np.lexsort((spike_step, spike_unit))
    unit, step = spike_unit[order], spike_step[order]
    for p in range(8):
        lo, hi = offsets[p], offsets[p + 1]
        sel = (unit >= lo) & (unit < hi)
        rates[p] = sel.sum() / (params.sizes[p] * seconds)
        u, t = unit[sel], step[sel].astype(np.float64)
        if u.size < 3:
            continue
        same = u[1:] == u[:-1]
        isi, owner = np.diff(t)[same], u[1:][same]
        if isi.size == 0:
            continue
        ids, inverse, counts = np.unique(owner, return_inverse=True, return_counts=True)
        mean = np.bincount(inverse, isi) / counts
        var = np.bincount(inverse, isi**2) / counts - mean**2
        ok = counts >= 2
        if ok.any():
            cvs[p] = float(np.mean(np.sqrt(np.maximum(var[ok], 0.0)) / mean[ok]))
    return rates, cvs


def plot(params: Parameters, result: dict, rates, cvs, path: Path, window_ms: float = 200.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    offsets = np.concatenate([[0], np.cumsum(params.sizes)])
    fig, (ax_r, ax_rate, ax_cv) = plt.subplots(
        1, 3, figsize=(13, 5), gridspec_kw={"width_ratios": [2.2, 1, 1]}
    )
    last = result["steps"] * DT
    lo_t = max(0.0, last - window_ms)
    t = result["spike_step"] * DT
    keep = t >= lo_t
    # at most ~1000 neurons per population in the raster
    stride = max(1, int(params.sizes.max()) // 1000)
    unit = result["spike_unit"][keep]
    sub = unit % stride == 0
    colors = ["#1f77b4", "#d62728"] * 4
    block = np.searchsorted(offsets[1:], unit[sub], side="right")
    total = offsets[-1]
    ax_r.scatter(t[keep][sub], total - unit[sub], s=0.3, c=[colors[b] for b in block], linewidths=0)
    ax_r.set_yticks([total - (offsets[p] + offsets[p + 1]) / 2 for p in range(8)], POPULATIONS)
    ax_r.set_xlabel("time (ms)")
    ax_r.set_title(f"raster (1 neuron in {stride})" if stride > 1 else "raster")
    y = np.arange(8)[::-1]
    ax_rate.barh(y, rates, color=colors, alpha=0.8, label="PySNN")
    ax_rate.scatter(REFERENCE_RATES, y, color="k", marker="|", s=200, label="NEST reference")
    ax_rate.set_yticks(y, POPULATIONS)
    ax_rate.set_xlabel("rate (spikes/s)")
    ax_rate.legend(fontsize=8)
    ax_cv.barh(y, np.nan_to_num(cvs), color=colors, alpha=0.8)
    ax_cv.scatter(REFERENCE_CVS, y, color="k", marker="|", s=200, label="NetPyNE reference")
    ax_cv.legend(fontsize=8, loc="lower left")
    ax_cv.set_yticks(y, POPULATIONS)
    ax_cv.set_xlabel("ISI CV")
    fig.suptitle(
        f"Potjans & Diesmann microcircuit: {result['neurons']:,} neurons, "
        f"{result['synapses']:,} synapses, {result['steps'] * DT:.0f} ms"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--scale", type=float, default=0.1, help="fraction of the neurons (and of the in-degrees)"
    )
    p.add_argument(
        "--k-scale",
        type=float,
        default=None,
        help="fraction of the in-degrees, corrected by weights/sqrt(k) and DC (None: --scale)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--procedural",
        dest="mode",
        action="store_const",
        const="procedural",
        default="procedural",
        help="regenerate the synapses from the seed at every spike (no per-synapse memory)",
    )
    mode.add_argument(
        "--stored",
        dest="mode",
        action="store_const",
        const="stored",
        help="store the synapses (Sparse, delivery='queue'): the same spikes, more memory",
    )
    p.add_argument(
        "--background",
        choices=("poisson", "dc"),
        default="poisson",
        help="external input: Poisson spikes (8 Hz x K_ext) or their mean as a DC current",
    )
    p.add_argument("--time", type=float, default=1000.0, help="recorded simulated time (ms)")
    p.add_argument(
        "--warmup", type=float, default=100.0, help="simulated time before recording (ms)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of connectivity, drive and voltages")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument(
        "--parallel",
        action="store_true",
        help="model-parallel over the processes of torchrun (gloo): each simulates a share",
    )
    p.add_argument(
        "--quick", action="store_true", help="scale 0.02, 200 ms after 50 ms warm-up (seconds)"
    )
    p.add_argument("--out", default="microcircuit.png", help="figure path ('' for none)")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    if args.quick:
        args.scale, args.time, args.warmup = 0.02, 200.0, 50.0
    torch.set_num_threads(args.threads)
    if args.parallel and not dist.is_initialized():
        dist.init_process_group("gloo")
    distributed = args.parallel
    rank = dist.get_rank() if distributed else 0
    params = derive(args.scale, args.k_scale, args.background)
    result = simulate(params, args.time, args.warmup, args.seed, args.mode, distributed)
    rates, cvs = statistics(params, result["spike_step"], result["spike_unit"], result["steps"])
    result.update(rates=rates, cvs=cvs)
    if rank == 0:
        k_scale = args.scale if args.k_scale is None else args.k_scale
        print(
            f"microcircuit: scale {args.scale:g} (in-degrees {k_scale:g}), "
            f"{result['neurons']:,} neurons, {result['synapses']:,} synapses, {args.mode}, "
            f"{args.background} background, {result['world']} process(es) x {args.threads} "
            f"thread(s), seed {args.seed}"
        )
        print(
            f"{'population':>10} {'rate':>7} {'reference':>9} {'ISI CV':>7} {'reference':>9}"
            "  (rates in spikes/s)"
        )
        for name, r, ref, cv, ref_cv in zip(
            POPULATIONS, rates, REFERENCE_RATES, cvs, REFERENCE_CVS
        ):
            print(f"{name:>10} {r:7.3f} {ref:9.3f} {cv:7.3f} {ref_cv:9.3f}")
        peaks = result["peak_rss_mib"]
        print(
            f"{args.warmup + args.time:g} ms simulated ({args.warmup:g} ms warm-up) in "
            f"{result['run_s']:.1f} s: {result['s_per_sim_s']:.1f} s per simulated second; "
            f"build {result['build_s']:.1f} s; peak RSS "
            + (
                f"{peaks[0]:.0f} MiB"
                if len(peaks) == 1
                else f"{max(peaks):.0f} MiB per process " f"(max), {sum(peaks):.0f} MiB in all"
            )
        )
        if args.quick:
            print(
                "--quick: a reduced run that only shows that the pipeline runs; its numbers are "
                "not results (run without --quick for those)"
            )
        if args.out:
            try:
                plot(params, result, rates, cvs, Path(args.out))
                print(f"figure saved to {args.out}")
            except ImportError:  # matplotlib is optional
                print("matplotlib is not installed: no figure")
    if distributed and "TORCHELASTIC_RUN_ID" in os.environ:
        dist.destroy_process_group()
    return result


if __name__ == "__main__":
    main()
