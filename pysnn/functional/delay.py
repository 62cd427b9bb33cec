"""Delay ring buffers: write the newest value, read the value of ``d`` steps ago."""

from __future__ import annotations

from typing import Union

import torch

Tensor = torch.Tensor
Scalar = Union[float, int, Tensor]


def delay_write(buffer: Tensor, head: int, x: Tensor) -> Tensor:
    r"""Write ``x`` into slot ``head`` of a ring buffer of shape ``(L, *x.shape)``.

    The buffer holds the last :math:`L` values; slot ``head`` holds the newest.
    Writes in place and returns ``buffer``.
    """
    buffer[head] = x
    return buffer


def delay_read(buffer: Tensor, head: int, delay: int) -> Tensor:
    r"""Read the value written ``delay`` steps ago from a ring buffer.

    .. math:: y(t) = x(t - d) = \text{buffer}[(h - d) \bmod L]

    with :math:`h` the slot of the newest value and :math:`0 \le d < L`.
    """
    return buffer[(head - delay) % buffer.shape[0]]


def delay_read_per_synapse(buffer: Tensor, head: int, delays: Tensor) -> Tensor:
    r"""Read a different delay for every synapse of a fully connected layer.

    .. math:: y_{b\ldots ij}(t) = x_{b\ldots j}(t - d_{ij})

    Parameters
    ----------
    buffer : Tensor
        Ring buffer ``(L, B, ..., in)`` of presynaptic values.
    head : int
        Slot of the newest value.
    delays : Tensor
        Integer delays ``(out, in)`` in steps, each in ``[0, L)``.

    Returns
    -------
    Tensor
        ``(B, ..., out, in)``: the value seen at every synapse.  This
        materialises one entry per batch element and synapse.
    """
    length = buffer.shape[0]
    slots = (head - delays) % length  # (out, in)
    hist = buffer.movedim(0, -1)  # (B, ..., in, L)
    lead = hist.shape[:-2]
    n_out, n_in = delays.shape
    hist = hist.unsqueeze(-3).expand(*lead, n_out, n_in, length)
    index = slots.view(*([1] * len(lead)), n_out, n_in, 1).expand(*lead, n_out, n_in, 1)
    return hist.gather(-1, index).squeeze(-1)


#: how a learnable delay between whole steps is spread over the ring buffer's taps
DELAY_INTERPOLATIONS = ("linear", "gaussian")


def delay_kernel(
    position: Tensor, length: int, interpolation: str = "linear", sigma: Scalar = 1.0
) -> Tensor:
    r"""Weights of the :math:`L` taps of a ring buffer for a continuous delay :math:`p` (steps).

    The input a synapse with delay :math:`p \in [0, L-1]` sees is
    :math:`\sum_k K_k(p)\, x(t - k)`.  ``"linear"`` interpolates between the
    two whole steps around :math:`p` (the hat function):

    .. math:: K_k(p) = \max\left(0,\ 1 - |k - p|\right),

    exactly the one-hot tap :math:`[k = p]` for a whole :math:`p`, with
    :math:`\partial K_k / \partial p = \mp 1` on the two taps
    :math:`\lfloor p \rfloor` and :math:`\lfloor p \rfloor + 1` (at a whole
    :math:`p`: the derivative towards longer delays).  ``"gaussian"`` spreads it over every tap,

    .. math:: K_k(p) = \frac{e^{-(k - p)^2 / 2\sigma^2}}{\sum_{k'} e^{-(k' - p)^2 / 2\sigma^2}},

    as the dilated convolution with learnable spacings (Khalfaoui-Hassani et
    al. 2023) that Hammouamri et al. (2023) use for delays: a wide
    :math:`\sigma` (in steps) lets a delay's gradient see spikes far from it;
    shrinking :math:`\sigma` during training approaches the one-hot tap.

    Parameters
    ----------
    position : Tensor
        Delays in steps, any shape ``S``, within ``[0, length - 1]``.
    length : int
        Number of taps :math:`L` (the ring buffer's ``d_max + 1``).
    interpolation : {"linear", "gaussian"}
        The kernel.
    sigma : float or Tensor
        Width of the Gaussian kernel in steps (> 0).

    Returns
    -------
    Tensor
        ``(*S, L)``: the weight of every tap, differentiable in ``position``.
    """
    taps = torch.arange(length, dtype=position.dtype, device=position.device)
    if interpolation == "linear":  # (1 - f) on tap n, f on tap n + 1, p = n + f
        low = position.detach().floor().unsqueeze(-1)
        frac = position.unsqueeze(-1) - low
        return (1.0 - frac) * (taps == low) + frac * (taps == low + 1)
    distance = taps - position.unsqueeze(-1)
    weights = torch.exp(-0.5 * (distance / sigma).square())
    return weights / weights.sum(-1, keepdim=True)
