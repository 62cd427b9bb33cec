"""Fully connected connections: :class:`Linear` and :class:`Recurrent`."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from pysnn import functional as sf
from pysnn.connection.base import Connection
from pysnn.delay import DelayLike
from pysnn.fusion import is_compiling

Tensor = torch.Tensor

__all__ = ["Linear", "Recurrent"]


def _outer_products(ys: Sequence[Tensor], xs: Sequence[Tensor], alphas: Sequence[float]) -> Tensor:
    r""":math:`\sum_k \alpha_k Y_k X_k` as broadcast outer products (no GEMM), for a few rows.

    ``Y_k`` ``([B,] out, r)`` and ``X_k`` ``([B,] r, in)``: one pointwise
    expression that Inductor fuses into the update of the target.
    """
    total: Tensor | None = None
    for y, x, alpha in zip(ys, xs, alphas):
        for k in range(x.shape[-2]):
            term = y[..., :, k : k + 1] * x[..., k : k + 1, :]
            term = term * alpha if alpha != 1.0 else term
            total = term if total is None else total + term
    assert total is not None
    return total


class Linear(Connection):
    r"""Fully connected connection, one matmul per step.

    .. math:: I_{b\ldots i} = \sum_j W_{ij}\, s_{b\ldots j}(t - d_{ij})

    Parameters
    ----------
    in_features, out_features : int
        Number of presynaptic and postsynaptic neurons.
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
        contiguous.  See :func:`pysnn.functional.event_matmul`.
    event_threshold : float
        Fraction of active inputs up to which auto mode is event-driven
        (default :data:`pysnn.functional.EVENT_THRESHOLD`, 0.07).
    bias : bool
        Add a learnable-by-hand constant :math:`b_i` (``bias``, zeros at
        construction) to the output of every step, :math:`I = W s + b`, as
        :class:`torch.nn.Linear` does (NIR's ``Affine``); default ``False``.

    Notes
    -----
    Inputs are ``(batch, ..., in_features)`` (e.g. ``(B, 1, N)``); outputs are
    ``(batch, ..., out_features)``, ready for a neuron of shape
    ``(..., out_features)``.  ``dt`` and ``delay`` are keywords
    (:mod:`pysnn.compat` translates PySNN 0.1's positional order).

    **Graded inputs** are allowed (``graded_input = True``): the input may be
    bool spikes, 0/1 or any finite value, e.g. rates or intensities fed
    directly, since :math:`W s` is exact for any :math:`s`.  NaN or inf in
    ``spikes`` (or ``trace``) is a :class:`ValueError`.
    """

    kind = "linear"
    learnable_delays = True

    #: auto mode gathers weight columns only for layers at least this large
    EVENT_MIN_SYNAPSES = 2**18
    #: inside a compiled chunk, correlations of at most this many rows (batch x terms)
    #: are summed as outer products in one pointwise pass instead of a GEMM
    COMPILED_OUTER_ROWS = 4

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *args: Any,
        dt: float = 1.0,
        delay: DelayLike = 0,
        trace_per_synapse: bool = False,
        event_driven: bool | None = None,
        event_threshold: float = sf.EVENT_THRESHOLD,
        bias: bool = False,
    ) -> None:
        if args:  # the original positional order, see pysnn.compat
            from pysnn import compat

            given = compat.connection_arguments(
                type(self).__name__, ("batch_size", "dt", "delay"), args
            )
            dt, delay = given.get("dt", dt), given.get("delay", delay)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__}")
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
        bias_value = nn.Parameter(torch.zeros(out_features), requires_grad=False) if bias else None
        self.register_parameter("bias", bias_value)
        self.reset_weights()

    def extra_repr(self) -> str:
        delay = "per-synapse" if self.per_synapse_delay else str(self.max_delay)
        text = f"in_features={self.in_features}, out_features={self.out_features}, delay={delay}"
        return text + (", bias=True" if self._parameters["bias"] is not None else "")

    # -- the connection protocol -----------------------------------------------------
    def check_input_shape(self, shape: torch.Size) -> None:
        if len(shape) < 2 or shape[-1] != self.in_features:
            raise ValueError(
                f"{type(self).__name__}: spikes must have shape (batch, ..., in_features="
                f"{self.in_features}), got {tuple(shape)}"
            )

    def propagate(self, spikes: Tensor) -> Tensor:
        rows = self._parameters["weight"].t()  # (in, out), contiguous
        out = sf.dense_propagate(
            spikes, rows, self.event_driven, self.event_threshold, self.EVENT_MIN_SYNAPSES
        )
        bias = self._parameters["bias"]
        return out if bias is None else out + bias

    def propagate_delayed(self, history_by_delay: Tensor) -> Tensor:
        stacked = self.stacked_weight(sf.dense_stack_weight)
        out = sf.dense_propagate_delayed(
            history_by_delay,
            stacked,
            self.event_driven,
            self.event_threshold,
            self.EVENT_MIN_SYNAPSES,
        )
        bias = self._parameters["bias"]
        return out if bias is None else out + bias

    def synapse_trace(self, trace: Tensor) -> Tensor:
        return sf.dense_synapse_trace(trace, self.out_features)

    def receptive_field_sum(self, trace: Tensor) -> Tensor:
        return sf.dense_receptive_field_sum(trace, self.out_features)

    def correlate_arriving(
        self, post: Tensor, pre: Tensor, per_batch: bool, pre_map: Callable | None
    ) -> Tensor:
        return sf.dense_correlate(post, pre, per_batch, pre_map)

    def correlate_history(self, post: Tensor, history: Tensor, per_batch: bool) -> Tensor:
        return sf.dense_correlate_delayed(post, history, self.delay_steps, per_batch)

    # -- sparse and fused updates for learning rules ---------------------------------
    @property
    def supports_event_driven(self) -> bool:
        return not self.per_synapse_delay

    def _flat(self, post: Tensor, pre: str | Tensor) -> tuple[Tensor, Tensor]:
        """Arriving ``pre`` ``(N, in)`` and ``post`` ``(N, out)`` in the weight's dtype."""
        x = self.arriving(pre).reshape(-1, self.in_features)
        return post.to(self.weight.dtype).reshape(-1, self.out_features), x

    def accumulate_correlation(
        self,
        target: Tensor,
        post: Tensor,
        pre: str | Tensor = "spikes",
        alpha: float = 1.0,
        per_batch: bool = False,
    ) -> Tensor:
        if self.per_synapse_delay or isinstance(alpha, Tensor):
            return super().accumulate_correlation(target, post, pre, alpha, per_batch)
        return self.accumulate_correlations(target, [(post, pre, alpha)], per_batch=per_batch)

    def accumulate_correlations(
        self,
        target: Tensor,
        terms: Sequence[tuple[Tensor, str | Tensor, float]],
        per_batch: bool = False,
        decay: float = 1.0,
    ) -> Tensor:
        if self.per_synapse_delay or any(isinstance(alpha, Tensor) for _, _, alpha in terms):
            return super().accumulate_correlations(target, terms, per_batch, decay)
        dtype = self.weight.dtype
        if per_batch:  # (B, out, in) = decay * (B, out, in) + sum_k alpha_k y_kb^T x_kb
            batch = int(target.shape[0])
            ys = [
                post.to(dtype).reshape(batch, -1, self.out_features).transpose(1, 2)
                for post, _, _ in terms
            ]
            xs = [self.arriving(pre).reshape(batch, -1, self.in_features) for _, pre, _ in terms]
            alphas = [alpha for _, _, alpha in terms]
            if is_compiling() and batch * xs[0].shape[1] <= self.COMPILED_OUTER_ROWS:
                # a few rows per sample (one for a flat layer): the decay and the outer
                # products are one pointwise pass over the eligibility, fused by Inductor
                decayed = target * decay if decay != 1.0 else target
                return target.copy_(decayed + _outer_products(ys, xs, alphas))
            return sf.accumulate_products_(target, ys, xs, alphas, decay)
        if len(terms) == 1:
            post, pre, alpha = terms[0]
            y, x = self._flat(post, pre)
        else:  # the terms' rows stacked: one GEMM reads and writes the target once
            x = torch.cat([self.arriving(pre).reshape(-1, self.in_features) for _, pre, _ in terms])
            y = torch.cat(
                [(post.to(dtype) * a).reshape(-1, self.out_features) for post, _, a in terms]
            )
            alpha = 1.0
        if decay != 1.0:
            target.mul_(decay)
        if is_compiling() and x.shape[0] <= self.COMPILED_OUTER_ROWS:
            # a few rows (batch 1): outer products as one pointwise pass over the weight,
            # which Inductor fuses with the rule's clamp (a GEMM of inner size 2 is slow)
            return target.add_(_outer_products([y.t()], [x], [alpha]))
        # not accumulate_products_ inside a graph: with torch 2.13 Inductor, the custom
        # operator mutating the weight Parameter gave different spikes from the third step
        return target.addmm_(y.t(), x, alpha=alpha)

    def correlate_rows(self, post: Tensor, pre: str | Tensor, rows: Tensor) -> Tensor:
        r"""Rows ``rows`` of :meth:`correlate`: ``(len(rows), in_features)``.

        Costs :math:`O(N \cdot |rows| \cdot N_{in})` instead of
        :math:`O(N \cdot N_{out} \cdot N_{in})` (used for event-driven learning).
        """
        y, x = self._flat(post, pre)
        return y.index_select(1, rows).t().mm(x)

    def correlate_cols(self, post: Tensor, pre: str | Tensor, cols: Tensor) -> Tensor:
        """Columns ``cols`` of :meth:`correlate`: ``(out_features, len(cols))``."""
        y, x = self._flat(post, pre)
        return y.t().mm(x.index_select(1, cols))


class Recurrent(Linear):
    r"""Recurrent/lateral connection within one population of ``features`` neurons.

    Called with the population's own spikes and trace of the previous step.
    With ``zero_diagonal=True`` (default) no neuron connects to itself: the
    diagonal is zeroed at initialisation, ignored in the propagation (even if
    set by hand) and excluded from learning through :attr:`plastic_mask`.

    .. math:: I_i = \sum_{j \ne i} W_{ij}\, s_j(t - d_{ij})

    Parameters
    ----------
    features : int
        Number of neurons.
    dt, delay, trace_per_synapse, event_driven
        As in :class:`Linear`.
    zero_diagonal : bool
        Forbid self-connections.

    Notes
    -----
    **Graded inputs** are allowed, as for :class:`Linear` (e.g. a rate
    population read back onto itself); NaN or inf is a :class:`ValueError`.
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
            dt=dt,
            delay=delay,
            trace_per_synapse=trace_per_synapse,
            event_driven=event_driven,
        )
        mask = torch.ones(features, features, dtype=torch.bool)
        if self.zero_diagonal:
            mask.fill_diagonal_(False)
        self.register_buffer("plastic_mask", mask)
        self.after_reset_weights()

    @torch.no_grad()
    def after_reset_weights(self) -> None:
        if getattr(self, "zero_diagonal", False):
            self.weight.fill_diagonal_(0.0)

    def propagate(self, spikes: Tensor) -> Tensor:
        out = super().propagate(spikes)
        if self.zero_diagonal:
            out = out - spikes * torch.diagonal(self.weight)
        return out

    def propagate_delayed(self, history_by_delay: Tensor) -> Tensor:
        out = super().propagate_delayed(history_by_delay)
        if self.zero_diagonal and self._line.fractional:  # learned delays between steps
            taps = torch.diagonal(self._line.taps(history_by_delay))  # (L, features)
            taps = taps.view(taps.shape[0], *([1] * (history_by_delay.dim() - 2)), -1)
            seen = (history_by_delay * taps).sum(0)
            return out - seen * torch.diagonal(self.weight)
        if self.zero_diagonal:
            diag_delay = torch.diagonal(self.delay_steps)  # (features,)
            idx = diag_delay.view(1, *([1] * (history_by_delay.dim() - 2)), -1)
            seen = history_by_delay.gather(0, idx.expand(1, *history_by_delay.shape[1:]))[0]
            out = out - seen * torch.diagonal(self.weight)
        return out
