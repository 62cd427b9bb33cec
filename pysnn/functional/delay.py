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
