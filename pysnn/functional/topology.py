r"""Propagation and correlation per connection topology, as pure functions.

A connection maps presynaptic activity :math:`s` (spikes, shape ``(N, *in)``)
to postsynaptic input :math:`I` (``(N, *out)``) through weights :math:`W`, and a
learning rule needs the correlation of a postsynaptic quantity :math:`y` with a
presynaptic quantity :math:`x` at every synapse,

.. math:: C_{ij} = \sum_{b,\,p} y_{b,p,i}\; x_{b,p,j},

summed over the batch :math:`b` and every position :math:`p` where the synapse
is used.  With per-synapse delays :math:`d_{ij}` (in steps) the presynaptic side
comes from a history ``(L, N, *in)`` ordered by delay (entry :math:`k` is
:math:`k` steps old):

.. math:: I_i = \sum_j W_{ij}\, s_j(t - d_{ij}),\qquad
          C_{ij} = \sum_{b,\,p} y_{b,p,i}\; x_{b,p,j}(t - d_{ij}).

Per-synapse propagation uses a *stacked* weight
:math:`\tilde W_{k,ij} = W_{ij} [d_{ij} = k]` (``*_stack_weight``) so that the
step is one matmul/convolution over :math:`L` times the inputs.  None of the
functions modifies its arguments.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from pysnn.fusion import is_compiling

Tensor = torch.Tensor
Pair = Sequence[int]
PreMap = Optional[Callable[[Tensor], Tensor]]


# ---------------------------------------------------------------------------
# dense (Linear, Recurrent)
# ---------------------------------------------------------------------------
def event_matmul(
    flat: Tensor,
    rows: Tensor,
    event_driven: bool | None = False,
    event_threshold: float = 0.05,
    min_synapses: int = 0,
) -> Tensor:
    r"""``flat @ rows``: a dense matmul, or an event-driven sum of the rows of active inputs.

    .. math:: I_m = \sum_{j \in J_m} x_{mj}\, W_{j,:}

    with :math:`J_m` the inputs active (nonzero) in sample :math:`m`, costing
    :math:`\sum_m |J_m| N_{out}` instead of :math:`M K N_{out}` (one
    ``embedding_bag`` over all samples; a gather and a small matmul for one
    sample).  Both paths give the same result up to floating-point summation
    order.

    Parameters
    ----------
    flat : Tensor
        ``(M, K)`` presynaptic activity.
    rows : Tensor
        ``(K, N_out)`` weights, one (ideally contiguous) row per input.
    event_driven : bool or None
        ``True``: always gather; ``False``: always a dense matmul; ``None``
        (auto): gather on CPU when ``rows`` has at least ``min_synapses``
        entries and at most ``event_threshold`` of the entries of ``flat`` are
        nonzero.  Inside a compiled step or chunk the graph cannot branch on
        the number of events: auto mode then gathers at batch 1 (a gather and
        a small matmul) and multiplies densely for larger batches (whose
        per-sample offsets would have data-dependent sizes).  Inputs that
        require a gradient are multiplied densely: the gradient reaches the
        silent inputs too (:math:`\partial I / \partial x_{mj} = W_{j,:}` for
        every :math:`j`).
    event_threshold : float
        Fraction of active entries up to which auto mode gathers.
    min_synapses : int
        Smallest ``rows.numel()`` for which auto mode considers gathering.
    """
    if (
        event_driven is False
        or (
            event_driven is None
            and (
                flat.is_cuda
                or rows.numel() < min_synapses
                or (flat.shape[0] > 1 and is_compiling())
            )
        )
        or flat.requires_grad
    ):
        return flat @ rows
    # a compiled step cannot branch on the number of events: it always gathers.
    # Counting first is cheap; listing the events (nonzero) costs a large part
    # of the matmul it would replace, so it waits until gathering is chosen.
    if (
        event_driven is None
        and not is_compiling()
        and int(torch.count_nonzero(flat)) > event_threshold * flat.numel()
    ):
        return flat @ rows
    events = flat.nonzero()  # (n_events, 2), row-major: grouped by sample
    sample, index = events.unbind(1)
    if flat.shape[0] == 1:
        return flat.index_select(1, index) @ rows.index_select(0, index)
    counts = torch.bincount(sample, minlength=flat.shape[0])
    offsets = counts.cumsum(0) - counts
    return F.embedding_bag(index, rows, offsets, mode="sum", per_sample_weights=flat[sample, index])


def dense_propagate(
    spikes: Tensor,
    rows: Tensor,
    event_driven: bool | None = False,
    event_threshold: float = 0.05,
    min_synapses: int = 0,
) -> Tensor:
    r"""Fully connected propagation of ``(N, ..., in)`` spikes to ``(N, ..., out)``.

    .. math:: I_{n\ldots i} = \sum_j W_{ij}\, s_{n\ldots j}

    ``rows`` is :math:`W^T`, ``(in, out)``; the other arguments are those of
    :func:`event_matmul`.
    """
    if spikes.dim() == 2:  # (batch, in): no reshapes (a few us per step at batch 1)
        return event_matmul(spikes, rows, event_driven, event_threshold, min_synapses)
    flat = spikes.reshape(-1, rows.shape[0])
    out = event_matmul(flat, rows, event_driven, event_threshold, min_synapses)
    return out.reshape(*spikes.shape[:-1], rows.shape[1])


def dense_stack_weight(weight: Tensor, onehot: Tensor) -> Tensor:
    r"""Stacked rows for per-synapse delays: ``(L * in, out)``.

    .. math:: \tilde W_{k N_{in} + j,\; i} = W_{ij}\,[d_{ij} = k]

    ``onehot`` is ``(out, in, L)``, the one-hot encoding of the delays.
    """
    return (weight.unsqueeze(-1) * onehot).permute(2, 1, 0).reshape(-1, weight.shape[0])


def dense_propagate_delayed(
    history_by_delay: Tensor,
    stacked: Tensor,
    event_driven: bool | None = False,
    event_threshold: float = 0.05,
    min_synapses: int = 0,
) -> Tensor:
    r"""Fully connected propagation with per-synapse delays.

    .. math:: I_{n\ldots i} = \sum_{k, j} \tilde W_{kj,i}\, s_{k, n\ldots j}
              = \sum_j W_{ij}\, s_{n\ldots j}(t - d_{ij})

    ``history_by_delay`` is ``(L, N, ..., in)``, ``stacked`` the output of
    :func:`dense_stack_weight`; the other arguments are those of :func:`event_matmul`
    (the inputs are then the (delay, input) pairs).
    """
    hist = history_by_delay.movedim(0, -2)  # (N, ..., L, in)
    flat = hist.reshape(-1, stacked.shape[0])
    out = event_matmul(flat, stacked, event_driven, event_threshold, min_synapses)
    return out.reshape(*hist.shape[:-2], stacked.shape[1])


def dense_correlate(
    post: Tensor, pre: Tensor, per_batch: bool = False, pre_map: PreMap = None
) -> Tensor:
    r"""Correlation of ``(B, ..., out)`` with ``(B, ..., in)`` at every synapse.

    .. math:: C_{ij} = \sum_{b,\,p} y_{b,p,i}\, f(x)_{b,j,p}

    where :math:`p` runs over the extra leading dimensions and :math:`f` is
    ``pre_map`` (identity by default), applied to ``(B, in, P)``.

    Returns
    -------
    Tensor
        ``(out, in)``, or ``(B, out, in)`` when ``per_batch``.
    """
    n_out, n_in = post.shape[-1], pre.shape[-1]
    batch = pre.shape[0]
    if pre_map is None:
        if not per_batch:
            return post.reshape(-1, n_out).t().mm(pre.reshape(-1, n_in))
        return post.reshape(batch, -1, n_out).transpose(1, 2).bmm(pre.reshape(batch, -1, n_in))
    x = pre_map(pre.reshape(batch, -1, n_in).transpose(1, 2))  # (B, in, P)
    y = post.reshape(batch, -1, n_out).transpose(1, 2)  # (B, out, P)
    if per_batch:
        return y.bmm(x.transpose(1, 2))
    return torch.einsum("bop,bip->oi", y, x)


def dense_correlate_delayed(
    post: Tensor, history: Tensor, delays: Tensor, per_batch: bool = False
) -> Tensor:
    r"""Correlation with per-synapse delays.

    .. math:: C_{ij} = \sum_k [d_{ij} = k] \sum_{b,\,p} y_{b,p,i}\, x_{k,b,p,j}

    ``post`` is ``(B, ..., out)``, ``history`` ``(L, B, ..., in)`` ordered by
    delay and ``delays`` the ``(out, in)`` integer delays in steps.  Returns
    ``(out, in)``, or ``(B, out, in)`` when ``per_batch``.
    """
    n_out, n_in = delays.shape
    length, batch = history.shape[0], history.shape[1]
    index = delays.unsqueeze(0)
    if not per_batch:
        y = post.reshape(-1, n_out).t()  # (out, N)
        stacked = torch.matmul(y, history.reshape(length, -1, n_in))  # (L, out, in)
        return stacked.gather(0, index).squeeze(0)
    y = post.reshape(batch, -1, n_out).transpose(1, 2)  # (B, out, P)
    h = history.reshape(length, batch, -1, n_in)  # (L, B, P, in)
    stacked = torch.matmul(y, h)  # (L, B, out, in)
    return stacked.gather(0, index.unsqueeze(1).expand(1, batch, n_out, n_in)).squeeze(0)


def dense_synapse_trace(trace: Tensor, out_features: int) -> Tensor:
    r"""The presynaptic trace at every synapse, ``(N, ..., out, in)`` (a broadcast view).

    .. math:: x_{n\ldots ij} = x_{n\ldots j}
    """
    return trace.unsqueeze(-2).expand(*trace.shape[:-1], out_features, trace.shape[-1])


def dense_receptive_field_sum(trace: Tensor, out_features: int) -> Tensor:
    r"""Sum over each output's receptive field (all inputs): ``(N, ..., out)``.

    .. math:: X_{n\ldots i} = \sum_j x_{n\ldots j}
    """
    return trace.sum(-1, keepdim=True).expand(*trace.shape[:-1], out_features)


# ---------------------------------------------------------------------------
# 2-D convolution (Conv2d)
# ---------------------------------------------------------------------------
def conv2d_output_shape(
    im_dims: Pair, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair
) -> tuple[int, int]:
    r"""Output height and width of a convolution or pooling window.

    .. math:: H_{out} = \left\lfloor \frac{H + 2 p - \delta (k - 1) - 1}{\sigma} \right\rfloor + 1

    with padding :math:`p`, dilation :math:`\delta`, kernel :math:`k`, stride
    :math:`\sigma` (likewise for the width).
    """
    out = []
    for i in range(2):
        span = dilation[i] * (kernel_size[i] - 1) + 1
        out.append((im_dims[i] + 2 * padding[i] - span) // stride[i] + 1)
    return (out[0], out[1])


def conv2d_propagate(
    spikes: Tensor, weight: Tensor, stride: Pair, padding: Pair, dilation: Pair, groups: int
) -> Tensor:
    r"""Convolution of ``(N, C, H, W)`` spikes, equal to :func:`torch.nn.functional.conv2d`.

    .. math:: I_{n,o,y,x} = \sum_{c, u, v} W_{o,c,u,v}\, s_{n,\,g(o) C_g + c,\,
              \sigma y - p + \delta u,\, \sigma x - p + \delta v}
    """
    return F.conv2d(spikes, weight, None, stride, padding, dilation, groups)


def conv2d_stack_weight(weight: Tensor, onehot: Tensor) -> Tensor:
    r"""Stacked kernel for per-synapse delays: ``(O, L * C_g, kh, kw)``.

    .. math:: \tilde W_{o,\,k C_g + c,\,u,v} = W_{o,c,u,v}\,[d_{o,c,u,v} = k]

    ``onehot`` is ``(O, C_g, kh, kw, L)``, the one-hot encoding of the delays.
    """
    out_ch, cg, kh, kw, length = onehot.shape
    stacked = weight.unsqueeze(-1) * onehot
    return stacked.permute(0, 4, 1, 2, 3).reshape(out_ch, length * cg, kh, kw)


def conv2d_propagate_delayed(
    history_by_delay: Tensor,
    stacked: Tensor,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
) -> Tensor:
    r"""Convolution with per-synapse delays, one convolution over :math:`L` times the channels.

    .. math:: I_{n,o} = \sum_{k,c,u,v} \tilde W_{o,kC_g+c,u,v}\, s_{k,n,c}[\text{window}]
              = \sum_{c,u,v} W_{o,c,u,v}\, s_{n,c}(t - d_{o,c,u,v})[\text{window}]

    ``history_by_delay`` is ``(L, N, C, H, W)``, ``stacked`` the output of
    :func:`conv2d_stack_weight`.
    """
    length, batch, chans, height, width = history_by_delay.shape
    cg = chans // groups
    x = history_by_delay.movedim(0, 1).reshape(batch, length, groups, cg, height, width)
    x = x.transpose(1, 2).reshape(batch, groups * length * cg, height, width)
    return F.conv2d(x, stacked, None, stride, padding, dilation, groups)


def conv2d_unfold(
    x: Tensor, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair, groups: int
) -> Tensor:
    r"""Patches of ``(N, C, H, W)``: ``(N, groups, C_g kh kw, H_out, W_out)``.

    .. math:: P_{n,g,(c,u,v),y,x} = x_{n,\,g C_g + c,\, \sigma y - p + \delta u,\,
              \sigma x - p + \delta v}

    (zero outside the image), as :func:`torch.nn.functional.unfold`.
    """
    batch, _, height, width = x.shape
    cols = F.unfold(x, kernel_size, dilation, padding, stride)
    h_out, w_out = conv2d_output_shape((height, width), kernel_size, stride, padding, dilation)
    return cols.view(batch, groups, -1, h_out, w_out)


def conv2d_correlate(
    post: Tensor,
    patches: Tensor,
    weight_shape: Sequence[int],
    per_batch: bool = False,
    pre_map: PreMap = None,
) -> Tensor:
    r"""Correlation of a shared kernel, summed over output positions.

    .. math:: C_{o,c,u,v} = \sum_{b,\,y,x} y_{b,o,y,x}\, f(P)_{b,g(o),(c,u,v),(y,x)}

    ``post`` is ``(B, O, H_out, W_out)``, ``patches`` the output of
    :func:`conv2d_unfold` for the presynaptic quantity and :math:`f` is
    ``pre_map`` (identity by default), applied to ``(B, groups, C_g kh kw, P)``.
    Returns ``weight_shape``, or ``(B, *weight_shape)`` when ``per_batch``.
    """
    batch, groups, m = patches.shape[:3]
    cols = patches.reshape(batch, groups, m, -1)
    if pre_map is not None:
        cols = pre_map(cols)
    y = post.reshape(batch, groups, weight_shape[0] // groups, -1)
    if per_batch:
        return torch.einsum("bgop,bgmp->bgom", y, cols).reshape(batch, *weight_shape)
    return torch.einsum("bgop,bgmp->gom", y, cols).reshape(weight_shape)


def conv2d_correlate_delayed(
    post: Tensor, patches: Tensor, delays: Tensor, per_batch: bool = False
) -> Tensor:
    r"""Correlation of a shared kernel with per-synapse delays.

    .. math:: C_{o,c,u,v} = \sum_k [d_{o,c,u,v} = k] \sum_{b,\,y,x} y_{b,o,y,x}\,
              P_{k,b,g(o),(c,u,v),(y,x)}

    ``patches`` is ``(L, B, groups, C_g kh kw, H_out, W_out)``, the unfolded
    history ordered by delay, ``delays`` the integer delays shaped like the
    weight.  Returns ``delays.shape``, or ``(B, *delays.shape)`` when ``per_batch``.
    """
    length, batch, groups, m = patches.shape[:4]
    out_ch = delays.shape[0]
    cols = patches.reshape(length, batch, groups, m, -1)
    y = post.reshape(batch, groups, out_ch // groups, -1)
    index = delays.reshape(1, out_ch, m)
    if per_batch:
        stacked = torch.einsum("bgop,lbgmp->lbgom", y, cols).reshape(length, batch, out_ch, m)
        index = index.unsqueeze(1).expand(1, batch, out_ch, m)
        return stacked.gather(0, index).reshape(batch, *delays.shape)
    stacked = torch.einsum("bgop,lbgmp->lgom", y, cols).reshape(length, out_ch, m)
    return stacked.gather(0, index).reshape(delays.shape)


def conv2d_synapse_trace(patches: Tensor, out_channels: int) -> Tensor:
    r"""The presynaptic trace at every synapse, ``(N, O, H_out, W_out, C_g kh kw)``.

    .. math:: x_{n,o,y,x,(c,u,v)} = P_{n,g(o),(c,u,v),y,x}

    from the patches of :func:`conv2d_unfold` (a broadcast view for one group).
    """
    batch, groups, m, h_out, w_out = patches.shape
    per_group = out_channels // groups
    expanded = patches.unsqueeze(2).expand(batch, groups, per_group, m, h_out, w_out)
    return expanded.reshape(batch, out_channels, m, h_out, w_out).permute(0, 1, 3, 4, 2)


def conv2d_receptive_field_sum(
    trace: Tensor,
    weight_shape: Sequence[int],
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
) -> Tensor:
    r"""Sum over each output's receptive field (a convolution with a kernel of ones).

    .. math:: X_{n,o,y,x} = \sum_{c,u,v} x_{n,\,g(o) C_g + c,\, \sigma y - p + \delta u,\,
              \sigma x - p + \delta v}
    """
    ones = trace.new_ones(weight_shape)
    return F.conv2d(trace, ones, None, stride, padding, dilation, groups)


# ---------------------------------------------------------------------------
# multisynaptic convolution (Conv2dSep): taps of the delay line stacked as channels
# ---------------------------------------------------------------------------
def delay_taps_stack(history_by_delay: Tensor, taps: Tensor) -> Tensor:
    r"""The delayed copies of each input channel stacked as channels: ``(N, C D, H, W)``.

    .. math:: \tilde s_{n,\,c D + d,\,y,x} = s_{n,c,y,x}(t - \tau_d)

    ``history_by_delay`` is ``(L, N, C, H, W)`` with entry :math:`k` the input
    of :math:`k` steps ago, ``taps`` the :math:`D` delays :math:`\tau_d` (int64
    steps, each below :math:`L`).  A convolution of the result with a kernel
    ``(O, C_g D, kh, kw)`` is the multisynaptic convolution: every synapse
    :math:`(c, u, v)` has :math:`D` delayed copies, channel :math:`c D + d` of
    the kernel weighting copy :math:`d` (one ``conv2d``, no loop over delays;
    groups of whole channels stay contiguous, so ``groups`` works unchanged).
    """
    taps_first = history_by_delay.index_select(0, taps)  # (D, N, C, H, W)
    stacked = taps_first.movedim(0, 2)  # (N, C, D, H, W)
    return stacked.reshape(stacked.shape[0], -1, *stacked.shape[3:])


def separable_weight(spatial: Tensor, temporal: Tensor) -> Tensor:
    r"""Spatiotemporal kernel of a separable multisynaptic convolution.

    .. math:: W_{o,c,d,u,v} = S_{o,c,u,v}\; T_{o,c,d}

    ``spatial`` :math:`S` is ``(O, C_g, kh, kw)``; ``temporal`` :math:`T` is
    ``(D,)`` (one weight per delay, shared by every synapse) or ``(O, C_g, D)``
    (per synapse and delay).  Returns ``(O, C_g, D, kh, kw)``.
    """
    if temporal.dim() == 1:
        temporal = temporal.view(1, 1, -1)
    return spatial.unsqueeze(2) * temporal.unsqueeze(-1).unsqueeze(-1)


def separable_contract(correlation: Tensor, temporal: Tensor) -> Tensor:
    r"""Correlation of the full spatiotemporal kernel reduced to the spatial kernel.

    .. math:: C^{S}_{o,c,u,v} = \sum_d T_{o,c,d}\; C_{o,c,d,u,v}
              = \frac{\partial}{\partial S_{o,c,u,v}} \sum_{o,c,d,u,v} C_{o,c,d,u,v}\,
                S_{o,c,u,v} T_{o,c,d}

    (the chain rule through :func:`separable_weight`): each delayed copy of a
    synapse contributes its correlation weighted by its temporal weight.
    ``correlation`` is ``(..., O, C_g, D, kh, kw)`` (optionally with a leading
    batch dimension), ``temporal`` ``(D,)`` or ``(O, C_g, D)``; returns
    ``(..., O, C_g, kh, kw)``.
    """
    if temporal.dim() == 1:
        temporal = temporal.view(1, 1, -1)
    return (correlation * temporal.unsqueeze(-1).unsqueeze(-1)).sum(-3)


# ---------------------------------------------------------------------------
# pooling (weightless)
# ---------------------------------------------------------------------------
def _winner_key(spikes: Tensor, trace: Tensor | None) -> Tensor:
    # spiking elements rank above every silent one, then by trace
    if trace is None:
        return spikes
    low = trace.min()
    span = (trace.max() - low).clamp(min=0) + 1
    return torch.addcmul(trace - low, spikes, span)


def _gather_pooled(x: Tensor, indices: Tensor) -> Tensor:
    flat = x.flatten(2)
    return flat.gather(2, indices.flatten(2)).view_as(indices).to(x.dtype)


def _winner_pool(
    spikes: Tensor, trace: Tensor | None, indices: Callable[[Tensor], Tensor]
) -> tuple[Tensor, Tensor | None]:
    where = indices(_winner_key(spikes, trace))
    out_trace = None if trace is None else _gather_pooled(trace, where)
    return _gather_pooled(spikes, where), out_trace


def max_pool2d_winner(
    spikes: Tensor,
    trace: Tensor | None,
    kernel_size: Pair,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    ceil_mode: bool = False,
) -> tuple[Tensor, Tensor | None]:
    r"""Spiking max pooling: the spike and trace of each window's winner.

    The winner is the element that spiked (ties broken by the larger trace);
    when none spiked, the element with the largest trace.  With the key

    .. math:: \kappa = (x - \min x) + s\,(\max x - \min x + 1),

    every spiking element ranks above every silent one, so the winner is the
    arg-max of :math:`\kappa` in the window; the output spike is 1 when any
    element spiked.  Returns ``(spikes, trace)`` pooled (``trace`` ``None`` when
    not given; then the key is the spikes).
    """

    def indices(key: Tensor) -> Tensor:
        return F.max_pool2d(
            key, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True
        )[1]

    return _winner_pool(spikes, trace, indices)


def adaptive_max_pool2d_winner(
    spikes: Tensor, trace: Tensor | None, output_size: Pair
) -> tuple[Tensor, Tensor | None]:
    r"""Spiking adaptive max pooling to ``output_size``; winner rule of :func:`max_pool2d_winner`.

    Window :math:`i` of an axis of length :math:`H` pooled to :math:`H_{out}`
    covers :math:`[\lfloor iH/H_{out} \rfloor, \lceil (i+1)H/H_{out} \rceil)`.
    """

    def indices(key: Tensor) -> Tensor:
        return F.adaptive_max_pool2d(key, output_size, return_indices=True)[1]

    return _winner_pool(spikes, trace, indices)


def avg_pool2d(
    spikes: Tensor,
    trace: Tensor | None,
    kernel_size: Pair,
    stride: Pair,
    padding: Pair,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> tuple[Tensor, Tensor | None]:
    r"""Average pooling of spikes and trace (rates in [0, 1], not spikes).

    .. math:: y_{n,c,y,x} = \frac{1}{|\text{window}|} \sum_{(u,v) \in \text{window}(y,x)}
              s_{n,c,u,v}

    as :func:`torch.nn.functional.avg_pool2d` (``count_include_pad`` decides
    whether padding counts in :math:`|\text{window}|`); ``trace`` likewise.
    """
    args = (kernel_size, stride, padding, ceil_mode, count_include_pad)
    return F.avg_pool2d(spikes, *args), None if trace is None else F.avg_pool2d(trace, *args)


def avg_pool2d_window_sum(
    x: Tensor, kernel_size: Pair, stride: Pair, padding: Pair, ceil_mode: bool = False
) -> Tensor:
    r"""Sum of each pooling window (padding contributes nothing).

    .. math:: X_{n,c,y,x} = \sum_{(u,v) \in \text{window}(y,x)} x_{n,c,u,v}
    """
    return F.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, divisor_override=1)


# ---------------------------------------------------------------------------
# Sparse (only existing synapses, stored by presynaptic neuron)
# ---------------------------------------------------------------------------
def sparse_expand(pre_ptr: Tensor, units: Tensor) -> tuple[Tensor, Tensor]:
    r"""The synapses of presynaptic ``units`` in a CSR layout, and which unit each belongs to.

    Synapses are stored sorted by presynaptic neuron: those of neuron :math:`j`
    are ``pre_ptr[j] .. pre_ptr[j+1] - 1``.  Returns ``(synapses, owner)`` with
    ``owner[s]`` the position in ``units`` of synapse ``synapses[s]``; costs
    :math:`O(\sum_j \text{fan-out}_j)`.
    """
    starts = pre_ptr[units]
    counts = pre_ptr[units + 1] - starts
    owner = torch.repeat_interleave(torch.arange(units.numel(), device=units.device), counts)
    first = torch.cumsum(counts, 0) - counts  # position of each unit's first synapse
    synapses = torch.arange(owner.numel(), device=units.device) - first[owner] + starts[owner]
    return synapses, owner


def _sparse_scatter(
    samples: Tensor, synapses: Tensor, values: Tensor, post_index: Tensor, n: int, n_out: int
) -> Tensor:
    out = values.new_zeros(n * n_out)
    out.index_add_(0, samples * n_out + post_index[synapses], values)
    return out.view(n, n_out)


def sparse_propagate(
    spikes: Tensor, weight: Tensor, pre_ptr: Tensor, post_index: Tensor, n_out: int
) -> Tensor:
    r"""Event-driven propagation through the existing synapses only.

    .. math:: I_{b,i} = \sum_{s:\, \text{post}(s) = i} w_s\, x_{b,\text{pre}(s)}

    computed from the nonzero inputs: each active presynaptic neuron adds its
    outgoing weights (scaled by its value) to its targets, so the cost is
    :math:`O(\text{events} \times \text{fan-out})`, independent of the number of
    silent neurons.  ``spikes`` is ``(..., N_in)``; returns ``(..., N_out)``.
    """
    flat = spikes.reshape(-1, spikes.shape[-1])
    events = flat.nonzero()
    sample, unit = events.unbind(1)
    synapses, owner = sparse_expand(pre_ptr, unit)
    values = weight[synapses] * flat[sample, unit][owner]
    out = _sparse_scatter(sample[owner], synapses, values, post_index, flat.shape[0], n_out)
    return out.view(*spikes.shape[:-1], n_out)


def sparse_propagate_all(
    spikes: Tensor,
    weight: Tensor,
    pre_index: Tensor,
    post_index: Tensor,
    n_out: int,
    delay_steps: Tensor | None = None,
) -> Tensor:
    r"""Propagation through every existing synapse, differentiable in the inputs and weights.

    .. math:: I_{b,i} = \sum_{s:\, \text{post}(s) = i} w_s\, x_{b,\text{pre}(s)}(t - d_s)

    The same sum as :func:`sparse_propagate` (and :func:`sparse_propagate_delayed`
    when ``delay_steps`` is given: ``spikes`` is then the history
    ``(L, ..., N_in)`` by delay), over all synapses instead of the active
    inputs' (cost :math:`O(N S)`): the gradient with respect to a silent
    input, :math:`\sum_{s:\,\text{pre}(s) = j} w_s\, \partial L/\partial I_{\text{post}(s)}`,
    is not zero.  Used when the inputs require a gradient.
    """
    if delay_steps is None:
        flat = spikes.reshape(-1, spikes.shape[-1])
        values = flat.index_select(1, pre_index) * weight  # (N, S)
        lead = spikes.shape[:-1]
    else:
        flat = spikes.reshape(spikes.shape[0], -1, spikes.shape[-1])  # (L, N, in)
        values = flat[delay_steps, :, pre_index].t() * weight  # (N, S)
        lead = spikes.shape[1:-1]
    out = values.new_zeros(values.shape[0], n_out).index_add(1, post_index, values)
    return out.reshape(*lead, n_out)


def _padded_rows(starts: Tensor, counts: Tensor, width: int) -> tuple[Tensor, Tensor]:
    """CSR rows ``starts[i] .. starts[i] + counts[i] - 1`` as a ``(rows, width)`` table.

    Returns ``(position, valid)``; padded slots hold position 0.
    """
    slot = torch.arange(width, device=starts.device)
    valid = slot < counts.unsqueeze(1)
    return torch.where(valid, starts.unsqueeze(1) + slot, 0), valid


def fanout_table(
    pre_ptr: Tensor, post_index: Tensor, n_out: int, max_padding: float = 2.0
) -> tuple[Tensor, Tensor] | None:
    r"""The outgoing synapses of every presynaptic neuron as a padded table (ELL layout).

    Row :math:`j` holds the synapses of neuron :math:`j` (``synapse``) and
    their targets (``post``), padded to the largest fan-out :math:`F` with
    synapse 0 and the target ``n_out`` (a bin that is discarded), so that
    propagation is two gathers and one scatter with no per-step index
    arithmetic (:func:`sparse_propagate_table`).  Returns ``None`` when the
    table would hold more than ``max_padding`` times the synapses (a few hubs
    with a large fan-out), where the CSR path is cheaper.  Indices are
    ``int32`` when they fit.
    """
    counts = pre_ptr[1:] - pre_ptr[:-1]
    n_in, n_syn = counts.numel(), post_index.numel()
    width = int(counts.max()) if n_in else 0
    if n_in * width > max_padding * n_syn + n_in:
        return None
    synapse, valid = _padded_rows(pre_ptr[:-1], counts, width)
    post = torch.where(valid, post_index[synapse] if n_syn else 0, n_out)
    index_dtype = torch.int32 if max(n_syn, n_out + 1) < 2**31 else torch.int64
    return synapse.to(index_dtype), post.to(index_dtype)


def sparse_propagate_table(
    spikes: Tensor, weight: Tensor, synapse: Tensor, post: Tensor, n_out: int
) -> Tensor:
    r"""Event-driven propagation through a padded fan-out table (:func:`fanout_table`).

    .. math:: I_{b,i} = \sum_{s:\, \text{post}(s) = i} w_s\, x_{b,\text{pre}(s)}

    as :func:`sparse_propagate`, for the nonzero inputs only; each active
    presynaptic neuron costs one row of the table.  With no data-dependent
    index arithmetic, this form also compiles as one graph
    (:func:`pysnn.fusion.compile_step`).
    """
    flat = spikes.reshape(-1, spikes.shape[-1])
    n = flat.shape[0]
    sample, unit = flat.nonzero().unbind(1)
    values = weight[synapse[unit]] * flat[sample, unit].unsqueeze(1)
    target = post[unit] + (sample * (n_out + 1)).unsqueeze(1)
    out = values.new_zeros(n * (n_out + 1))
    out.index_add_(0, target.flatten(), values.flatten())
    return out.view(n, n_out + 1)[:, :n_out].reshape(*spikes.shape[:-1], n_out)


def sparse_propagate_delayed(
    history_by_delay: Tensor,
    weight: Tensor,
    pre_ptr: Tensor,
    post_index: Tensor,
    delay_steps: Tensor,
    n_out: int,
) -> Tensor:
    r"""Event-driven propagation with one delay per synapse.

    .. math:: I_{b,i} = \sum_{s:\, \text{post}(s) = i} w_s\, x_{b,\text{pre}(s)}(t - d_s)

    ``history_by_delay`` is ``(L, ..., N_in)`` with entry ``k`` the input of
    ``k`` steps ago; every nonzero entry ``(k, b, j)`` reaches the synapses of
    ``j`` whose delay is ``k``.  Cost :math:`O(L \cdot \text{events} \times
    \text{fan-out})` in the worst case.
    """
    length, n_in = history_by_delay.shape[0], history_by_delay.shape[-1]
    flat = history_by_delay.reshape(length, -1, n_in)
    n = flat.shape[1]
    events = flat.nonzero()
    age, sample, unit = events.unbind(1)
    synapses, owner = sparse_expand(pre_ptr, unit)
    keep = delay_steps[synapses] == age[owner]
    synapses, owner = synapses[keep], owner[keep]
    values = weight[synapses] * flat[age, sample, unit][owner]
    out = _sparse_scatter(sample[owner], synapses, values, post_index, n, n_out)
    return out.view(*history_by_delay.shape[1:-1], n_out)


def sparse_correlate(
    post: Tensor, pre: Tensor, pre_index: Tensor, post_index: Tensor, per_batch: bool
) -> Tensor:
    r"""Correlation at every existing synapse.

    .. math:: C_s = \sum_{b,\,p} y_{b,p,\text{post}(s)}\, x_{b,p,\text{pre}(s)}

    ``post`` is ``(B, ..., N_out)``, ``pre`` ``(B, ..., N_in)``; returns ``(S,)``
    or ``(B, S)`` when ``per_batch``.
    """
    batch = post.shape[0]
    y = post.reshape(batch, -1, post.shape[-1]).index_select(2, post_index)
    x = pre.reshape(batch, -1, pre.shape[-1]).index_select(2, pre_index)
    per_sample = (y * x).sum(1)
    return per_sample if per_batch else per_sample.sum(0)


def fanin_table(post_index: Tensor, n_out: int) -> tuple[Tensor, Tensor]:
    r"""The incoming synapses of every postsynaptic neuron as a padded table.

    Returns ``(synapse, valid)``, both ``(n_out, D)`` with :math:`D` the largest
    in-degree: row :math:`i` lists the synapses onto neuron :math:`i`
    (``valid``), padded by repeating the row's first synapse, so that a maximum
    or minimum over a row is that of the receptive field.  Rows of neurons
    without inputs are never read back.
    """
    n_syn = post_index.numel()
    counts = torch.bincount(post_index, minlength=n_out)
    width = int(counts.max()) if n_syn else 0
    by_post = torch.argsort(post_index, stable=True)  # synapses grouped by target, CSR
    position, valid = _padded_rows(torch.cumsum(counts, 0) - counts, counts, width)
    if not n_syn:
        return position, valid
    # padding repeats the row's first synapse (max/min over the row unchanged)
    first = position[:, :1].clamp(max=n_syn - 1)
    return by_post[torch.where(valid, position, first)], valid


def sparse_correlate_mapped(
    post: Tensor,
    pre: Tensor,
    pre_index: Tensor,
    fanin_synapse: Tensor,
    fanin_valid: Tensor,
    per_batch: bool,
    pre_map: PreMap,
) -> Tensor:
    r"""Correlation at every existing synapse of ``post`` with a function of each receptive field.

    .. math:: C_s = \sum_{b,\,p} y_{b,p,i}\, f\big(x_{b,p,RF(i)}\big)_{\text{pre}(s)},
              \qquad i = \text{post}(s)

    ``pre_map`` :math:`f` gets ``(B, P, D, N_out)``: the presynaptic values of
    each neuron's receptive field along dim -2 (padded as in
    :func:`fanin_table`), like the ``(B, in, P)`` layout of
    :func:`dense_correlate`.  Returns ``(S,)`` or ``(B, S)`` when ``per_batch``.
    """
    batch, n_out = post.shape[0], post.shape[-1]
    x = pre.reshape(batch, -1, pre.shape[-1])
    fields = x[..., pre_index[fanin_synapse]].transpose(-1, -2)  # (B, P, D, out)
    y = post.reshape(batch, -1, 1, n_out).to(fields.dtype)
    per_slot = (pre_map(fields) * y).sum(1).transpose(-1, -2)  # (B, out, D)
    out = per_slot.new_zeros(batch, pre_index.numel())
    out[:, fanin_synapse[fanin_valid]] = per_slot[:, fanin_valid]
    return out if per_batch else out.sum(0)


def sparse_correlate_delayed(
    post: Tensor,
    history: Tensor,
    pre_index: Tensor,
    post_index: Tensor,
    delay_steps: Tensor,
    per_batch: bool,
) -> Tensor:
    r"""Correlation at every synapse with its own delay.

    .. math:: C_s = \sum_{b,\,p} y_{b,p,\text{post}(s)}\, x_{b,p,\text{pre}(s)}(t - d_s)

    ``history`` is ``(L, B, ..., N_in)`` ordered by delay.
    """
    length, batch = history.shape[0], history.shape[1]
    hist = history.reshape(length, batch, -1, history.shape[-1])  # (L, B, P, in)
    x = hist[delay_steps, :, :, pre_index]  # (S, B, P)
    y = post.reshape(batch, -1, post.shape[-1]).index_select(2, post_index)  # (B, P, S)
    per_sample = (y * x.permute(1, 2, 0)).sum(1)
    return per_sample if per_batch else per_sample.sum(0)
