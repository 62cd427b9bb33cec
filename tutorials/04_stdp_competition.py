r"""
STDP and competition
====================

Spike-timing-dependent plasticity (STDP) changes a synapse according to the
relative timing of its presynaptic and postsynaptic spikes.  PySNN's
:class:`~pysnn.learning.STDP` implements the pair rule with traces: every
presynaptic spike leaves a trace :math:`x_j` that decays with
:math:`\tau_+`, every postsynaptic spike a trace :math:`y_i` decaying with
:math:`\tau_-`, and at each step

.. math::
    \Delta w_{ij} = \eta \left( A_+\, s^{post}_i\, x_j - A_-\, y_i\, s^{pre}_j \right),

potentiation when the postsynaptic neuron fires after the presynaptic one,
depression when it fires before.  This tutorial first measures the learning
window of the rule, then shows how the rule makes synapses compete
(Song, Miller & Abbott 2000).
"""

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from pysnn.connection import Linear
from pysnn.learning import STDP
from pysnn.network import SNNNetwork
from pysnn.neuron import Input

torch.manual_seed(0)

# %%
# Measuring the learning window
# -----------------------------
# The rule only reads spikes and traces of the layer's two populations, so to
# impose spike times exactly both are :class:`~pysnn.neuron.Input`
# populations, and the connection is only there to hold the weights.  Pair
# ``k`` has its presynaptic spike at 50 ms and its postsynaptic spike at
# ``50 + lag[k]`` ms; only the diagonal weight :math:`w_{kk}` belongs to pair
# ``k``.

lags = torch.arange(-40, 41, 2)
n = len(lags)


class Pairing(SNNNetwork):
    def __init__(self):
        super().__init__()
        self.pre = Input((n,), dt=1.0, tau_t=20.0, integrator="exact")
        self.post = Input((n,), dt=1.0, tau_t=20.0, integrator="exact")
        self.syn = Linear(n, n)
        self.add_layer("syn", self.syn, self.post, self.pre)

    def forward(self, pre_spikes, post_spikes):
        spikes, trace = self.pre(pre_spikes)
        self.syn(spikes, trace)
        return self.post(post_spikes)[0]


net = Pairing()
with torch.no_grad():
    net.syn.weight.fill_(0.5)
rule = STDP(net.layers, lr=0.01, a_plus=1.0, a_minus=1.05)
pre = torch.zeros(120, 1, n)
post = torch.zeros(120, 1, n)
pre[50, 0, :] = 1.0
post[50 + lags, 0, torch.arange(n)] = 1.0
net.reset_state()
for t in range(120):
    net(pre[t], post[t])
    rule.step()
dw = net.syn.weight.diagonal() - 0.5

fig, ax = plt.subplots(figsize=(6, 3))
ax.axhline(0.0, color="0.7", lw=0.8)
ax.plot(lags.numpy(), dw.numpy(), "o-", ms=3)
ax.set(xlabel="t_post - t_pre (ms)", ylabel="weight change", title="pair STDP window")
fig.tight_layout()

# %%
# Potentiation for positive lags and depression for negative ones, both
# decaying with the 20 ms trace time constants; depression is 5 % stronger
# (``a_minus = 1.05``), so uncorrelated firing weakens synapses on average.
#
# Competition between correlated and independent inputs
# ------------------------------------------------------
# One LIF neuron receives 1000 Poisson afferents at 10 Hz.  The first 500
# are correlated: their spikes cluster around the spikes of a shared reference
# train.  The other 500 fire independently at the same rate.  The correlated
# clusters make the neuron fire, so correlated inputs tend to spike just
# before the output and are potentiated; the independent ones are not related
# to the output and drift down.  Network and input generator are those of
# ``examples/stdp_competition.py`` (imported from the repository's
# ``examples`` folder), which runs 120 s of simulated time; here the first 60 s, with the same
# parameters.

try:  # the repository's examples/ folder, next to tutorials/
    EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
except NameError:  # sphinx-gallery runs the script from tutorials/ without __file__
    EXAMPLES = Path.cwd().parent / "examples"
sys.path.insert(0, str(EXAMPLES))
from stdp_competition import A_MINUS, A_PLUS, W_MAX, Competition, afferent_spikes  # noqa: E402

N_IN, SECONDS, LR = 1000, 60, 1e-2
gen = torch.Generator().manual_seed(0)
net = Competition(N_IN)
with torch.no_grad():
    net.synapses.weight.uniform_(0.0, W_MAX, generator=gen)
    # mean drive: n_in * rate * tau_v * mean weight = 0.6 of the threshold
    net.synapses.weight.mul_(0.6 * 2.0 / (N_IN * 10.0 / 1000.0 * 20.0))
w_scale = float(net.synapses.weight.max())
stdp = STDP(net.layers, lr=LR * w_scale, a_plus=A_PLUS, a_minus=A_MINUS, w_min=0.0, w_max=w_scale)

history = []
net.reset_state()
for second in range(SECONDS):
    spikes = afferent_spikes(1000, N_IN, 10.0, 0.1, 5, gen)  # one second, [1000, 1, N_IN]
    out = net.run(spikes, callback=lambda t, o: stdp.step(), reset=False)
    w = net.synapses.weight[0] / w_scale
    history.append((float(out.sum()), float(w[:500].mean()), float(w[500:].mean())))
    if second % 10 == 9:
        print(
            f"{second + 1:3d} s: output {history[-1][0]:4.0f} Hz, mean w/w_max "
            f"correlated {history[-1][1]:.3f}, independent {history[-1][2]:.3f}"
        )

# %%
# ``net.run(..., callback=...)`` calls the rule after every step;
# ``reset=False`` continues from the current state instead of resetting it, so
# the simulation is one continuous 60 s run cut into one-second chunks.

w = (net.synapses.weight[0] / w_scale).numpy()
fig, (ax_t, ax_h) = plt.subplots(1, 2, figsize=(9, 3.2))
seconds = range(1, SECONDS + 1)
ax_t.plot(seconds, [h[1] for h in history], label="correlated")
ax_t.plot(seconds, [h[2] for h in history], label="independent")
ax_t.set(xlabel="time (s)", ylabel="mean weight / w_max")
ax_t.legend()
ax_h.hist(w[:500], bins=25, alpha=0.7, label="correlated")
ax_h.hist(w[500:], bins=25, alpha=0.7, label="independent")
ax_h.set(xlabel="weight / w_max", ylabel="synapses")
ax_h.legend()
fig.tight_layout()

# %%
# The two groups separate although they fire at the same rate: only spike
# timing tells them apart.  The full 120 s run of
# ``python examples/stdp_competition.py`` ends with the correlated synapses at
# 0.79 :math:`w_{max}` on average and the independent ones at 0.43 (from 0.50).
