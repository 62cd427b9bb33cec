r"""Spiking neurons: the step shared by every model, around one model-specific integration.

The step order is: sum the inputs, integrate (no integration while refractory
from the previous step), spike where :math:`v \ge \theta`, update the trace,
apply the model's spike effects (threshold adaptation, recovery jumps), count
down/start the refractory period and reset the voltage of the neurons that
spiked.  A model implements :meth:`BaseNeuron.integrate` (one call into
:mod:`pysnn.functional`) and, where it has them, :meth:`BaseNeuron.on_spike`,
:meth:`BaseNeuron.threshold` and :meth:`BaseNeuron.reset_potential`.
"""

from __future__ import annotations

from typing import ClassVar, Sequence, cast

import torch

from pysnn import functional as sf
from pysnn import fusion
from pysnn.neuron import bptt
from pysnn.neuron.parameters import Option, Param, StateVar
from pysnn.neuron.population import TRACE_MODES, Population
from pysnn.neuron.validation import InputLike
from pysnn.validation import mark_valid

Tensor = torch.Tensor

__all__ = [
    "BaseNeuron",
    "NEURON_PARAMS",
    "NEURON_STATE",
    "VOLTAGE",
    "NEURON_OPTIONS",
    "SPIKE_STATE",
    "FIXED_RESET_OPTIONS",
    "FIRED_ONCE",
]

#: parameters of every LIF-family neuron, in buffer order
NEURON_PARAMS = (
    Param("v_rest", 0.0, doc="resting voltage"),
    Param("v_reset", "v_rest", doc="reset voltage (default: v_rest)"),
    Param("thresh", 1.0, doc="firing threshold"),
    Param("alpha_v", 1.0, doc="input scaling"),
    Param("alpha_t", 1.0, doc="trace increment per spike"),
    Param("tau_t", 20.0, "time", doc="trace time constant (ms)"),
    Param("duration_refrac", 0.0, "non_negative", doc="refractory period (ms, whole steps)"),
)
#: state that every spiking neuron has besides its own variables
SPIKE_STATE = (StateVar("spikes"), StateVar("trace"), StateVar("refrac_counts", integer=True))
#: the voltage: held while refractory; its dynamics are the model's
VOLTAGE = StateVar("v_cell", "v_rest", refractory="hold")
NEURON_STATE = (VOLTAGE,) + SPIKE_STATE
#: options of a neuron with a fixed reset (no ``reset`` argument)
FIXED_RESET_OPTIONS = (
    Option("store_trace", False, (False, True)),
    Option("trace_mode", "additive", TRACE_MODES),
    Option("fire_once", False, (False, True)),
    Option("surrogate", "fast_sigmoid"),
    Option("detach_reset", False, (False, True)),
)
#: refractory count of a ``fire_once`` neuron after its spike (silent until ``reset_state()``)
FIRED_ONCE = 2**62
NEURON_OPTIONS = FIXED_RESET_OPTIONS + (Option("reset", "rest", sf.RESET_MODES),)


class BaseNeuron(Population):
    r"""Base of spiking neurons (see the module docstring for the step order).

    Every argument after ``cells_shape`` is a keyword (PySNN 0.1's positional
    calls are translated by :mod:`pysnn.compat`).

    Parameters
    ----------
    cells_shape : tuple of int
        Per-sample shape of the population, e.g. ``(N,)`` or ``(C, H, W)``.
    thresh : float or Tensor
        Firing threshold :math:`\theta` (same unit as the voltage).
    v_rest : float or Tensor
        Resting voltage (the leak's target and the initial voltage).
    v_reset : float or Tensor, optional
        Voltage after a spike (default: ``v_rest``); keyword only.
    alpha_v : float or Tensor
        Input scaling :math:`\alpha_v`.
    alpha_t : float or Tensor
        Trace increment per spike.
    dt : float
        Timestep in ms (> 0).
    duration_refrac : float or Tensor
        Refractory period in ms, a whole number of timesteps (checked with a
        relative tolerance of 1e-6).  The neuron integrates no input during the
        ``duration_refrac / dt`` steps after the step of its spike.  Brian2 and
        NEST count the spike step itself into their refractory period, so their
        ``refractory = r`` is PySNN's ``duration_refrac = r - dt`` (e.g. 5 ms at
        dt = 0.1 ms: ``duration_refrac=4.9``; ``examples/brette2007.py`` does this).
    tau_t : float, Tensor or DecayFactor
        Trace time constant in ms (default 20).
    store_trace : bool
        Keep the whole spike history, readable as :attr:`complete_trace`.
    reset : {"rest", "subtract"}
        Set the voltage to ``v_reset`` or subtract ``thresh - v_reset`` after a spike.
    trace_mode : {"additive", "saturating"}
        Additive (all-to-all) or saturating (nearest-spike) trace.
    surrogate : str, (str, float) or Surrogate
        The spike's derivative for gradient training (used only when autograd
        records, see :mod:`pysnn.functional.surrogate`): ``"fast_sigmoid"``
        (default), ``"superspike"`` or ``"arctan"``, with its default slope,
        or ``(name, slope)``; readable and settable as :attr:`surrogate`.
    detach_reset : bool
        No gradient through the reset after a spike (the spike is taken as a
        constant in the reset, as in Zenke & Vogels 2021); only matters when
        autograd records.
    fire_once : bool
        Time-to-first-spike mode: each neuron spikes at most once per sample,
        until :meth:`reset_state` (per batch element).  After its spike a
        neuron is refractory for good (:attr:`refrac_counts` is set to
        :data:`FIRED_ONCE`, so it integrates nothing more) and its voltage is
        **not** reset: ``v_cell`` keeps the potential it had when it fired
        (what first-spike competition, :mod:`pysnn.competition`, ranks by).
    integrator : {"exact", "euler", "impulse"}
        Integration scheme (default ``"exact"``, see
        :mod:`pysnn.functional.integration`).
    """

    params: ClassVar[tuple[Param, ...]] = NEURON_PARAMS
    state_vars: ClassVar[tuple[StateVar, ...]] = NEURON_STATE
    #: state variables with declared linear dynamics, and those held while refractory
    _linear_vars: ClassVar[tuple[StateVar, ...]] = ()
    _held_vars: ClassVar[tuple[str, ...]] = ("v_cell",)
    options: ClassVar[tuple[Option, ...]] = NEURON_OPTIONS

    @property
    def surrogate(self) -> sf.Surrogate:
        """The surrogate derivative of the spike (:class:`~pysnn.functional.Surrogate`).

        Set it to a name (``"fast_sigmoid"``, ``"superspike"``, ``"arctan"``),
        a ``(name, slope)`` pair or a :class:`~pysnn.functional.Surrogate`.
        """
        return self.__dict__["_surrogate"]

    @surrogate.setter
    def surrogate(self, value: object) -> None:
        self.__dict__["_surrogate"] = sf.as_surrogate(value)

    def setup(self) -> None:
        steps = sf.duration_to_steps(self._masters["duration_refrac"], self.dt, "duration_refrac")
        self.register_buffer("refrac_steps", steps)
        self._parameter_set("duration_refrac")

    def _derived_buffers(self, name: str, master: Tensor, dt: float) -> dict[str, Tensor]:
        if name != "duration_refrac":
            return {}
        steps = sf.duration_to_steps(master, dt, name)
        return {"refrac_steps": steps.to(self._buffers["refrac_steps"].device)}

    def _parameter_set(self, name: str) -> None:
        if name == "duration_refrac":
            # no refractory period at all: skip the gating and the counter updates
            self._has_refractory = self.fire_once or bool((self._buffers["refrac_steps"] > 0).any())

    # -- the model's part ------------------------------------------------------------
    def integrate(self, state: dict[str, Tensor], x: Tensor) -> dict[str, Tensor]:
        """New values of the integrated variables (at least ``"v_cell"``) for input ``x``.

        ``state`` is the module's buffer dict (read only).  The default advances
        the state variables that declare a :class:`~pysnn.neuron.parameters.LinearODE`
        with the population's integrator; a model with other dynamics
        overrides it (one call into :mod:`pysnn.functional`).  Either way the
        population holds the variables declared ``refractory="hold"`` while
        the neuron is refractory: a model never gates its update itself.
        """
        if not self._linear_vars:
            raise NotImplementedError(
                f"{type(self).__name__} must implement integrate() or declare the dynamics "
                "of its state (StateVar(..., ode=LinearODE(...)))"
            )
        return {
            var.name: self._linear_update(var.ode, state[var.name], x) for var in self._linear_vars
        }

    #: buffer holding the firing threshold (a parameter, or state for adaptive thresholds)
    threshold_name: ClassVar[str] = "thresh"
    #: buffer holding the voltage after a spike (``reset="rest"``)
    reset_name: ClassVar[str] = "v_reset"

    def threshold(self) -> Tensor:
        """Current firing threshold (the buffer named by :attr:`threshold_name`)."""
        return cast(Tensor, self._buffers[self.threshold_name])

    def reset_potential(self) -> Tensor:
        """Voltage after a spike (the buffer named by :attr:`reset_name`)."""
        return cast(Tensor, self._buffers[self.reset_name])

    def on_spike(self, new: dict[str, Tensor], spikes: Tensor) -> None:
        """Apply the model's spike effects to ``new`` (e.g. threshold adaptation)."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # the step skips the call when a model has no spike effects
        cls._has_spike_effects = cls.on_spike is not BaseNeuron.on_spike
        cls._linear_vars = tuple(var for var in cls.state_vars if var.ode is not None)
        cls._held_vars = tuple(var.name for var in cls.state_vars if var.refractory == "hold")

    # -- the shared step ---------------------------------------------------------------
    @property
    def _refrac_gate(self) -> Tensor | None:
        """Refractory counters for gating, ``None`` when the refractory period is 0."""
        return self._buffers["refrac_counts"] if self._has_refractory else None

    def _step(
        self, x: Tensor, *extra: Tensor, keep: list[Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        # state is read through the buffer dict and written back in one loop:
        # nn.Module.__getattr__/__setattr__ cost about a microsecond per call
        state = self._buffers
        new = self.integrate(state, x, *extra)
        if self._has_refractory:  # the declared variables integrate nothing while refractory
            free = state["refrac_counts"] == 0
            for name in self._held_vars:
                if name in new:
                    new[name] = torch.where(free, new[name], state[name])
        v = new["v_cell"]
        if keep is not None:  # the voltage before the reset, for backpropagation (bptt.py)
            keep.append(v)
        thresh = state[self.threshold_name]
        # a neuron that is refractory (from the previous step) cannot spike; the one
        # threshold crossing, with the surrogate derivative when autograd records
        surrogate = self.__dict__["_surrogate"]
        fired, spikes = sf.fire(v, thresh, self._refrac_gate, surrogate)
        trace = self.update_trace(spikes)
        if self._has_spike_effects:
            self.on_spike(new, spikes)
        if self._has_refractory:
            counts = sf.refractory_update(state["refrac_counts"], spikes, state["refrac_steps"])
            if self.fire_once:
                counts = counts.masked_fill(fired, FIRED_ONCE)
            new["refrac_counts"] = counts
        if not self.fire_once:  # a neuron that fires once keeps its potential
            if spikes.requires_grad or surrogate.smooth:  # differentiable (or smooth) spikes
                reset = sf.reset_voltage(
                    v, spikes, state[self.reset_name], thresh, self.reset, self.detach_reset
                )
            else:  # rest: where(fired, ...); subtract: the 0/1 spikes, not a bool to convert
                mask = fired if self.reset == "rest" else spikes
                reset = sf.reset_voltage(v, mask, state[self.reset_name], thresh, self.reset)
            new["v_cell"] = reset
        new["trace"] = trace
        new["spikes"] = spikes
        state.update(new)
        self._record(spikes)
        return spikes, trace

    def _advance(self, x: Tensor, *extra: Tensor) -> tuple[Tensor, Tensor]:
        """Run :meth:`_step` eagerly or, after :meth:`fuse`, compiled."""
        if self._fusion is None or self._records_gradient(x):
            spikes, trace = self._step(x, *extra)
        else:
            backend, mode = self._fusion
            spikes, trace = fusion.call_fused(
                type(self)._step, self, x, *extra, backend=backend, mode=mode
            )
        mark_valid(spikes, trace)  # connections need not check them again
        return spikes, trace

    def forward(self, x: InputLike) -> tuple[Tensor, Tensor]:
        """Advance one timestep with input ``x`` (a tensor or a list of tensors, summed).

        Returns
        -------
        tuple of Tensor
            ``(spikes, trace)``, both ``(batch, *features)``; spikes are 0/1 in
            the module's dtype.
        """
        return self._advance(self._prepare_input(x))

    def forward_steps(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Advance ``T`` timesteps with the inputs ``x[T, batch, ...]`` (multi-step execution).

        Equals ``T`` calls of :meth:`forward` on ``x[t]`` (the same spikes,
        traces and final state); the window is validated once instead of every
        step.  Eager, the state update runs step after step; after :meth:`fuse`,
        every :attr:`~pysnn.neuron.fused.FusedSteps.FUSED_CHUNK` steps are compiled into **one** kernel that
        carries the state through the chunk (the fewer steps left over run
        eagerly).  :meth:`SNNNetwork.run <pysnn.network.SNNNetwork.run>` uses
        it for whole-network multi-step execution.

        Returns
        -------
        tuple of Tensor
            ``(spikes, trace)``, both ``[T, batch, *features]``.
        """
        spikes, traces, _ = self.advance_window(x)
        return spikes, traces

    def advance_window(
        self, x: Tensor, record: Sequence[str] = ()
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """:meth:`forward_steps`, also stacking the state variables ``record`` of every step.

        Returns ``(spikes, trace, {name: [T, ...]})`` (what a monitor of those
        variables would record step by step).
        """
        window = self._prepare_window(x)
        if not record and self._records_gradient(window) and bptt.applies(self):
            spikes, traces = self._differentiable_window(window)
            mark_valid(spikes, traces)
            return spikes, traces, {}
        spikes, traces, extra = self.run_window(BaseNeuron._run_steps, window, tuple(record))
        mark_valid(spikes, traces)
        return spikes, traces, extra

    def _differentiable_window(self, window: Tensor) -> tuple[Tensor, Tensor]:
        """The window as one autograd node (:class:`pysnn.neuron.bptt.SpikingWindow`)."""
        state = self._buffers
        parameters = [p for p in self._parameters.values() if p is not None and p.requires_grad]
        spikes, traces, v_end = bptt.SpikingWindow.apply(
            self, window, state["v_cell"], state["trace"], *parameters
        )
        state["v_cell"], state["trace"], state["spikes"] = v_end, traces[-1], spikes[-1]
        return spikes, traces

    def _run_steps(
        self, window: Tensor, names: tuple[str, ...] = ()
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """:meth:`_step` over every step of ``window``, stacked (unrolled when compiled)."""
        spikes, traces = [], []
        extra: dict[str, list[Tensor]] = {name: [] for name in names}
        buffers = self._buffers
        for current in window:
            s, trace = self._step(current)
            spikes.append(s)
            traces.append(trace)
            for name in names:
                extra[name].append(buffers[name])
        stacked = {name: torch.stack(values) for name, values in extra.items()}
        return torch.stack(spikes), torch.stack(traces), stacked
