r"""The weighted connection base: weights, a delay line and the correlation protocol.

A connection is called once per timestep with the presynaptic spikes and trace
and returns ``(input for the postsynaptic neurons, presynaptic trace as it
arrives at the synapses)``:

.. code-block:: python

    x, trace = connection(pre_spikes, pre_trace)   # pre_trace may be None

Its delays live in a :class:`~pysnn.delay.DelayLine` (``connection.delay_line``);
its arithmetic in pure functions of :mod:`pysnn.functional.topology`.

Writing a new connection type
-----------------------------
A subclass of :class:`Connection` passes its weight shape to
``Connection.__init__`` and implements

* ``kind`` (class attribute): what graphs and learning rules call the topology;
* ``check_input_shape(shape)``: raise :class:`ValueError` for a wrong
  ``(batch, *in_shape)`` input;
* ``propagate(spikes)``: ``(N, *in_shape)`` to ``(N, *out_shape)``, the
  postsynaptic input :math:`I = W s` (``N`` may fold ``T`` steps and the batch);
* ``correlate_arriving(post, pre, per_batch, pre_map)``: the weight-shaped
  correlation :math:`C_{ij} = \sum_{b,p} y_{b,p,i} x_{b,p,j}` (one call of a
  topology function).

and, only for the features it supports:

* ``propagate_delayed(history_by_delay)`` and ``correlate_history(post,
  history, per_batch)``: the same with per-synapse delays, the presynaptic side
  ``(L, N, *in_shape)`` ordered by delay (``self.stacked_weight(build)`` caches
  the per-delay stacked weight);
* ``synapse_trace(trace)`` (and ``synapse_layout(values)`` when the synapse
  dimensions of its output are not the weight's trailing dimensions):
  ``trace_per_synapse=True``;
* ``receptive_field_sum(trace)``, ``unit_dim`` (where the output unit is in
  ``post``, default last) and ``after_reset_weights()`` (weight constraints).

The base class does the rest: input validation (dtype, device, shape), adoption
of the batch size and per-sample shape on a fresh state, the delay line (write,
read, history, multi-step windows, state and checkpoints), :meth:`forward` and
:meth:`forward_steps` for no, scalar and per-synapse delays, the arriving
presynaptic values, and the learning API (:meth:`correlate` dispatching between
scalar and per-synapse delays, :meth:`post_sum`, :meth:`accumulate_correlation`...).
"""

from __future__ import annotations

import math
from typing import Any, Callable, ClassVar, Sequence, Union

import torch
from torch import nn

from pysnn import functional as sf
from pysnn.capabilities import Capabilities
from pysnn.clock import Clocked
from pysnn.delay import DelayLike, DelayLine
from pysnn.state import StatefulModule
from pysnn.validation import check_spike_values, check_tensor, is_marked_valid

Tensor = torch.Tensor
IntPair = Union[int, Sequence[int]]

__all__ = [
    "Connection",
    "check_step_inputs",
    "steps_by_loop",
    "check_steps_input",
    "pair",
]


def pair(value: IntPair, name: str, minimum: int | None = None) -> tuple[int, int]:
    """``value`` as a pair of ints (an int is repeated).

    Raises :class:`TypeError` for anything else and :class:`ValueError` for an
    entry below ``minimum`` (when given).
    """
    out = None
    if isinstance(value, int) and not isinstance(value, bool):
        out = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            out = (int(value[0]), int(value[1]))
    if out is None:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if minimum is not None and min(out) < minimum:
        what = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return out


def check_step_inputs(
    module: nn.Module,
    spikes: Tensor,
    trace: Tensor | None,
    like: Tensor,
    values: Tensor | None = None,
    value_trace: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Check one step's spikes and trace against ``like``'s dtype/device and ``module``'s shape.

    The values are checked too (:func:`~pysnn.validation.check_spike_values`,
    binary or graded as ``module.graded_input`` says): those of ``spikes`` and
    ``trace``, or of ``values``/``value_trace`` when given (a multi-step
    window whose first step is ``spikes``).
    """
    binary_input = isinstance(spikes, Tensor) and spikes.dtype == torch.bool
    owner = type(module).__name__
    spikes = check_tensor("spikes", spikes, like.dtype, like.device, True, owner)
    module.check_input_shape(spikes.shape)
    if trace is not None:
        trace = check_tensor("trace", trace, like.dtype, like.device, owner=owner)
        if trace.shape != spikes.shape:
            raise ValueError(
                f"{type(module).__name__}: trace must have the shape of spikes "
                f"{tuple(spikes.shape)}, got {tuple(trace.shape)}"
            )
    checked_spikes = spikes if values is None else values
    checked_trace = trace if values is None else value_trace
    # a population's own step output needs no second check (see mark_valid)
    trusted = binary_input or is_marked_valid(checked_spikes)
    if checked_trace is not None and is_marked_valid(checked_trace):
        checked_trace = None
    if not (trusted and checked_trace is None):
        check_spike_values(
            type(module).__name__, checked_spikes, checked_trace, module.graded_input, not trusted
        )
    return spikes, trace


def check_steps_input(module: nn.Module, spikes: Tensor, trace: Tensor | None) -> None:
    """Check the ``[T, batch, ...]`` layout of a multi-step input (before any state change)."""
    if not isinstance(spikes, Tensor) or spikes.dim() < 2:
        raise ValueError(
            f"{type(module).__name__}.forward_steps: spikes must be a tensor [T, batch, ...], "
            f"got {tuple(spikes.shape) if isinstance(spikes, Tensor) else type(spikes).__name__}"
        )
    if trace is not None and (not isinstance(trace, Tensor) or trace.shape != spikes.shape):
        raise ValueError(
            f"{type(module).__name__}.forward_steps: trace must have the shape of spikes "
            f"{tuple(spikes.shape)}, got "
            f"{tuple(trace.shape) if isinstance(trace, Tensor) else type(trace).__name__}"
        )


def steps_by_loop(
    step: Callable[[Tensor, Tensor | None], tuple[Tensor, Tensor | None]],
    spikes: Tensor,
    trace: Tensor | None,
) -> tuple[Tensor, Tensor | None]:
    """``T`` calls of ``step`` on ``spikes[t]`` (and ``trace[t]``), outputs stacked.

    The steps are taken by :meth:`~torch.Tensor.unbind` rather than indexing: in a
    differentiable run, indexing's backward would build a zero tensor of the whole
    window for every step, while unbind's backward stacks the steps' gradients once.
    """
    steps = spikes.unbind(0)
    traces_in = (None,) * len(steps) if trace is None else trace.unbind(0)
    outs = [step(s, tr) for s, tr in zip(steps, traces_in)]
    xs = torch.stack([o[0] for o in outs]) if outs else spikes.new_zeros(0)
    traces = [o[1] for o in outs]
    return xs, torch.stack(traces) if traces and traces[0] is not None else None


def _move_legacy_delay_keys(
    module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any
) -> None:
    """Load hook: move a pre-``DelayLine`` checkpoint's delay state to ``delay_line.``."""
    line = prefix + "delay_line."
    for name in ("spike_history", "trace_history", "delay_steps"):
        if prefix + name in state_dict:
            state_dict.setdefault(line + name, state_dict.pop(prefix + name))
    old = state_dict.pop(prefix + "_extra_state", None)
    if isinstance(old, dict):  # {"fresh", "_head", "_in_shape", "_batch"}
        renamed = {"_head": "head", "_in_shape": "in_shape", "_batch": "_batch"}
        extra = {new: old[name] for name, new in renamed.items() if name in old}
        state_dict.setdefault(line + "_extra_state", {"fresh": old.get("fresh", False), **extra})


class Correlations:
    """The learning API of a weighted connection (mixed into :class:`Connection`).

    Learning rules (:mod:`pysnn.learning`) read the presynaptic activity that
    arrived at the synapses and correlate it with postsynaptic quantities;
    subclasses provide ``correlate_arriving`` (and ``correlate_history`` for
    per-synapse delays) through the functions of :mod:`pysnn.functional.topology`.
    """

    weight: nn.Parameter
    pre_spikes: Tensor | None
    pre_trace: Tensor | None
    _line: DelayLine
    #: dimension of the output unit in a postsynaptic tensor (see :meth:`post_sum`)
    unit_dim = -1

    def arriving(self, pre: str | Tensor) -> Tensor:
        """Presynaptic ``"spikes"``/``"trace"`` as they arrived at the synapses in the last step.

        A tensor ``pre`` is returned in the weight's dtype.  Not defined for
        per-synapse delays, where the arriving value differs per synapse (see
        :meth:`arriving_history`).
        """
        dtype = self.weight.dtype
        if isinstance(pre, Tensor):
            return pre if pre.dtype == dtype else pre.to(dtype)
        if pre not in ("spikes", "trace"):
            raise ValueError(f'pre must be "spikes", "trace" or a tensor, got {pre!r}')
        value = self.pre_spikes if pre == "spikes" else self.pre_trace
        if value is None:
            if self.pre_spikes is None:
                raise RuntimeError(f"{type(self).__name__}: no step was run since the last reset")
            raise RuntimeError(
                f"{type(self).__name__} was called without the presynaptic trace; "
                "pass it as connection(spikes, trace) to learn from it"
            )
        return value if value.dtype == dtype else value.to(dtype)

    def arriving_history(self, pre: str | Tensor) -> Tensor:
        """History ``(L, B, ...)`` of presynaptic ``"spikes"``/``"trace"``, entry ``k`` = ``k`` steps ago."""
        if isinstance(pre, Tensor) or pre not in ("spikes", "trace"):
            raise ValueError(
                f'{type(self).__name__}: with per-synapse delays pre must be "spikes" or '
                f'"trace", got {pre!r}'
            )
        line = self._line
        history = line.spike_history if pre == "spikes" else line.trace_history
        if history.numel() == 0 or line.is_fresh:
            raise RuntimeError(
                f"{type(self).__name__}: no presynaptic {pre} history (no step was run, or "
                "the connection was called without the trace)"
            )
        return line.history_by_delay(pre).to(self.weight.dtype)

    @property
    def has_pre_activity(self) -> bool:
        """True when a step has been run since the last reset (something to learn from)."""
        if self._line.per_synapse_delay:
            return self._line.has_history
        return self.pre_spikes is not None

    def correlate(
        self,
        post: Tensor,
        pre: str | Tensor = "spikes",
        per_batch: bool = False,
        pre_map: Callable[[Tensor], Tensor] | None = None,
    ) -> Tensor:
        r"""Correlate a postsynaptic and a presynaptic quantity at every synapse.

        .. math:: C_{ij} = \sum_{b,\,p} y_{b,p,i}\; x_{b,p,j}(t - d_{ij})

        summed over the batch :math:`b` and every position :math:`p` where the
        synapse is used (extra leading dimensions of ``Linear``, output positions
        of ``Conv2d``, whose kernel is shared).  The presynaptic value is the one
        *arriving* at the synapse in the last step, so delayed connections pair
        each postsynaptic value with the delayed presynaptic activity.

        Parameters
        ----------
        post : Tensor
            Postsynaptic quantity shaped like the connection's output, e.g. the
            postsynaptic spikes or trace ``(batch, ...)``.
        pre : {"spikes", "trace"} or Tensor
            Presynaptic quantity: the arriving spikes or trace, or a tensor
            shaped like the (arriving) input (not with per-synapse delays).
        per_batch : bool
            Keep the batch dimension: return ``(batch, *weight.shape)``.
        pre_map : callable, optional
            Applied to the presynaptic values arranged by receptive field,
            ``(..., n_synapses_per_receptive_field, n_positions)``, before the
            correlation (e.g. a normalisation by the maximum in each receptive
            field).  Not supported with per-synapse delays.

        Returns
        -------
        Tensor
            Shaped like ``weight``, or ``(batch, *weight.shape)`` when ``per_batch``.
        """
        post = post.to(self.weight.dtype)
        if self._line.per_synapse_delay:
            if pre_map is not None:
                raise NotImplementedError("pre_map is not supported with per-synapse delays")
            return self.correlate_history(post, self.arriving_history(pre), per_batch)
        return self.correlate_arriving(post, self.arriving(pre), per_batch, pre_map)

    def correlate_arriving(
        self, post: Tensor, pre: Tensor, per_batch: bool, pre_map: Callable | None
    ) -> Tensor:
        """Hook: :meth:`correlate` of ``post`` with an arriving presynaptic tensor ``pre``."""
        raise NotImplementedError(f"{type(self).__name__} does not provide correlations")

    def correlate_history(self, post: Tensor, history: Tensor, per_batch: bool) -> Tensor:
        """Hook: :meth:`correlate` with per-synapse delays, ``history`` ``(L, B, ...)`` by delay."""
        raise NotImplementedError(f"{type(self).__name__} does not provide correlations")

    def post_sum(self, post: Tensor, per_batch: bool = False) -> Tensor:
        r"""Sum a postsynaptic quantity per output unit, shaped to broadcast with ``weight``.

        .. math:: S_i = \sum_{b,\,p} y_{b,p,i}

        Returns ``(out, 1, ...)`` (or ``(batch, out, 1, ...)`` when ``per_batch``).
        """
        units = post.to(self.weight.dtype).movedim(self.unit_dim, -1)
        n_out = self.weight.shape[0]
        tail = (1,) * (self.weight.dim() - 1)
        batch = post.shape[0]
        if per_batch:
            return units.reshape(batch, -1, n_out).sum(1).view(batch, n_out, *tail)
        return units.reshape(-1, n_out).sum(0).view(n_out, *tail)

    def accumulate_correlation(
        self,
        target: Tensor,
        post: Tensor,
        pre: str | Tensor = "spikes",
        alpha: float = 1.0,
        per_batch: bool = False,
    ) -> Tensor:
        """In place ``target += alpha * correlate(post, pre, per_batch)``; returns ``target``.

        ``Linear`` does it with one ``addmm_`` (``baddbmm_`` per batch element),
        without a temporary of the weight's size.
        """
        correlation = self.correlate(post, pre, per_batch=per_batch)
        if isinstance(alpha, Tensor):  # e.g. an amplitude per synapse
            return target.add_(correlation * alpha)
        return target.add_(correlation, alpha=alpha)

    def accumulate_correlations(
        self,
        target: Tensor,
        terms: Sequence[tuple[Tensor, str | Tensor, float]],
        per_batch: bool = False,
        decay: float = 1.0,
    ) -> Tensor:
        r"""In place ``target = decay * target + sum(alpha * correlate(post, pre))`` over ``terms``.

        .. math:: W \leftarrow \lambda W + \sum_k \alpha_k\, C(y_k, x_k)

        ``per_batch``: one correlation per batch element, ``target`` shaped
        ``(B, *weight.shape)`` (an eligibility trace).  ``Linear`` sums all
        terms with one ``addmm_`` (the terms' batches stacked), so the weight
        is read and written once, and updates per-batch targets with
        :func:`pysnn.functional.accumulate_products_` (in place also inside
        a compiled graph); other connections add the terms one by one.
        Returns ``target``.
        """
        if decay != 1.0:
            target.mul_(decay)
        for post, pre, alpha in terms:
            self.accumulate_correlation(target, post, pre, alpha, per_batch)
        return target

    @property
    def supports_event_driven(self) -> bool:
        """Whether :meth:`correlate_rows`/:meth:`correlate_cols` exist (sparse updates)."""
        return False


class Connection(Clocked, Correlations, StatefulModule):
    """Base class of weighted connections: weights, a delay line, input checks.

    See the module docstring for what a subclass implements.

    Attributes
    ----------
    weight : torch.nn.Parameter
        Synaptic weights (``requires_grad=False``; learning uses no autograd).
    delay_line : pysnn.delay.DelayLine
        Delays and the ring buffers of presynaptic spikes and traces.
    pre_spikes, pre_trace : Tensor or None
        Presynaptic spikes and trace as they arrived at the synapses in the
        last step (``None`` for per-synapse delays, where they differ per
        synapse and are read from the history instead).
    """

    #: what the graph and learning rules call this topology (see ``Layer.type``)
    kind = "custom"
    #: whether any finite input value is valid (rates, intensities: the
    #: propagation is a weighted sum, linear in its input) or only 0 and 1
    graded_input = True
    #: whether :meth:`learn_delays` applies (per-synapse delays through a stacked weight)
    learnable_delays: ClassVar[bool] = False

    #: what the connection supports (derived for every subclass in ``__init_subclass__``)
    capabilities: ClassVar[Capabilities] = Capabilities(multi_step=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "capabilities" not in cls.__dict__:
            cls.capabilities = Capabilities(
                # forward_steps equals forward calls for every connection (a custom
                # forward is looped over the window)
                multi_step=True,
                per_synapse_delay=cls.propagate_delayed is not Connection.propagate_delayed,
                trace_per_synapse=cls.synapse_trace is not Connection.synapse_trace,
                graded_input=bool(cls.graded_input),
            )

    # the delay line saves the state; the connection itself has no extra state
    get_extra_state = nn.Module.get_extra_state
    set_extra_state = nn.Module.set_extra_state

    def __init__(
        self,
        weight_shape: tuple[int, ...],
        dt: float,
        delay: DelayLike,
        trace_per_synapse: bool = False,
    ) -> None:
        super().__init__()
        self._init_dt(dt)
        caps = type(self).capabilities
        if trace_per_synapse and not caps.trace_per_synapse:
            raise ValueError(f"{type(self).__name__} does not support trace_per_synapse=True")
        self._check_delay_kind(delay)
        self.trace_per_synapse = bool(trace_per_synapse)
        self.weight = nn.Parameter(torch.empty(weight_shape), requires_grad=False)
        self.pre_spikes: Tensor | None = None
        self.pre_trace: Tensor | None = None
        self.delay_line = DelayLine(weight_shape, delay, self.dt, type(self).__name__)
        self.register_load_state_dict_pre_hook(_move_legacy_delay_keys)
        # direct reference for the step (no nn.Module.__getattr__ per access)
        self.__dict__["_line"] = self.delay_line

    # -- delays and state (delegated to the delay line) --------------------------
    def set_delay(self, delay: DelayLike) -> None:
        """Set the delay in ms: a number, or a tensor shaped like ``weight`` (per synapse).

        Raises :class:`ValueError` for negative, NaN or non-whole-step delays
        and for a per-synapse tensor of the wrong shape.  Resets the state.
        """
        self._check_delay_kind(delay)
        self._line.set_delay(delay, self.dt)
        self.reset_state()

    def learn_delays(
        self,
        max_delay: float,
        init: Tensor | float | None = None,
        interpolation: str = "linear",
        sigma: float = 1.0,
    ) -> nn.Parameter:
        r"""Make the per-synapse delays continuous parameters trained by gradient descent.

        The delays (ms) become ``self.delay_line.delay``, an
        :class:`torch.nn.Parameter` shaped like ``weight`` (in
        ``connection.parameters()``, for any :mod:`torch.optim` optimizer), kept
        within ``[0, max_delay]``.  In training mode a synapse reads the ring
        buffer between whole steps (:func:`pysnn.functional.delay_kernel`:
        ``"linear"`` interpolation, or ``"gaussian"`` of width ``sigma`` steps,
        the dilated-convolution-with-learnable-spacings approach of Hammouamri
        et al. 2023); in ``eval()`` mode the delays are rounded to whole steps
        and read from the ring buffer as any per-synapse delays (inference),
        and :meth:`round_delays` fixes them.  See :meth:`DelayLine.learn
        <pysnn.delay.DelayLine.learn>` for the arguments.

        Raises
        ------
        ValueError
            For a connection type without per-synapse delays through a stacked
            weight (:attr:`learnable_delays`), or bad arguments; nothing
            changes then.
        """
        if not type(self).learnable_delays:
            raise ValueError(
                f"{type(self).__name__} does not support learnable delays (they need per-synapse "
                f"delays applied through a stacked weight: Linear, Recurrent, Conv2d)"
            )
        parameter = self._line.learn(max_delay, self.dt, init, interpolation, sigma)
        self.pre_spikes = self.pre_trace = None
        return parameter

    def round_delays(self) -> None:
        """Fix learned delays at their whole-step values (ordinary per-synapse delays); resets the state."""
        self._line.round_learned()
        self.reset_state()

    @property
    def min_delay(self) -> int:
        """The shortest delay in steps of any synapse (what a feedback window may span, minus one)."""
        return self._line.min_delay

    def _check_delay_kind(self, delay: DelayLike) -> None:
        """Refuse a per-synapse delay on a connection that cannot apply one (at construction)."""
        per_synapse = isinstance(delay, Tensor) and delay.dim() > 0
        if per_synapse and not type(self).capabilities.per_synapse_delay:
            raise ValueError(
                f"{type(self).__name__} does not support per-synapse delays (a delay tensor "
                f"of shape {tuple(delay.shape)}); give one delay in ms for the connection"
            )

    def delay_ms(self) -> Tensor:
        """The delay in ms: a 0-dim tensor, or one value per synapse (float64)."""
        return self._line.delay_steps.to(torch.float64) * self.dt

    def _check_dt_change(self, dt: float) -> None:
        # the delays keep their values in ms: they must be whole numbers of the new step
        line = self._line
        if line.learnable:  # the range must be whole steps; the delays themselves are real
            sf.duration_to_steps(line.learn_range * self.dt, dt, "max_delay")
            return
        sf.duration_to_steps(self.delay_ms().cpu(), dt, "delay")

    def _dt_changed(self, old: float) -> None:
        """Delays keep their value in ms; in steps they change, so the delay state resets."""
        line = self._line
        if line.learnable:  # the learned delays keep their values in ms, the range too
            learned = line.delay
            line.learn(
                line.learn_range * old, self.dt, learned.detach(), line.interpolation, line.sigma
            )
            with torch.no_grad():  # the same parameter object (optimizers hold it)
                learned.copy_(line.delay)
            line.delay = learned
            line.sync_learned(force=True)
            return
        delay = self._line.delay_steps.to(torch.float64) * old
        self.set_delay(delay if delay.dim() else float(delay))

    delay_steps = property(lambda self: self._line.delay_steps, doc="Delay in steps (tensor).")
    max_delay = property(lambda self: self._line.max_delay, doc="Largest delay in steps.")
    per_synapse_delay = property(
        lambda self: self._line.per_synapse_delay, doc="Whether each synapse has its own delay."
    )
    history_length = property(
        lambda self: self._line.history_length, doc="Steps in the ring buffer, d_max + 1."
    )
    spike_history = property(
        lambda self: self._line.spike_history, doc="Ring buffer of presynaptic spikes."
    )
    trace_history = property(
        lambda self: self._line.trace_history, doc="Ring buffer of presynaptic traces."
    )
    is_fresh = property(lambda self: self._line._fresh, doc=StatefulModule.is_fresh.__doc__)
    batch_size = property(lambda self: self._line.batch_size, doc="Batch size of the state.")

    def reset_state(self, batch_size: int | None = None) -> None:
        """Reset the delay line and the arriving values; see :class:`~pysnn.state.StatefulModule`."""
        self._line.reset_state(batch_size)
        self.pre_spikes = self.pre_trace = None

    def detach_state(self) -> None:
        """Detach the delay line's history and the arriving values from the autograd graph."""
        self._line.detach_state()
        attrs = self.__dict__
        for name in ("pre_spikes", "pre_trace"):
            if attrs[name] is not None:
                attrs[name] = attrs[name].detach()

    def stacked_weight(self, build: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        """``build(weight, onehot(delay_steps))``, cached (see :meth:`DelayLine.stacked_weight`)."""
        return self._line.stacked_weight(self._parameters["weight"], build)

    # -- the step ------------------------------------------------------------------
    def forward(self, spikes: Tensor, trace: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Propagate one timestep.

        Parameters
        ----------
        spikes : Tensor
            Presynaptic spikes ``(batch, ...)``: bool, or in the weight's dtype
            (0/1, or any finite graded value where ``graded_input`` is true).
        trace : Tensor, optional
            Presynaptic trace, same shape as ``spikes``, finite.

        Returns
        -------
        tuple
            ``(x, trace)``: the input of the postsynaptic neurons and the
            presynaptic trace as it arrives (delayed with the spikes; one value
            per synapse when ``trace_per_synapse=True``; ``None`` for per-synapse
            delays unless ``trace_per_synapse=True``).

        Raises
        ------
        TypeError, ValueError
            For a wrong type, dtype, device or shape, for NaN or inf in
            ``spikes`` or ``trace`` and, where ``graded_input`` is false, for
            spikes other than 0 and 1; nothing has changed when it raises.
        """
        spikes, trace = check_step_inputs(self, spikes, trace, self._parameters["weight"])
        line = self._line
        line.start(int(spikes.shape[0]), tuple(spikes.shape[1:]))
        # plain attributes are written through __dict__: nn.Module.__setattr__
        # costs microseconds per call in this per-step path
        attrs = self.__dict__
        if line.max_delay > 0:
            line.push(spikes, trace)
            if line.per_synapse_delay:
                attrs["pre_spikes"] = attrs["pre_trace"] = None
                out = self.propagate_delayed(line.history_by_delay("spikes"))
                if trace is None or not self.trace_per_synapse:
                    return out, None
                return out, line.synapse_read(self.synapse_trace, self.synapse_layout)
            spikes, trace = self.arriving_from_line(trace is not None)
        attrs["pre_spikes"], attrs["pre_trace"] = spikes, trace
        out = self.propagate(spikes)
        if trace is not None and self.trace_per_synapse:
            trace = self.synapse_trace(trace)
        return out, trace

    def forward_steps(
        self, spikes: Tensor, trace: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        r"""Propagate ``T`` timesteps at once (multi-step execution).

        Equivalent to calling :meth:`forward` on ``spikes[t]`` (and ``trace[t]``)
        for ``t = 0 .. T-1`` and stacking the results, and leaves the same state
        behind (delay buffers, arriving spikes and traces), so step-by-step calls
        can follow.  The ``T`` steps become one :meth:`propagate` over ``T * batch``
        inputs:

        .. math:: I_{t} = W\, s_{t - d}\quad(\text{one delay}),\qquad
                  I_{t,i} = \sum_j W_{ij}\, s_{t - d_{ij},j}\quad(\text{per synapse}),

        where the steps before the window come from the delay buffer.  Use it when
        the whole input sequence is known in advance (a feedforward connection fed
        by encoded data) and **no learning rule changes the weights during the
        window**: the weights are read once.

        Parameters
        ----------
        spikes : Tensor
            ``[T, batch, ...]`` presynaptic spikes, valued as in :meth:`forward`.
        trace : Tensor, optional
            ``[T, batch, ...]`` presynaptic trace.

        Returns
        -------
        tuple
            ``(x, trace)`` with a leading time dimension, as :meth:`forward`
            returns them per step.
        """
        check_steps_input(self, spikes, trace)
        steps = int(spikes.shape[0])
        if self.steps_by_loop() or steps == 0 or (self.trace_per_synapse and trace is not None):
            return steps_by_loop(self.forward, spikes, trace)
        # validate as the first step would (every step shares the dtype, device and
        # shape), before any state changes; bool spikes become the weight's dtype
        weight = self._parameters["weight"]
        check_step_inputs(
            self, spikes[0], None if trace is None else trace[0], weight, spikes, trace
        )
        spikes = spikes.to(weight.dtype)
        batch = int(spikes.shape[1])
        line = self._line
        line.start(batch, tuple(spikes.shape[2:]))
        attrs = self.__dict__
        if line.max_delay == 0:
            arriving, arriving_trace = spikes, trace
        else:
            full, full_trace = line.window(spikes, trace)
            if line.per_synapse_delay:
                out = self.propagate_delayed(line.windows_by_delay(full))
                attrs["pre_spikes"] = attrs["pre_trace"] = None
                return out.reshape(steps, batch, *out.shape[1:]), None
            arriving, arriving_trace = self.arriving_from_window(full, full_trace, steps)
        out = self.propagate(arriving.reshape(-1, *arriving.shape[2:]))
        attrs["pre_spikes"] = arriving[-1].clone()
        attrs["pre_trace"] = None if arriving_trace is None else arriving_trace[-1].clone()
        return out.reshape(steps, batch, *out.shape[1:]), arriving_trace

    def steps_by_loop(self) -> bool:
        """Whether :meth:`forward_steps` loops over :meth:`forward` (a subclass's own forward)."""
        return type(self).forward is not Connection.forward

    # -- what arrives at the synapses (one scalar delay) ------------------------------
    def arriving_from_line(self, with_trace: bool) -> tuple[Tensor, Tensor | None]:
        """The spikes (and trace) arriving this step, read from the delay line.

        Called by :meth:`forward` after the step's input was pushed, when the
        line has a scalar delay :math:`d > 0`: the input of :math:`d` steps ago.
        A connection whose synapses see several delayed copies of the input
        (:class:`~pysnn.connection.Conv2dSep`) returns them stacked instead.
        """
        return self._line.arriving(with_trace)

    def arriving_from_window(
        self, full: Tensor, full_trace: Tensor | None, steps: int
    ) -> tuple[Tensor, Tensor | None]:
        """:meth:`arriving_from_line` for the ``steps`` steps of a window ``[T, B, ...]``.

        ``full`` (and ``full_trace``) is :meth:`~pysnn.delay.DelayLine.window`'s
        output, the buffered steps followed by the window.
        """
        return full[:steps], None if full_trace is None else full_trace[:steps]

    # -- hooks of a connection type (see the module docstring) ---------------------
    def check_input_shape(self, shape: torch.Size) -> None:
        """Raise :class:`ValueError` unless ``shape`` is a valid ``(batch, *in_shape)``."""
        raise NotImplementedError

    def propagate(self, spikes: Tensor) -> Tensor:
        """Postsynaptic input ``(N, *out_shape)`` of arriving spikes ``(N, *in_shape)``."""
        raise NotImplementedError

    def propagate_delayed(self, history_by_delay: Tensor) -> Tensor:
        """Postsynaptic input from the spike history ``(L, N, *in_shape)`` (per-synapse delays)."""
        raise NotImplementedError(f"{type(self).__name__} does not support per-synapse delays")

    def synapse_trace(self, trace: Tensor) -> Tensor:
        """Expand a presynaptic trace ``(N, *in_shape)`` to one value per synapse."""
        raise NotImplementedError(f"{type(self).__name__} does not support trace_per_synapse")

    def synapse_layout(self, values: Tensor) -> Tensor:
        """Weight-shaped ``values`` arranged to broadcast against :meth:`synapse_trace`."""
        return values

    def receptive_field_sum(self, trace: Tensor) -> Tensor:
        r"""Sum of presynaptic values over each postsynaptic neuron's receptive field.

        .. math:: X_i = \sum_{j \in \mathrm{RF}(i)} x_j

        Used by :class:`pysnn.neuron.FedeNeuron`.
        """
        raise NotImplementedError

    @property
    def fan_in(self) -> float:
        """Inputs per postsynaptic neuron, for ``kaiming_uniform`` (weight entries per output unit)."""
        return float(self.weight[0].numel())

    def after_reset_weights(self) -> None:
        """Enforce structural constraints after (re)initialisation (e.g. no self-connections)."""

    # -- weights -------------------------------------------------------------------
    @torch.no_grad()
    def reset_weights(
        self,
        distribution: str = "kaiming_uniform",
        gain: float = 1.0,
        a: float = 0.0,
        b: float = 1.0,
    ) -> None:
        """Re-initialise the weights.

        Parameters
        ----------
        distribution : {"kaiming_uniform", "uniform", "normal", "constant"}
            ``kaiming_uniform``: :math:`U(-1/\\sqrt{n_{in}}, 1/\\sqrt{n_{in}})`
            times ``gain`` (PyTorch's default); ``uniform``: :math:`U(a, b)`;
            ``normal``: :math:`N(a, b^2)`; ``constant``: ``gain``.
        gain, a, b : float
            Finite numbers (:class:`ValueError` otherwise, before the weights change).
        """
        for name, value in (("gain", gain), ("a", a), ("b", b)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")
            if not math.isfinite(value):
                raise ValueError(
                    f"{type(self).__name__}.reset_weights: {name} must be finite, got {value}"
                )
        weight = self.weight
        if distribution == "kaiming_uniform":
            bound = gain / math.sqrt(self.fan_in)
            weight.uniform_(-bound, bound)
        elif distribution == "uniform":
            weight.uniform_(a, b)
        elif distribution == "normal":
            weight.normal_(a, b)
        elif distribution == "constant":
            weight.fill_(gain)
        else:
            raise ValueError(
                "distribution must be one of ('kaiming_uniform', 'uniform', 'normal', "
                f"'constant'), got {distribution!r}"
            )
        self.after_reset_weights()
