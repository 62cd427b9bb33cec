r"""Pair-based STDP, dense and event-driven."""

from __future__ import annotations

from typing import Any

import torch

from pysnn.fusion import is_compiling
from pysnn.learning.base import LearningRule, Reward
from pysnn.learning.options import Hyper
from pysnn.learning.traces import PairTraces, pair_traces
from pysnn.network import Layer, SNNNetwork

Tensor = torch.Tensor

__all__ = ["STDP"]


def _active_units(x: Tensor, n_units: int) -> Tensor:
    """Indices of the units (last dimension) with a nonzero value in any batch element."""
    flat = x.reshape(-1, n_units)
    if flat.shape[0] == 1:
        return flat[0].nonzero().squeeze(1)
    return flat.any(0).nonzero().squeeze(1)


class STDP(PairTraces, LearningRule):
    r"""Pair-based, trace-based spike-timing-dependent plasticity.

    At every timestep, with :math:`s` spikes (0/1), :math:`x` traces (after this
    step's spikes), pre- and postsynaptic indices :math:`j, i`:

    .. math::
        \Delta w_{ij} = \eta \left( A_+\, s^{post}_i\, x^{pre}_j(t - d_{ij})
                        - A_-\, x^{post}_i\, s^{pre}_j(t - d_{ij}) \right)

    summed over the batch (divided by the batch size for ``reduction="mean"``)
    and, for ``Conv2d``, over output positions.  With traces that jump by
    :math:`\alpha_t = 1` and decay exactly (``update_type="exact"``), a
    presynaptic spike :math:`\Delta` ms before a postsynaptic one gives
    :math:`\Delta w = \eta A_+ e^{-\Delta/\tau_+}` and the reverse order
    :math:`-\eta A_- e^{-\Delta/\tau_-}`; simultaneous spikes give
    :math:`\eta (A_+ - A_-)`.

    By default (``tau_plus=None``, ``tau_minus=None``) the time constants
    :math:`\tau_+` and :math:`\tau_-` are the trace time constants of the
    **neurons** (``tau_t`` of the presynaptic population for :math:`\tau_+`, of
    the postsynaptic one for :math:`\tau_-`), in ms, and :math:`A_\pm` scale the
    trace amplitudes ``alpha_t``.  Pairing scheme:

    * all-to-all: neurons with ``trace_mode="additive"`` (each spike adds to the trace),
    * nearest-spike: ``trace_mode="saturating"`` (each spike resets the trace to ``alpha_t``).

    With ``tau_plus``/``tau_minus`` given (ms) the rule keeps its own traces
    (:mod:`pysnn.learning.traces`), jumping by 1 (``pairing="all-to-all"``)
    or resetting to 1 (``"nearest"``) and decaying exactly, independent of the
    neurons' ``tau_t``.

    Forms: additive (default) or multiplicative / weight-dependent with
    ``soft_bounds=True``:
    :math:`\Delta w = \eta (A_+ s x (w_{max} - w) - A_- x s (w - w_{min}))`.

    Parameters
    ----------
    layers
        Layers to train, see :class:`LearningRule`.
    lr : float
        Learning rate :math:`\eta`.
    a_plus, a_minus : float
        Potentiation and depression amplitudes :math:`A_+`, :math:`A_-`.
    tau_plus, tau_minus : float or None
        Time constants (ms) of the rule's own pre- and postsynaptic traces;
        ``None`` (default): the neurons' traces.
    pairing : {"all-to-all", "nearest"}
        Pairing scheme of the rule's own traces.
    event_driven : bool or None
        ``True``: always use the event-driven path; ``False``: always dense;
        ``None`` (default): event-driven when the fraction of active neurons
        is at most ``event_threshold`` and the layer has at least
        ``event_min_synapses`` weights (below that, on CPU, the fixed cost of
        the sparse indexing exceeds one dense in-place ``addmm_``, so auto
        mode does not look for active neurons).  Only for ``Linear``/``Recurrent``
        without per-synapse delays; other connections are always dense.
        The additive rule with hard bounds scatters every spike: each
        postsynaptic spike of sample :math:`b` adds :math:`c_+ x^{pre}_b` to
        its neuron's row, each presynaptic spike subtracts
        :math:`c_- x^{post}_b` from its column (``index_add_``), then the
        weight is clamped; cost :math:`O(n^{post} N_{in} + n^{pre} N_{out})`
        for :math:`n` spikes in the batch instead of :math:`O(B N_{out} N_{in})`,
        and the active fraction is per sample,
        :math:`\tfrac12(n^{post}/(B N_{out}) + n^{pre}/(B N_{in}))`.  With
        soft bounds or a mask the rows of neurons that spiked in any sample
        and the columns likewise are updated, and the fraction is that of
        those rows and columns; this path clamps only the weights it touches.
        Both paths give the dense path's weights up to rounding (tested).
    event_threshold : float
        Activity threshold of the automatic choice (default 0.01: on the
        2-core CPU the scattered update beat the dense one at 0.6 % of the
        neurons spiking per step and lost at 1.6 %, for 784 -> 1600 at batch 32).
    event_min_synapses : int
        Size threshold of the automatic choice (default :math:`2^{19}`; tune
        per machine with ``benchmarks/bench_stdp.py``).
    w_min, w_max, soft_bounds, mask, reduction, network
        See :class:`LearningRule`.
    """

    hyperparameters = (
        Hyper("a_plus", 1.0, doc="potentiation amplitude A+"),
        Hyper("a_minus", 1.0, doc="depression amplitude A-"),
        Hyper("event_driven", None, "choice", (None, True, False), doc="event-driven update"),
        Hyper("event_threshold", 0.01, "unit", doc="activity of the automatic choice"),
        Hyper("event_min_synapses", 2**19, "count", doc="size of the automatic choice"),
    )

    def __init__(
        self,
        layers: Any,
        lr: float = 1e-3,
        a_plus: float = 1.0,
        a_minus: float = 1.0,
        *,
        tau_plus: float | None = None,
        tau_minus: float | None = None,
        pairing: str = "all-to-all",
        event_driven: bool | None = None,
        event_threshold: float = 0.01,
        event_min_synapses: int = 2**19,
        network: SNNNetwork | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            layers,
            dict(
                lr=lr,
                a_plus=a_plus,
                a_minus=a_minus,
                event_driven=event_driven,
                event_threshold=event_threshold,
                event_min_synapses=event_min_synapses,
                tau_plus=tau_plus,
                tau_minus=tau_minus,
                pairing=pairing,
            ),
            network=network,
            **options,
        )
        #: path taken by the last update of each layer ("dense", "event" or "none")
        self.last_path: dict[str, str] = {}

    def _step_layer(self, layer: Layer, group: dict, state: dict, reward: Reward | None) -> None:
        if self._frozen(layer):
            return
        conn = layer.connection
        s_post = self._post(layer, "spikes")
        pre, x_post = pair_traces(layer, group, state, s_post)
        scale = self._scale(group, s_post.shape[0])
        c_plus, c_minus = scale * group["a_plus"], scale * group["a_minus"]
        mode = group["event_driven"]
        any_post = any_pre = True
        weight_numel = conn.weight.numel()
        # auto mode skips the search for active neurons when the layer is too small
        # for the event-driven path to pay off
        hooked = self._has_change_hooks  # every step through apply_change (data parallel)
        plain = not group["soft_bounds"] and self._mask(layer, group) is None
        # inside a compiled chunk auto mode is dense (a graph cannot branch on the spikes)
        events_wanted = (
            not hooked
            and conn.supports_event_driven
            and (
                mode is True
                or (
                    mode is None
                    and not is_compiling()
                    and weight_numel >= group["event_min_synapses"]
                )
            )
        )
        if events_wanted and plain:
            # additive, hard bounds: scatter the changes of every single spike
            n_out, n_in = conn.weight.shape
            dtype = conn.weight.dtype
            y_post = s_post.to(dtype).reshape(-1, n_out)
            s_pre = conn.arriving("spikes").to(dtype).reshape(-1, n_in)
            post_events, pre_events = y_post.nonzero(as_tuple=True), s_pre.nonzero(as_tuple=True)
            n_post, n_pre = post_events[0].numel(), pre_events[0].numel()
            if not is_compiling() and n_post == 0 and n_pre == 0:  # (no data branch compiled)
                self.last_path[layer.name] = "none"
                return
            if mode is True or (
                0.5 * (n_post / n_out + n_pre / n_in) <= group["event_threshold"] * s_pre.shape[0]
            ):
                self.last_path[layer.name] = "event"
                x_pre = conn.arriving(pre).to(dtype).reshape(-1, n_in)
                x_post = x_post.to(dtype).reshape(-1, n_out)
                _scatter_update(conn.weight, y_post, x_pre, post_events, c_plus)
                _scatter_update(conn.weight.t(), s_pre, x_post, pre_events, -c_minus)
                if group["w_min"] is not None or group["w_max"] is not None:
                    conn.weight.clamp_(group["w_min"], group["w_max"])
                return
            any_post, any_pre = n_post > 0, n_pre > 0
        elif events_wanted:
            rows = _active_units(s_post, conn.weight.shape[0])
            cols = _active_units(conn.arriving("spikes"), conn.weight.shape[1])
            any_post, any_pre = rows.numel() > 0, cols.numel() > 0
            if not (any_post or any_pre):
                self.last_path[layer.name] = "none"
                return
            frac = 0.5 * (rows.numel() / conn.weight.shape[0] + cols.numel() / conn.weight.shape[1])
            sparse_enough = frac <= group["event_threshold"]
            if mode is True or sparse_enough:
                self.last_path[layer.name] = "event"
                self._event_update(layer, group, s_post, pre, x_post, rows, cols, c_plus, c_minus)
                return
        self.last_path[layer.name] = "dense"
        if hooked or group["soft_bounds"] or self._mask(layer, group) is not None:
            ltp = conn.correlate(s_post, pre) * c_plus
            ltd = conn.correlate(x_post, "spikes") * c_minus
            self.apply_change(layer, group, ltp=ltp, ltd=ltd)
            return
        # additive, unmasked: accumulate straight into the weight (addmm_ for Linear)
        weight = conn.weight
        terms = []
        if any_post:
            terms.append((s_post, pre, c_plus))
        if any_pre:
            terms.append((x_post, "spikes", -c_minus))
        conn.accumulate_correlations(weight, terms)
        if group["w_min"] is not None or group["w_max"] is not None:
            weight.clamp_(group["w_min"], group["w_max"])

    def _event_update(
        self,
        layer: Layer,
        group: dict,
        s_post: Tensor,
        pre: str | Tensor,
        x_post: Tensor,
        rows: Tensor,
        cols: Tensor,
        c_plus: float,
        c_minus: float,
    ) -> None:
        """Sparse update: LTP on rows of spiking post neurons, LTD on columns of spiking pre."""
        conn = layer.connection
        weight = conn.weight
        w_min, w_max = group["w_min"], group["w_max"]
        bounded = w_min is not None or w_max is not None
        mask = self._mask(layer, group)
        # both terms are computed from the weights before this step's update (rows = spiking
        # postsynaptic neurons, cols = spiking presynaptic neurons)
        ltp = ltd = None
        if rows.numel():
            ltp = conn.correlate_rows(s_post, pre, rows).mul_(c_plus)  # (k, in)
            if group["soft_bounds"]:
                ltp.mul_(w_max - _index_select(weight, 0, rows))
            if mask is not None:
                ltp.mul_(_index_select(mask, 0, rows))
        if cols.numel():
            ltd = conn.correlate_cols(x_post, "spikes", cols).mul_(-c_minus)  # (out, m)
            if group["soft_bounds"]:
                ltd.mul_(_index_select(weight, 1, cols) - w_min)
            if mask is not None:
                ltd.mul_(_index_select(mask, 1, cols))
        # add LTP to the rows in place; LTD: one gather of the columns, add, clamp and one
        # scatter; then clamp the rows (idempotent where rows and columns cross), which
        # equals clamping w + ltp - ltd as the dense path does.
        if ltp is not None:
            _index_write_(weight, 0, rows, ltp, "add")
        if ltd is not None:
            part = _index_select(weight, 1, cols).add_(ltd)
            if bounded:
                part = self._clamp_part(part, w_min, w_max, mask, 1, cols)
            _index_write_(weight, 1, cols, part, "copy")
        if bounded and ltp is not None:
            part = _index_select(weight, 0, rows)
            part = self._clamp_part(part, w_min, w_max, mask, 0, rows)
            _index_write_(weight, 0, rows, part, "copy")

    @staticmethod
    def _clamp_part(
        part: Tensor, w_min, w_max, mask: Tensor | None, dim: int, index: Tensor
    ) -> Tensor:
        if mask is None:
            return part.clamp_(w_min, w_max)
        return torch.where(_index_select(mask, dim, index), part.clamp(w_min, w_max), part)


def _scatter_update(
    weight: Tensor,
    spikes: Tensor,
    partner: Tensor,
    events: tuple[Tensor, Tensor],
    scale: float,
) -> None:
    r"""Add ``scale * spikes^T partner`` to ``weight`` spike by spike (no clamping).

    .. math::
        W_{i\cdot} \mathrel{+}= c \sum_{b:\,s_{bi} \ne 0} s_{bi}\, x_{b\cdot}

    over the nonzero ``(sample, neuron)`` pairs ``events`` of ``spikes``
    ``(M, N_i)`` (samples include extra leading dimensions), with ``partner``
    ``(M, N_j)``: cost :math:`O(n\,N_j)` for :math:`n` spikes instead of the
    dense :math:`O(M N_i N_j)`.  Potentiation scatters the postsynaptic spikes
    into the rows of ``W``, depression the presynaptic ones into the rows of
    ``W^T`` (``c = -c_-``).  Equals the dense update up to summation order.
    """
    sample, neuron = events
    if is_compiling() or sample.numel():  # (no data branch inside a compiled chunk)
        rows = partner.index_select(0, sample).mul_(spikes[sample, neuron].mul_(scale).unsqueeze(1))
        _index_write_(weight, 0, neuron, rows, "add")


def _storage_order(x: Tensor) -> tuple[Tensor, bool]:
    """``x`` or its transpose, whichever is contiguous (index ops on it avoid slow paths).

    :class:`~pysnn.connection.Linear` stores its weight input-major, so
    ``weight.t()`` is the contiguous tensor.
    """
    if x.dim() == 2 and not x.is_contiguous() and x.t().is_contiguous():
        return x.t(), True
    return x, False


def _index_select(x: Tensor, dim: int, index: Tensor) -> Tensor:
    base, flipped = _storage_order(x)
    if flipped:
        return base.index_select(1 - dim, index).t()
    return base.index_select(dim, index)


def _index_write_(x: Tensor, dim: int, index: Tensor, source: Tensor, op: str) -> None:
    """In place ``x.index_add_`` (``op="add"``) or ``x.index_copy_`` (``"copy"``) in storage order."""
    base, flipped = _storage_order(x)
    write = base.index_add_ if op == "add" else base.index_copy_
    if flipped:
        write(1 - dim, index, source.t())
    else:
        write(dim, index, source)
