r"""
Learnable delays
================

A synapse's delay decides when a spike arrives; learning it lets a neuron
align spikes that were sent at different times, so that they arrive together
(a coincidence).  :meth:`Linear.learn_delays
<pysnn.connection.Linear.learn_delays>` makes the per-synapse delays a
continuous parameter that backpropagation trains along with the weights (see
:doc:`09_gradients` for surrogate-gradient training itself).  The task below
can only be solved by relative spike timing; a projection with learned delays
is compared with the same projection whose delays are fixed at 0.
"""

import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from pysnn.connection import Linear
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LeakyIntegrator

torch.manual_seed(0)

# %%
# The timing task
# ---------------
# 8 input channels each fire one spike per sample; each of 4 classes fires
# them in its own order, 3 ms apart, starting at a random time (plus a jitter
# of up to 1 ms).  Every class has the same spikes on every channel; only
# their relative timing differs.  The network reads its answer from
# non-spiking :class:`~pysnn.neuron.LeakyIntegrator` units, one per class (the
# maximum voltage over time, as logits of a cross-entropy).  Accuracy is
# measured in ``eval()`` mode (see the end).


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
# Delays that learn
# -----------------
# :meth:`Linear.learn_delays <pysnn.connection.Linear.learn_delays>` turns
# the per-synapse delays into a continuous parameter (ms).  While training, a
# synapse with delay :math:`d = n + f` steps reads its ring buffer at
# :math:`n` and :math:`n + 1` with weights :math:`1 - f` and :math:`f`
# (``interpolation="linear"``, differentiable in :math:`d`), or at every tap
# with a Gaussian of width :math:`\sigma` around :math:`d`
# (``"gaussian"``: a delay's gradient then sees spikes several steps away;
# shrinking :math:`\sigma` during training, as Hammouamri et al. 2023 do,
# ends at the whole-step taps).  No hidden layer: one projection straight to
# the readout (whose voltage forgets within a millisecond or two), with
# learned delays against the same projection with delays fixed at 0:


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

delays = learned_fc.delay_steps[0]
print("class 0's unit, learned delays (ms):     ", delays.tolist())
print("class 0's spikes arrive at (offset + delay):", (offsets[0] + delays).tolist())

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
# its pattern's spikes arrive within a step or two of each other: a coincidence that the same unit
# without delays cannot see, as its voltage forgets each spike before the
# next one comes.
#
# Rounding in ``eval()``
# ----------------------
# The test accuracies above were measured in ``eval()`` mode: there a learned
# delay is rounded to the nearest whole step and read from the ring buffer
# like any per-synapse delay, so inference runs no interpolation.  In
# ``train()`` mode the last :math:`\sigma` of a quarter step makes the kernel
# nearly a single tap, so the two modes nearly agree:

with torch.no_grad():
    learned_net.train()
    soft = learned_net.run(test_x, warn_silent=False).amax(0)
    learned_net.eval()
    rounded = learned_net.run(test_x, warn_silent=False).amax(0)
    learned_net.train()
same = float((soft.argmax(1) == rounded.argmax(1)).float().mean())
print(f"train() (Gaussian, sigma {learned_fc.delay_line.sigma:.2f} steps) vs eval() (rounded):")
print(f"  same answer on {100 * same:.1f} % of the test samples")
print(
    f"  accuracy {100 * float((soft.argmax(1) == test_y).float().mean()):.1f} % vs "
    f"{100 * float((rounded.argmax(1) == test_y).float().mean()):.1f} %"
)

# %%
# :meth:`~pysnn.connection.Connection.round_delays` makes the rounding
# permanent (whole-step delays, no parameter left to train).
# ``examples/learned_delays.py`` trains the same comparison longer and reports
# the numbers in :doc:`/gradients`.
