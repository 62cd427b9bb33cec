r"""
Surrogate gradients and learnable delays
========================================

PySNN's default is learning by correlation (STDP and its relatives), and
that path stays gradient-free.  But a network's state is plain tensors, so
with gradients enabled and a parameter that requires one, ``net.run(x)`` is
differentiable end to end: spikes carry a *surrogate* derivative, and
``loss.backward()`` reaches the weights, the neurons' time constants and
thresholds, and the synapses' delays.  This tutorial looks at the surrogates,
checks a gradient by hand, trains a small spiking network with
:mod:`torch.optim`, and learns per-synapse delays on a task that only
relative spike timing can solve.
"""

import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from pysnn.connection import Linear
from pysnn.functional import SURROGATES, Surrogate
from pysnn.network import SNNNetwork
from pysnn.neuron import DecayFactor, Input, LeakyIntegrator, LIFNeuron

torch.manual_seed(0)

# %%
# The spike and its surrogates
# ----------------------------
# A spike is the Heaviside step :math:`s = H(v - \theta)`, whose derivative is
# zero almost everywhere.  The forward pass keeps the exact 0/1 spikes; the
# backward pass uses the derivative :math:`\sigma'(u)` of a smooth step
# instead (Neftci, Mostafa & Zenke 2019).  Each population chooses its own
# (``surrogate=`` on any spiking neuron, a name or ``(name, slope)``):

u = torch.linspace(-1, 1, 201)
for kind in SURROGATES:
    plt.plot(u, Surrogate(kind, SURROGATES[kind]).derivative(u), label=kind)
plt.xlabel(r"$u = v - \theta$")
plt.ylabel(r"$\sigma'(u)$")
plt.legend()
plt.title("surrogate derivatives, default slopes")
plt.show()

# %%
# A gradient by hand
# ------------------
# One input drives one LIF neuron through a weight :math:`w = 0.6`, with a
# decay of 0.5 per step, threshold 1 and the reset detached from the graph
# (``detach_reset=True``).  Its voltages are 0.6, 0.9, 1.05 (a spike, then
# back to 0) and 0.6, and :math:`\partial v_t / \partial w` is 1, 1.5, 1.75
# and 1.  With the fast sigmoid (slope 10),
# :math:`\partial L/\partial w = \sum_t \sigma'(v_t - 1)\, \partial v_t/\partial w`
# for :math:`L = \sum_t s_t`:

net = SNNNetwork()
fc = Linear(1, 1)
lif = LIFNeuron((1,), thresh=1.0, tau_v=DecayFactor(0.5), integrator="impulse", detach_reset=True)
net.connect(Input((1,)), fc, lif)
with torch.no_grad():
    fc.weight.fill_(0.6)
fc.weight.requires_grad_(True)  # this makes the run differentiable
spikes = net.run(torch.ones(4, 1, 1), warn_silent=False)
spikes.sum().backward()


def fast_sigmoid(u):
    return 10 / (2 * (1 + 10 * abs(u)) ** 2)


by_hand = sum(fast_sigmoid(v - 1) * dv for v, dv in [(0.6, 1), (0.9, 1.5), (1.05, 1.75), (0.6, 1)])
print("spikes:", spikes.flatten().tolist())
print(f"autograd: {float(fc.weight.grad):.5f}   by hand: {by_hand:.5f}")

# %%
# Under :func:`torch.no_grad`, or when nothing requires a gradient, the same
# ``run`` is the gradient-free simulation it always was.
#
# Training with torch.optim
# -------------------------
# The task: 8 input channels each fire one spike per sample; each of 4
# classes fires them in its own order, 3 ms apart, starting at a random time
# (plus a jitter of up to 1 ms).  Every class has the same spikes on every
# channel; only their relative timing differs.  The network reads its answer
# from non-spiking :class:`~pysnn.neuron.LeakyIntegrator` units, one per class
# (the maximum voltage over time, as logits of a cross-entropy).


def timing_task(samples, offsets, steps=48, jitter=1):
    labels = torch.randint(0, len(offsets), (samples,))
    start = torch.randint(jitter, steps - int(offsets.max()) - 2 * jitter, (samples, 1))
    shake = torch.randint(-jitter, jitter + 1, (samples, offsets.shape[1]))
    times = start + offsets[labels] + shake
    x = torch.zeros(steps, samples, offsets.shape[1])
    x[times, torch.arange(samples).unsqueeze(1), torch.arange(offsets.shape[1])] = 1.0
    return x, labels


offsets = torch.stack([torch.randperm(8) * 3 for _ in range(4)])
train_x, train_y = timing_task(1024, offsets)
test_x, test_y = timing_task(512, offsets)
print("class 0 fires the channels at", offsets[0].tolist(), "ms")


def train(net, parameters, epochs, batch=64, before_epoch=None):
    optimizer = torch.optim.Adam(parameters)
    accuracy = []
    for epoch in range(epochs):
        if before_epoch is not None:
            before_epoch(epoch)
        for i in range(0, len(train_y), batch):
            logits = 4 * net.run(train_x[:, i : i + batch], warn_silent=False).amax(0)
            loss = F.cross_entropy(logits, train_y[i : i + batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        net.eval()  # learned delays are rounded to whole steps: inference
        with torch.no_grad():
            scores = net.run(test_x, warn_silent=False).amax(0)
        net.train()
        accuracy.append(float((scores.argmax(1) == test_y).float().mean()))
    return accuracy


# %%
# First a hidden layer of 32 LIF neurons (:math:`\tau` = 5 ms, ``v += I`` per
# input spike) with the arctan surrogate and trainable per-neuron time
# constants and thresholds (:meth:`~pysnn.neuron.Population.make_trainable`
# turns declared parameters into :class:`torch.nn.Parameter` s), no delays:
# its voltages remember the order of the last few spikes.

hidden_net = SNNNetwork()
fc1, fc2 = Linear(8, 32), Linear(32, 4)
hidden = LIFNeuron((32,), thresh=0.5, tau_v=5.0, integrator="impulse", surrogate=("arctan", 2.0))
hidden_net.connect(Input((8,)), fc1, hidden)
hidden_net.connect(hidden, fc2, LeakyIntegrator((4,), tau_v=1.0))
for fc in (fc1, fc2):
    fc.weight.requires_grad_(True)
hidden.make_trainable("tau_v", "thresh", per_neuron=True)
begin = time.perf_counter()
hidden_acc = train(hidden_net, [{"params": hidden_net.parameters(), "lr": 1e-2}], epochs=4)
print(
    f"hidden LIF layer, no delays: test accuracy {100 * hidden_acc[-1]:.1f} % "
    f"({time.perf_counter() - begin:.1f} s)"
)
print("time constants after training (ms):", [round(v, 1) for v in hidden.tau_v[:6].tolist()])

# %%
# Learnable delays
# ----------------
# :meth:`Linear.learn_delays <pysnn.connection.Linear.learn_delays>` turns
# the per-synapse delays into a continuous parameter (ms).  While training, a
# synapse with delay :math:`d = n + f` steps reads its ring buffer at
# :math:`n` and :math:`n + 1` with weights :math:`1 - f` and :math:`f`
# (``interpolation="linear"``, differentiable in :math:`d`), or at every tap
# with a Gaussian of width :math:`\sigma` around :math:`d`
# (``"gaussian"``: a delay's gradient then sees spikes several steps away;
# shrinking :math:`\sigma` during training, as Hammouamri et al. 2023 do,
# ends at the whole-step taps).  In ``eval()`` mode the delays are rounded to
# whole steps.  Now no hidden layer: one projection
# straight to the readout (whose voltage forgets within a millisecond or
# two), with learned delays against the same projection with delays fixed
# at 0:


def delay_net(learn):
    net = SNNNetwork()
    fc = Linear(8, 4)
    net.connect(Input((8,)), fc, LeakyIntegrator((4,), tau_v=1.0))
    with torch.no_grad():
        fc.weight.normal_(0.5, 0.1)
    fc.weight.requires_grad_(True)
    groups = [{"params": [fc.weight], "lr": 1e-2}]
    if learn:
        delay = fc.learn_delays(21.0, init=10.5, interpolation="gaussian", sigma=6.0)
        groups.append({"params": [delay], "lr": 0.3})
    return net, fc, groups


def shrink_sigma(epoch):  # 6 steps wide at first, 1/4 step in the last epoch
    learned_fc.delay_line.sigma = 6.0 * (0.25 / 6.0) ** (epoch / 5)


begin = time.perf_counter()
learned_net, learned_fc, groups = delay_net(True)
learned_acc = train(learned_net, groups, epochs=6, before_epoch=shrink_sigma)
fixed_net, _, groups = delay_net(False)
fixed_acc = train(fixed_net, groups, epochs=6)
print(
    f"learned delays: {100 * learned_acc[-1]:.1f} %, delays fixed at 0: "
    f"{100 * fixed_acc[-1]:.1f} % ({time.perf_counter() - begin:.1f} s for both)"
)

print("class 0's unit, learned delays (ms):", learned_fc.delay_steps[0].tolist())
print("delays that align its pattern at 21:  ", (21 - offsets[0]).tolist())

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
axes[0].plot(range(1, 7), [100 * a for a in learned_acc], marker="o", label="learned delays")
axes[0].plot(range(1, 7), [100 * a for a in fixed_acc], marker="o", label="delays fixed at 0")
axes[0].set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(0, 102))
axes[0].legend()
axes[1].scatter(offsets[0], learned_fc.delay_steps[0])
axes[1].set(xlabel="spike time in class 0's pattern (ms)", ylabel="learned delay (ms)")
fig.tight_layout()
plt.show()

# %%
# Class 0's unit learns to delay early channels more than late ones, so that
# its pattern's spikes arrive together: a coincidence that the same unit
# without delays cannot see, as its voltage forgets each spike before the
# next one comes.
# ``examples/learned_delays.py`` trains the same comparison longer and reports
# the numbers in :doc:`/gradients`.
#
# Long sequences
# --------------
# Backpropagation through time keeps every step's values.  Two ways keep the
# memory bounded: ``run(x, checkpoint=k)`` stores only the state every ``k``
# steps and recomputes each part during ``backward()`` (the same gradient),
# and truncated BPTT runs a sequence in parts with ``reset=False`` and
# :meth:`~pysnn.network.SNNNetwork.detach_state` between them.

x = train_x[:, :16]
for checkpoint in (None, 12):
    learned_fc.weight.grad = None
    out = learned_net.run(x, warn_silent=False, checkpoint=checkpoint)
    out.amax(0).sum().backward()
    print(f"checkpoint={checkpoint}: gradient norm {float(learned_fc.weight.grad.norm()):.6f}")
