r"""The one generic population: declared parameters and state become buffers.

:class:`Population` reads a model's declaration (:class:`~pysnn.neuron.parameters.Param`,
:class:`~pysnn.neuron.parameters.StateVar`, :class:`~pysnn.neuron.parameters.Option`)
and does everything a model has in common: the constructor signature
(``cells_shape``, then keywords: the parameters, the options, ``dt`` and
``integrator="exact"``), parameter buffers with float64 masters, state
buffers for any batch size, dtype and device, input validation, list inputs,
the spike trace and the optional spike history.  A model only adds its pure
step (see :class:`~pysnn.neuron.spiking.BaseNeuron`).  Calls spelled as in
PySNN 0.1 (dynamics by position, ``update_type=``) are translated by
:mod:`pysnn.compat` first.

**Shapes.** ``cells_shape`` is the per-sample shape (``(N,)``, ``(C, H, W)``);
the batch size comes from the input.  Parameters broadcast to the per-sample
shape without expanding it.  State tensors are ``(batch, *features)``.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Sequence, cast

import torch

from pysnn import functional as sf
from pysnn.capabilities import Capabilities
from pysnn.clock import Clocked
from pysnn.neuron.fused import FusedSteps
from pysnn.neuron.parameters import LinearODE, Option, Param, StateVar, check_integrator
from pysnn.neuron.store import ParameterStore
from pysnn.neuron.validation import InputChecks
from pysnn.state import StatefulModule
from pysnn.validation import check_choice, check_shape_tuple

Tensor = torch.Tensor

__all__ = ["Population", "TRACE_MODES"]

TRACE_MODES = ("additive", "saturating")

_PARAMETER = inspect.Parameter


class Population(FusedSteps, InputChecks, ParameterStore, Clocked, StatefulModule):
    """A population of neurons (or inputs) built from its model's declaration.

    Class attributes of a model
    ---------------------------
    params : tuple of Param
        Numeric parameters, scalar or per neuron.
    state_vars : tuple of StateVar
        State variables with their initial/reset values.
    options : tuple of Option
        Mode names and flags.
    fixed_integrator : str or None
        The integrator of a model that has only one (no ``update_type`` argument).
    """

    params: ClassVar[tuple[Param, ...]] = (
        Param("alpha_t", 1.0, doc="trace increment per spike"),
        Param("tau_t", 20.0, "time", "trace time constant (ms)"),
    )
    state_vars: ClassVar[tuple[StateVar, ...]] = (StateVar("spikes"), StateVar("trace"))
    options: ClassVar[tuple[Option, ...]] = (Option("trace_mode", "additive", TRACE_MODES),)
    #: the integrator when none is given
    default_integrator: ClassVar[str] = "exact"
    fixed_integrator: ClassVar[str | None] = None
    default_dt: ClassVar[float] = 1.0

    #: the per-sample shape is saved with the state: it may differ from the one
    #: guessed from ``cells_shape`` at construction (e.g. ``(C, H, W)``)
    _extra_state_attrs = ("_features",)
    #: names of the declared parameters, and of those that may be ``inf``
    #: (time constants: no decay); set by :meth:`_index_declaration`
    _param_names: ClassVar[frozenset[str]]
    _infinite_ok: ClassVar[frozenset[str]]

    #: what the population supports (derived for every subclass, see :meth:`_derive_capabilities`)
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: the ``forward`` that :meth:`advance_window` equals over a window (``None``: no windows)
    _window_forward: ClassVar[Any] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._index_declaration()
        cls.__signature__ = cls._build_signature()
        if "advance_window" in cls.__dict__ and "forward" in cls.__dict__:
            cls._window_forward = cls.__dict__["forward"]
        if "capabilities" not in cls.__dict__:
            cls.capabilities = cls._derive_capabilities()

    def forward_steps(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Take ``T`` steps of input ``x[T, batch, ...]``; return the two outputs of ``forward`` stacked.

        Equals ``T`` calls of :meth:`forward` on ``x[t]`` and leaves the same
        state; the input is validated once for the whole window (the first two
        results of the class's ``advance_window``).
        """
        first, second, _ = self.advance_window(x)
        return first, second

    @classmethod
    def _derive_capabilities(cls) -> Capabilities:
        """What the class supports, read off what it implements.

        ``multi_step`` when its ``forward`` is the one its ``advance_window``
        mirrors (a model that overrides ``forward`` alone runs step by step);
        ``has_voltage`` when it has a ``v_cell`` state; ``needs_voltage`` for
        a synapse model that declares it.
        """
        return Capabilities(
            multi_step=cls._window_forward is not None and cls.forward is cls._window_forward,
            has_voltage="v_cell" in cls._state_names,
            needs_voltage=bool(getattr(cls, "needs_voltage", False)),
            takes_post="post" in inspect.signature(cls.forward).parameters,
        )

    @classmethod
    def _index_declaration(cls) -> None:
        cls._state_names = tuple(var.name for var in cls.state_vars)
        cls._param_names = frozenset(param.name for param in cls.params)
        cls._infinite_ok = frozenset(p.name for p in cls.params if p.constraint == "time")

    @classmethod
    def _build_signature(cls) -> inspect.Signature:
        """``(cells_shape, *, <parameters>, <options>, dt, integrator)``, every default shown."""
        defaults: dict[str, Any] = {}
        for param in cls.params:
            defaults[param.name] = None if isinstance(param.default, str) else param.default
        for option in cls.options:
            defaults[option.name] = option.default
        defaults["dt"] = cls.default_dt
        if cls.fixed_integrator is None:
            defaults["integrator"] = cls.default_integrator
        args = [_PARAMETER("cells_shape", _PARAMETER.POSITIONAL_OR_KEYWORD)]
        args += [
            _PARAMETER(name, _PARAMETER.KEYWORD_ONLY, default=value)
            for name, value in defaults.items()
        ]
        return inspect.Signature(args)

    def __init__(self, cells_shape: Sequence[int] | int, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        alternative = None
        if args or "update_type" in kwargs:  # spelled as in PySNN 0.1 (or by position)
            from pysnn import compat

            cells_shape, alternative, kwargs = compat.population_arguments(
                type(self), cells_shape, args, kwargs
            )
        try:
            bound = type(self).__signature__.bind(cells_shape, **kwargs)
        except TypeError as err:
            raise TypeError(f"{type(self).__name__}: {err}") from None
        bound.apply_defaults()
        values = bound.arguments
        self.cells_shape = check_shape_tuple("cells_shape", cells_shape)
        self._init_dt(values["dt"])
        for option in self.options:
            value = values[option.name]
            if option.choices is not None:
                check_choice(option.name, value, option.choices)
            setattr(self, option.name, value)
        self.integrator = self.fixed_integrator or check_integrator(values["integrator"])
        self._features = self.cells_shape
        # another reading of an ambiguous (translated) shape, and its batch size:
        # the first input decides between them
        self._alternative_features: tuple[int, ...] | None = (
            None if alternative is None else alternative[0]
        )
        initial_batch = 1 if alternative is None else alternative[1]
        self._history: list[Tensor] | None = [] if values.get("store_trace") else None
        self._register_parameters(values)
        self.setup()
        self._init_state(initial_batch if self._alternative_features is not None else 1)

    def setup(self) -> None:
        """Hook for buffers derived from the parameters (called once, before the state)."""

    # -- parameters ----------------------------------------------------------------
    @property
    def update_type(self) -> str:
        """:attr:`integrator` under its PySNN 0.1 name (see :mod:`pysnn.compat`)."""
        from pysnn import compat

        return compat.update_type_name(self.integrator)

    @property
    def features_shape(self) -> tuple[int, ...]:
        """Per-sample shape of the population (without the batch dimension)."""
        return self._features

    def _apply(self, fn, recurse=True):
        pristine_shared = [
            var
            for var in self.state_vars
            if var.shared
            and torch.equal(self._buffers[var.name], self._initial_value(var, self._features))
        ]
        old_dtype = self._anchor.dtype
        out = super()._apply(fn, recurse)
        if self._anchor.dtype != old_dtype:
            # initial values in full precision too (state that has run is only converted)
            if self._fresh:
                self._init_state(self.batch_size or 1)
            for var in pristine_shared:
                self._register_state(var.name, self._initial_value(var, self._features))
        return out

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
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
        # a parameter added after the checkpoint was written keeps its constructed value
        missing_keys = (
            args[2] if len(args) > 2 else kwargs.get("missing_keys", [])
        )  # (metadata, strict, missing, ...)
        for param in self.params:
            if prefix + param.name not in state_dict and prefix + param.name in missing_keys:
                missing_keys.remove(prefix + param.name)
        self._sync_masters()

    # -- declared linear dynamics ----------------------------------------------------
    def _linear_update(self, ode: LinearODE, y: Tensor, x: Tensor) -> Tensor:
        r""":math:`\tau \dot y = -(y - y_{rest}) + g I` over one step, by :attr:`integrator`."""
        state = self._buffers
        gain = 1.0 if ode.gain is None else state[ode.gain]
        if ode.tau is None:
            return sf.if_voltage_update(y, x, gain, None)
        rest = 0.0 if ode.rest is None else state[ode.rest]
        if self.integrator == "impulse":
            return sf.lif_linear_voltage_update(y, rest, x, gain, self.decay(ode.tau), None)
        if self.integrator == "euler":
            return sf.lif_euler_voltage_update(y, rest, x, gain, state[ode.tau], self.dt, None)
        return sf.lif_exact_voltage_update(
            y, rest, x, gain, state[ode.tau], self.dt, None, self.gain(ode.tau)
        )

    # -- state -----------------------------------------------------------------------
    @property
    def _anchor(self) -> Tensor:
        """A parameter buffer whose dtype and device are the module's."""
        return cast(Tensor, self._buffers[self.params[0].name])

    def _initial_value(self, var: StateVar, shape: tuple[int, ...]) -> Tensor:
        anchor = self._anchor
        dtype = torch.int64 if var.integer else anchor.dtype
        out = torch.zeros(shape, dtype=dtype, device=anchor.device)
        init = var.init
        value: Tensor | float | None
        if isinstance(init, str):
            value = self._buffers[init]
        elif callable(init):
            value = init(self)
        else:
            value = init
        if not isinstance(value, (int, float)) or value != 0:
            out += value
        return out

    def _init_state(self, batch_size: int) -> None:
        self._check_param_shapes(self._features)
        for var in self.state_vars:
            if var.shared:
                current = self._buffers.get(var.name)
                if current is None or tuple(current.shape) != self._features:
                    self._register_state(var.name, self._initial_value(var, self._features))
                elif current.requires_grad:  # kept across samples, but not their graphs
                    self._buffers[var.name] = current.detach()
            else:
                shape = (batch_size, *self._features)
                self._register_state(var.name, self._initial_value(var, shape))

    def _state_features(self) -> tuple[int, ...]:
        return self._features

    def _adopt_features(self, features: tuple[int, ...]) -> None:
        self._check_param_shapes(features)
        self._features = features
        self._alternative_features = None

    def reset_shared_state(self) -> None:
        """Set the state shared by the batch (e.g. an adaptive threshold) to its initial value."""
        for var in self.state_vars:
            if var.shared:
                self._register_state(var.name, self._initial_value(var, self._features))

    @property
    def batch_size(self) -> int | None:
        buffers = self._buffers  # dict reads: nn.Module.__getattr__ costs ~1 us a call
        for var in self.state_vars:
            buf = buffers.get(var.name)
            if not var.shared and buf is not None and buf.dim() > 0:
                return buf.shape[0]
        return None

    def reset_state(self, batch_size: int | None = None) -> None:
        """Reset the per-sample state (and the spike history); shared state is kept."""
        super().reset_state(batch_size)
        if self._history is not None:
            self._history = []

    def update_trace(self, spikes: Tensor, trace: Tensor | None = None) -> Tensor:
        """Return the trace after this step's spikes (inputs and neurons alike).

        ``trace``: the trace before the step (default: the state's).
        """
        state = self._buffers  # dict reads: nn.Module.__getattr__ costs ~1 us a call
        if trace is None:
            trace = state["trace"]
        saturate = self.trace_mode == "saturating"
        if self.integrator == "euler":
            return sf.euler_trace_update(
                trace, spikes, state["alpha_t"], state["tau_t"], self.dt, saturate
            )
        return sf.linear_trace_update(
            trace, spikes, state["alpha_t"], self.decay("tau_t"), saturate
        )

    def _step_snapshot(self, steps: int = 1) -> Any:
        # the spike history (store_trace=True) is a list that a step appends to
        inplace, history = super()._step_snapshot(steps), self._history
        if inplace is None and history is None:
            return None
        return inplace, None if history is None else len(history)

    def _step_restore(self, saved: Any) -> None:
        inplace, length = saved
        if inplace is not None:
            super()._step_restore(inplace)
        if length is not None:
            del self._history[length:]

    def _record(self, spikes: Tensor) -> None:
        if self._history is not None:
            self._history.append(spikes.to(torch.bool))

    @property
    def complete_trace(self) -> Tensor | None:
        """Spike history ``(batch, *features, T)`` (bool) when ``store_trace=True``."""
        if self._history is None:
            return None
        spikes = self._buffers["spikes"]
        if not self._history:
            return torch.zeros((*spikes.shape, 0), dtype=torch.bool, device=spikes.device)
        return torch.stack(self._history, dim=-1)


Population._index_declaration()
