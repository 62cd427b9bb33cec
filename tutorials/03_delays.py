r"""
Delays and coincidence detection
================================

Every connection can delay its spikes: one delay for the whole connection or
one per synapse, given in ms and a whole number of timesteps.  The connection
keeps a ring buffer of its presynaptic history, so any number of spikes can be
in flight on the same synapse, and each presynaptic trace arrives together with
its spike.  This tutorial checks these properties on a tiny connection, then
uses per-synapse delays to compute the direction of a sound (the Jeffress
model of the auditory brainstem).
"""

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from pysnn import plot
from pysnn.connection import Linear
from pysnn.monitor import SpikeMonitor

# %%
# Several spikes in flight
# ------------------------
# One input, one output, weight 1 and a delay of 3 ms at ``dt = 1`` ms.  Two
# spikes sent at steps 0 and 1 arrive at steps 3 and 4: none is lost or merged.

fc = Linear(1, 1, dt=1.0, delay=3)
fc.reset_weights("constant", gain=1.0)
sent = torch.tensor([1.0, 1.0, 0, 0, 0, 0, 0, 0])
trace = torch.tensor([1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])  # a decaying presynaptic trace
arrived, arrived_trace = [], []
for s, x in zip(sent, trace):
    current, tr = fc(s.reshape(1, 1), x.reshape(1, 1))
    arrived.append(round(float(current), 2))
    arrived_trace.append(round(float(tr), 2))
print("sent:         ", sent.tolist())
print("arrived:      ", arrived)
print("trace arrived:", arrived_trace)

# %%
# The trace a synapse sees is the presynaptic trace of three steps ago: the
# pairing of a learning rule uses what *arrives*, not what left.
#
# One delay per synapse
# ---------------------
# An integer tensor shaped like the weight, ``(out, in)``, gives each synapse
# its own delay.  Here one input drives four outputs with delays of 0 to 3 ms.

fan = Linear(1, 4, dt=1.0, delay=torch.arange(4).reshape(4, 1))
fan.reset_weights("constant", gain=1.0)
out = torch.stack([fan(s.reshape(1, 1), x.reshape(1, 1))[0][0] for s, x in zip(sent, trace)])
print(out.T.int())

# %%
# Sound localisation with delay lines
# -----------------------------------
# A click reaches the left ear at step :math:`t` and the right ear at step
# :math:`t + \mathrm{ITD}`, the interaural time difference (-4 to 4 steps).
# Detector :math:`k` gets the left ear through a synapse with delay
# :math:`k` and the right ear with delay 4, so both spikes arrive together
# only when :math:`\mathrm{ITD} = k - 4`.  One spike alone (weight 0.6) stays
# below the threshold of 1 and the membrane forgets after each step, so only a
# coincidence fires a detector.  The network is the one of
# ``examples/quickstart.py``, imported from the repository's ``examples``
# folder; the nine ITDs run as one batch.

try:  # the repository's examples/ folder, next to tutorials/
    EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
except NameError:  # sphinx-gallery runs the script from tutorials/ without __file__
    EXAMPLES = Path.cwd().parent / "examples"
sys.path.insert(0, str(EXAMPLES))
from quickstart import MAX_ITD, N_DETECTORS, SoundLocaliser, make_clicks  # noqa: E402

net = SoundLocaliser()
print(net.summary())
print("delays (steps), columns: left ear, right ear\n", net.lines.delay_steps.T)

clicks, itds = make_clicks(steps=200, period=20)
monitor = SpikeMonitor(net.detectors, num_steps=200)
net.run(clicks)
counts = monitor.counts()  # [ITD, detector]
decoded = counts.argmax(1) - MAX_ITD
print("true ITD:   ", itds.tolist())
print("decoded ITD:", decoded.tolist())

# %%
# Each row of the count matrix is one ITD: only the detector whose delay
# compensates it fires (a clean diagonal).

fig, (ax, ax_raster) = plt.subplots(1, 2, figsize=(10, 4))
im = ax.imshow(counts.numpy(), cmap="viridis")
labels = [str(k - MAX_ITD) for k in range(N_DETECTORS)]
ax.set_xticks(range(N_DETECTORS), labels)
ax.set_yticks(range(N_DETECTORS), [str(i) for i in itds.tolist()])
ax.set(xlabel="detector tuned to ITD (steps)", ylabel="true ITD (steps)")
fig.colorbar(im, ax=ax, label="spikes")
plot.raster(monitor.get(), sample=0, ax=ax_raster, s=30, title=f"detectors, ITD = {int(itds[0])}")
fig.tight_layout()
