r"""
Speed: one engine, three strategies
===================================

A PySNN step is a handful of small tensor operations, so how fast a
simulation runs depends as much on per-step overhead as on arithmetic.  One
engine runs every network (:mod:`pysnn.simulation`); ``net.run(x)`` picks one
of three strategies, all with the step loop's spikes, state and weights:

* ``"step"``: one ``net(x)`` per step, then the learning rules (any network,
  any callback);
* ``"window"``: population by population over windows of steps, each
  connection's input for the whole window in one matrix product, wherever
  that equals the step loop (no rule changes the weights during the run);
* ``"compiled"``: after ``net.compile()``, chunks of 32 steps -- the
  learning rules' updates included -- each compiled into one graph with
  :func:`torch.compile`.

This tutorial times them on two small networks on the machine that built
this page: 784 Poisson inputs -> 1000 LIF neurons without learning, and 784
-> 100 with pair STDP, both at batch 1, where per-step overhead matters most.
See :doc:`/performance` for the benchmark tables.  The numbers below are from
one short run on a shared machine: they show the order of magnitude, not a
benchmark.
"""

import time

import matplotlib.pyplot as plt
import torch

from pysnn import Input, LIFNeuron, Linear, Sequential
from pysnn.learning import STDP

torch.manual_seed(0)
T = 300


def timed(fn, repeats=3):
    """Best wall time of ``repeats`` calls of ``fn()`` in ms per step, and its last result."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return 1000.0 * best / T, out


def network(n_out, weight):
    """784 inputs -> Linear -> LIF(n_out), weights copied from ``weight``."""
    net = Sequential(
        Input((784,), tau_t=20.0),
        Linear(784, n_out),
        LIFNeuron((n_out,), thresh=1.0, tau_v=20.0, tau_t=20.0),
    )
    with torch.no_grad():
        net[1].weight.copy_(weight)
    return net


print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op thread(s)")
results = {}

# %%
# Without learning: windows
# -------------------------
# ``net.run(x)`` sees that nothing acts between the steps, so it runs the
# input population over a window of steps, then the connection (one matrix
# product for the window), then the LIF population.  ``strategy="step"``
# forces the step loop for comparison; ``multi_step_obstacle`` would say why
# a network cannot run in windows.

weight = torch.rand(1000, 784) * 0.15
x = torch.rand(T, 1, 784) < 0.02
net = network(1000, weight)
print("window obstacle:", net.multi_step_obstacle(x))
results["784->1000, step loop"], reference = timed(lambda: net.run(x, strategy="step"))
results["784->1000, windows"], out = timed(lambda: net.run(x))
print(
    f"{int(reference.sum())} output spikes; windows equal the step loop:",
    torch.equal(out, reference),
)

# %%
# With learning: the compiled strategy
# ------------------------------------
# A learning rule changes the weights after every step, so windows do not
# apply.  ``net.run(x, rules=stdp)`` applies the rule after each step (as
# ``net(x[t])`` then ``stdp.step()`` would); after ``net.compile()`` every 32
# steps, rule included, are one compiled graph.  The first chunks compile
# (seconds to a minute, once per network configuration), so one warm-up run
# comes before the timing, and the weights are put back before each timed run.

weight = torch.rand(100, 784) * 0.3
eager, compiled = network(100, weight), network(100, weight).compile()


def learn(net):
    stdp = STDP(net.layers, lr=1e-3, a_plus=1.0, a_minus=1.05, w_min=0.0, w_max=1.0)

    def run():
        with torch.no_grad():
            net[1].weight.copy_(weight)
        return net.run(x, rules=stdp)

    return run


start = time.perf_counter()
learn(compiled)()  # warm-up: compiles
print(f"first compiled run (compiling): {time.perf_counter() - start:.1f} s")
results["784->100 + STDP, step loop"], spikes_eager = timed(learn(eager))
results["784->100 + STDP, compiled"], spikes_compiled = timed(learn(compiled))
difference = (eager[1].weight - compiled[1].weight).abs().max()
print(
    f"output spikes: {int(spikes_eager.sum())} eager, {int(spikes_compiled.sum())} compiled; "
    f"largest weight difference {float(difference):.1e} (fused arithmetic may round differently)"
)

# %%
# Results
# -------

print(f"{'run':32s} ms per step")
for name, ms in results.items():
    print(f"{name:32s} {ms:8.3f}")

fig, ax = plt.subplots(figsize=(7, 2.8))
names = list(results)
ax.barh(names[::-1], [results[n] for n in names[::-1]])
ax.set(xlabel="ms per step (best of 3 runs of 300 steps)", title="batch 1, CPU")
fig.tight_layout()

# %%
# Reading the numbers: without learning, windows take the connection out of
# the step loop.  With learning, the step loop spends most of its time in
# Python between small kernels; a compiled chunk runs 32 steps and their
# weight updates without returning to Python, which on the 2-core CPU that
# builds these pages made pair STDP 784 -> 100 several times faster than the
# step loop and faster than a minimal hand-written PyTorch loop
# (``benchmarks/README.md``).
#
# Which strategy to use: leave the choice to ``net.run`` and call
# ``net.compile()`` for long runs; write your own ``for t in range(T):
# net(x[t])`` loop only where something must happen between steps that a
# ``callback`` cannot do -- that loop stays eager.  Batches of samples cut the
# per-sample cost in every strategy, because the per-step overhead is shared.
