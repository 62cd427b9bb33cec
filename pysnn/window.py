r"""Whole-network multi-step execution: a window of ``T`` steps, one population at a time.

The default step updates every population once per timestep, so a run of
``T`` steps makes ``T`` passes over the whole network, each one a few small
kernels per module.  When nothing inside the window depends on a later
population, the same result comes from running **each population over the
whole window** before moving to the next one, in the order of the step plan
(:func:`pysnn.graph.plan`):

.. math::

   s^{(0)}_{1..T} = \text{input},\qquad
   I^{(k)}_{1..T} = \sum_{\text{pre} \to k} W\, s^{(\text{pre})}_{1..T - d},\qquad
   s^{(k)}_{1..T} = \text{neuron}_k\big(I^{(k)}_{1..T}\big)

The input of all ``T`` steps of a connection is then one GEMM or convolution
(:meth:`Connection.forward_steps <pysnn.connection.Connection.forward_steps>`),
and a population runs its ``T`` state updates back to back
(:meth:`BaseNeuron.forward_steps <pysnn.neuron.BaseNeuron.forward_steps>`,
fused by :meth:`~pysnn.network.SNNNetwork.fuse`), without the network's
per-step bookkeeping.

It is **exact** (the same spikes, traces and final state as ``T`` calls of
``net(x)``) when

* the network uses the graph's default ``forward`` (no ``forward`` of its own),
* every projection is feedforward: no recurrent or feedback projection reads
  the previous step of a population updated later,
* no learning rule or callback acts between steps (``run`` has no callback),
* no module has forward hooks (a :class:`~pysnn.monitor.StateMonitor`
  records every step) and :meth:`~pysnn.network.SNNNetwork.check_finite` is
  off (it checks every step),
* the network has one input population and every population is an input or a
  spiking neuron with the standard ``forward``.

:func:`obstacle` says which of these fails; :meth:`SNNNetwork.run
<pysnn.network.SNNNetwork.run>` uses :func:`run_window` when none does.
Memory: the spikes, traces and input currents of every population for one
window.  ``run`` splits long inputs into windows of :func:`window_length`
steps: at most :data:`MAX_WINDOW`, and short enough that one population's
stacked window holds about :data:`WINDOW_ELEMENTS` values (larger windows of
large populations ran slower: they no longer fit in the caches).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pysnn.graph import StepPlan, apply_synapse
from pysnn.neuron import BaseInput, BaseNeuron

Tensor = torch.Tensor

__all__ = ["MAX_WINDOW", "MIN_WINDOW", "WINDOW_ELEMENTS", "obstacle", "run_window", "window_length"]

#: most steps simulated in one window (longer runs are split; the state carries over)
MAX_WINDOW = 512
#: fewest steps per window (unless the input is shorter)
MIN_WINDOW = 16
#: target number of values in one population's stacked window (batch x neurons x steps)
WINDOW_ELEMENTS = 1 << 22


def window_length(plan: StepPlan, batch: int) -> int:
    """Steps per window for ``batch`` samples: :data:`WINDOW_ELEMENTS` over the largest population.

    Clamped to [:data:`MIN_WINDOW`, :data:`MAX_WINDOW`].
    """
    largest = 1
    for population in (*plan.inputs, *(post for post, _ in plan.stages)):
        size = 1
        for dim in getattr(population, "features_shape", ()) or ():
            size *= int(dim)
        largest = max(largest, size)
    steps = WINDOW_ELEMENTS // max(1, batch * largest)
    return max(MIN_WINDOW, min(MAX_WINDOW, steps))


def _hooked(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)


def obstacle(network: nn.Module, plan: StepPlan) -> str | None:
    """Why a window pass would not equal ``T`` single steps of ``network`` (``None``: it would).

    ``plan`` is the network's step plan; :meth:`SNNNetwork.multi_step_obstacle
    <pysnn.network.SNNNetwork.multi_step_obstacle>` checks the other conditions
    (a tensor input, no callback, the default ``forward``) first.
    """
    if plan.feedback:
        names = ", ".join(sorted(plan.feedback))
        return f"projection(s) {names} read the previous step (recurrent or feedback)"
    if getattr(network, "checks_finite", False):
        return "check_finite() is on (it checks every step)"
    if len(plan.inputs) != 1:
        return f"the network has {len(plan.inputs)} input populations (run() passes one input)"
    global_hooks = nn.modules.module
    if global_hooks._global_forward_hooks or global_hooks._global_forward_pre_hooks:
        return "global forward hooks are registered"
    for name, module in network.named_modules():
        if _hooked(module):
            return f"{name or 'the network'} ({type(module).__name__}) has forward hooks"
    (source,) = plan.inputs
    if not isinstance(source, BaseInput) or type(source).forward is not BaseInput.forward:
        return f"the input population {type(source).__name__} is not an Input"
    for post, _ in plan.stages:
        if not isinstance(post, BaseNeuron) or type(post).forward is not BaseNeuron.forward:
            return f"{type(post).__name__} has no standard multi-step update"
    return None


def run_window(plan: StepPlan, inputs: Tensor) -> dict[int, tuple[Tensor, Tensor]]:
    """Simulate the steps ``inputs[T, batch, ...]`` population by population.

    Returns ``{id(population): (spikes, trace)}``, each ``[T, batch, ...]``,
    for every population of the plan.  Only call it when :func:`obstacle`
    returns ``None``.
    """
    (source,) = plan.inputs
    window: dict[int, tuple[Tensor, Tensor]] = {id(source): source.forward_steps(inputs)}
    for post, projections in plan.stages:
        currents, synapses = [], []
        for layer in projections:
            spikes, trace = window[id(layer.pre)]
            current, _ = layer.connection.forward_steps(spikes, trace)
            currents.append(current)
            synapses.append(layer.synapse)
        if any(getattr(s, "needs_voltage", False) for s in synapses):
            window[id(post)] = _interleaved(post, currents, synapses)
            continue
        for k, synapse in enumerate(synapses):
            if synapse is not None:
                currents[k] = torch.stack([apply_synapse(synapse, x, post) for x in currents[k]])
        total = currents[0]
        for current in currents[1:]:  # summed in the order the neuron sums a list
            total = total + current
        window[id(post)] = post.forward_steps(total)
    return window


def _interleaved(
    post: BaseNeuron, currents: list[Tensor], synapses: list[Any]
) -> tuple[Tensor, Tensor]:
    """Step ``post`` through the window when a synapse reads its voltage every step."""
    spikes, traces = [], []
    for t in range(currents[0].shape[0]):
        parts = [apply_synapse(syn, cur[t], post) for cur, syn in zip(currents, synapses)]
        s, trace = post(parts[0] if len(parts) == 1 else parts)
        spikes.append(s)
        traces.append(trace)
    return torch.stack(spikes), torch.stack(traces)
