r"""
Surrogate-gradient training
===========================

PySNN's default is learning by correlation (STDP and its relatives), and
that path stays gradient-free.  But a network's state is plain tensors, so
with gradients enabled and a parameter that requires one, ``net.run(x)`` is
differentiable end to end: spikes carry a *surrogate* derivative, and
``loss.backward()`` reaches the weights and the neurons' time constants and
thresholds.  This tutorial looks at the surrogates and their slopes, checks a
gradient by hand, trains a small spiking network with :mod:`torch.optim`
(time constants and thresholds included), and bounds the memory of long
sequences with checkpointing and truncated backpropagation through time.
:doc:`10_learned_delays` learns synaptic delays on the same task, and
:doc:`11_hybrid` mixes STDP and gradients in one network.
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
# The slope sets how far from the threshold a voltage still gets a gradient:
# at 0.1 below it the fast sigmoid's derivative is
# :math:`\beta / (2 (1 + 0.1 \beta)^2)`:

for slope in (1.0, 10.0, 100.0):
    at = Surrogate("fast_sigmoid", slope).derivative(torch.tensor([0.0, -0.1, -0.5]))
    print(
        f"fast_sigmoid, slope {slope:5.0f}: sigma'(0, -0.1, -0.5) =",
        [round(float(v), 4) for v in at],
    )

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


def train(net, parameters, epochs, batch=64):
    optimizer = torch.optim.Adam(parameters)
    accuracy = []
    for _ in range(epochs):
        for i in range(0, len(train_y), batch):
            logits = 4 * net.run(train_x[:, i : i + batch], warn_silent=False).amax(0)
            loss = F.cross_entropy(logits, train_y[i : i + batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            scores = net.run(test_x, warn_silent=False).amax(0)
        accuracy.append(float((scores.argmax(1) == test_y).float().mean()))
    return accuracy


# %%
# A hidden layer of 32 LIF neurons (:math:`\tau` = 5 ms, ``v += I`` per input
# spike) and trainable per-neuron time constants and thresholds
# (:meth:`~pysnn.neuron.Population.make_trainable` turns declared parameters
# into :class:`torch.nn.Parameter` s): its voltages remember the order of the
# last few spikes.  The same network is trained with three surrogates: the
# arctan (slope 2), and the fast sigmoid with a moderate and a very steep
# slope.


def hidden_network(surrogate):
    torch.manual_seed(1)  # the same initial weights for every surrogate
    net = SNNNetwork()
    fc1, fc2 = Linear(8, 32), Linear(32, 4)
    hidden = LIFNeuron((32,), thresh=0.5, tau_v=5.0, integrator="impulse", surrogate=surrogate)
    net.connect(Input((8,)), fc1, hidden)
    net.connect(hidden, fc2, LeakyIntegrator((4,), tau_v=1.0))
    for fc in (fc1, fc2):
        fc.weight.requires_grad_(True)
    hidden.make_trainable("tau_v", "thresh", per_neuron=True)
    return net, hidden


for surrogate in [("arctan", 2.0), ("fast_sigmoid", 10.0), ("fast_sigmoid", 100.0)]:
    net, hidden = hidden_network(surrogate)
    begin = time.perf_counter()
    accuracy = train(net, [{"params": net.parameters(), "lr": 1e-2}], epochs=4)
    print(
        f"surrogate {surrogate}: test accuracy by epoch "
        f"{[round(100 * a, 1) for a in accuracy]} % ({time.perf_counter() - begin:.1f} s)"
    )
    if surrogate[0] == "arctan":
        hidden_net = net
        print(
            "  time constants after training (ms):",
            [round(v, 1) for v in hidden.tau_v[:6].tolist()],
        )
        print("  thresholds after training:", [round(v, 2) for v in hidden.thresh[:6].tolist()])

# %%
# Under :func:`torch.no_grad`, or when nothing requires a gradient, the same
# ``run`` is the gradient-free simulation it always was.  An optimizer may
# move a time constant to or below 0: clamp it after ``optimizer.step()``
# where that can happen.
#
# Long sequences
# --------------
# Backpropagation through time keeps every step's values.  Two ways keep the
# memory bounded.  ``run(x, checkpoint=k)`` stores only the state every ``k``
# steps and recomputes each part during ``backward()``: the same gradient.

fc1 = hidden_net.layers["layer0"].connection
x = train_x[:, :16]
for checkpoint in (None, 12):
    fc1.weight.grad = None
    out = hidden_net.run(x, warn_silent=False, checkpoint=checkpoint)
    out.amax(0).sum().backward()
    print(f"checkpoint={checkpoint}: gradient norm {float(fc1.weight.grad.norm()):.6f}")

# %%
# Truncated BPTT runs a sequence in parts with ``reset=False``, and
# :meth:`~pysnn.network.SNNNetwork.detach_state` between them: the state
# carries over (the second part's output is that of one run over the whole
# sequence), the graph does not (the second part's loss gives no gradient
# through the first part's steps, and each part's graph is freed after its
# ``backward()``).

whole = hidden_net.run(x, warn_silent=False).detach()
optimizer = torch.optim.SGD(hidden_net.parameters(), lr=0.0)  # lr 0: the weights stay put
parts = []
hidden_net.reset_state()
for part in x.split(24):
    out = hidden_net.run(part, reset=False, warn_silent=False)
    loss = F.cross_entropy(4 * out.amax(0), train_y[:16])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    hidden_net.detach_state()
    parts.append(out.detach())
difference = float((torch.cat(parts) - whole).abs().max())
print(f"two parts of 24 steps vs one run of 48: largest output difference {difference:g}")
