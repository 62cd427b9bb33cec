r"""Connection modules: weights, synaptic delays and pooling.

A connection is called once per timestep with the presynaptic spikes and trace
and returns ``(input for the postsynaptic neurons, presynaptic trace as it
arrives at the synapses)``:

.. code-block:: python

    x, trace = connection(pre_spikes, pre_trace)   # pre_trace may be None

Delays
------
``delay`` (ms, a whole number of timesteps) is either one number for the whole
connection or an integer tensor shaped like the weight, one delay per synapse.
The connection keeps a ring buffer of the last :math:`L = d_{max} + 1` steps of
presynaptic spikes and traces, so any number of spikes can be in flight: a
spike of presynaptic neuron :math:`j` at step :math:`t` reaches synapse
:math:`(i, j)` exactly once, at step :math:`t + d_{ij}`, together with the
trace :math:`x_j(t)`.  The postsynaptic input is

.. math:: I_i(t) = \sum_j W_{ij}\, s_j(t - d_{ij})

Memory and time: a scalar delay costs :math:`2 L \cdot B \cdot N_{in}` values
of history and no extra time per step (one matmul/convolution).  Per-synapse
delays add a cached stacked weight of :math:`L \cdot N_{out} \cdot N_{in}`
values (for ``Conv2d``: :math:`L` times the kernel) and one matmul (or
convolution) over :math:`L` times the inputs per step.  The stacked weight is
rebuilt (:math:`L N_{out} N_{in}` operations) only when the weights or delays
change; a snapshot of the weights (:math:`N_{out} N_{in}` values) is compared
each step so that any edit, also through ``weight.data``, is seen.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pysnn import functional as sf
from pysnn.state import StatefulModule
from pysnn.validation import check_dt, check_tensor

Tensor = torch.Tensor
IntPair = Union[int, Sequence[int]]
DelayLike = Union[int, float, Tensor]

__all__ = [
    "Connection",
    "Linear",
    "Recurrent",
    "Conv2d",
    "MaxPool2d",
    "AdaptiveMaxPool2d",
    "AvgPool2d",
]


_INT_OF_SIZE = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _same_bits(a: Tensor, b: Tensor) -> bool:
    """Bitwise equality of two tensors of one shape, dtype and layout.

    On CPU the bits are compared by numpy, about five times faster than
    ``torch.equal`` (which matters for a check that runs every step).
    """
    if a.shape != b.shape or a.dtype != b.dtype or a.stride() != b.stride():
        return False
    if a.device.type != "cpu" or a.element_size() not in _INT_OF_SIZE:
        return torch.equal(a, b)
    ints = _INT_OF_SIZE[a.element_size()]
    return bool(np.array_equal(a.view(ints).numpy(), b.view(ints).numpy()))


def _pair(value: IntPair, name: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return (int(value[0]), int(value[1]))
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


class Connection(StatefulModule):
    """Base class of connections: optional weights, delays, input checks.

    Subclasses implement :meth:`_check_in_shape` and :meth:`_propagate`
    (and :meth:`_propagate_per_synapse` when they support per-synapse delays).

    Attributes
    ----------
    weight : torch.nn.Parameter
        Synaptic weights (``requires_grad=False``; learning uses no autograd).
    delay_steps : Tensor
        Delay in timesteps, 0-dim for a scalar delay or shaped like ``weight``.
    pre_spikes, pre_trace : Tensor or None
        Presynaptic spikes and trace as they arrived at the synapses in the
        last step (``None`` for per-synapse delays, where they differ per
        synapse and are read from the history instead).
    """

    #: what the graph and learning rules call this topology (see ``Layer.type``)
    kind = "custom"

    _state_names = ("spike_history", "trace_history")
    _extra_state_attrs = ("_head", "_in_shape", "_batch")

    def __init__(
        self,
        weight_shape: tuple[int, ...] | None,
        dt: float,
        delay: DelayLike,
        trace_per_synapse: bool = False,
    ) -> None:
        super().__init__()
        self.dt = check_dt(dt)
        self.trace_per_synapse = bool(trace_per_synapse)
        if weight_shape is not None:
            self.weight = nn.Parameter(torch.empty(weight_shape), requires_grad=False)
        else:
            self.register_parameter("weight", None)
        self._head = 0
        self._in_shape: tuple[int, ...] | None = None
        self._batch: int | None = None
        self._stack_cache: tuple[tuple, Tensor, Tensor] | None = None
        self.pre_spikes: Tensor | None = None
        self.pre_trace: Tensor | None = None
        self.register_buffer("spike_history", torch.zeros(0))
        self.register_buffer("trace_history", torch.zeros(0))
        self.register_buffer("delay_steps", torch.zeros((), dtype=torch.int64))
        self.set_delay(delay)

    # -- delays --------------------------------------------------------------
    def set_delay(self, delay: DelayLike) -> None:
        """Set the delay in ms: a number, or a tensor shaped like ``weight`` (per synapse).

        Raises :class:`ValueError` for negative, NaN or non-whole-step delays
        and for a per-synapse tensor of the wrong shape.  Resets the state.
        """
        if isinstance(delay, bool) or not isinstance(delay, (int, float, Tensor)):
            raise TypeError(f"delay must be a number or a tensor (ms), got {type(delay).__name__}")
        if isinstance(delay, Tensor) and delay.dim() > 0:
            if self.weight is None or tuple(delay.shape) != tuple(self.weight.shape):
                expected = None if self.weight is None else tuple(self.weight.shape)
                raise ValueError(
                    f"delay per synapse must have the weight's shape {expected}, "
                    f"got {tuple(delay.shape)}"
                )
        steps = sf.duration_to_steps(
            delay.detach().cpu() if isinstance(delay, Tensor) else delay, self.dt, "delay"
        )
        self.delay_steps = steps.to(self.delay_steps.device)
        self.max_delay = int(steps.max()) if steps.numel() else 0
        self.per_synapse_delay = steps.dim() > 0
        self._stack_cache = None
        self.reset_state()

    @property
    def history_length(self) -> int:
        """Number of steps kept in the ring buffer, :math:`d_{max} + 1`."""
        return self.max_delay + 1

    # -- state -----------------------------------------------------------------
    @property
    def batch_size(self) -> int | None:
        return self._batch

    def _init_state(self, batch_size: int) -> None:
        self._batch = batch_size
        self._head = 0
        ref = self._reference()
        if self.max_delay > 0 and self._in_shape is not None:
            shape = (self.history_length, batch_size, *self._in_shape)
            self.spike_history = torch.zeros(shape, dtype=ref.dtype, device=ref.device)
            self.trace_history = torch.zeros(shape, dtype=ref.dtype, device=ref.device)
        else:
            self.spike_history = torch.zeros(0, dtype=ref.dtype, device=ref.device)
            self.trace_history = torch.zeros(0, dtype=ref.dtype, device=ref.device)
        self.pre_spikes = None
        self.pre_trace = None

    def _reference(self) -> Tensor:
        """Tensor whose dtype/device the inputs must match."""
        weight = self._parameters["weight"]  # dict read: this runs every step
        return weight if weight is not None else self._buffers["spike_history"]

    # -- to be implemented -------------------------------------------------------
    def _check_in_shape(self, shape: torch.Size) -> None:
        raise NotImplementedError

    def _propagate(self, spikes: Tensor) -> Tensor:
        raise NotImplementedError

    def _propagate_per_synapse(self, history_by_delay: Tensor) -> Tensor:
        raise NotImplementedError

    def _synapse_trace(self, trace: Tensor) -> Tensor:
        """Expand a presynaptic trace to one value per synapse."""
        raise NotImplementedError

    def _synapse_trace_per_synapse_delay(self) -> Tensor:
        raise NotImplementedError

    # -- the step ------------------------------------------------------------------
    def _check_inputs(self, spikes: Tensor, trace: Tensor | None) -> tuple[Tensor, Tensor | None]:
        ref = self._reference()
        spikes = check_tensor("spikes", spikes, ref.dtype, ref.device, allow_bool=True)
        self._check_in_shape(spikes.shape)
        if trace is not None:
            trace = check_tensor("trace", trace, ref.dtype, ref.device)
            if trace.shape != spikes.shape:
                raise ValueError(
                    f"{type(self).__name__}: trace must have the shape of spikes "
                    f"{tuple(spikes.shape)}, got {tuple(trace.shape)}"
                )
        return spikes, trace

    def _start_step(self, batch: int, in_shape: tuple[int, ...]) -> None:
        """Adopt the input's per-sample shape (fresh state only) and batch size."""
        if in_shape != self._in_shape:
            if not self._fresh and self._in_shape is not None:
                raise ValueError(
                    f"{type(self).__name__}: spikes have per-sample shape {in_shape} but the "
                    f"running simulation uses {self._in_shape}; call reset_state() first"
                )
            self._in_shape = in_shape
            self._init_state(batch)
        self._begin_step(batch)

    def _history_by_delay(self, history: Tensor) -> Tensor:
        """History reordered so that entry ``k`` is the value of ``k`` steps ago."""
        order = (self._head - torch.arange(self.history_length, device=history.device)) % (
            self.history_length
        )
        return history.index_select(0, order)

    def forward(self, spikes: Tensor, trace: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Propagate one timestep.

        Parameters
        ----------
        spikes : Tensor
            Presynaptic spikes ``(batch, ...)`` (bool or 0/1 in the weight's dtype).
        trace : Tensor, optional
            Presynaptic trace, same shape as ``spikes``.

        Returns
        -------
        tuple
            ``(x, trace)``: the input of the postsynaptic neurons and the
            presynaptic trace as it arrives (delayed with the spikes; one value
            per synapse when ``trace_per_synapse=True``; ``None`` for per-synapse
            delays unless ``trace_per_synapse=True``).
        """
        spikes, trace = self._check_inputs(spikes, trace)
        self._start_step(int(spikes.shape[0]), tuple(spikes.shape[1:]))

        # plain attributes are written through __dict__: nn.Module.__setattr__
        # costs microseconds per call in this per-step path
        attrs = self.__dict__
        if self.max_delay == 0:
            attrs["pre_spikes"], attrs["pre_trace"] = spikes, trace
            out = self._propagate(spikes)
            out_trace = trace
        else:
            head = attrs["_head"] = (self._head + 1) % self.history_length
            sf.delay_write(self.spike_history, head, spikes)
            if trace is not None:
                sf.delay_write(self.trace_history, head, trace)
            if not self.per_synapse_delay:
                delay = self.max_delay
                pre_spikes = sf.delay_read(self.spike_history, head, delay).clone()
                pre_trace = None
                if trace is not None:
                    pre_trace = sf.delay_read(self.trace_history, head, delay).clone()
                attrs["pre_spikes"], attrs["pre_trace"] = pre_spikes, pre_trace
                out = self._propagate(pre_spikes)
                out_trace = pre_trace
            else:
                attrs["pre_spikes"] = attrs["pre_trace"] = None
                out = self._propagate_per_synapse(self._history_by_delay(self.spike_history))
                out_trace = None
                if trace is not None and self.trace_per_synapse:
                    return out, self._synapse_trace_per_synapse_delay()
                return out, None
        if out_trace is not None and self.trace_per_synapse:
            out_trace = self._synapse_trace(out_trace)
        return out, out_trace

    def forward_steps(
        self, spikes: Tensor, trace: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        r"""Propagate ``T`` timesteps at once (multi-step execution).

        Equivalent to calling :meth:`forward` on ``spikes[t]`` (and ``trace[t]``)
        for ``t = 0 .. T-1`` and stacking the results, and leaves the same state
        behind (delay buffers, arriving spikes and traces), so step-by-step calls
        can follow.  For ``Linear`` and ``Conv2d`` the ``T`` steps become one
        GEMM/convolution over ``T * batch`` inputs:

        .. math:: I_{t} = W\, s_{t - d}\quad(\text{one delay}),\qquad
                  I_{t,i} = \sum_j W_{ij}\, s_{t - d_{ij},j}\quad(\text{per synapse}),

        where the steps before the window come from the delay buffer.  Use it when
        the whole input sequence is known in advance (a feedforward connection fed
        by encoded data) and **no learning rule changes the weights during the
        window**: the weights are read once.

        Parameters
        ----------
        spikes : Tensor
            ``[T, batch, ...]`` presynaptic spikes (bool or 0/1 in the weight's dtype).
        trace : Tensor, optional
            ``[T, batch, ...]`` presynaptic trace.

        Returns
        -------
        tuple
            ``(x, trace)`` with a leading time dimension, as :meth:`forward`
            returns them per step.
        """
        if not isinstance(spikes, Tensor) or spikes.dim() < 2:
            raise ValueError(
                f"{type(self).__name__}.forward_steps: spikes must be a tensor [T, batch, ...], "
                f"got {tuple(spikes.shape) if isinstance(spikes, Tensor) else type(spikes).__name__}"
            )
        if trace is not None and (not isinstance(trace, Tensor) or trace.shape != spikes.shape):
            raise ValueError(
                f"{type(self).__name__}.forward_steps: trace must have the shape of spikes "
                f"{tuple(spikes.shape)}, got "
                f"{tuple(trace.shape) if isinstance(trace, Tensor) else type(trace).__name__}"
            )
        steps = int(spikes.shape[0])
        fused = (
            type(self).forward is Connection.forward
            and steps > 0
            and not (self.trace_per_synapse and trace is not None)
        )
        if not fused:
            outs = [
                self.forward(spikes[t], None if trace is None else trace[t]) for t in range(steps)
            ]
            xs = torch.stack([o[0] for o in outs]) if outs else spikes.new_zeros(0)
            traces = [o[1] for o in outs]
            has_trace = bool(traces) and traces[0] is not None
            return xs, torch.stack(traces) if has_trace else None
        # validate as the first step would (every step shares the dtype, device and
        # shape), before any state changes; bool spikes become the weight's dtype
        self._check_inputs(spikes[0], None if trace is None else trace[0])
        spikes = spikes.to(self._reference().dtype)
        batch, in_shape = int(spikes.shape[1]), tuple(spikes.shape[2:])
        self._start_step(batch, in_shape)
        attrs = self.__dict__
        length = self.history_length

        def with_past(seq: Tensor, history: Tensor) -> Tensor:
            """The L-1 values before the window (oldest first) followed by ``seq``."""
            if length == 1:
                return seq
            past = self._history_by_delay(history)[: length - 1].flip(0)
            return torch.cat([past, seq])

        def keep_last(seq: Tensor, history: Tensor, head: int) -> None:
            """Write the last L values of ``seq`` where the step loop would have put them."""
            order = (head - torch.arange(length, device=history.device)) % length
            history.index_copy_(0, order, seq[-length:].flip(0))

        def fold(x: Tensor) -> Tensor:
            return x.reshape(-1, *x.shape[2:])

        if self.max_delay == 0:
            arriving, arriving_trace = spikes, trace
            out = self._propagate(fold(spikes))
        else:
            full = with_past(spikes, self.spike_history)
            full_trace = None if trace is None else with_past(trace, self.trace_history)
            head = (self._head + steps) % length
            if not self.per_synapse_delay:
                arriving = full[:steps]
                arriving_trace = None if full_trace is None else full_trace[:steps]
                out = self._propagate(fold(arriving))
            else:
                # windows[t, k] = value k steps before step t
                windows = full.unfold(0, length, 1).flip(-1).movedim(-1, 0)  # (L, T, B, ...)
                out = self._propagate_per_synapse(windows.reshape(length, -1, *in_shape))
                arriving = arriving_trace = None
            keep_last(full, self.spike_history, head)
            if full_trace is not None:
                keep_last(full_trace, self.trace_history, head)
            attrs["_head"] = head
        out = out.reshape(steps, batch, *out.shape[1:])
        if arriving is None:  # per-synapse delays: no single arriving value
            attrs["pre_spikes"] = attrs["pre_trace"] = None
            return out, None
        attrs["pre_spikes"] = arriving[-1].clone()
        attrs["pre_trace"] = None if arriving_trace is None else arriving_trace[-1].clone()
        return out, arriving_trace

    def receptive_field_sum(self, trace: Tensor) -> Tensor:
        r"""Sum of presynaptic values over each postsynaptic neuron's receptive field.

        .. math:: X_i = \sum_{j \in \mathrm{RF}(i)} x_j

        Used by :class:`pysnn.neuron.FedeNeuron`.
        """
        raise NotImplementedError

    # -- weights ---------------------------------------------------------------
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
        """
        if self.weight is None:
            return
        if distribution == "kaiming_uniform":
            fan_in = self.weight[0].numel()
            bound = gain / math.sqrt(fan_in)
            self.weight.uniform_(-bound, bound)
        elif distribution == "uniform":
            self.weight.uniform_(a, b)
        elif distribution == "normal":
            self.weight.normal_(a, b)
        elif distribution == "constant":
            self.weight.fill_(gain)
        else:
            raise ValueError(
                "distribution must be one of ('kaiming_uniform', 'uniform', 'normal', "
                f"'constant'), got {distribution!r}"
            )
        self._after_weight_init()

    def _after_weight_init(self) -> None:
        """Hook to enforce structural constraints after (re)initialisation."""

    def _stacked_weight(self, build) -> Tensor:
        """Per-delay stacked weight ``build(weight, onehot(delay))``, cached.

        The cache is rebuilt when the delays change or the weights differ from
        the snapshot taken at the last build: the version counter catches
        in-place updates (as made by learning rules) and an exact comparison
        with the snapshot (bit for bit, see :func:`_same_bits`) catches edits
        through ``weight.data``.  Cost while the weights are unchanged: one
        comparison of :math:`N_{out} N_{in}` values per step; memory: the
        stacked weight plus one weight snapshot.
        """
        weight = self.weight.detach()
        key = (
            tuple(weight.shape),
            weight.dtype,
            weight.device,
            self.delay_steps._version,
            self.delay_steps.data_ptr(),
            self.weight._version,
            weight.data_ptr(),
        )
        cache = self._stack_cache
        if cache is None or cache[0] != key or not _same_bits(cache[1], weight):
            onehot = F.one_hot(self.delay_steps, self.history_length).to(weight.dtype)
            self._stack_cache = (key, weight.clone(), build(weight, onehot))
        return self._stack_cache[2]

    def _apply(self, fn, recurse=True):  # type: ignore[override]
        self._stack_cache = None
        return super()._apply(fn, recurse)

    def _load_from_state_dict(
        self,
        state_dict,
        prefix,
        local_metadata,
        strict,
        missing_keys,
        unexpected_keys,
        error_msgs,
    ) -> None:
        # The loaded ``delay_steps`` decides the delay: adopt a scalar or
        # per-synapse delay saved from another configuration, then derive
        # ``max_delay``/``per_synapse_delay`` from it (they are not buffers).
        saved = state_dict.get(prefix + "delay_steps")
        if isinstance(saved, Tensor) and saved.shape != self.delay_steps.shape:
            if saved.dim() == 0 or (
                self.weight is not None and tuple(saved.shape) == tuple(self.weight.shape)
            ):
                self.delay_steps = torch.empty(
                    saved.shape, dtype=self.delay_steps.dtype, device=self.delay_steps.device
                )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        steps = self.delay_steps
        self.max_delay = int(steps.max()) if steps.numel() else 0
        self.per_synapse_delay = steps.dim() > 0
        self._stack_cache = None

    # -- correlations for learning rules (pysnn.learning) --------------------------
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
        history = self.spike_history if pre == "spikes" else self.trace_history
        if history.dim() == 0 or history.numel() == 0 or self._fresh:
            raise RuntimeError(
                f"{type(self).__name__}: no presynaptic {pre} history (no step was run, or "
                "the connection was called without the trace)"
            )
        return self._history_by_delay(history).to(self.weight.dtype)

    @property
    def has_pre_activity(self) -> bool:
        """True when a step has been run since the last reset (something to learn from)."""
        if self.per_synapse_delay:
            return not self._fresh and self.spike_history.numel() > 0
        return self.pre_spikes is not None

    def correlate(
        self,
        post: Tensor,
        pre: str | Tensor = "spikes",
        per_batch: bool = False,
        pre_map=None,
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
        if self.weight is None:
            raise TypeError(f"{type(self).__name__} has no weights to learn")
        post = post.to(self.weight.dtype)
        if self.per_synapse_delay:
            if pre_map is not None:
                raise NotImplementedError("pre_map is not supported with per-synapse delays")
            return self._correlate_per_synapse(post, self.arriving_history(pre), per_batch)
        return self._correlate(post, self.arriving(pre), per_batch, pre_map)

    def post_sum(self, post: Tensor, per_batch: bool = False) -> Tensor:
        r"""Sum a postsynaptic quantity per output unit, shaped to broadcast with ``weight``.

        .. math:: S_i = \sum_{b,\,p} y_{b,p,i}

        Returns ``(out, 1, ...)`` (or ``(batch, out, 1, ...)`` when ``per_batch``).
        """
        if self.weight is None:
            raise TypeError(f"{type(self).__name__} has no weights to learn")
        post = post.to(self.weight.dtype)
        n_out = self.weight.shape[0]
        tail = (1,) * (self.weight.dim() - 1)
        batch = post.shape[0]
        if per_batch:
            return self._post_units(post).reshape(batch, -1, n_out).sum(1).view(batch, n_out, *tail)
        return self._post_units(post).reshape(-1, n_out).sum(0).view(n_out, *tail)

    def _post_units(self, post: Tensor) -> Tensor:
        """Postsynaptic tensor with the output unit as the last dimension."""
        return post

    def accumulate_correlation(
        self, target: Tensor, post: Tensor, pre: str | Tensor = "spikes", alpha: float = 1.0
    ) -> Tensor:
        """In place ``target += alpha * correlate(post, pre)``; returns ``target``.

        ``Linear`` does it with one ``addmm_`` (no temporary of the weight's size).
        """
        return target.add_(self.correlate(post, pre), alpha=alpha)

    def accumulate_correlations(
        self, target: Tensor, terms: Sequence[tuple[Tensor, str | Tensor, float]]
    ) -> Tensor:
        r"""In place ``target += sum(alpha * correlate(post, pre) for post, pre, alpha in terms)``.

        .. math:: W \mathrel{+}= \sum_k \alpha_k\, C(y_k, x_k)

        ``Linear`` sums all terms with one ``addmm_`` (the terms' batches
        stacked), so the weight is read and written once; other connections
        add them one by one.  Returns ``target``.
        """
        for post, pre, alpha in terms:
            self.accumulate_correlation(target, post, pre, alpha)
        return target

    def _correlate(self, post: Tensor, pre: Tensor, per_batch: bool, pre_map) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not provide correlations")

    def _correlate_per_synapse(self, post: Tensor, history: Tensor, per_batch: bool) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not provide correlations")

    @property
    def supports_event_driven(self) -> bool:
        """Whether :meth:`correlate_rows`/:meth:`correlate_cols` exist (sparse updates)."""
        return False


class Linear(Connection):
    r"""Fully connected connection, one matmul per step.

    .. math:: I_{b\ldots i} = \sum_j W_{ij}\, s_{b\ldots j}(t - d_{ij})

    Parameters
    ----------
    in_features, out_features : int
        Number of presynaptic and postsynaptic neurons.
    batch_size : int, optional
        Ignored; kept so that PySNN 0.1 positional calls work.  The batch size
        comes from the input.
    dt : float
        Timestep in ms.
    delay : float or Tensor
        Delay in ms (a whole number of steps): a number, or a tensor
        ``(out_features, in_features)`` with one delay per synapse.
    trace_per_synapse : bool
        Return the presynaptic trace per synapse, ``(batch, ..., out, in)``.
    event_driven : bool or None
        Propagate by gathering the weights of the active inputs (``True``),
        always by a dense matmul (``False``), or choose per step (``None``,
        default: event-driven on CPU for layers of at least
        ``EVENT_MIN_SYNAPSES`` weights when at most ``event_threshold`` of the
        inputs spike, on average over the batch).  Event-driven propagation
        sums, per sample, the weight rows of that sample's active inputs.  With
        per-synapse delays the inputs are the (delay, input) pairs of the spike
        history, gathered from the per-delay stacked weight.  The weight is
        stored input-major (``weight`` is the transpose of a contiguous
        ``(in, out)`` tensor) so that the weights of one presynaptic neuron are
        contiguous.
    event_threshold : float
        Fraction of active inputs up to which auto mode is event-driven.

    Notes
    -----
    Inputs are ``(batch, ..., in_features)`` (e.g. ``(B, 1, N)`` as in PySNN
    0.1); outputs are ``(batch, ..., out_features)``, ready for a neuron of
    shape ``(..., out_features)``.
    """

    kind = "linear"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        batch_size: int | None = None,
        dt: float = 1.0,
        delay: DelayLike = 0,
        *,
        trace_per_synapse: bool = False,
        event_driven: bool | None = None,
        event_threshold: float = 0.05,
    ) -> None:
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if event_driven not in (None, True, False):
            raise TypeError(f"event_driven must be None, True or False, got {event_driven!r}")
        if not 0.0 <= float(event_threshold) <= 1.0:
            raise ValueError(f"event_threshold must lie in [0, 1], got {event_threshold}")
        self.in_features = in_features
        self.out_features = out_features
        self.event_driven = event_driven
        self.event_threshold = float(event_threshold)
        super().__init__((out_features, in_features), dt, delay, trace_per_synapse)
        # Stored input-major: weight is the (out, in) transpose of a contiguous
        # (in, out) tensor, so the weights of one presynaptic neuron are contiguous
        # (fast event-driven gathers) and the dense step is x @ storage.
        self.weight = nn.Parameter(torch.empty(in_features, out_features).t(), requires_grad=False)
        self.reset_weights()

    def extra_repr(self) -> str:
        delay = "per-synapse" if self.per_synapse_delay else str(self.max_delay)
        return f"in_features={self.in_features}, out_features={self.out_features}, delay={delay}"

    def _check_in_shape(self, shape: torch.Size) -> None:
        if len(shape) < 2 or shape[-1] != self.in_features:
            raise ValueError(
                f"{type(self).__name__}: spikes must have shape (batch, ..., in_features="
                f"{self.in_features}), got {tuple(shape)}"
            )

    #: auto mode gathers weight columns only for layers at least this large
    EVENT_MIN_SYNAPSES = 2**18

    def _propagate(self, spikes: Tensor) -> Tensor:
        rows = self._parameters["weight"].t()  # (in, out), contiguous
        if spikes.dim() == 2:  # (batch, in): no reshapes (a few us per step at batch 1)
            return self._matmul_events(spikes, rows)
        flat = spikes.reshape(-1, self.in_features)
        out = self._matmul_events(flat, rows)
        return out.reshape(*spikes.shape[:-1], self.out_features)

    def _matmul_events(self, flat: Tensor, rows: Tensor) -> Tensor:
        r"""``flat @ rows``: a dense matmul, or an event-driven sum of the rows of active inputs.

        ``flat`` is ``(M, K)`` presynaptic activity (spikes, or for per-synapse
        delays the spike history flattened over delays and inputs) and ``rows``
        the ``(K, N_{out})`` weights, one contiguous row per input.
        Event-driven, with :math:`J_m` the inputs active in sample :math:`m`:
        :math:`I_m = \sum_{j \in J_m} x_{mj} W_{j,:}`, costing
        :math:`\sum_m |J_m| N_{out}` instead of :math:`M K N_{out}` (one
        ``embedding_bag`` over all samples; a gather and a small matmul for
        one sample).  ``event_driven=None`` (auto) uses it on CPU for weights of
        at least ``EVENT_MIN_SYNAPSES`` entries when at most ``event_threshold``
        of the entries of ``flat`` are nonzero; both paths give the same result
        up to floating-point summation order.
        """
        mode = self.event_driven
        if mode is False or (
            mode is None and (flat.is_cuda or rows.numel() < self.EVENT_MIN_SYNAPSES)
        ):
            return flat @ rows
        events = flat.nonzero()  # (n_events, 2), row-major: grouped by sample
        if mode is None and events.shape[0] > self.event_threshold * flat.numel():
            return flat @ rows
        sample, index = events.unbind(1)
        if flat.shape[0] == 1:
            return flat.index_select(1, index) @ rows.index_select(0, index)
        counts = torch.bincount(sample, minlength=flat.shape[0])
        offsets = counts.cumsum(0) - counts
        return F.embedding_bag(
            index, rows, offsets, mode="sum", per_sample_weights=flat[sample, index]
        )

    def _propagate_per_synapse(self, history_by_delay: Tensor) -> Tensor:
        def build(weight: Tensor, onehot: Tensor) -> Tensor:
            # stacked[k * in + j, i] = W[i, j] * [d_ij == k]
            return (weight.unsqueeze(-1) * onehot).permute(2, 1, 0).reshape(-1, self.out_features)

        stacked = self._stacked_weight(build)
        hist = history_by_delay.movedim(0, -2)  # (B, ..., L, in)
        flat = hist.reshape(-1, stacked.shape[0])
        out = self._matmul_events(flat, stacked)
        return out.reshape(*hist.shape[:-2], self.out_features)

    def _synapse_trace(self, trace: Tensor) -> Tensor:
        return trace.unsqueeze(-2).expand(*trace.shape[:-1], self.out_features, self.in_features)

    def _synapse_trace_per_synapse_delay(self) -> Tensor:
        return sf.delay_read_per_synapse(self.trace_history, self._head, self.delay_steps)

    def receptive_field_sum(self, trace: Tensor) -> Tensor:
        total = trace.sum(-1, keepdim=True)
        return total.expand(*trace.shape[:-1], self.out_features)

    # -- correlations for learning rules (pysnn.learning) --------------------------
    def _correlate(self, post: Tensor, pre: Tensor, per_batch: bool, pre_map) -> Tensor:
        n_out, n_in = self.out_features, self.in_features
        if pre_map is None:
            if not per_batch:
                return post.reshape(-1, n_out).t().mm(pre.reshape(-1, n_in))
            batch = post.shape[0]
            return post.reshape(batch, -1, n_out).transpose(1, 2).bmm(pre.reshape(batch, -1, n_in))
        batch = pre.shape[0]
        x = pre_map(pre.reshape(batch, -1, n_in).transpose(1, 2))  # (B, in, P)
        y = post.reshape(batch, -1, n_out).transpose(1, 2)  # (B, out, P)
        if per_batch:
            return y.bmm(x.transpose(1, 2))
        return torch.einsum("bop,bip->oi", y, x)

    def _correlate_per_synapse(self, post: Tensor, history: Tensor, per_batch: bool) -> Tensor:
        # C_ij = sum_k [d_ij == k] (post^T @ hist_k)_ij
        n_out, n_in = self.out_features, self.in_features
        length, batch = history.shape[0], history.shape[1]
        index = self.delay_steps.unsqueeze(0)
        if not per_batch:
            y = post.reshape(-1, n_out).t()  # (out, N)
            stacked = torch.matmul(y, history.reshape(length, -1, n_in))  # (L, out, in)
            return stacked.gather(0, index).squeeze(0)
        y = post.reshape(batch, -1, n_out).transpose(1, 2)  # (B, out, P)
        h = history.reshape(length, batch, -1, n_in)  # (L, B, P, in)
        stacked = torch.matmul(y, h)  # (L, B, out, in)
        return stacked.gather(0, index.unsqueeze(1).expand(1, batch, n_out, n_in)).squeeze(0)

    @property
    def supports_event_driven(self) -> bool:
        return not self.per_synapse_delay

    def accumulate_correlation(
        self, target: Tensor, post: Tensor, pre: str | Tensor = "spikes", alpha: float = 1.0
    ) -> Tensor:
        if self.per_synapse_delay:
            return super().accumulate_correlation(target, post, pre, alpha)
        x = self.arriving(pre).reshape(-1, self.in_features)
        y = post.to(self.weight.dtype).reshape(-1, self.out_features)
        return target.addmm_(y.t(), x, alpha=alpha)

    def accumulate_correlations(
        self, target: Tensor, terms: Sequence[tuple[Tensor, str | Tensor, float]]
    ) -> Tensor:
        if self.per_synapse_delay or len(terms) < 2:
            return super().accumulate_correlations(target, terms)
        dtype = self.weight.dtype
        x = torch.cat([self.arriving(pre).reshape(-1, self.in_features) for _, pre, _ in terms])
        y = torch.cat(
            [(post.to(dtype) * alpha).reshape(-1, self.out_features) for post, _, alpha in terms]
        )
        return target.addmm_(y.t(), x)

    def correlate_rows(self, post: Tensor, pre: str | Tensor, rows: Tensor) -> Tensor:
        r"""Rows ``rows`` of :meth:`correlate`: ``(len(rows), in_features)``.

        Costs :math:`O(N \cdot |rows| \cdot N_{in})` instead of
        :math:`O(N \cdot N_{out} \cdot N_{in})` (used for event-driven learning).
        """
        x = self.arriving(pre).reshape(-1, self.in_features)
        y = post.to(self.weight.dtype).reshape(-1, self.out_features).index_select(1, rows)
        return y.t().mm(x)

    def correlate_cols(self, post: Tensor, pre: str | Tensor, cols: Tensor) -> Tensor:
        """Columns ``cols`` of :meth:`correlate`: ``(out_features, len(cols))``."""
        x = self.arriving(pre).reshape(-1, self.in_features).index_select(1, cols)
        y = post.to(self.weight.dtype).reshape(-1, self.out_features)
        return y.t().mm(x)


class Recurrent(Linear):
    r"""Recurrent/lateral connection within one population of ``features`` neurons.

    Called with the population's own spikes and trace of the previous step.
    With ``zero_diagonal=True`` (default) no neuron connects to itself: the
    diagonal is zeroed at initialisation, ignored in the propagation (even if
    set by hand) and excluded from learning through :attr:`plastic_mask`.

    Parameters
    ----------
    features : int
        Number of neurons.
    dt, delay, trace_per_synapse, event_driven
        As in :class:`Linear`.
    zero_diagonal : bool
        Forbid self-connections.
    """

    kind = "recurrent"

    def __init__(
        self,
        features: int,
        dt: float = 1.0,
        delay: DelayLike = 0,
        zero_diagonal: bool = True,
        *,
        trace_per_synapse: bool = False,
        event_driven: bool | None = None,
    ) -> None:
        self.zero_diagonal = bool(zero_diagonal)
        super().__init__(
            features,
            features,
            None,
            dt,
            delay,
            trace_per_synapse=trace_per_synapse,
            event_driven=event_driven,
        )
        mask = torch.ones(features, features, dtype=torch.bool)
        if self.zero_diagonal:
            mask.fill_diagonal_(False)
        self.register_buffer("plastic_mask", mask)
        self._after_weight_init()

    @torch.no_grad()
    def _after_weight_init(self) -> None:
        if getattr(self, "zero_diagonal", False):
            self.weight.fill_diagonal_(0.0)

    def _propagate(self, spikes: Tensor) -> Tensor:
        out = super()._propagate(spikes)
        if self.zero_diagonal:
            out = out - spikes * torch.diagonal(self.weight)
        return out

    def _propagate_per_synapse(self, history_by_delay: Tensor) -> Tensor:
        out = super()._propagate_per_synapse(history_by_delay)
        if self.zero_diagonal:
            diag_delay = torch.diagonal(self.delay_steps)  # (features,)
            idx = diag_delay.view(1, *([1] * (history_by_delay.dim() - 2)), -1)
            seen = history_by_delay.gather(0, idx.expand(1, *history_by_delay.shape[1:]))[0]
            out = out - seen * torch.diagonal(self.weight)
        return out


class Conv2d(Connection):
    r"""2-D convolution connection, equal to :func:`torch.nn.functional.conv2d`.

    .. math:: I_{b,o}(t) = \sum_{c, k} W_{o,c,k}\, s_{b,c}(t - d_{o,c,k})[\text{window}]

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the presynaptic and postsynaptic populations.
    kernel_size : int or (int, int)
        Kernel size.
    im_dims : (int, int), optional
        Input height and width; checked when given, not needed.
    batch_size : int, optional
        Ignored (PySNN 0.1 compatibility); the batch comes from the input.
    dt : float
        Timestep in ms.
    delay : float or Tensor
        Delay in ms: a number, or a tensor shaped like the weight
        ``(out_channels, in_channels // groups, kh, kw)``.
    stride, padding, dilation, groups
        As in :class:`torch.nn.Conv2d`.
    trace_per_synapse : bool
        Return the presynaptic trace per synapse,
        ``(batch, out_channels, H_out, W_out, in_channels // groups * kh * kw)``.
    """

    kind = "conv2d"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        im_dims: IntPair | None = None,
        batch_size: int | None = None,
        dt: float = 1.0,
        delay: DelayLike = 0,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        *,
        trace_per_synapse: bool = False,
    ) -> None:
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("groups", groups),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                f"divisible by groups ({groups})"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.dilation = _pair(dilation, "dilation")
        self.groups = groups
        self.im_dims = None if im_dims is None else _pair(im_dims, "im_dims")
        weight_shape = (out_channels, in_channels // groups, *self.kernel_size)
        super().__init__(weight_shape, dt, delay, trace_per_synapse)
        self.reset_weights()

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={self.groups}"
        )

    def _check_in_shape(self, shape: torch.Size) -> None:
        ok = len(shape) == 4 and shape[1] == self.in_channels
        if ok and self.im_dims is not None:
            ok = tuple(shape[2:]) == self.im_dims
        if not ok:
            hw = "H, W" if self.im_dims is None else f"{self.im_dims[0]}, {self.im_dims[1]}"
            raise ValueError(
                f"Conv2d: spikes must have shape (batch, in_channels={self.in_channels}, {hw}), "
                f"got {tuple(shape)}"
            )

    def _conv(self, x: Tensor, weight: Tensor) -> Tensor:
        return F.conv2d(x, weight, None, self.stride, self.padding, self.dilation, self.groups)

    def _propagate(self, spikes: Tensor) -> Tensor:
        return self._conv(spikes, self.weight)

    def _propagate_per_synapse(self, history_by_delay: Tensor) -> Tensor:
        length, groups = self.history_length, self.groups
        out_ch, cg, kh, kw = self.weight.shape

        def build(weight: Tensor, onehot: Tensor) -> Tensor:
            stacked = weight.unsqueeze(-1) * onehot  # (O, cg, kh, kw, L)
            return stacked.permute(0, 4, 1, 2, 3).reshape(out_ch, length * cg, kh, kw)

        stacked = self._stacked_weight(build)
        _, batch, _, height, width = history_by_delay.shape
        x = history_by_delay.movedim(0, 1).reshape(batch, length, groups, cg, height, width)
        x = x.transpose(1, 2).reshape(batch, groups * length * cg, height, width)
        return self._conv(x, stacked)

    def _unfold(self, x: Tensor) -> Tensor:
        """Patches ``(batch, groups, C/groups * kh * kw, H_out, W_out)``."""
        batch, _, height, width = x.shape
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)
        h_out, w_out = self.output_shape((height, width))
        return cols.view(batch, self.groups, -1, h_out, w_out)

    def output_shape(self, im_dims: IntPair) -> tuple[int, int]:
        """Output height and width for an input of ``im_dims``."""
        dims = _pair(im_dims, "im_dims")
        out = []
        for i in range(2):
            span = self.dilation[i] * (self.kernel_size[i] - 1) + 1
            out.append((dims[i] + 2 * self.padding[i] - span) // self.stride[i] + 1)
        return (out[0], out[1])

    def _synapse_trace(self, trace: Tensor) -> Tensor:
        patches = self._unfold(trace)  # (B, g, M, Ho, Wo)
        batch, groups, m, h_out, w_out = patches.shape
        per_group = self.out_channels // groups
        expanded = patches.unsqueeze(2).expand(batch, groups, per_group, m, h_out, w_out)
        return expanded.reshape(batch, self.out_channels, m, h_out, w_out).permute(0, 1, 3, 4, 2)

    def _synapse_trace_per_synapse_delay(self) -> Tensor:
        length = self.history_length
        hist = self.trace_history  # (L, B, C, H, W)
        _, batch, chans, height, width = hist.shape
        patches = self._unfold(hist.reshape(length * batch, chans, height, width))
        _, groups, m, h_out, w_out = patches.shape
        patches = patches.view(length, batch, groups, m, h_out, w_out)
        slots = (self._head - self.delay_steps.reshape(self.out_channels, m)) % length
        group_of = torch.arange(self.out_channels, device=hist.device) // (
            self.out_channels // groups
        )
        syn = torch.arange(m, device=hist.device)
        # advanced indices (O, M) on dims 0, 2, 3 -> result (O, M, B, Ho, Wo)
        seen = patches[slots, :, group_of[:, None], syn[None, :]]
        return seen.permute(2, 0, 3, 4, 1)

    def receptive_field_sum(self, trace: Tensor) -> Tensor:
        return self._conv(trace, torch.ones_like(self.weight))

    # -- correlations for learning rules (pysnn.learning) --------------------------
    def _post_units(self, post: Tensor) -> Tensor:
        return post.movedim(1, -1)

    def _correlate(self, post: Tensor, pre: Tensor, per_batch: bool, pre_map) -> Tensor:
        # weight sharing: sum over output positions of post[o, p] * patch[p, (c, kh, kw)]
        cols = self._unfold(pre)  # (B, g, M, Ho, Wo)
        batch, groups, m = cols.shape[:3]
        cols = cols.reshape(batch, groups, m, -1)
        if pre_map is not None:
            cols = pre_map(cols)
        y = post.reshape(batch, groups, self.out_channels // groups, -1)
        if per_batch:
            out = torch.einsum("bgop,bgmp->bgom", y, cols)
            return out.reshape(batch, *self.weight.shape)
        return torch.einsum("bgop,bgmp->gom", y, cols).reshape(self.weight.shape)

    def _correlate_per_synapse(self, post: Tensor, history: Tensor, per_batch: bool) -> Tensor:
        length, batch, chans, height, width = history.shape
        cols = self._unfold(history.reshape(length * batch, chans, height, width))
        _, groups, m = cols.shape[:3]
        cols = cols.reshape(length, batch, groups, m, -1)
        y = post.reshape(batch, groups, self.out_channels // groups, -1)
        index = self.delay_steps.reshape(1, self.out_channels, m)
        if per_batch:
            stacked = torch.einsum("bgop,lbgmp->lbgom", y, cols)
            stacked = stacked.reshape(length, batch, self.out_channels, m)
            index = index.unsqueeze(1).expand(1, batch, self.out_channels, m)
            return stacked.gather(0, index).reshape(batch, *self.weight.shape)
        stacked = torch.einsum("bgop,lbgmp->lgom", y, cols).reshape(length, self.out_channels, m)
        return stacked.gather(0, index).reshape(self.weight.shape)


class _Pool(Connection):
    """Weightless pooling connection (no delay)."""

    kind = "pool"

    def __init__(self) -> None:
        super().__init__(None, 1.0, 0)

    def _reference(self) -> Tensor:
        return self.spike_history

    def _check_in_shape(self, shape: torch.Size) -> None:
        if len(shape) != 4:
            raise ValueError(
                f"{type(self).__name__}: spikes must have shape (batch, C, H, W), got {tuple(shape)}"
            )

    def _check_inputs(self, spikes: Tensor, trace: Tensor | None) -> tuple[Tensor, Tensor | None]:
        # Pools have no parameters: they follow the dtype/device of their input
        # (of the trace when the spikes are bool).
        like = None
        if isinstance(spikes, Tensor) and spikes.is_floating_point():
            like = spikes
        elif isinstance(trace, Tensor) and trace.is_floating_point():
            like = trace
        history = self._buffers["spike_history"]
        if like is not None and (history.dtype != like.dtype or history.device != like.device):
            self._buffers["spike_history"] = history.to(like)
        return super()._check_inputs(spikes, trace)


class _WinnerPool(_Pool):
    r"""Max pooling whose output trace is the trace of the winning element.

    The winner of each window is the element that spiked (ties broken by the
    larger trace); when none spiked, the element with the largest trace.  The
    output spike is the winner's spike (1 when any element spiked).
    """

    def _pool_indices(self, key: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, spikes: Tensor, trace: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        spikes, trace = self._check_inputs(spikes, trace)
        # plain attributes through __dict__: nn.Module.__setattr__ is slow per step
        self.__dict__["pre_spikes"], self.__dict__["pre_trace"] = spikes, trace
        if trace is None:
            key = spikes
        else:
            low = trace.min()
            span = (trace.max() - low).clamp(min=0) + 1
            key = torch.addcmul(trace - low, spikes, span)
        indices = self._pool_indices(key)
        out_spikes = _gather_pooled(spikes, indices)
        out_trace = None if trace is None else _gather_pooled(trace, indices)
        return out_spikes, out_trace

    def receptive_field_sum(self, trace: Tensor) -> Tensor:
        raise TypeError(f"{type(self).__name__} has no synapses to sum over")


def _gather_pooled(x: Tensor, indices: Tensor) -> Tensor:
    flat = x.flatten(2)
    return flat.gather(2, indices.flatten(2)).view_as(indices).to(x.dtype)


class MaxPool2d(_WinnerPool):
    """Spiking max pooling; see :class:`_WinnerPool` for the winner rule.

    Parameters are those of :class:`torch.nn.MaxPool2d`.
    """

    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.dilation = _pair(dilation, "dilation")
        self.ceil_mode = bool(ceil_mode)

    def _pool_indices(self, key: Tensor) -> Tensor:
        _, indices = F.max_pool2d(
            key,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            return_indices=True,
        )
        return indices


class AdaptiveMaxPool2d(_WinnerPool):
    """Spiking adaptive max pooling to ``output_size``; winner rule of :class:`MaxPool2d`."""

    def __init__(self, output_size: IntPair) -> None:
        super().__init__()
        self.output_size = _pair(output_size, "output_size")

    def _pool_indices(self, key: Tensor) -> Tensor:
        _, indices = F.adaptive_max_pool2d(key, self.output_size, return_indices=True)
        return indices


class AvgPool2d(_Pool):
    r"""Average pooling of spikes and traces (outputs are rates in [0, 1], not spikes).

    Parameters are those of :class:`torch.nn.AvgPool2d`.
    """

    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def _pool(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad
        )

    def forward(self, spikes: Tensor, trace: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        spikes, trace = self._check_inputs(spikes, trace)
        self.pre_spikes, self.pre_trace = spikes, trace
        return self._pool(spikes), None if trace is None else self._pool(trace)

    def receptive_field_sum(self, trace: Tensor) -> Tensor:
        # divisor 1: the plain sum over each window (padding and ceil_mode
        # windows hold fewer than kernel_size elements)
        return F.avg_pool2d(
            trace, self.kernel_size, self.stride, self.padding, self.ceil_mode, divisor_override=1
        )
