r"""
Neuron models and their responses
=================================

PySNN's neuron models share one interface: a population of cells built from
its parameters, called once per timestep with the input current and returning
``(spikes, trace)``.  This tutorial drives each model with current steps and
compares the voltage traces, the firing-rate-versus-current (f-I) curves and
the five published Izhikevich cell classes, then looks at the synapse models
that turn spikes into currents.

The batch dimension does the bookkeeping: a population of one cell run with a
batch of ``B`` different currents simulates ``B`` independent copies at once.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

from pysnn.neuron import AdaptiveLIFNeuron, AdExNeuron, IFNeuron, IzhikevichNeuron, LIFNeuron
from pysnn.synapse import AlphaSynapse, ConductanceSynapse, ExponentialSynapse

DT = 0.1  # ms
STEPS = 2000  # 200 ms
ONSET = 200  # the current switches on at 20 ms


def simulate(neuron, currents):
    """Voltages ``[T, B]`` and spikes ``[T, B]`` of a one-cell population, one current each."""
    neuron.reset_state()
    drive = torch.as_tensor(currents, dtype=torch.float32).reshape(-1, 1)
    volts, spikes = [], []
    for t in range(STEPS):
        s, _ = neuron(drive if t >= ONSET else torch.zeros_like(drive))
        # draw spikes up to the threshold (the voltage is already reset)
        v = torch.where(s.bool(), neuron.threshold().expand_as(s), neuron.v_cell)
        volts.append(v[:, 0].clone())
        spikes.append(s[:, 0].clone())
    return torch.stack(volts), torch.stack(spikes)


# %%
# Integrate-and-fire family
# -------------------------
# Voltages are in mV, times in ms.  The LIF neuron leaks towards ``v_rest``
# with :math:`\tau_v`; with ``integrator="exact"`` the input is a voltage
# offset held over the step, so a constant input above ``thresh - v_rest``
# (15 mV here) makes it fire.  The adaptive LIF raises its threshold by
# ``alpha_thresh`` per spike (Diehl & Cook 2015), and AdEx (Brette & Gerstner
# 2005) adds an exponential spike initiation and an adaptation current, in pA.

lif_args = dict(thresh=-50.0, v_rest=-65.0, dt=DT, duration_refrac=2.0, tau_v=20.0)
models = {
    "IF": (IFNeuron((1,), thresh=-50.0, v_rest=-65.0, alpha_v=0.02, dt=DT), 10.0),
    "LIF": (LIFNeuron((1,), integrator="exact", **lif_args), 20.0),
    "adaptive LIF": (
        AdaptiveLIFNeuron((1,), alpha_thresh=2.0, tau_thresh=100.0, integrator="exact", **lif_args),
        20.0,
    ),
    "AdEx": (AdExNeuron((1,), dt=DT), 1000.0),
}
t_ms = np.arange(STEPS) * DT
fig, axes = plt.subplots(2, 2, figsize=(9, 5), sharex=True)
for ax, (name, (neuron, current)) in zip(axes.flat, models.items()):
    v, s = simulate(neuron, [current])
    times = t_ms[s[:, 0].numpy() > 0]
    isi = np.diff(times)
    ax.plot(t_ms, v[:, 0].numpy(), lw=0.8)
    ax.set(title=f"{name}: {len(times)} spikes", ylabel="v (mV)")
    print(f"{name:13s} {len(times):3d} spikes, first / last ISI {isi[0]:5.1f} / {isi[-1]:5.1f} ms")
for ax in axes[1]:
    ax.set_xlabel("time (ms)")
fig.tight_layout()

# %%
# The adaptive models lengthen their inter-spike intervals (ISI), the IF and
# LIF neurons fire regularly.
#
# f-I curves from one batch
# -------------------------
# Forty currents are forty samples of one batch: one simulation per model
# gives the whole curve.

lif = LIFNeuron((1,), integrator="exact", **lif_args)
adex = AdExNeuron((1,), dt=DT)
fig, (ax_lif, ax_adex) = plt.subplots(1, 2, figsize=(9, 3.2))
for ax, neuron, currents, unit in (
    (ax_lif, lif, np.linspace(0.0, 60.0, 40), "mV"),
    (ax_adex, adex, np.linspace(0.0, 2000.0, 40), "pA"),
):
    _, s = simulate(neuron, currents)
    rate = s[ONSET:].sum(0).numpy() / ((STEPS - ONSET) * DT / 1000.0)
    ax.plot(currents, rate, "o-", ms=3)
    ax.set(xlabel=f"input ({unit})", ylabel="rate (Hz)", title=type(neuron).__name__)
fig.tight_layout()

# %%
# Izhikevich cell classes
# -----------------------
# :meth:`IzhikevichNeuron.preset <pysnn.neuron.IzhikevichNeuron.preset>`
# builds the published parameter sets (Izhikevich 2003): regular spiking,
# intrinsically bursting, chattering, fast spiking and low-threshold spiking.
# The same current gives five different firing patterns.

print(IzhikevichNeuron.PRESETS)
fig, axes = plt.subplots(5, 1, figsize=(8, 8), sharex=True)
for ax, name in zip(axes, IzhikevichNeuron.PRESETS):
    v, s = simulate(IzhikevichNeuron.preset(name, (1,), dt=DT), [10.0])
    ax.plot(t_ms, v[:, 0].numpy(), lw=0.8)
    ax.set_ylabel("v (mV)")
    ax.set_title(f"{name}: {int(s.sum())} spikes", fontsize=9)
axes[-1].set_xlabel("time (ms)")
fig.tight_layout()

# %%
# Synapse models
# --------------
# Without a synapse model, a connection's weighted spikes are the current of
# the step (a delta synapse).  A synapse population filters them:
# :class:`~pysnn.synapse.ExponentialSynapse` decays with ``tau_syn``,
# :class:`~pysnn.synapse.AlphaSynapse` rises and decays, and
# :class:`~pysnn.synapse.ConductanceSynapse` turns a conductance into the
# current :math:`g (E_{rev} - v)`, which depends on the postsynaptic voltage.

synapses = {
    "exponential, 5 ms": ExponentialSynapse((1,), 5.0, DT),
    "alpha, 5 ms": AlphaSynapse((1,), 5.0, DT),
    "conductance, 5 ms, E = 0 mV": ConductanceSynapse((1,), 5.0, 0.0, DT),
}
v_post = torch.tensor([[-65.0], [-40.0]])  # two postsynaptic voltages as a batch of 2
fig, (ax_i, ax_g) = plt.subplots(1, 2, figsize=(9, 3))
ts = np.arange(400) * DT
for name, syn in synapses.items():
    trace = []
    for k in range(400):
        x = torch.full((2, 1), 1.0 if k == 50 else 0.0)  # one spike at 5 ms
        i = syn(x, v_post) if isinstance(syn, ConductanceSynapse) else syn(x)
        trace.append(i[:, 0].clone())
    trace = torch.stack(trace).numpy()
    if isinstance(syn, ConductanceSynapse):
        ax_g.plot(ts, trace[:, 0], label="v = -65 mV")
        ax_g.plot(ts, trace[:, 1], "--", label="v = -40 mV")
    else:
        ax_i.plot(ts, trace[:, 0], label=name)
ax_i.set(xlabel="time (ms)", ylabel="current per unit weight", title="current synapses")
ax_g.set(xlabel="time (ms)", ylabel="current per unit weight", title="conductance, E = 0 mV")
ax_i.legend(fontsize=8)
ax_g.legend(fontsize=8)
fig.tight_layout()

# %%
# The conductance synapse drives less current when the membrane is closer to
# its reversal potential.
