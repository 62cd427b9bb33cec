r"""
Speed: five ways to run a network
=================================

A PySNN step is a handful of small tensor operations, so how fast a
simulation runs depends as much on per-operation overhead as on arithmetic.
This tutorial runs the same small network -- 784 Poisson inputs at 2 %
activity, a :class:`~pysnn.connection.Linear` projection, 1000 LIF neurons,
batch 1 -- in each of PySNN's execution modes, checks that they produce the
same spikes, and times them on the machine that built this page:

* **default**: the eager step loop.  A large, sparsely active ``Linear`` layer
  propagates *event-driven* on CPU (it sums only the weight rows of the
  active inputs); ``event_driven=False`` forces the dense matmul;
* **fused**: ``net.fuse()`` compiles each neuron population's state update
  into one kernel with :func:`torch.compile`;
* **multi-step**: ``connection.forward_steps`` computes the input of all
  ``T`` steps in one matrix product when the input sequence is known and no
  rule changes the weights; only the neurons step one by one;
* **whole-network multi-step**: ``net.run(x)`` on a network that uses the
  graph's default step runs every population over a window of steps before
  the next one, by itself, whenever that equals the step loop
  (:mod:`pysnn.window`); with ``fuse()``, 16 neuron steps are one kernel;
* **whole-step compilation**: :func:`pysnn.fusion.compile_step` compiles
  the whole ``forward`` (connection and neurons) into one graph.

See :doc:`/performance` for when each applies and the benchmark tables.  The
numbers below are from a single short run on a shared machine: they show the
order of magnitude, not a benchmark.
"""

import time
import warnings

import matplotlib.pyplot as plt
import torch

from pysnn.connection import Linear
from pysnn.fusion import compile_step
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron

torch.manual_seed(0)
T, N_IN, N_OUT = 300, 784, 1000


class Net(SNNNetwork):
    def __init__(self, event_driven=None):
        super().__init__()
        self.input = Input((N_IN,), tau_t=20.0, integrator="exact")
        self.fc = Linear(N_IN, N_OUT)
        self.fc.event_driven = event_driven
        self.lif = LIFNeuron(
            (N_OUT,), thresh=1.0, v_rest=0.0, tau_v=20.0, tau_t=20.0, integrator="exact"
        )
        self.connect(self.input, self.fc, self.lif)

    def forward(self, x):
        spikes, trace = self.input(x)
        current, _ = self.fc(spikes, trace)
        return self.lif(current)[0]


def build(**kwargs):
    net = Net(**kwargs)
    with torch.no_grad():
        net.fc.weight.copy_(weight)
    return net.eval()


weight = torch.rand(N_OUT, N_IN) * 0.15
x = torch.rand(T, 1, N_IN) < 0.02


def timed(fn, repeats=3):
    """Best wall time of ``repeats`` calls of ``fn()`` in ms per step, and its last result."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return 1000.0 * best / T, out


results = {}
print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op thread(s)")

# %%
# Default: the eager step loop
# ----------------------------

net = build()
results["default (event-driven)"], reference = timed(lambda: net.run(x))
dense = build(event_driven=False)
results["dense matmul"], out = timed(lambda: dense.run(x))
assert torch.equal(out, reference)
print(f"{int(reference.sum())} output spikes in {T} steps")

# %%
# Fused neuron updates
# --------------------
# The first fused step compiles (seconds; the result is cached on disk), so
# one warm-up run comes before the timing.  Without a working compiler PySNN
# warns once and runs the eager step.

fused = build().fuse()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    start = time.perf_counter()
    fused.run(x)  # warm-up: compiles
    print(f"first fused run (compiling): {time.perf_counter() - start:.1f} s")
for w in caught:  # PySNN's fallback warning, if compilation failed
    if issubclass(w.category, RuntimeWarning):
        print("warning:", w.message)
results["fused (net.fuse())"], out = timed(lambda: fused.run(x))
print("same spikes as the default loop:", torch.equal(out, reference))

# %%
# Multi-step execution
# --------------------
# The input population only passes the spikes on (its trace is not needed
# without learning), so the connection takes the whole ``[T, 1, 784]``
# sequence at once; the LIF neurons then step through the ``[T, 1, 1000]``
# currents.

multi = build()


def multi_step():
    multi.reset_state()
    currents, _ = multi.fc.forward_steps(x)
    return torch.stack([multi.lif(c)[0] for c in currents])


results["multi-step (forward_steps)"], out = timed(multi_step)
print("same spikes as the default loop:", torch.equal(out, reference))

# %%
# Whole-network multi-step
# ------------------------
# The same modules in a network that writes no ``forward``: the graph
# registered by ``connect`` is the step.  ``run`` sees that every projection
# is feedforward and that nothing acts between steps, so it simulates the
# input population over a window of steps, then the connection (one matrix
# product), then the LIF population (``multi_step_obstacle`` would say why
# not).  After ``fuse()`` each 16 LIF steps are one compiled kernel.


class GraphNet(Net):
    forward = SNNNetwork.forward  # the graph's default step


graph_net = GraphNet()
with torch.no_grad():
    graph_net.fc.weight.copy_(weight)
graph_net.eval()
print("obstacle:", graph_net.multi_step_obstacle(x))
results["whole-network (net.run)"], out = timed(lambda: graph_net.run(x))
print("same spikes as the default loop:", torch.equal(out, reference))
graph_net.fuse()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    graph_net.run(x)  # warm-up: compiles the 16-step chunk
    print(f"first fused window run (compiling): {time.perf_counter() - start:.1f} s")
results["whole-network fused"], out = timed(lambda: graph_net.run(x))
print("same spikes as the default loop:", torch.equal(out, reference))

# %%
# Whole-step compilation
# ----------------------
# ``compile_step(net.forward)`` returns a function called like ``forward``.
# The first step after building and the first after each ``reset_state``
# compile, so warm-up runs again come first.  The automatic choice between
# event-driven and dense propagation of ``Linear`` is a data-dependent branch
# that would split the compiled graph, so this network uses the dense path
# (``event_driven=False``).  Fused arithmetic may round differently from the
# eager step, so spikes are compared by count.

whole = build(event_driven=False)
step = compile_step(whole.forward)


def compiled_run():
    whole.reset_state()
    return torch.stack([step(x[t]) for t in range(T)])


start = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # deprecation notes from inside torch.compile
    compiled_run()  # warm-up: compiles the first step and the later steps
    compiled_run()
print(f"two warm-up runs (compiling): {time.perf_counter() - start:.1f} s")
results["whole step (compile_step)"], out = timed(compiled_run)
print(f"output spikes: {int(out.sum())} (default loop: {int(reference.sum())})")

# %%
# Results
# -------

print(f"{'mode':30s} ms per step")
for name, ms in results.items():
    print(f"{name:30s} {ms:8.3f}")
fastest = min(results, key=results.get)
print(
    f"fastest here: {fastest}, {results['default (event-driven)'] / results[fastest]:.1f}x "
    "the default loop"
)

fig, ax = plt.subplots(figsize=(7, 2.8))
names = list(results)
ax.barh(names[::-1], [results[n] for n in names[::-1]])
ax.set(xlabel="ms per step (best of 3 runs of 300 steps)", title="784 -> 1000 LIF, batch 1")
fig.tight_layout()

# %%
# Reading the numbers: at batch 1 and 2 % activity the event-driven
# propagation makes the default loop faster than the dense matmul, and
# ``forward_steps`` removes the connection from the step loop altogether.
# Compilation is no guaranteed gain on a network this small: a step takes a
# fraction of a millisecond, and the compiled graph adds its own guards and
# calls.  It pays off where the step holds many operations -- on the
# 4000-neuron networks of Brette et al. (2007) with
# :class:`~pysnn.connection.Sparse` connections, ``compile_step`` halves the
# time per step (``benchmarks/README.md``) -- and in long runs that amortise
# the seconds of compilation.
#
# Which mode to use: the default loop for experiments and anything with
# learning; ``net.run`` on a graph network for inference on encoded data
# (it picks whole-network multi-step by itself; with ``fuse()`` it ran this
# network at 0.022-0.026 ms per step in ``benchmarks/suite.py``, against 0.11-0.14
# for the default loop), or ``forward_steps`` by hand in a network with its
# own ``forward``; ``fuse()`` and ``compile_step`` for long runs of a fixed
# network, after measuring them on it.  Batches of samples cut the
# per-sample cost in every mode, because the per-step overhead is shared.
