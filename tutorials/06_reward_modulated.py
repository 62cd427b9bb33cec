r"""
Reward-modulated learning
=========================

STDP alone finds correlations; to learn *what pays off*, the weight change
must also depend on a reward that arrives later.  In reward-modulated STDP
with an eligibility trace (Florian 2007, :class:`~pysnn.learning.MSTDPET`)
every synapse keeps a decaying record of its recent pre/post pairings,

.. math::
    e_{ij} \leftarrow e^{-\Delta t/\tau_e}\, e_{ij}
        + A_+\, s^{post}_i\, x^{pre}_j - A_-\, x^{post}_i\, s^{pre}_j,

and a reward :math:`r` turns it into a weight change,
:math:`\Delta w_{ij} = \eta\, r\, e_{ij}`.  Pairings that led to a rewarded
action are strengthened, those that led to a punished one weakened.

The toy task: four input patterns, two actions.  Patterns 0 and 2 ask for
action 0, patterns 1 and 3 for action 1.  The network sees a pattern for
50 ms, its action is the output neuron that fired most, and the reward is +1
for the right action and -1 for the wrong one.  32 trials run as one batch;
each batch element gets its own reward.
"""

import matplotlib.pyplot as plt
import torch

from pysnn.connection import Linear
from pysnn.learning import MSTDPET
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron

torch.manual_seed(0)
DT, STEPS, BATCH, TRIALS = 1.0, 50, 32, 80
N_PATTERNS, GROUP = 4, 10  # 10 input neurons per pattern
N_IN = N_PATTERNS * GROUP
TARGET = torch.tensor([0, 1, 0, 1])  # the right action of each pattern

# %%
# The network
# -----------
# 40 Poisson inputs (the active pattern's 10 at 50 Hz, the others at 2 Hz)
# project onto two LIF output neurons, one per action.  The weights start
# random in [0.05, 0.15], so both actions are taken about equally often.


class Chooser(SNNNetwork):
    def __init__(self):
        super().__init__()
        self.input = Input((N_IN,), dt=DT, tau_t=20.0, integrator="exact")
        self.fc = Linear(N_IN, 2)
        self.out = LIFNeuron(
            (2,), thresh=1.0, v_rest=0.0, tau_v=20.0, tau_t=20.0, dt=DT, integrator="impulse"
        )
        self.add_layer("fc", self.fc, self.out, self.input)

    def forward(self, x):
        spikes, trace = self.input(x)
        current, _ = self.fc(spikes, trace)
        return self.out(current)[0]


def rates_of(patterns):
    """Input rates (Hz) ``[B, N_IN]`` for a batch of pattern indices."""
    rates = torch.full((len(patterns), N_IN), 2.0)
    for b, p in enumerate(patterns.tolist()):
        rates[b, p * GROUP : (p + 1) * GROUP] = 50.0
    return rates


net = Chooser()
with torch.no_grad():
    net.fc.weight.uniform_(0.05, 0.15)
rule = MSTDPET(net.layers, lr=0.05, a_plus=1.0, a_minus=1.0, tau_e=50.0, w_min=0.0, w_max=0.5)
print(rule)

# %%
# The trial loop
# --------------
# ``rule.update_state()`` after every step accumulates the eligibility;
# ``rule.step(reward)`` at the end of the trial applies it, with one reward
# per batch element.  ``net.reset_state()`` starts the next trial and also
# clears the rule's eligibility.

gen = torch.Generator().manual_seed(0)
accuracy = []
for trial in range(TRIALS):
    patterns = torch.randint(0, N_PATTERNS, (BATCH,), generator=gen)
    prob = rates_of(patterns) * DT / 1000.0
    net.reset_state()
    counts = torch.zeros(BATCH, 2)
    for _ in range(STEPS):
        counts += net(torch.rand(prob.shape, generator=gen) < prob)
        rule.update_state()
    # ties (including no spike at all) are broken at random
    action = (counts + 0.1 * torch.rand(counts.shape, generator=gen)).argmax(1)
    correct = action == TARGET[patterns]
    reward = correct.float() * 2.0 - 1.0  # +1 or -1
    rule.step(reward)
    accuracy.append(correct.float().mean().item())
    if trial % 10 == 9:
        print(f"trials {trial - 9:2d}-{trial}: {100 * sum(accuracy[-10:]) / 10:.0f} % correct")

# %%
# Learning curve and weights
# --------------------------
# Each output neuron ends up connected to the inputs of the patterns that ask
# for its action; the inputs of the other patterns are weakened.

fig, (ax_c, ax_w) = plt.subplots(1, 2, figsize=(10, 3.2))
ax_c.plot(range(1, TRIALS + 1), [100 * a for a in accuracy])
ax_c.axhline(50, color="0.7", ls="--", lw=0.8, label="chance")
ax_c.set(xlabel="batch of 32 trials", ylabel="correct (%)", ylim=(0, 105))
ax_c.legend()
im = ax_w.imshow(net.fc.weight.detach().numpy(), aspect="auto", cmap="viridis")
ax_w.set(xlabel="input neuron (10 per pattern)", ylabel="action", yticks=[0, 1])
fig.colorbar(im, ax=ax_w, label="weight")
fig.tight_layout()

# %%
# Testing with the rule frozen
# ----------------------------
# In ``eval()`` mode the rule neither accumulates eligibility nor changes
# weights.

net.eval()
patterns = torch.arange(N_PATTERNS).repeat_interleave(25)
prob = rates_of(patterns) * DT / 1000.0
net.reset_state()
counts = sum(net(torch.rand(prob.shape, generator=gen) < prob) for _ in range(STEPS))
action = (counts + 0.1 * torch.rand(counts.shape, generator=gen)).argmax(1)
for p in range(N_PATTERNS):
    hit = (action[patterns == p] == TARGET[p]).float().mean().item()
    print(f"pattern {p}: right action in {100 * hit:.0f} % of 25 trials")
