r"""Fast backpropagation through a window of steps of a linear spiking population.

When a differentiable run (:mod:`pysnn.autodiff`) advances a population over a
window of steps (:meth:`BaseNeuron.advance_window
<pysnn.neuron.BaseNeuron.advance_window>`, the window strategy), recording
every elementwise operation of every step for autograd costs more than the
operations themselves.  For a population whose model is its declared linear
ODE (:class:`~pysnn.neuron.parameters.LinearODE` on ``v_cell``: ``IFNeuron``,
``LIFNeuron`` with any integrator, refractory period, reset and trace mode;
no spike effects such as an adaptive threshold, no ``fire_once``) the window
is one autograd node, :class:`SpikingWindow`:

* forward: the population's own eager step under :func:`torch.no_grad`, so
  spikes, traces and state are bit for bit those of the step loop; it keeps
  the voltage before each reset (and the refractory gates);
* backward: the adjoint recursions of :func:`pysnn.functional.spiking_window_adjoint`
  (one or two operations per step), then the input's and the parameters'
  gradients for the whole window at once, by autograd through the same
  functional step applied to the stacked window (so the parameters'
  gradients come from the equations as written, whatever the integrator).

Every other population, and every single step, is recorded op by op.
"""

from __future__ import annotations

from typing import Any

import torch

from pysnn import functional as sf

Tensor = torch.Tensor

__all__ = ["SpikingWindow", "applies"]

#: the trace's parameters (their gradients need the window's traces)
_TRACE_PARAMS = ("alpha_t", "tau_t")


def applies(population: Any) -> bool:
    """Whether :class:`SpikingWindow` can advance ``population`` (see the module docstring)."""
    from pysnn.neuron.spiking import BaseNeuron

    cls = type(population)
    cached = cls.__dict__.get("_linear_window")
    if cached is None:
        linear = cls._linear_vars
        cached = (
            cls.integrate is BaseNeuron.integrate
            and len(linear) == 1
            and linear[0].name == "v_cell"
            and not cls._has_spike_effects
            and cls.threshold_name in cls._param_names
            and cls.reset_name in cls._param_names
            and set(cls._held_vars) <= {"v_cell"}
        )
        cls._linear_window = cached
    return cached and not population.fire_once


class SpikingWindow(torch.autograd.Function):
    """A window of steps of a linear spiking population as one autograd node.

    ``apply(population, window, v0, trace0, *parameters)`` with the state
    already holding ``v0`` and ``trace0``; returns ``(spikes, traces, v_end)``
    (``[T, ...]``, ``[T, ...]``, the voltage after the window).
    ``parameters`` are the population's tensors that require a gradient.
    """

    @staticmethod
    def forward(
        ctx: Any, population: Any, window: Tensor, v0: Tensor, trace0: Tensor, *parameters: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The population's eager steps without gradient; keeps what the backward pass needs."""
        buffers = population._buffers
        refractory = population._has_refractory
        voltages: list[Tensor] = []
        spikes, traces, frees = [], [], []
        for current in window:
            if refractory:
                frees.append(buffers["refrac_counts"] == 0)
            s, trace = population._step(current, keep=voltages)
            spikes.append(s)
            traces.append(trace)
        spikes_all, traces_all = torch.stack(spikes), torch.stack(traces)
        free = torch.stack(frees) if refractory else None
        ctx.population = population
        ctx.parameters = parameters
        ctx.set_materialize_grads(False)
        # the input and the traces only for the parameters whose gradients need them
        # (the integrator's and the trace's): a window-sized tensor less each
        cls = type(population)
        trained = {id(p) for p in parameters}
        wanted = {name for name in cls._param_names if id(buffers[name]) in trained}
        ode = cls._linear_vars[0].ode
        keep_window = bool(wanted & {ode.tau, ode.rest, ode.gain})
        keep_traces = bool(wanted & set(_TRACE_PARAMS))
        ctx.save_for_backward(
            window if keep_window else None,
            v0,
            trace0,
            torch.stack(voltages),
            spikes_all,
            traces_all if keep_traces else None,
            free,
        )
        return spikes_all, traces_all, buffers["v_cell"].clone()

    @staticmethod
    def backward(
        ctx: Any, grad_spikes: Tensor | None, grad_traces: Tensor | None, grad_v_end: Tensor | None
    ) -> tuple[Any, ...]:
        """The adjoint recursions, then the input's and parameters' gradients for the window."""
        population = ctx.population
        window, v0, trace0, voltage, spikes, traces, free = ctx.saved_tensors
        # saved outputs come back attached to this very node: as constants here, or
        # the parameters' autograd.grad below would recurse into this backward
        spikes = spikes.detach()
        # the state before the window gets its gradient as grad_v0 / grad_trace0: its own
        # history (e.g. v_rest as the initial voltage) must not be reached twice
        v0, trace0 = v0.detach(), trace0.detach()
        parameters = ctx.parameters
        state = population._buffers
        cls = type(population)
        ode = cls._linear_vars[0].ode
        thresh, v_reset = state[cls.threshold_name], state[cls.reset_name]
        decay, gain = _slopes(lambda v, x: population._linear_update(ode, v, x), v0)
        trace_decay, trace_gain = _slopes(population.update_trace, trace0, swap=True)
        adjoint = sf.spiking_window_adjoint(
            grad_spikes,
            grad_traces,
            grad_v_end,
            voltage,
            spikes,
            free,
            decay,
            thresh.detach(),
            v_reset.detach(),
            population.surrogate,
            population.reset,
            population.detach_reset,
            trace_decay,
            trace_gain,
            population.trace_mode == "saturating",
        )
        grads: dict[int, Tensor] = {}
        wanted = [p for p in parameters if p.requires_grad]
        grad_window = None
        names = {id(state[name]): name for name in cls._param_names}
        step_params = [p for p in wanted if names.get(id(p)) in (ode.tau, ode.rest, ode.gain)]
        if step_params:  # the integrator's parameters (and the input): autograd, whole window
            with torch.enable_grad():
                v_prev = torch.cat(
                    [v0.unsqueeze(0), _after_reset(population, voltage, spikes)[:-1]]
                )
                x = window.detach().requires_grad_(ctx.needs_input_grad[1])
                h = population._linear_update(ode, v_prev, x)
                inputs = ([x] if ctx.needs_input_grad[1] else []) + step_params
                found = torch.autograd.grad(h, inputs, adjoint.grad_h, allow_unused=True)
            if ctx.needs_input_grad[1]:
                grad_window, found = found[0], found[1:]
            _collect(grads, step_params, found)
        elif ctx.needs_input_grad[1]:
            grad_window = adjoint.grad_h.mul_(gain)  # the adjoint owns grad_h
        spike_params = [p for p in wanted if p is thresh or p is v_reset]
        if spike_params:  # threshold and reset voltage: autograd, whole window
            with torch.enable_grad():
                s = sf.spike(voltage - thresh, population.surrogate)
                if free is not None:
                    s = s * free
                v = sf.reset_voltage(
                    voltage, s, v_reset, thresh, population.reset, population.detach_reset
                )
                pairs = [(v, adjoint.grad_v), (s, adjoint.grad_spikes)]
                pairs = [
                    (out, grad) for out, grad in pairs if grad is not None and out.requires_grad
                ]
                found = (
                    torch.autograd.grad(
                        [out for out, _ in pairs],
                        spike_params,
                        [grad for _, grad in pairs],
                        allow_unused=True,
                    )
                    if pairs
                    else ()
                )
            _collect(grads, spike_params, found)
        trace_params = [p for p in wanted if names.get(id(p)) in _TRACE_PARAMS]
        if trace_params and adjoint.grad_trace is not None:
            with torch.enable_grad():
                previous = torch.cat([trace0.unsqueeze(0), traces.detach()[:-1]])
                y = population.update_trace(spikes, previous)
                found = torch.autograd.grad(y, trace_params, adjoint.grad_trace, allow_unused=True)
            _collect(grads, trace_params, found)
        grad_v0 = adjoint.grad_v0 if ctx.needs_input_grad[2] else None
        grad_trace0 = adjoint.grad_trace0 if ctx.needs_input_grad[3] else None
        return (
            None,
            grad_window,
            grad_v0,
            grad_trace0,
            *(grads.get(id(p)) for p in parameters),
        )


def _slopes(step: Any, like: Tensor, swap: bool = False) -> tuple[Tensor, Tensor]:
    r"""``(d step/d first, d step/d second)`` of an affine elementwise step, at zero.

    ``step(first, second)`` (``swap``: ``step(second, first)``, as ``update_trace(spikes, trace)``);
    exact for the affine maps of the integrators and traces, in the dtype of ``like``.
    """
    with torch.enable_grad():
        first = torch.zeros_like(like, requires_grad=True)
        second = torch.zeros_like(like, requires_grad=True)
        out = step(second, first) if swap else step(first, second)
        decay, gain = torch.autograd.grad(
            out, (first, second), torch.ones_like(out), allow_unused=True
        )
        return decay, gain


def _after_reset(population: Any, voltage: Tensor, spikes: Tensor) -> Tensor:
    """The voltage after every step's reset, from the voltage before it and the spikes."""
    state = population._buffers
    cls = type(population)
    with torch.no_grad():  # as the step computed it (arithmetic only for smooth spikes)
        return sf.reset_voltage(
            voltage,
            spikes,
            state[cls.reset_name].detach(),
            state[cls.threshold_name].detach(),
            population.reset,
            False if population.surrogate.smooth else None,
        )


def _collect(grads: dict[int, Tensor], parameters: list[Tensor], found: Any) -> None:
    for param, grad in zip(parameters, found):
        if grad is None:
            continue
        grad = _reduce_to(grad, param)
        key = id(param)
        grads[key] = grad if key not in grads else grads[key] + grad


def _reduce_to(grad: Tensor, like: Tensor) -> Tensor:
    """Sum a broadcast gradient down to the parameter's shape."""
    if grad.shape == like.shape:
        return grad
    while grad.dim() > like.dim():
        grad = grad.sum(0)
    for dim, size in enumerate(like.shape):
        if size == 1 and grad.shape[dim] != 1:
            grad = grad.sum(dim, keepdim=True)
    return grad
