r"""The delay line of a connection: ring buffers of presynaptic spikes and traces.

``delay`` (ms, a whole number of timesteps) is either one number for the whole
connection or an integer tensor shaped like the weight, one delay per synapse.
The line keeps the last :math:`L = d_{max} + 1` steps of presynaptic spikes and
traces, so any number of spikes can be in flight: a spike of presynaptic neuron
:math:`j` at step :math:`t` reaches synapse :math:`(i, j)` exactly once, at step
:math:`t + d_{ij}`, together with the trace :math:`x_j(t)`.

Memory and time: a scalar delay costs :math:`2 L \cdot B \cdot N_{in}` values of
history and no extra time per step.  Per-synapse delays add a cached stacked
weight (:meth:`DelayLine.stacked_weight`) of :math:`L` times the weight, rebuilt
(:math:`L N_{out} N_{in}` operations) only when the weights or delays change; a
snapshot of the weights is compared each step so that any edit, also through
``weight.data``, is seen.

Delays are changed with :meth:`DelayLine.set_delay` (``connection.set_delay``),
which sizes the ring buffers.  An edit of ``delay_steps`` by hand (in place or
by assigning the buffer) is checked at the next step and at every reset: a
per-synapse delay may change within ``[0, max_delay]`` (the buffers hold that
many steps), anything else is a :class:`ValueError` naming ``delay_steps`` and
the maximum.

**Learnable delays** (:meth:`DelayLine.learn`): the per-synapse delays become
a continuous parameter ``delay`` (ms, an :class:`torch.nn.Parameter`) within
``[0, max_delay]``.  In training mode each synapse reads the ring buffer's
taps weighted by an interpolation kernel of its delay
(:func:`pysnn.functional.delay_kernel`: linear between the two whole steps
around it, or Gaussian as in the dilated convolution with learnable spacings),
which is differentiable in the delay and goes into the same stacked weight as
whole-step delays.  In ``eval()`` mode (inference) and for learning rules the
delays are rounded to whole steps (``delay_steps``), read from the ring buffer
as any per-synapse delay; :meth:`DelayLine.round_learned` makes that permanent.

Every method called per step is a plain method (no ``nn.Module.__call__``) that
reads the buffers through ``_buffers`` and writes attributes through
``__dict__``: the line adds no measurable Python overhead to a connection's step.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pysnn import functional as sf
from pysnn.fusion import is_compiling
from pysnn.state import StatefulModule

Tensor = torch.Tensor
DelayLike = Union[int, float, Tensor]

__all__ = ["DelayLine", "DelayLike"]

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


def check_sigma(sigma: object) -> None:
    """Require a positive finite kernel width (steps)."""
    if (
        isinstance(sigma, bool)
        or not isinstance(sigma, (int, float))
        or not (math.isfinite(sigma) and sigma > 0)
    ):
        raise ValueError(f"sigma must be a positive number of steps, got {sigma!r}")


def _adopt_saved_delay(line: DelayLine, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Load hook: a checkpoint's ``delay_steps`` (scalar or per synapse) decides the delay."""
    saved = state_dict.get(prefix + "delay_steps")
    own = line.delay_steps
    if isinstance(saved, Tensor) and saved.shape != own.shape:
        if saved.dim() == 0 or tuple(saved.shape) == line.synapse_shape:
            line.delay_steps = torch.empty(saved.shape, dtype=own.dtype, device=own.device)


def _derive_loaded_delay(line: DelayLine, _incompatible_keys: Any) -> None:
    """Load hook: ``max_delay``/``per_synapse_delay`` follow the loaded ``delay_steps``."""
    line._derive_delay()


class DelayLine(StatefulModule):
    r"""Ring buffers of the last :math:`L = d_{max} + 1` presynaptic steps.

    Parameters
    ----------
    synapse_shape : tuple of int or None
        Shape of a per-synapse delay tensor (the weight's shape); ``None`` for
        a weightless owner, which only accepts scalar delays.
    delay : float or Tensor
        Delay in ms, see :meth:`set_delay`.
    dt : float
        Timestep in ms.
    owner : str
        Name of the owning connection, used in error messages.

    Attributes
    ----------
    delay_steps : Tensor
        Delay in timesteps: 0-dim, or shaped like ``synapse_shape``.
    max_delay : int
        :math:`d_{max}` in timesteps.
    per_synapse_delay : bool
        Whether ``delay_steps`` holds one delay per synapse.
    head : int
        Slot of the newest step in the ring buffers.
    in_shape : tuple of int or None
        Per-sample shape of the presynaptic input (adopted from the first step).
    spike_history, trace_history : Tensor
        ``(L, batch, *in_shape)`` ring buffers (empty without delay).
    stack_cache : tuple or None
        Cache of :meth:`stacked_weight` (``None`` until per-synapse delays build it).
    """

    #: learnable delays in ms (:meth:`learn`), ``None`` for fixed whole-step delays
    delay: nn.Parameter | None

    _state_names = ("spike_history", "trace_history")
    _extra_state_attrs = ("head", "in_shape", "_batch")
    _inplace_state = _state_names  # push() writes one slot in place

    def __init__(
        self,
        synapse_shape: tuple[int, ...] | None,
        delay: DelayLike = 0,
        dt: float = 1.0,
        owner: str = "connection",
    ) -> None:
        super().__init__()
        self.synapse_shape = None if synapse_shape is None else tuple(synapse_shape)
        self.owner = owner
        self.head = 0
        self.in_shape: tuple[int, ...] | None = None
        self._batch: int | None = None
        self.stack_cache: tuple[tuple, Tensor, Tensor] | None = None
        #: learnable delays (see learn()): their range in steps, step in ms, kernel
        self.learn_range: int | None = None
        self.learn_dt = float(dt)
        self.interpolation = "linear"
        self.sigma = 1.0
        # (tensor, version) of the learned delays last rounded into delay_steps
        self._learned_seen: tuple[Tensor, int] | None = None
        self.register_parameter("delay", None)
        # (tensor, version) of the delay_steps last validated (see check_delay_steps)
        self._steps_seen: tuple[Tensor, int] | None = None
        self.register_buffer("spike_history", torch.zeros(0))
        self.register_buffer("trace_history", torch.zeros(0))
        self.register_buffer("delay_steps", torch.zeros((), dtype=torch.int64))
        self.register_load_state_dict_pre_hook(_adopt_saved_delay)
        self.register_load_state_dict_post_hook(_derive_loaded_delay)
        self.set_delay(delay, dt)

    # -- configuration -------------------------------------------------------------
    def set_delay(self, delay: DelayLike, dt: float) -> None:
        """Set the delay in ms: a number, or a tensor of ``synapse_shape`` (per synapse).

        Raises :class:`ValueError` for negative, NaN or non-whole-step delays
        and for a per-synapse tensor of the wrong shape.  Resets the state.
        """
        if isinstance(delay, bool) or not isinstance(delay, (int, float, Tensor)):
            raise TypeError(f"delay must be a number or a tensor (ms), got {type(delay).__name__}")
        if isinstance(delay, Tensor) and delay.dim() > 0:
            if self.synapse_shape is None or tuple(delay.shape) != self.synapse_shape:
                raise ValueError(
                    f"delay per synapse must have the weight's shape {self.synapse_shape}, "
                    f"got {tuple(delay.shape)}"
                )
        steps = sf.duration_to_steps(
            delay.detach().cpu() if isinstance(delay, Tensor) else delay, dt, "delay"
        )
        self.delay_steps = steps.to(self.delay_steps.device)
        self.delay = None  # fixed delays: no longer learnable
        self.learn_range = None
        self._derive_delay()
        self.reset_state()

    # -- learnable delays ------------------------------------------------------------
    def learn(
        self,
        max_delay: float,
        dt: float,
        init: Tensor | float | None = None,
        interpolation: str = "linear",
        sigma: float = 1.0,
    ) -> nn.Parameter:
        r"""Make the per-synapse delays a continuous, trainable parameter (see the module docstring).

        Parameters
        ----------
        max_delay : float
            Largest delay in ms (a whole number of steps): the ring buffers
            hold ``max_delay / dt + 1`` steps, and the delays stay within
            ``[0, max_delay]``.
        dt : float
            Timestep in ms.
        init : float or Tensor, optional
            Initial delays in ms, one number or one per synapse (any real
            value in ``[0, max_delay]``); default: the current delays.
        interpolation : {"linear", "gaussian"}
            The kernel of :func:`pysnn.functional.delay_kernel`.
        sigma : float
            Width of the Gaussian kernel in steps (:attr:`sigma`, may be
            changed during training).

        Returns
        -------
        torch.nn.Parameter
            The delays in ms (``delay``), shaped like the weight.

        Raises
        ------
        ValueError
            For a line without synapses, a negative or non-whole-step
            ``max_delay``, an ``init`` of the wrong shape or outside the
            range, an unknown interpolation or a non-positive ``sigma``;
            nothing changes then.
        """
        if self.synapse_shape is None:
            raise ValueError(f"{self.owner}: learnable delays need a connection with weights")
        range_steps = int(sf.duration_to_steps(float(max_delay), dt, "max_delay"))
        if interpolation not in sf.DELAY_INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {sf.DELAY_INTERPOLATIONS}, got {interpolation!r}"
            )
        check_sigma(sigma)
        like = self._buffers["spike_history"]
        if init is None:
            init = self.delay_steps.to(torch.float64) * dt
        value = torch.as_tensor(init, dtype=torch.float64).detach().cpu()
        if value.dim() == 0:
            value = value.expand(self.synapse_shape)
        if tuple(value.shape) != self.synapse_shape:
            raise ValueError(
                f"{self.owner}: init must be a number or have the weight's shape "
                f"{self.synapse_shape}, got {tuple(value.shape)}"
            )
        if not bool(torch.isfinite(value).all()) or bool(
            ((value < 0) | (value > range_steps * dt * (1 + 1e-9))).any()
        ):
            raise ValueError(f"{self.owner}: init delays must lie in [0, max_delay={max_delay}] ms")
        self.learn_range, self.learn_dt = range_steps, float(dt)
        self.interpolation, self.sigma = interpolation, float(sigma)
        learned = nn.Parameter(value.to(dtype=like.dtype, device=like.device).clone())
        self.delay = learned
        self.sync_learned(force=True)
        self.reset_state()
        return learned

    @property
    def learnable(self) -> bool:
        """Whether the delays are a trainable parameter (:meth:`learn`)."""
        return self._parameters["delay"] is not None

    @property
    def fractional(self) -> bool:
        """Whether the step reads the learned delays between whole steps (training mode)."""
        return self.training and self._parameters["delay"] is not None

    def sync_learned(self, force: bool = False) -> None:
        """Round the learned delays into ``delay_steps`` when they changed (an optimizer step)."""
        delay = self._parameters["delay"]
        if delay is None:
            return
        seen = self.__dict__["_learned_seen"]
        if not force and seen is not None and seen[0] is delay and seen[1] == delay._version:
            return
        with torch.no_grad():
            steps = torch.round(delay.detach() / self.learn_dt).clamp_(0, self.learn_range)
        self._buffers["delay_steps"] = steps.to(torch.int64)
        self._derive_delay()
        self.__dict__["_learned_seen"] = (delay, delay._version)

    def round_learned(self) -> None:
        """Fix the learned delays at their whole-step values: ordinary per-synapse delays again."""
        if self._parameters["delay"] is None:
            return
        self.sync_learned(force=True)
        self.set_delay(self.delay_steps.to(torch.float64) * self.learn_dt, self.learn_dt)

    def taps(self, like: Tensor) -> Tensor:
        r"""Weights ``(*synapse_shape, L)`` of the ring buffer's taps for every synapse.

        One-hot :math:`[k = d]` of the whole-step delays, or, for learned
        delays in training mode, :func:`pysnn.functional.delay_kernel` of
        :math:`\min(\max(d/\Delta t, 0), d_{max})` (differentiable in the delays).
        In the dtype of ``like``.
        """
        length = self.history_length
        delay = self._parameters["delay"]
        if delay is not None and self.training:
            position = (delay / self.learn_dt).clamp(0.0, float(self.learn_range))
            kernel = sf.delay_kernel(position, length, self.interpolation, self.sigma)
            return kernel.to(like.dtype)
        return F.one_hot(self._buffers["delay_steps"], length).to(like.dtype)

    def _derive_delay(self) -> None:
        steps = self.delay_steps
        if steps.dtype != torch.int64:
            raise ValueError(f"{self.owner}: delay_steps must be int64, got {steps.dtype}")
        if self.learn_range is not None:  # learned delays: the buffers span the whole range
            self.max_delay = self.learn_range
            self.per_synapse_delay = True
            self.stack_cache = None
            self.check_delay_steps()
            return
        self.max_delay = int(steps.max()) if steps.numel() else 0
        self.per_synapse_delay = steps.dim() > 0
        self.stack_cache = None
        self.check_delay_steps()

    def check_delay_steps(self) -> None:
        """Check ``delay_steps`` against the ring buffers sized by :meth:`set_delay`.

        Raises :class:`ValueError` naming ``delay_steps`` and the maximum when
        the delays were edited by hand (in place, or by assigning the buffer)
        to a dtype, shape or value the buffers cannot serve: a per-synapse
        delay outside ``[0, max_delay]``, a scalar delay other than
        ``max_delay`` (its buffer length), or a change between scalar and
        per-synapse.  Cost: two reductions, run only when the tensor or its
        version changed since the last check (and at every reset); skipped
        while :func:`torch.compile` traces.
        """
        if is_compiling():
            return
        steps = self._buffers["delay_steps"]
        hint = "; change delays with set_delay(), which resizes the ring buffers"
        if not isinstance(steps, Tensor) or steps.dtype != torch.int64:
            got = steps.dtype if isinstance(steps, Tensor) else type(steps).__name__
            raise ValueError(f"{self.owner}: delay_steps must be an int64 tensor, got {got}{hint}")
        shape = tuple(steps.shape)
        if shape != (() if not self.per_synapse_delay else self.synapse_shape):
            expected = self.synapse_shape if self.per_synapse_delay else "() (one delay)"
            raise ValueError(
                f"{self.owner}: delay_steps must have shape {expected} as set, got {shape}{hint}"
            )
        if steps.numel():
            low, high = (int(v) for v in torch.aminmax(steps))
            maximum = self.max_delay
            if not self.per_synapse_delay and high != maximum:
                raise ValueError(
                    f"{self.owner}: delay_steps is {high} but the ring buffer was sized for "
                    f"the scalar delay max_delay={maximum}{hint}"
                )
            if low < 0 or high > maximum:
                raise ValueError(
                    f"{self.owner}: delay_steps must lie in [0, max_delay={maximum}] (the ring "
                    f"buffer holds max_delay + 1 = {maximum + 1} steps), got values in "
                    f"[{low}, {high}]{hint}"
                )
        self.__dict__["_steps_seen"] = (steps, steps._version)

    def extra_repr(self) -> str:
        if self.per_synapse_delay:
            return f"per-synapse delays, max {self.max_delay} steps"
        return f"delay={self.max_delay} steps"

    @property
    def history_length(self) -> int:
        """Number of steps kept in the ring buffers, :math:`L = d_{max} + 1`."""
        return self.max_delay + 1

    # -- state ---------------------------------------------------------------------
    @property
    def batch_size(self) -> int | None:
        return self._batch

    def _init_state(self, batch_size: int) -> None:
        self.check_delay_steps()
        self._batch = batch_size
        self.head = 0
        like = self._buffers["spike_history"]
        shape: tuple[int, ...] = (0,)
        if self.max_delay > 0 and self.in_shape is not None:
            shape = (self.history_length, batch_size, *self.in_shape)
        for name in self._state_names:
            self._buffers[name] = torch.zeros(shape, dtype=like.dtype, device=like.device)

    def start(self, batch: int, in_shape: tuple[int, ...]) -> None:
        """Adopt the input's per-sample shape (fresh state only) and batch size.

        Also re-checks ``delay_steps`` (:meth:`check_delay_steps`) when it was
        edited since the last check: a comparison of identity and version.
        """
        if not is_compiling():  # a data-dependent check cannot be compiled
            if self._parameters["delay"] is not None:
                self.sync_learned()
            steps, seen = self._buffers["delay_steps"], self.__dict__["_steps_seen"]
            if seen is None or seen[0] is not steps or seen[1] != steps._version:
                self.check_delay_steps()
        self.ensure_state(batch, in_shape)

    def _state_features(self) -> tuple[int, ...] | None:
        return self.in_shape

    def _adopt_features(self, features: tuple[int, ...]) -> None:
        self.__dict__["in_shape"] = features

    @property
    def _owner_name(self) -> str:  # type: ignore[override]
        return self.owner

    @property
    def has_history(self) -> bool:
        """True when a step was recorded since the last reset."""
        return not self._fresh and self._buffers["spike_history"].numel() > 0

    # -- one step ------------------------------------------------------------------
    def push(self, spikes: Tensor, trace: Tensor | None) -> None:
        """Advance the head and write the newest step (the trace only when given)."""
        attrs, buffers = self.__dict__, self._buffers
        head = attrs["head"] = (attrs["head"] + 1) % (attrs["max_delay"] + 1)
        sf.delay_write(buffers["spike_history"], head, spikes)
        if trace is not None:
            sf.delay_write(buffers["trace_history"], head, trace)

    def arriving(self, with_trace: bool) -> tuple[Tensor, Tensor | None]:
        """Spikes (and trace) written :math:`d` steps ago (scalar delay :math:`d`), copied."""
        attrs, buffers = self.__dict__, self._buffers
        head, delay = attrs["head"], attrs["max_delay"]
        spikes = sf.delay_read(buffers["spike_history"], head, delay).clone()
        if not with_trace:
            return spikes, None
        return spikes, sf.delay_read(buffers["trace_history"], head, delay).clone()

    def history_by_delay(self, name: str = "spikes") -> Tensor:
        """``"spikes"``/``"trace"`` history ``(L, B, ...)``; entry ``k`` is ``k`` steps old."""
        return self._by_delay(
            self._buffers["spike_history" if name == "spikes" else "trace_history"]
        )

    def _by_delay(self, history: Tensor) -> Tensor:
        length = self.history_length
        order = (self.head - torch.arange(length, device=history.device)) % length
        return history.index_select(0, order)

    def synapse_read(
        self, spread: Callable[[Tensor], Tensor], arrange: Callable[[Tensor], Tensor]
    ) -> Tensor:
        r"""The trace seen at every synapse with per-synapse delays.

        .. math:: y_{b,\ldots,s} = x_{b,\ldots,j(s)}(t - d_s)

        Parameters
        ----------
        spread : callable
            Presynaptic ``(N, *in_shape)`` to one value per synapse ``(N, *S)``
            (the connection's ``synapse_trace``).
        arrange : callable
            Weight-shaped values to a tensor that broadcasts against ``S``
            (the connection's ``synapse_layout``).
        """
        history = self._buffers["trace_history"]
        length = history.shape[0]
        per_synapse = spread(history.flatten(0, 1))
        per_synapse = per_synapse.reshape(length, -1, *per_synapse.shape[1:])
        slots = arrange((self.head - self.delay_steps) % length)
        index = slots.expand(per_synapse.shape[1:]).unsqueeze(0)
        return per_synapse.gather(0, index).squeeze(0)

    #: ring buffers up to this many values are copied whole before a network step
    #: (one op each); larger ones copy only the slot that :meth:`push` overwrites
    SNAPSHOT_WHOLE_NUMEL = 1 << 16

    def _step_snapshot(self, steps: int = 1) -> Any:
        """What the next ``steps`` pushes overwrite: the whole buffers (small, or a window) or one slot."""
        buffers = self._buffers
        spikes, trace = buffers["spike_history"], buffers["trace_history"]
        if spikes.numel() == 0:  # no delay, or no history yet: push() writes nothing in place
            return None
        if steps > 1 or spikes.numel() <= self.SNAPSHOT_WHOLE_NUMEL:
            return super()._step_snapshot()
        slot = (self.__dict__["head"] + 1) % spikes.shape[0]
        return slot, spikes[slot].clone(), trace[slot].clone()

    def _step_restore(self, saved: Any) -> None:
        """Put the saved buffers or slot back (into copies: the buffers may be inference tensors)."""
        if isinstance(saved, dict):
            super()._step_restore(saved)
            return
        slot, *values = saved
        for name, value in zip(self._state_names, values):
            history = self._buffers[name].clone()
            history[slot] = value
            self._buffers[name] = history

    # -- many steps ----------------------------------------------------------------
    def window(self, spikes: Tensor, trace: Tensor | None) -> tuple[Tensor, Tensor | None]:
        r"""Extend a window ``[T, B, ...]`` by the :math:`L - 1` buffered steps before it.

        Returns ``(full, full_trace)`` of length :math:`L - 1 + T` (oldest first;
        ``full[t]`` arrives at step ``t`` of the window with the delay
        :math:`d_{max}`) and leaves the ring buffers and head as ``T`` calls of
        :meth:`push` would.
        """
        length, steps = self.history_length, int(spikes.shape[0])
        buffers = self._buffers
        head = (self.head + steps) % length
        full = self._with_past(spikes, buffers["spike_history"])
        self._keep_last(full, buffers["spike_history"], head)
        full_trace = None
        if trace is not None:
            full_trace = self._with_past(trace, buffers["trace_history"])
            self._keep_last(full_trace, buffers["trace_history"], head)
        self.__dict__["head"] = head
        return full, full_trace

    def _with_past(self, seq: Tensor, history: Tensor) -> Tensor:
        past = self._by_delay(history)[: self.history_length - 1].flip(0)
        return torch.cat([past, seq])

    def _keep_last(self, seq: Tensor, history: Tensor, head: int) -> None:
        length = self.history_length
        order = (head - torch.arange(length, device=history.device)) % length
        history.index_copy_(0, order, seq[-length:].flip(0))

    def overwrite_newest(self, spikes: Tensor, trace: Tensor | None) -> None:
        r"""Replace the newest ``k`` steps of the ring buffers by ``spikes[k, B, ...]`` (oldest first).

        The window strategy runs a feedback projection before its presynaptic
        population: it pushes the steps of the window whose values are not
        known yet as placeholders (the window is short enough that none of
        them arrives within it) and writes the real values here afterwards.
        """
        count = int(spikes.shape[0])
        if count == 0:
            return
        length = self.history_length
        if count >= length:
            raise ValueError(f"{self.owner}: cannot overwrite {count} of {length} buffered steps")
        head = self.head
        order = (head - count + 1 + torch.arange(count, device=spikes.device)) % length
        buffers = self._buffers
        buffers["spike_history"].index_copy_(0, order, spikes.to(buffers["spike_history"].dtype))
        if trace is not None and buffers["trace_history"].numel():
            buffers["trace_history"].index_copy_(0, order, trace.to(buffers["trace_history"].dtype))

    @property
    def min_delay(self) -> int:
        """The shortest delay in steps (of any synapse)."""
        steps = self._buffers["delay_steps"]
        return int(steps.min()) if steps.numel() else 0

    def windows_by_delay(self, full: Tensor) -> Tensor:
        """``(L, T * B, ...)`` from :meth:`window`'s output: entry ``[k, t]`` is ``k`` steps before ``t``."""
        length = self.history_length
        windows = full.unfold(0, length, 1).flip(-1).movedim(-1, 0)  # (L, T, B, ...)
        return windows.reshape(length, -1, *full.shape[2:])

    # -- per-synapse stacked weight --------------------------------------------------
    def stacked_weight(self, weight: Tensor, build: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        """Per-delay stacked weight ``build(weight, onehot(delay_steps))``, cached.

        The cache is rebuilt when the delays change or the weights differ from
        the snapshot taken at the last build: the version counter catches
        in-place updates (as made by learning rules) and an exact comparison
        with the snapshot (bit for bit) catches edits through ``weight.data``.
        Cost while the weights are unchanged: one comparison of the weight per
        step; memory: the stacked weight plus one weight snapshot.
        """
        learned = self._parameters["delay"]
        if torch.is_grad_enabled() and (
            weight.requires_grad or (learned is not None and learned.requires_grad)
        ):
            # differentiable: built from the parameters at every call, part of this graph
            return build(weight, self.taps(weight))
        data = weight.detach()
        steps = self._buffers["delay_steps"]
        if is_compiling():
            # inside a compiled chunk: built every step, one fused op of the graph (the
            # weights may change between steps, and a cache check is data-dependent)
            return build(data, self.taps(data))
        key: tuple[Any, ...] = (
            tuple(data.shape),
            data.dtype,
            data.device,
            steps._version,
            steps.data_ptr(),
            weight._version,
            data.data_ptr(),
        )
        if learned is not None:
            key += (self.training, learned._version, id(learned), self.interpolation, self.sigma)
        cache = self.stack_cache
        if cache is None or cache[0] != key or not _same_bits(cache[1], data):
            taps = self.taps(data).detach()
            cache = self.__dict__["stack_cache"] = (key, data.clone(), build(data, taps))
        return cache[2]

    def _apply(self, fn, recurse=True):
        self.stack_cache = None
        return super()._apply(fn, recurse)
