r"""Neuron modules: thin stateful wrappers around :mod:`pysnn.functional`.

One call is one timestep.  A neuron takes its input current as one tensor or a
list of tensors (summed), updates its state and returns ``(spikes, trace)``.
After each step ``.spikes``, ``.trace`` and ``.v_cell`` hold the new state.

**Shapes.** ``cells_shape`` is the shape of the population, either per sample (``(N,)``,
``(C, H, W)``) or, as in PySNN 0.1, with a leading batch entry
(``(B, 1, N)``, ``(B, C, H, W)``).  The batch size is never fixed: inputs are
``(batch, *features)`` with any batch size; it may change after
:meth:`reset_state`.  State tensors are ``(batch, *features)``.

**Parameters.** Every numeric parameter may be a Python number or a tensor with one value per
neuron (broadcastable to the per-sample shape, never expanding it).  With
``update_type="linear"`` the ``tau_*`` arguments are decay factors per step in
``[0, 1]`` (PySNN 0.1 convention); with ``"exponential"`` (forward Euler) and
``"exact"`` (exact integration) they are time constants in ms.
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import torch

from pysnn import functional as sf
from pysnn import fusion
from pysnn.state import StatefulModule
from pysnn.validation import (
    as_parameter_tensor,
    check_choice,
    check_dt,
    check_non_negative,
    check_positive,
    check_shape_tuple,
    check_tensor,
    check_unit_interval,
)

Tensor = torch.Tensor
Number = Union[float, int]
ParamLike = Union[float, int, Tensor]
InputLike = Union[Tensor, Sequence[Tensor]]

__all__ = [
    "BaseInput",
    "Input",
    "BaseNeuron",
    "IFNeuron",
    "LIFNeuron",
    "AdaptiveLIFNeuron",
    "FedeNeuron",
    "IzhikevichNeuron",
]

TRACE_MODES = ("additive", "saturating")


def _broadcasts_to(shape: Sequence[int], features: Sequence[int]) -> bool:
    """True when ``shape`` broadcasts to ``features`` without expanding it."""
    try:
        return torch.broadcast_shapes(tuple(shape), tuple(features)) == torch.Size(features)
    except RuntimeError:
        return False


class _PopulationMixin(StatefulModule):
    """Shape resolution, parameter buffers and input checks shared by all neurons."""

    #: the per-sample shape is saved with the state: it may differ from the one
    #: guessed from ``cells_shape`` at construction (e.g. ``(C, H, W)``)
    _extra_state_attrs = ("_features",)

    def _setup_population(self, cells_shape: Sequence[int] | int, dt: Number | Tensor) -> None:
        self.cells_shape = check_shape_tuple("cells_shape", cells_shape)
        self.dt = check_dt(dt)
        # Until the first input says otherwise, follow PySNN 0.1: a shape with
        # two or more entries starts with the batch size.
        if len(self.cells_shape) >= 2:
            self._features = self.cells_shape[1:]
            self._initial_batch = self.cells_shape[0]
        else:
            self._features = self.cells_shape
            self._initial_batch = 1
        self._param_names: list[str] = []
        self._history: list[Tensor] | None = None
        self._factor_cache: dict[str, tuple[tuple, Tensor]] = {}

    @property
    def features_shape(self) -> tuple[int, ...]:
        """Per-sample shape of the population (without the batch dimension)."""
        return self._features

    def _add_param(
        self,
        name: str,
        value: ParamLike,
        positive: bool = False,
        non_negative: bool = False,
        unit_interval: bool = False,
    ) -> None:
        tensor = as_parameter_tensor(name, value, torch.get_default_dtype())
        if positive:
            check_positive(name, tensor)
        if non_negative:
            check_non_negative(name, tensor)
        if unit_interval:
            check_unit_interval(name, tensor)
        self.register_buffer(name, tensor)
        self._param_names.append(name)
        # A per-sample population such as (C, H, W) with per-channel parameters:
        # the parameter only fits the whole cells_shape, which therefore has no
        # leading batch entry.
        if (
            self._features != self.cells_shape
            and not _broadcasts_to(tensor.shape, self._features)
            and _broadcasts_to(tensor.shape, self.cells_shape)
        ):
            self._features = self.cells_shape
            self._initial_batch = 1

    def _add_time_constant(self, name: str, value: ParamLike, update_type: str) -> None:
        if update_type == "linear":
            self._add_param(name, value, unit_interval=True)
        else:
            self._add_param(name, value, positive=True)

    def _exact_factor(self, name: str, kind: str = "decay") -> Tensor | None:
        r"""Cached factor of an ``"exact"`` update for time constant ``name``.

        ``kind="decay"`` gives :math:`e^{-\Delta t/\tau}`, ``kind="gain"`` gives
        :math:`1 - e^{-\Delta t/\tau}`; ``None`` for other update types.  The
        cache follows in-place edits, ``.to()`` and ``.double()`` of the buffer.
        """
        if self.update_type != "exact":
            return None
        tau = self._buffers[name]
        factor = sf.decay_factor if kind == "decay" else sf.exact_gain
        if fusion.is_compiling():
            # inside a fused step the factor is one more op of the kernel; a cache
            # keyed on data pointers would only make the compiler recompile
            return factor(tau, self.dt, tau)
        signature = (tau._version, tau.data_ptr(), tau.dtype, tau.device)
        hit = self._factor_cache.get(name + kind)
        if hit is not None and hit[0] == signature:
            return hit[1]
        value = factor(tau, self.dt, tau)
        self._factor_cache[name + kind] = (signature, value)
        return value

    def update_trace(self, spikes: Tensor) -> Tensor:
        """Return the trace after this step's spikes (inputs and neurons alike)."""
        state = self._buffers  # dict reads: nn.Module.__getattr__ costs ~1 us a call
        return sf.trace_update(
            self.update_type,
            state["trace"],
            spikes,
            state["alpha_t"],
            state["tau_t"],
            self.dt,
            self.trace_mode == "saturating",
            self._exact_factor("tau_t"),
        )

    def _check_param_shapes(self, features: tuple[int, ...]) -> None:
        for name in self._param_names:
            shape = tuple(getattr(self, name).shape)
            if not _broadcasts_to(shape, features):
                raise ValueError(
                    f"{type(self).__name__}: parameter {name} has shape {shape}, which does not "
                    f"broadcast to the neuron shape {features} without expanding it"
                )

    @property
    def _anchor(self) -> Tensor:
        """A parameter buffer whose dtype and device are the module's."""
        return self._buffers[self._param_names[0]]

    def _resolve_features(self, shape: torch.Size, name: str) -> tuple[int, ...]:
        dims = tuple(shape)
        if len(dims) == len(self.cells_shape) + 1 and dims[1:] == self.cells_shape:
            return self.cells_shape
        if len(self.cells_shape) >= 2 and dims[1:] == self.cells_shape[1:]:
            if len(dims) == len(self.cells_shape):
                return self.cells_shape[1:]
        expected = f"(batch, *{self.cells_shape})"
        if len(self.cells_shape) >= 2:
            expected += f" or (batch, *{self.cells_shape[1:]})"
        raise ValueError(
            f"{type(self).__name__}: {name} must have shape {expected}, got {tuple(shape)}"
        )

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        # Adopt the saved per-sample shape before the buffers are loaded, so that
        # state saved after the first input resolved the shape loads into a
        # freshly constructed module.
        extra = state_dict.get(prefix + "_extra_state")
        if isinstance(extra, dict) and "_features" in extra:
            features = tuple(extra["_features"])
            if features != self._features:
                self._check_param_shapes(features)
                self._features = features
                self._init_state(self.batch_size or 1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _prepare_input(self, x: InputLike, name: str = "x", allow_bool: bool = False) -> Tensor:
        """Validate and sum the input, adopt its batch size; returns the summed input."""
        total, features = self._sum_input(x, name, allow_bool)
        self._adopt_input(total, features)
        return total

    def _sum_input(
        self, x: InputLike, name: str = "x", allow_bool: bool = False
    ) -> tuple[Tensor, tuple[int, ...]]:
        """Validate and sum the input without touching the state.

        Returns the summed input and its per-sample shape.
        """
        anchor = self._anchor
        if isinstance(x, (list, tuple)):
            if len(x) == 0:
                raise ValueError(f"{type(self).__name__}: {name} is an empty list")
            parts = [
                check_tensor(f"{name}[{i}]", xi, anchor.dtype, anchor.device, allow_bool)
                for i, xi in enumerate(x)
            ]
            for i, part in enumerate(parts[1:], start=1):
                if part.shape != parts[0].shape:
                    raise ValueError(
                        f"{type(self).__name__}: all inputs in {name} must have the same shape; "
                        f"{name}[0] is {tuple(parts[0].shape)}, {name}[{i}] is {tuple(part.shape)}"
                    )
            total = parts[0]
            for part in parts[1:]:
                total = total + part
        else:
            total = check_tensor(name, x, anchor.dtype, anchor.device, allow_bool)
        features = self._resolve_features(total.shape, name)
        if features != self._features:
            if not self._fresh:
                raise ValueError(
                    f"{type(self).__name__}: {name} has per-sample shape {features} but the "
                    f"running simulation uses {self._features}; call reset_state() first"
                )
            self._check_param_shapes(features)
        return total, features

    def _adopt_input(self, total: Tensor, features: tuple[int, ...]) -> None:
        """Adopt the per-sample shape and batch size of a validated input."""
        if features != self._features:
            self._features = features
            self._init_state(int(total.shape[0]))
        self._begin_step(int(total.shape[0]))

    def _full(self, batch_size: int, value: ParamLike | None = None) -> Tensor:
        anchor = self._anchor
        out = torch.zeros((batch_size, *self._features), dtype=anchor.dtype, device=anchor.device)
        if value is not None:
            out += value
        return out

    def _record(self, spikes: Tensor) -> None:
        if self._history is not None:
            self._history.append(spikes.to(torch.bool))

    @property
    def complete_trace(self) -> Tensor | None:
        """Spike history ``(batch, *features, T)`` (bool) when ``store_trace=True``."""
        if self._history is None:
            return None
        if not self._history:
            return torch.zeros((*self.spikes.shape, 0), dtype=torch.bool, device=self.spikes.device)
        return torch.stack(self._history, dim=-1)

    def reset_state(self, batch_size: int | None = None) -> None:
        """Reset voltages, spikes, traces and refractory counters (and the spike history)."""
        super().reset_state(batch_size)
        if self._history is not None:
            self._history = []


# ---------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------
class BaseInput(_PopulationMixin):
    """Base of input populations: they pass spikes through and keep a trace."""

    _state_names = ("spikes", "trace")

    def _init_state(self, batch_size: int) -> None:
        self._check_param_shapes(self._features)
        self._register_state("spikes", self._full(batch_size))
        self._register_state("trace", self._full(batch_size))


class Input(BaseInput):
    r"""Input population: passes spikes through and keeps their trace.

    .. math:: x \leftarrow \text{trace update}(x, s)

    Parameters
    ----------
    cells_shape : tuple of int
        Population shape, with or without a leading batch entry.
    dt : float
        Timestep in ms.
    alpha_t : float or Tensor
        Trace increment per spike.
    tau_t : float or Tensor
        Trace decay factor (``"linear"``) or time constant in ms.
    update_type : {"linear", "exponential", "exact"}
        Trace update, see :mod:`pysnn.functional`.
    trace_mode : {"additive", "saturating"}
        Add ``alpha_t`` per spike (all-to-all) or set the trace to ``alpha_t``
        (nearest spike).

    Examples
    --------
    >>> inp = Input((784,), dt=1.0, alpha_t=1.0, tau_t=0.9)
    >>> spikes, trace = inp(torch.rand(32, 784) < 0.02)
    """

    def __init__(
        self,
        cells_shape: Sequence[int] | int,
        dt: Number = 1.0,
        alpha_t: ParamLike = 1.0,
        tau_t: ParamLike = 0.95,
        update_type: str = "linear",
        *,
        trace_mode: str = "additive",
    ) -> None:
        super().__init__()
        self.update_type = check_choice("update_type", update_type, sf.UPDATE_TYPES)
        self.trace_mode = check_choice("trace_mode", trace_mode, TRACE_MODES)
        self._setup_population(cells_shape, dt)
        self._add_param("alpha_t", alpha_t)
        self._add_time_constant("tau_t", tau_t, update_type)
        self._init_state(self._initial_batch)

    def forward(self, x: InputLike) -> tuple[Tensor, Tensor]:
        """Take the spikes of this step (bool or 0/1 floats) and return ``(spikes, trace)``."""
        spikes = self._prepare_input(x, allow_bool=True)
        trace = self.update_trace(spikes)
        self._set_state("spikes", spikes)
        self._set_state("trace", trace)
        return spikes, trace


# ---------------------------------------------------------------------------
# Spiking neurons
# ---------------------------------------------------------------------------
class BaseNeuron(_PopulationMixin):
    r"""Base of spiking neurons.

    The step order is: sum the inputs, update the voltage (no integration while
    refractory from the previous step), spike where :math:`v \ge \theta`,
    update the trace, (adapt the threshold), count down/start the refractory
    period and reset the voltage of the neurons that spiked.

    Subclasses implement :meth:`update_voltage`; the other parts are shared.

    Parameters
    ----------
    cells_shape : tuple of int
        Population shape, with or without a leading batch entry.
    thresh : float or Tensor
        Firing threshold :math:`\theta` (same unit as the voltage).
    v_rest : float or Tensor
        Resting and reset voltage.
    alpha_v : float or Tensor
        Input scaling :math:`\alpha_v`.
    alpha_t : float or Tensor
        Trace increment per spike.
    dt : float
        Timestep in ms (> 0).
    duration_refrac : float or Tensor
        Refractory period in ms, a whole number of timesteps (checked with a
        relative tolerance of 1e-6).
    tau_t : float or Tensor
        Trace decay factor (``"linear"``) or time constant in ms.
    update_type : {"linear", "exponential", "exact"}
        Integration scheme, see :mod:`pysnn.functional`.
    store_trace : bool
        Keep the whole spike history, readable as :attr:`complete_trace`.
    reset : {"rest", "subtract"}
        Reset to ``v_rest`` or subtract ``thresh - v_rest`` after a spike.
    trace_mode : {"additive", "saturating"}
        Additive (all-to-all) or saturating (nearest-spike) trace.
    """

    _state_names = ("v_cell", "spikes", "trace", "refrac_counts")

    def __init__(
        self,
        cells_shape: Sequence[int] | int,
        thresh: ParamLike,
        v_rest: ParamLike,
        alpha_v: ParamLike,
        alpha_t: ParamLike,
        dt: Number,
        duration_refrac: ParamLike,
        tau_t: ParamLike,
        update_type: str = "linear",
        store_trace: bool = False,
        reset: str = "rest",
        trace_mode: str = "additive",
    ) -> None:
        super().__init__()
        self.update_type = check_choice("update_type", update_type, sf.UPDATE_TYPES)
        self.reset = check_choice("reset", reset, sf.RESET_MODES)
        self.trace_mode = check_choice("trace_mode", trace_mode, TRACE_MODES)
        self._setup_population(cells_shape, dt)
        self._add_param("v_rest", v_rest)
        self._add_param("thresh", thresh)
        self._add_param("alpha_v", alpha_v)
        self._add_param("alpha_t", alpha_t)
        self._add_time_constant("tau_t", tau_t, update_type)
        self._add_param("duration_refrac", duration_refrac, non_negative=True)
        self.register_buffer(
            "refrac_steps", sf.duration_to_steps(duration_refrac, self.dt, "duration_refrac")
        )
        # no refractory period at all: skip the gating and the counter updates
        self._has_refractory = bool((self.refrac_steps > 0).any())
        if store_trace:
            self._history = []
        self._fusion: tuple[str | Callable, str | None] | None = None

    # -- fused execution ---------------------------------------------------
    def fuse(
        self,
        enabled: bool = True,
        backend: str | Callable = fusion.DEFAULT_BACKEND,
        mode: str | None = None,
    ) -> BaseNeuron:
        """Run each step's state update as one compiled kernel (:mod:`pysnn.fusion`).

        Parameters
        ----------
        enabled : bool
            Switch fusion on (``True``) or back to the eager step (``False``).
        backend : str or callable
            ``torch.compile`` backend (default ``"inductor"``, which generates
            C++ on CPU and Triton on CUDA).
        mode : str, optional
            ``torch.compile`` mode, e.g. ``"max-autotune-no-cudagraphs"``.

        Returns
        -------
        BaseNeuron
            ``self``, for chaining.

        Notes
        -----
        The compiled function is the eager step itself, so results are the
        same up to floating-point rounding of fused arithmetic (tested to give
        the same spikes).  The first step compiles; without a working compiler
        a :class:`RuntimeWarning` is emitted once and the eager step runs.
        Input validation stays outside the compiled region.
        """
        if not isinstance(enabled, bool):
            raise TypeError(f"enabled must be a bool, got {type(enabled).__name__}")
        if not (callable(backend) or (isinstance(backend, str) and backend)):
            raise TypeError(
                f"backend must be a torch.compile backend name or callable, got {backend!r}"
            )
        self._fusion = (backend, mode) if enabled else None
        return self

    @property
    def fused(self) -> bool:
        """Whether :meth:`fuse` is switched on."""
        return self._fusion is not None

    def _advance(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Run :meth:`_step` eagerly or, after :meth:`fuse`, compiled."""
        if self._fusion is None:
            return self._step(x)
        backend, mode = self._fusion
        return fusion.call_fused(type(self)._step, self, x, backend=backend, mode=mode)

    def _init_state(self, batch_size: int) -> None:
        self._check_param_shapes(self._features)
        self._register_state("v_cell", self._full(batch_size, self.v_rest))
        self._register_state("spikes", self._full(batch_size))
        self._register_state("trace", self._full(batch_size))
        counts = torch.zeros(
            (batch_size, *self._features), dtype=torch.int64, device=self._anchor.device
        )
        self._register_state("refrac_counts", counts)

    # -- the step ----------------------------------------------------------
    def update_voltage(self, x: Tensor) -> Tensor:
        """Return the voltage after integrating the summed input ``x``."""
        raise NotImplementedError

    def threshold(self) -> Tensor:
        """Current firing threshold."""
        return self._buffers["thresh"]

    def _after_spike(self, spikes: Tensor) -> None:
        """Hook for extra state updates after spiking (threshold adaptation)."""

    @property
    def _refrac_gate(self) -> Tensor | None:
        """Refractory counters for gating, ``None`` when the refractory period is 0."""
        return self._buffers["refrac_counts"] if self._has_refractory else None

    def _step(self, x: Tensor) -> tuple[Tensor, Tensor]:
        # state is read through the buffer dict and rebound with _set_state:
        # nn.Module.__getattr__/__setattr__ cost about a microsecond per call
        state = self._buffers
        v = self.update_voltage(x)
        thresh = self.threshold()
        # a neuron that is refractory (from the previous step) cannot spike
        fired = sf.spike_mask(v, thresh, self._refrac_gate)
        spikes = fired.to(dtype=v.dtype)
        trace = self.update_trace(spikes)
        self._set_state("trace", trace)
        self._after_spike(spikes)
        if self._has_refractory:
            counts = sf.refractory_update(state["refrac_counts"], spikes, state["refrac_steps"])
            self._set_state("refrac_counts", counts)
        self._set_state("v_cell", sf.reset_voltage(v, fired, state["v_rest"], thresh, self.reset))
        self._set_state("spikes", spikes)
        self._record(spikes)
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


class IFNeuron(BaseNeuron):
    r"""Integrate-and-fire neuron.

    .. math:: v \leftarrow v + \alpha_v I\,[r=0]

    See :class:`BaseNeuron` for the parameters (there is no ``tau_v``).
    """

    def __init__(
        self,
        cells_shape: Sequence[int] | int,
        thresh: ParamLike = 1.0,
        v_rest: ParamLike = 0.0,
        alpha_v: ParamLike = 1.0,
        alpha_t: ParamLike = 1.0,
        dt: Number = 1.0,
        duration_refrac: ParamLike = 0.0,
        tau_t: ParamLike = 0.95,
        update_type: str = "linear",
        store_trace: bool = False,
        *,
        reset: str = "rest",
        trace_mode: str = "additive",
    ) -> None:
        super().__init__(
            cells_shape,
            thresh,
            v_rest,
            alpha_v,
            alpha_t,
            dt,
            duration_refrac,
            tau_t,
            update_type,
            store_trace,
            reset,
            trace_mode,
        )
        self._init_state(self._initial_batch)

    def update_voltage(self, x: Tensor) -> Tensor:
        return sf.if_voltage_update(self.v_cell, x, self.alpha_v, self._refrac_gate)


class LIFNeuron(BaseNeuron):
    r"""Leaky integrate-and-fire neuron.

    .. math::
        \text{linear:}\quad & v \leftarrow v_{rest} + ((v - v_{rest})\lambda_v + \alpha_v I)[r=0]\\
        \text{exponential:}\quad & v \leftarrow v + \tfrac{\Delta t}{\tau_v}
            (-(v - v_{rest}) + \alpha_v I)[r=0]\\
        \text{exact:}\quad & v \leftarrow v + (v_{rest} + \alpha_v I - v)
            (1 - e^{-\Delta t/\tau_v})[r=0]

    Parameters
    ----------
    tau_v : float or Tensor
        Voltage decay factor :math:`\lambda_v` (``"linear"``) or membrane time
        constant :math:`\tau_v` in ms.

    Notes
    -----
    See :class:`BaseNeuron` for the other parameters.

    Examples
    --------
    >>> lif = LIFNeuron((400,), thresh=1.0, v_rest=0.0, alpha_v=0.3, alpha_t=1.0,
    ...                 dt=1.0, duration_refrac=2.0, tau_v=20.0, tau_t=20.0,
    ...                 update_type="exact")
    >>> spikes, trace = lif(torch.rand(8, 400))
    """

    def __init__(
        self,
        cells_shape: Sequence[int] | int,
        thresh: ParamLike = 1.0,
        v_rest: ParamLike = 0.0,
        alpha_v: ParamLike = 1.0,
        alpha_t: ParamLike = 1.0,
        dt: Number = 1.0,
        duration_refrac: ParamLike = 0.0,
        tau_v: ParamLike = 0.9,
        tau_t: ParamLike = 0.95,
        update_type: str = "linear",
        store_trace: bool = False,
        *,
        reset: str = "rest",
        trace_mode: str = "additive",
    ) -> None:
        super().__init__(
            cells_shape,
            thresh,
            v_rest,
            alpha_v,
            alpha_t,
            dt,
            duration_refrac,
            tau_t,
            update_type,
            store_trace,
            reset,
            trace_mode,
        )
        self._add_time_constant("tau_v", tau_v, update_type)
        self._init_state(self._initial_batch)

    def update_voltage(self, x: Tensor) -> Tensor:
        state = self._buffers
        return sf.lif_voltage_update(
            self.update_type,
            state["v_cell"],
            state["v_rest"],
            x,
            state["alpha_v"],
            state["tau_v"],
            self.dt,
            self._refrac_gate,
            self._exact_factor("tau_v", "gain"),
        )


class AdaptiveLIFNeuron(LIFNeuron):
    r"""LIF neuron whose threshold grows with each spike and relaxes to its base.

    .. math::
        \text{linear:}\quad & \theta \leftarrow \theta_0 + \lambda_\theta(\theta - \theta_0)
            + \alpha_\theta \bar s\\
        \text{exponential:}\quad & \theta \leftarrow \theta + \tfrac{\Delta t}{\tau_\theta}
            (-(\theta - \theta_0) + \alpha_\theta \bar s)\\
        \text{exact:}\quad & \theta \leftarrow \theta_0 + (\theta - \theta_0)
            e^{-\Delta t/\tau_\theta} + \alpha_\theta \bar s

    :math:`\theta_0` is ``thresh`` (kept in ``thresh_center``), :math:`\bar s`
    the spikes averaged over the batch (``thresh_reduction="mean"``) or summed
    over it (``"sum"``: every sample's spike raises the threshold by
    :math:`\alpha_\theta`, as if the samples had been shown one after another).
    The adaptive threshold ``thresh`` is homeostatic state shared by the batch:
    :meth:`reset_state` keeps it (as in Diehl & Cook 2015), :meth:`reset_thresh`
    restores :math:`\theta_0`, and it only adapts in training mode (frozen after
    ``.eval()``).

    Parameters
    ----------
    alpha_thresh : float or Tensor
        Threshold increment per spike.
    tau_thresh : float or Tensor
        Threshold decay factor (``"linear"``) or time constant in ms.
    thresh_reduction : {"mean", "sum"}
        How the spikes of a batch are combined into :math:`\bar s`.

    Notes
    -----
    See :class:`LIFNeuron` for the other parameters.
    """

    def __init__(
        self,
        cells_shape: Sequence[int] | int,
        thresh: ParamLike = 1.0,
        v_rest: ParamLike = 0.0,
        alpha_v: ParamLike = 1.0,
        alpha_t: ParamLike = 1.0,
        dt: Number = 1.0,
        duration_refrac: ParamLike = 0.0,
        tau_v: ParamLike = 0.9,
        tau_t: ParamLike = 0.95,
        alpha_thresh: ParamLike = 0.05,
        tau_thresh: ParamLike = 0.999,
        update_type: str = "linear",
        store_trace: bool = False,
        *,
        reset: str = "rest",
        trace_mode: str = "additive",
        thresh_reduction: str = "mean",
    ) -> None:
        super().__init__(
            cells_shape,
            thresh,
            v_rest,
            alpha_v,
            alpha_t,
            dt,
            duration_refrac,
            tau_v,
            tau_t,
            update_type,
            store_trace,
            reset=reset,
            trace_mode=trace_mode,
        )
        self.thresh_reduction = check_choice("thresh_reduction", thresh_reduction, ("mean", "sum"))
        self._add_param("alpha_thresh", alpha_thresh)
        self._add_time_constant("tau_thresh", tau_thresh, update_type)
        # the new parameters may decide the per-sample shape; checks their shapes
        self._init_state(self._initial_batch)
        self.reset_thresh()

    @property
    def thresh_center(self) -> Tensor:
        r"""Base threshold :math:`\theta_0` (the ``thresh`` argument)."""
        return self.thresh

    def reset_thresh(self) -> None:
        r"""Set the adaptive threshold back to its base :math:`\theta_0`."""
        self._register_state("thresh_adaptive", self._full(1, self.thresh)[0])

    def _init_state(self, batch_size: int) -> None:
        super()._init_state(batch_size)
        current = getattr(self, "thresh_adaptive", None)
        if current is not None and tuple(current.shape) != self._features:
            self.reset_thresh()

    def threshold(self) -> Tensor:
        return self.thresh_adaptive

    def _after_spike(self, spikes: Tensor) -> None:
        if not self.training:
            return
        adapted = sf.thresh_update(
            self.update_type,
            self.thresh_adaptive,
            self.thresh_center,
            spikes.sum(0) if self.thresh_reduction == "sum" else spikes.mean(0),
            self.alpha_thresh,
            self.tau_thresh,
            self.dt,
            self._exact_factor("tau_thresh"),
        )
        self._set_state("thresh_adaptive", adapted)


class FedeNeuron(BaseNeuron):
    r"""Neuron of Paredes-Vallés et al. (TPAMI 2019), always forward-Euler.

    .. math::
        v \leftarrow v + \frac{\Delta t}{\tau_v}\left(-(v - v_{rest})
        + \alpha_v (I - X)\right)[r=0]

    with :math:`X` the summed presynaptic trace in the receptive field, passed
    as ``pre_trace`` to :meth:`forward`.

    Parameters
    ----------
    tau_v : float or Tensor
        Membrane time constant in ms.

    Notes
    -----
    See :class:`BaseNeuron` for the other parameters.
    """

    def __init__(
        self,
        cells_shape: Sequence[int] | int,
        thresh: ParamLike = 1.0,
        v_rest: ParamLike = 0.0,
        alpha_v: ParamLike = 1.0,
        alpha_t: ParamLike = 1.0,
        dt: Number = 1.0,
        duration_refrac: ParamLike = 0.0,
        tau_v: ParamLike = 20.0,
        tau_t: ParamLike = 20.0,
        store_trace: bool = False,
        *,
        reset: str = "rest",
        trace_mode: str = "additive",
    ) -> None:
        super().__init__(
            cells_shape,
            thresh,
            v_rest,
            alpha_v,
            alpha_t,
            dt,
            duration_refrac,
            tau_t,
            "exponential",
            store_trace,
            reset,
            trace_mode,
        )
        self._add_time_constant("tau_v", tau_v, "exponential")
        self._init_state(self._initial_batch)
        self._pre_trace: Tensor | None = None

    def update_voltage(self, x: Tensor) -> Tensor:
        return sf.fede_voltage_update(
            self.v_cell,
            self.v_rest,
            x,
            self._pre_trace,
            self.alpha_v,
            self.tau_v,
            self.dt,
            self._refrac_gate,
        )

    def forward(self, x: InputLike, pre_trace: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """Advance one step with input ``x`` and presynaptic trace ``pre_trace``.

        ``pre_trace`` is shaped like the input (already summed over the
        receptive field) or has one extra trailing synapse dimension, which is
        summed.
        """
        total, features = self._sum_input(x)
        anchor = self._anchor
        pre_trace = check_tensor("pre_trace", pre_trace, anchor.dtype, anchor.device)
        if pre_trace.shape != total.shape:
            if pre_trace.dim() == total.dim() + 1 and pre_trace.shape[:-1] == total.shape:
                pre_trace = pre_trace.sum(-1)
            else:
                raise ValueError(
                    f"FedeNeuron: pre_trace must have shape {tuple(total.shape)} or "
                    f"{tuple(total.shape)} + (n_synapses,), got {tuple(pre_trace.shape)}"
                )
        # only now, with every argument checked, touch the state
        self._adopt_input(total, features)
        self._pre_trace = pre_trace
        try:
            return self._advance(total)
        finally:
            self._pre_trace = None


class IzhikevichNeuron(BaseNeuron):
    r"""Izhikevich (2003) neuron (voltage in mV, time in ms), forward-Euler.

    .. math::
        v &\leftarrow v + \Delta t\,(0.04 v^2 + 5 v + 140 - u + \alpha_v I)[r=0]\\
        u &\leftarrow u + \Delta t\, a (b v - u)\\
        v \ge v_{peak} &\Rightarrow s = 1,\; v \leftarrow c,\; u \leftarrow u + d

    Parameters
    ----------
    cells_shape : tuple of int
        Population shape.
    a, b, c, d : float or Tensor
        Izhikevich parameters (regular spiking: 0.02, 0.2, -65, 8).
    thresh : float or Tensor
        Spike peak :math:`v_{peak}` in mV.
    alpha_v, alpha_t, dt, duration_refrac, tau_t, update_type, store_trace
        As in :class:`BaseNeuron`; ``update_type`` only applies to the trace.

    Notes
    -----
    ``v_rest`` is :math:`c`, the initial voltage; :math:`u` starts at
    :math:`b c`.  Use ``dt <= 0.5`` ms for accuracy.
    """

    _state_names = ("v_cell", "u", "spikes", "trace", "refrac_counts")

    def __init__(
        self,
        cells_shape: Sequence[int] | int,
        a: ParamLike = 0.02,
        b: ParamLike = 0.2,
        c: ParamLike = -65.0,
        d: ParamLike = 8.0,
        thresh: ParamLike = 30.0,
        alpha_v: ParamLike = 1.0,
        alpha_t: ParamLike = 1.0,
        dt: Number = 0.5,
        duration_refrac: ParamLike = 0.0,
        tau_t: ParamLike = 20.0,
        update_type: str = "exact",
        store_trace: bool = False,
        *,
        trace_mode: str = "additive",
    ) -> None:
        super().__init__(
            cells_shape,
            thresh,
            c,
            alpha_v,
            alpha_t,
            dt,
            duration_refrac,
            tau_t,
            update_type,
            store_trace,
            "rest",
            trace_mode,
        )
        self._add_param("a", a)
        self._add_param("b", b)
        self._add_param("d", d)
        self._init_state(self._initial_batch)

    @property
    def c(self) -> Tensor:
        """Reset voltage :math:`c` in mV (stored as ``v_rest``)."""
        return self.v_rest

    def _init_state(self, batch_size: int) -> None:
        super()._init_state(batch_size)
        self._register_state("u", self._full(batch_size, self.b * self.v_rest))

    def update_voltage(self, x: Tensor) -> Tensor:
        v, u = sf.izhikevich_update(
            self.v_cell, self.u, x, self.a, self.b, self.alpha_v, self.dt, self._refrac_gate
        )
        self._set_state("u", u)
        return v

    def _after_spike(self, spikes: Tensor) -> None:
        self._set_state("u", self.u + spikes * self.d)
