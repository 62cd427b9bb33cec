"""Responses of PySNN's neuron and synapse models: a step current and a single spike.

Each neuron model gets the same kind of stimulus, a current step switched on at
20 ms, and each synapse model a single presynaptic spike at 5 ms; the figure
shows the voltage traces (spikes drawn up to the peak) and the synaptic currents.
It is the picture on the "Neuron and synapse models" page of the docs::

    python examples/model_responses.py --save docs/_static/model_responses.png

Returns (and prints) the number of spikes and the first and last inter-spike
intervals of every neuron model, e.g. AdEx adapts (its intervals lengthen) while
Izhikevich's fast-spiking cell does not.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from pysnn.neuron import AdaptiveLIFNeuron, AdExNeuron, IFNeuron, IzhikevichNeuron, LIFNeuron
from pysnn.synapse import AlphaSynapse, ConductanceSynapse, ExponentialSynapse

#: printed next to the numbers of a --quick run
QUICK_NOTE = (
    "--quick: a reduced run that only shows that the pipeline runs; its numbers are not "
    "results (run without --quick for those)"
)

DT = 0.1  # ms


def neuron_models() -> dict[str, tuple[torch.nn.Module, float]]:
    """Name -> (neuron, step current); voltages in mV, integration in ms."""
    lif = dict(thresh=-50.0, v_rest=-65.0, dt=DT, duration_refrac=2.0, tau_v=20.0)
    models = {
        "IF": (IFNeuron((1,), thresh=-50.0, v_rest=-65.0, alpha_v=0.02, dt=DT), 10.0),
        "LIF": (LIFNeuron((1,), integrator="exact", **lif), 18.0),
        "adaptive LIF": (
            AdaptiveLIFNeuron((1,), alpha_thresh=2.0, tau_thresh=100.0, integrator="exact", **lif),
            18.0,
        ),
        "AdEx (Brette & Gerstner)": (AdExNeuron((1,), dt=DT), 1000.0),  # pA
    }
    for name in ("RS", "IB", "CH", "FS", "LTS"):
        models[f"Izhikevich {name}"] = (IzhikevichNeuron.preset(name, (1,), dt=DT), 10.0)
    return models


def neuron_response(neuron: torch.nn.Module, current: float, steps: int, onset: int):
    """Voltage trace (spikes drawn at the threshold) and spike times in ms."""
    voltages, times = [], []
    for k in range(steps):
        x = torch.full((1, 1), current if k >= onset else 0.0)
        spikes, _ = neuron(x)
        v = float(neuron.v_cell[0, 0])
        if spikes[0, 0]:
            times.append(k * DT)
            v = float(neuron.threshold().reshape(-1)[0])
        voltages.append(v)
    return np.array(voltages), np.array(times)


def synapse_response(steps: int, spike_step: int) -> dict[str, np.ndarray]:
    """Current of each synapse model after one unit spike (conductance: at v = -65 mV)."""
    out = {}
    models = {
        "exponential (tau 5 ms)": ExponentialSynapse((1,), 5.0, DT),
        "alpha (tau 5 ms)": AlphaSynapse((1,), 5.0, DT),
        "conductance (tau 5 ms, E 0 mV)": ConductanceSynapse((1,), 5.0, 0.0, DT),
    }
    v = torch.full((1, 1), -65.0)
    for name, syn in models.items():
        trace = []
        for k in range(steps):
            x = torch.full((1, 1), 1.0 if k == spike_step else 0.0)
            current = syn(x, v) if isinstance(syn, ConductanceSynapse) else syn(x)
            trace.append(float(current[0, 0]))
        out[name] = np.array(trace)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=300.0, help="simulated time (ms)")
    parser.add_argument("--quick", action="store_true", help="100 ms")
    parser.add_argument("--seed", type=int, default=0, help="unused: the models are deterministic")
    parser.add_argument("--save", default="model_responses.png", help="figure file")
    args = parser.parse_args(argv)
    duration = 100.0 if args.quick else args.duration
    steps, onset = int(duration / DT), int(20.0 / DT)
    traces, summary = {}, {}
    for name, (neuron, current) in neuron_models().items():
        v, times = neuron_response(neuron, current, steps, onset)
        traces[name] = v
        isi = np.diff(times)
        summary[name] = dict(
            spikes=len(times),
            first_isi=float(isi[0]) if len(isi) else float("nan"),
            last_isi=float(isi[-1]) if len(isi) else float("nan"),
        )
        print(
            f"{name:26s} {len(times):3d} spikes, first ISI {summary[name]['first_isi']:6.2f} ms, "
            f"last ISI {summary[name]['last_isi']:6.2f} ms"
        )
    if args.quick:
        print(QUICK_NOTE)
    currents = synapse_response(int(40.0 / DT), int(5.0 / DT))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed, so the figure is not saved (pip install matplotlib)")
        return summary
    t = np.arange(steps) * DT
    fig, axes = plt.subplots(4, 3, figsize=(12, 10), sharex=False)
    for ax, (name, v) in zip(axes.flat, traces.items()):
        ax.plot(t, v, lw=0.8)
        ax.axvline(20.0, color="0.7", lw=0.6)
        ax.set(title=name, xlabel="time (ms)", ylabel="v (mV)")
    ax = axes.flat[len(traces)]
    ts = np.arange(len(next(iter(currents.values())))) * DT
    for name, current in currents.items():
        ax.plot(ts, current / np.abs(current).max(), label=name)
    ax.set(title="synapses, one spike at 5 ms", xlabel="time (ms)", ylabel="current (normalised)")
    ax.legend(fontsize=7)
    for ax in axes.flat[len(traces) + 1 :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.save, dpi=100)
    plt.close(fig)
    print(f"figure saved to {args.save}")
    return summary


if __name__ == "__main__":
    main()
