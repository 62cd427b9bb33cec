r"""
Your first network and its raster
=================================

A PySNN network is a :class:`torch.nn.Module` whose ``forward`` computes **one
timestep**.  This tutorial builds the smallest useful network -- Poisson input
spikes, one fully connected projection, one population of leaky
integrate-and-fire (LIF) neurons -- runs it for 200 ms, records the output
spikes and draws them as a raster.
"""

import matplotlib.pyplot as plt
import torch

from pysnn import plot
from pysnn.connection import Linear
from pysnn.encoding import PoissonRateEncoder
from pysnn.monitor import SpikeMonitor, StateMonitor
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron

torch.manual_seed(0)

# %%
# The network
# -----------
# Populations and connections are created in ``__init__``.  ``add_layer``
# registers the projection ``input --fc--> lif`` so that learning rules,
# ``summary()`` and ``reset_state()`` know about it.  ``forward`` is written
# for a single step: the input population turns spikes into ``(spikes,
# trace)``, the connection turns them into the postsynaptic current, and the
# neurons integrate it.
#
# Every time constant is in ms.  With ``integrator="impulse"`` the membrane
# decays exactly towards ``v_rest`` with :math:`\tau_v` and each step's input
# is added as a jump, so a weight is the voltage jump (mV) that one input
# spike causes.  (``"exact"`` holds the input constant over the step,
# ``"euler"`` is forward Euler; see :doc:`/concepts`.)

DT = 1.0  # ms


class FirstNet(SNNNetwork):
    def __init__(self, n_in=100, n_out=20):
        super().__init__()
        self.input = Input((n_in,), dt=DT, tau_t=20.0, integrator="exact")
        self.fc = Linear(n_in, n_out)
        self.lif = LIFNeuron(
            (n_out,),
            thresh=-50.0,
            v_rest=-65.0,
            tau_v=20.0,
            duration_refrac=2.0,
            dt=DT,
            integrator="impulse",
        )
        self.add_layer("fc", self.fc, self.lif, self.input)

    def forward(self, x):
        spikes, trace = self.input(x)
        current, _ = self.fc(spikes, trace)
        spikes, _ = self.lif(current)
        return spikes


net = FirstNet()
with torch.no_grad():
    net.fc.weight.uniform_(0.0, 0.8)  # mV per input spike
print(net.summary())

# %%
# Input spikes
# ------------
# :class:`~pysnn.encoding.PoissonRateEncoder` turns rates in Hz into spike
# trains ``[T, B, ...]``.  Here a batch of 4 samples, each with 100 inputs
# firing at rates between 5 and 40 Hz, for 200 steps of 1 ms.

rates = torch.linspace(5.0, 40.0, 100).expand(4, 100)
encoder = PoissonRateEncoder(num_steps=200, dt=DT)
x = encoder(rates)
print("input:", tuple(x.shape), x.dtype, f"{x.float().mean() * 1000 / DT:.1f} Hz on average")

# %%
# Running and recording
# ---------------------
# Monitors hook into a module and record after each of its steps into
# preallocated tensors.  ``net.run(x)`` resets the state, calls ``forward`` once
# per step and stacks the outputs: ``[T, B, 20]``.

spikes_mon = SpikeMonitor(net.lif, num_steps=200)
volt_mon = StateMonitor(net.lif, "v_cell", num_steps=200)
out = net.run(x)
print("output:", tuple(out.shape))
print("spikes per neuron in sample 0:", out[:, 0].sum(0).int().tolist())

# %%
# After the run, the state of the last step is still in the modules, shaped
# ``(batch, *cells)``:

print(net.lif.v_cell.shape, net.lif.spikes.shape, net.input.trace.shape)

# %%
# The raster and the voltages
# ---------------------------
# :mod:`pysnn.plot` draws raster plots and voltage traces from the recordings.

fig, (ax_in, ax_out, ax_v) = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
plot.raster(x, dt=DT, ax=ax_in, title="input spikes (sample 0)")
plot.raster(spikes_mon.get(), dt=DT, ax=ax_out, s=20, title="LIF spikes (sample 0)")
plot.voltage_traces(
    volt_mon.get(), dt=DT, neurons=[0, 1, 2], threshold=-50.0, ax=ax_v, title="membrane voltage"
)
fig.tight_layout()

# %%
# Between independent inputs, reset the state; the batch size may change.
# Monitors are full after 200 steps: detach them (or ``reset()`` them) first.

spikes_mon.remove()
volt_mon.remove()
net.reset_state()
print(net(torch.zeros(7, 100)).shape)
