r"""The window strategy: ``T`` steps of a network, one population at a time.

The step loop updates every population once per timestep, so a run of ``T``
steps makes ``T`` passes over the whole network, each one a few small kernels
per module.  When nothing inside the window depends on a later population,
the same result comes from running **each population over the whole window**
before moving to the next one, in the order of the step plan
(:func:`pysnn.graph.plan`, walked by :func:`pysnn.graph.advance` in
:class:`WindowMode`):

.. math::

   s^{(0)}_{1..T} = \text{input},\qquad
   I^{(k)}_{1..T} = \sum_{\text{pre} \to k} W\, s^{(\text{pre})}_{1..T - d},\qquad
   s^{(k)}_{1..T} = \text{neuron}_k\big(I^{(k)}_{1..T}\big)

The input of all ``T`` steps of a connection is then one GEMM or convolution
(:meth:`Connection.forward_steps <pysnn.connection.Connection.forward_steps>`),
and a population runs its ``T`` state updates back to back
(:meth:`BaseNeuron.forward_steps <pysnn.neuron.BaseNeuron.forward_steps>`,
fused into compiled chunks after :meth:`~pysnn.network.SNNNetwork.fuse` or
:meth:`~pysnn.network.SNNNetwork.compile`), without the network's per-step
bookkeeping.

It is **exact** (the same spikes, traces and final state as ``T`` calls of
``net(x)``) when :func:`obstacle` finds nothing in the way:

* the network uses the graph's default ``forward`` (no ``forward`` of its own),
  with one input population, and ``run`` gets a tensor;
* every recurrent or feedback projection (one that reads the previous step
  of a population updated later in the plan, or of its own population) has a
  delay of at least one step: a window is then no longer than the shortest
  such delay plus one, so that nothing sent within the window arrives within
  it (:func:`feedback_limit`); the projection runs before its presynaptic
  population with the steps it does not know yet as placeholders, which are
  replaced by the real spikes and traces once that population has run
  (:meth:`DelayLine.overwrite_newest <pysnn.delay.DelayLine.overwrite_newest>`);
* no learning rule or callback acts between steps;
* every module of the plan can advance over a window (its declared
  :class:`~pysnn.capabilities.Capabilities`: ``multi_step``), and no module
  has forward hooks other than monitors, which record the stacked window
  (:meth:`StateMonitor.record_steps <pysnn.monitor.StateMonitor.record_steps>`).

:meth:`~pysnn.network.SNNNetwork.check_finite` checks each window; a window
that leaves a non-finite value is run again step by step, so the error names
the step.  Memory: the spikes, traces and input currents of every population
for one window.  ``run`` splits long inputs into windows of
:func:`window_length` steps: at most :data:`MAX_WINDOW`, and short enough
that one population's stacked window holds about :data:`WINDOW_ELEMENTS`
values (larger windows of large populations ran slower: they no longer fit
in the caches).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from pysnn.capabilities import capabilities_of
from pysnn.graph import StepPlan, advance, apply_synapse
from pysnn.hooks import RunHook

Tensor = torch.Tensor

__all__ = [
    "feedback_limit",
    "MAX_WINDOW",
    "MIN_WINDOW",
    "WINDOW_ELEMENTS",
    "WindowMode",
    "obstacle",
    "run",
    "window_length",
]

#: most steps simulated in one window (longer runs are split; the state carries over)
MAX_WINDOW = 512
#: fewest steps per window (unless the input is shorter)
MIN_WINDOW = 16
#: target number of values in one population's stacked window (batch x neurons x steps)
WINDOW_ELEMENTS = 1 << 22


def feedback_limit(plan: StepPlan) -> tuple[int, str | None]:
    """The longest window the plan's feedback projections allow, and the projection that limits it.

    A feedback projection whose shortest delay is :math:`d` steps reads
    presynaptic steps at least :math:`d + 1` steps old (it reads the previous
    step), so a window of up to :math:`d + 1` steps needs none of the
    window's own steps.  Only connections whose window goes through their
    delay line (the standard :meth:`Connection.forward
    <pysnn.connection.Connection.forward>`) can take placeholders: any other
    feedback projection limits windows to one step.
    """
    from pysnn.connection.base import Connection

    limit, limiting = MAX_WINDOW, None
    for _, layers in plan.stages:
        for layer in layers:
            if layer.name not in plan.feedback:
                continue
            conn = layer.connection
            standard = isinstance(conn, Connection) and type(conn).forward is Connection.forward
            span = conn.min_delay + 1 if standard else 1
            if span < limit:
                limit, limiting = span, layer.name
    return limit, limiting


def window_length(plan: StepPlan, batch: int) -> int:
    """Steps per window for ``batch`` samples: :data:`WINDOW_ELEMENTS` over the largest population.

    Clamped to [:data:`MIN_WINDOW`, :data:`MAX_WINDOW`], and to the
    :func:`feedback_limit` of recurrent and feedback projections.
    """
    largest = 1
    for population in (*plan.inputs, *(post for post, _ in plan.stages)):
        size = 1
        for dim in getattr(population, "features_shape", ()) or ():
            size *= int(dim)
        largest = max(largest, size)
    steps = WINDOW_ELEMENTS // max(1, batch * largest)
    return min(max(MIN_WINDOW, min(MAX_WINDOW, steps)), feedback_limit(plan)[0])


def _hooked(module: nn.Module) -> bool:
    """Whether ``module`` has forward hooks other than those of monitors."""
    from pysnn.monitor import is_monitor_hook

    hooks = list(module._forward_hooks.values()) + list(module._forward_pre_hooks.values())
    return any(not is_monitor_hook(hook) for hook in hooks)


def obstacle(
    simulator: Any, inputs: Any = None, learning: Any = None, callback: Any = None
) -> str | None:
    """Why a window would not equal ``T`` single steps (``None``: it would).

    Parameters are those of :meth:`Simulator.run <pysnn.simulation.Simulator.run>`:
    the network's simulator, the inputs, the learning rules applied between
    steps and the callback.
    """
    network = simulator.network
    if inputs is not None and not isinstance(inputs, Tensor):
        return "inputs is not a tensor [T, batch, ...] (an iterable streams step by step)"
    if callback is not None:
        return "a callback runs between steps"
    if learning is not None and learning.rules:
        return "learning rules act between steps"
    from pysnn.network import SNNNetwork

    if type(network).forward is not SNNNetwork.forward:
        return f"{type(network).__name__} writes its own forward()"
    plan = simulator.plan
    limit, limiting = feedback_limit(plan)
    if limit < 2:
        return (
            f"projection {limiting} reads the previous step (recurrent or feedback) without a "
            f"delay of at least one step, so a window would be one step"
        )
    if len(plan.inputs) != 1:
        return f"the network has {len(plan.inputs)} input populations (run() passes one input)"
    global_hooks = nn.modules.module
    if global_hooks._global_forward_hooks or global_hooks._global_forward_pre_hooks:
        return "global forward hooks are registered"
    for name, module in network.named_modules():
        if _hooked(module):
            return f"{name or 'the network'} ({type(module).__name__}) has forward hooks"
    modules = [plan.inputs[0]]
    for post, layers in plan.stages:
        modules += [post, *(layer.connection for layer in layers)]
    for module in modules:
        if not capabilities_of(module).multi_step:
            return f"{type(module).__name__} cannot advance over a window of steps (multi_step)"
    return None


class WindowMode:
    """What :func:`pysnn.graph.advance` does per population and projection for a window.

    A population returns ``(spikes, trace)`` stacked ``[T, batch, ...]``;
    ``record`` maps ``id(population)`` to the state variables whose values of
    every step are stacked too (for monitors), which :attr:`recorded` holds
    after the window.
    """

    def __init__(self, steps: int, record: dict[int, tuple[str, ...]] | None = None) -> None:
        self.steps = steps
        self.record = record or {}
        self.recorded: dict[int, dict[str, Tensor]] = {}
        #: feedback projections waiting for their presynaptic steps (see :meth:`finish`)
        self.feedback: list[Any] = []

    def source(self, population: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
        names = self.record.get(id(population), ())
        spikes, trace, extra = population.advance_window(x, record=names)
        if names:
            self.recorded[id(population)] = extra
        return spikes, trace

    def transmit(self, layer: Any, values: dict[int, Any], feedback: bool) -> Tensor:
        if feedback:
            return self._feedback(layer)
        spikes, trace = values[id(layer.pre)]
        current, _ = layer.connection.forward_steps(spikes, trace)
        return current

    def _feedback(self, layer: Any) -> Tensor:
        """A feedback projection over the window, before its presynaptic population has run.

        Its input at step ``t`` is the presynaptic output of step ``t - 1``: the
        population's current state for the window's first step, placeholders
        (zeros) for the others, which :meth:`finish` replaces; the window is
        short enough that no placeholder arrives within it (:func:`feedback_limit`).
        """
        buffers = layer.pre._buffers
        spikes, trace = buffers["spikes"], buffers["trace"]
        window = spikes.new_zeros((self.steps, *spikes.shape))
        window[0] = spikes
        traces = trace.new_zeros((self.steps, *trace.shape))
        traces[0] = trace
        current, _ = layer.connection.forward_steps(window, traces)
        self.feedback.append(layer)
        return current

    def finish(self, values: dict[int, Any]) -> None:
        """Replace the feedback projections' placeholders by their populations' real steps."""
        for layer in self.feedback:
            spikes, trace = values[id(layer.pre)]
            layer.connection._line.overwrite_newest(spikes[:-1], trace[:-1])

    def integrate(self, post: nn.Module, currents: list[Tensor], layers: Sequence[Any]) -> Any:
        synapses = [layer.synapse for layer in layers]
        names = self.record.get(id(post), ())
        if any(capabilities_of(s).needs_voltage for s in synapses if s is not None):
            spikes, trace, extra = _interleaved(post, currents, synapses, names)
        else:
            for k, synapse in enumerate(synapses):
                if synapse is not None:
                    currents[k] = torch.stack(
                        [apply_synapse(synapse, x, post) for x in currents[k]]
                    )
            total = currents[0]
            for current in currents[1:]:  # summed in the order the neuron sums a list
                total = total + current
            spikes, trace, extra = post.advance_window(total, record=names)
        if names:
            self.recorded[id(post)] = extra
        return spikes, trace


def _interleaved(
    post: nn.Module, currents: list[Tensor], synapses: list[Any], names: tuple[str, ...]
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Step ``post`` through the window when a synapse reads its voltage every step."""
    spikes, traces = [], []
    extra: dict[str, list[Tensor]] = {name: [] for name in names}
    # steps by unbind, not cur[t]: in a differentiable run indexing's backward would
    # build a zero tensor of the whole window per step
    for step_currents in zip(*(cur.unbind(0) for cur in currents)):
        parts = [apply_synapse(syn, cur, post) for cur, syn in zip(step_currents, synapses)]
        s, trace = post(parts[0] if len(parts) == 1 else parts)
        spikes.append(s)
        traces.append(trace)
        for name in names:
            extra[name].append(post._buffers[name])
    stacked = {name: torch.stack(values) for name, values in extra.items()}
    return torch.stack(spikes), torch.stack(traces), stacked


def run(simulator: Any, inputs: Tensor, hooks: Sequence[RunHook]) -> list[Tensor]:
    """The window strategy of :meth:`Simulator.run <pysnn.simulation.Simulator.run>`.

    Runs ``inputs[T, batch, ...]`` in windows of :func:`window_length` steps,
    each a transaction; returns the output population's spikes of each window.
    """
    from pysnn.monitor import recording_monitors

    plan = simulator.plan
    monitors = recording_monitors(simulator.network)
    record: dict[int, tuple[Tensor, ...]] = {}
    for monitor in monitors:
        record[id(monitor.module)] = tuple(
            dict.fromkeys(record.get(id(monitor.module), ()) + monitor.attributes)
        )
    counted = {id(m) for hook in hooks for m in hook.counted}
    output = plan.outputs[0]
    length = window_length(plan, int(inputs.shape[1]))
    outputs = []
    for start in range(0, int(inputs.shape[0]), length):
        chunk = inputs[start : start + length]
        steps = int(chunk.shape[0])
        mode = WindowMode(steps, record)
        values = simulator.transact(
            steps,
            _advance_window,
            plan,
            chunk,
            mode,
            inputs=(chunk[0],),
            replay=lambda chunk=chunk: simulator.run_steps(chunk, _NO_LEARNING, None, ()),
        )
        outputs.append(values[id(output)][0])
        for monitor in monitors:
            monitor.record_steps(_recorded(monitor, values, mode, steps))
        counts = {key: values[key][0].sum() for key in counted if key in values}
        for hook in hooks:
            hook.after_window(start, steps, counts)
    return outputs


def _advance_window(plan: StepPlan, chunk: Tensor, mode: WindowMode) -> dict[int, Any]:
    """:func:`pysnn.graph.advance` over one window, then the feedback projections' real steps."""
    values = advance(plan, (chunk,), mode)
    mode.finish(values)
    return values


def _recorded(
    monitor: Any, values: dict[int, Any], mode: WindowMode, steps: int
) -> dict[str, Tensor]:
    """The stacked values of a monitor's attributes over a window."""
    module = monitor.module
    out: dict[str, Tensor] = {}
    for name in monitor.attributes:
        stacked = mode.recorded.get(id(module), {}).get(name)
        if stacked is None and name in ("spikes", "trace") and id(module) in values:
            stacked = values[id(module)][0 if name == "spikes" else 1]
        if stacked is None:  # a parameter (a weight): constant over the window
            value = getattr(module, name)
            stacked = value.unsqueeze(0).expand(steps, *value.shape)
        out[name] = stacked
    return out


class _NoLearning:
    rules = ()


_NO_LEARNING = _NoLearning()
