r"""Counter-based random numbers: a pure function of (key, counter), the same on every device.

A stateful generator (``torch.Generator``) gives a stream whose values depend
on how many were drawn before, on which device and in which order.  A
*counter-based* generator instead computes each value from a key and a counter,

.. math:: r = \mathrm{mix}(k + (c + 1)\,\gamma) \bmod 2^{64},

so any value can be regenerated at any time, on any device, by any process,
without drawing the others (the idea of Salmon et al. 2011, "Parallel random
numbers: as easy as 1, 2, 3", SC'11; GeNN's procedural connectivity uses it to
regenerate synapses when a spike is delivered).  Here :math:`\mathrm{mix}` is
the finaliser of SplitMix64 (Steele, Lea & Flood 2014, "Fast splittable
pseudorandom number generators", OOPSLA'14):

.. math::
    z &\leftarrow (z \oplus (z \gg 30)) \cdot \mathtt{0xBF58476D1CE4E5B9}\\
    z &\leftarrow (z \oplus (z \gg 27)) \cdot \mathtt{0x94D049BB133111EB}\\
    z &\leftarrow z \oplus (z \gg 31)

with :math:`\gamma = \mathtt{0x9E3779B97F4A7C15}`, all arithmetic modulo
:math:`2^{64}` and :math:`\gg` a logical shift.  It is written with int64
tensor operations (two's-complement wrap-around, logical shifts as an
arithmetic shift and a mask), so the integers are bit for bit the same on CPU
and CUDA; ``tests/functional/test_counter.py`` checks them against the same
function on Python integers.  Keys for nested streams (a seed, then a
presynaptic neuron, then a block of synapses) come from :func:`derive_key`.

The conversions to numbers are exact integer arithmetic too, except the
normal deviates (:func:`bits_to_normal`: a logarithm, a square root and a
cosine in float64, whose last bit may differ between devices' math libraries).
"""

from __future__ import annotations

import math
from typing import Union

import torch

Tensor = torch.Tensor
IntLike = Union[int, Tensor]

__all__ = [
    "GOLDEN_GAMMA",
    "NORMAL_BOUND",
    "bits_to_index",
    "bits_to_normal",
    "bits_to_uniform",
    "counter_bits",
    "derive_key",
    "poisson_from_uniform",
    "splitmix64",
]


def _signed(value: int) -> int:
    """An unsigned 64-bit constant as the int64 with the same bits."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


#: :math:`\gamma`, the SplitMix64 increment (the odd integer nearest :math:`2^{64}/\varphi`)
GOLDEN_GAMMA = _signed(0x9E3779B97F4A7C15)
_MUL1 = _signed(0xBF58476D1CE4E5B9)
_MUL2 = _signed(0x94D049BB133111EB)
#: the largest :math:`|z|` of :func:`bits_to_normal`: :math:`\sqrt{-2 \ln 2^{-32}}`
NORMAL_BOUND = math.sqrt(-2.0 * math.log(2.0**-32))


def _shift_right(z: Tensor, bits: int) -> Tensor:
    """Logical right shift of int64 values (``>>`` on int64 is arithmetic)."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def _mix_(z: Tensor) -> Tensor:
    """:func:`splitmix64` in place on a tensor the caller owns (half the memory traffic)."""
    for bits, multiplier in ((30, _MUL1), (27, _MUL2)):
        shifted = z >> bits
        shifted &= (1 << (64 - bits)) - 1
        z ^= shifted
        z *= multiplier
    shifted = z >> 31
    shifted &= (1 << 33) - 1
    z ^= shifted
    return z


def splitmix64(z: Tensor) -> Tensor:
    r"""The SplitMix64 finaliser of int64 values (a bijection of the 64-bit integers).

    .. math:: \mathrm{mix}(z):\; z \leftarrow (z \oplus z \gg 30) m_1;\;
              z \leftarrow (z \oplus z \gg 27) m_2;\; z \oplus z \gg 31

    modulo :math:`2^{64}`, returned as the int64 with the same bits (a new tensor).
    """
    return _mix_(torch.as_tensor(z, dtype=torch.int64).clone())


def derive_key(key: IntLike, index: IntLike) -> Tensor:
    r"""The key of sub-stream ``index`` of the stream ``key``.

    .. math:: k' = \mathrm{mix}\big(k \oplus \mathrm{mix}((i + 1)\,\gamma)\big)

    ``key`` and ``index`` are ints or int64 tensors (broadcast).  Chaining
    gives nested streams: ``derive_key(derive_key(seed, neuron), block)``.
    """
    key = torch.as_tensor(key, dtype=torch.int64)
    index = torch.as_tensor(index, dtype=torch.int64)
    mixed = _mix_((index + 1) * GOLDEN_GAMMA)
    return _mix_(mixed ^ key)


def counter_bits(key: IntLike, counter: IntLike) -> Tensor:
    r"""64 random bits for every ``(key, counter)``: :math:`\mathrm{mix}(k + (c + 1)\gamma)`.

    Broadcasts ``key`` against ``counter`` (int64 tensors or ints).
    """
    key = torch.as_tensor(key, dtype=torch.int64)
    counter = torch.as_tensor(counter, dtype=torch.int64)
    return _mix_((counter + 1) * GOLDEN_GAMMA + key)


def bits_to_uniform(bits: Tensor) -> Tensor:
    r"""Uniform float64 in :math:`[0, 1)` from the top 53 bits: :math:`u = (r \gg 11)\, 2^{-53}`."""
    return _shift_right(bits, 11).to(torch.float64) * 2.0**-53


def bits_to_index(bits: Tensor, n: IntLike) -> Tensor:
    r"""Uniform integers in :math:`[0, n)` by multiply-shift: :math:`\lfloor (r \gg 32)\, n / 2^{32} \rfloor`.

    Exact integer arithmetic for :math:`n < 2^{31}` (the product stays below
    :math:`2^{63}`); the bias is below :math:`n / 2^{32}`.
    """
    return (_shift_right(bits, 32) * torch.as_tensor(n, dtype=torch.int64)) >> 32


def bits_to_normal(bits: Tensor) -> Tensor:
    r"""A standard normal float64 per value, by Box and Muller from the two 32-bit halves.

    .. math:: z = \sqrt{-2 \ln u_1}\, \cos(2 \pi u_2),\quad
              u_1 = (r_{hi} + 1)\, 2^{-32} \in (0, 1],\; u_2 = r_{lo}\, 2^{-32}

    so :math:`|z| \le` :data:`NORMAL_BOUND` :math:`\approx 6.66` (the tails
    beyond are cut: probability :math:`2.7 \times 10^{-11}`).
    """
    hi = _shift_right(bits, 32).to(torch.float64)
    lo = (bits & 0xFFFFFFFF).to(torch.float64)
    u1 = (hi + 1.0) * 2.0**-32
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * math.pi * 2.0**-32) * lo)


def poisson_from_uniform(u: Tensor, cdf: Tensor) -> Tensor:
    r"""Poisson counts by inversion: :math:`n = \#\{k : F(k) \le u\}`.

    ``u`` is uniform in :math:`[0, 1)`; ``cdf`` the cumulative probabilities
    :math:`F(0), \ldots, F(K)` of the Poisson law, ``(K + 1, ...)``
    broadcasting against ``u`` along the trailing dimensions (one law for
    all, or one per neuron: ``(K + 1, N)`` for ``u`` ``(..., N)``).  Counts
    above :math:`K` are cut at :math:`K + 1` (choose :math:`K` with
    :math:`1 - F(K)` negligible).  One comparison per value and count, up to
    the largest count drawn.  Returns int64 counts shaped like ``u``.
    """
    counts = torch.zeros(u.shape, dtype=torch.int64, device=u.device)
    if u.numel() == 0:
        return counts
    largest = float(u.max())
    lowest = cdf.reshape(cdf.shape[0], -1).amin(1).tolist()  # one sync for all levels
    for level, low in zip(cdf, lowest):
        if low > largest:  # no value reaches this level (nor the next)
            break
        counts += u >= level
    return counts
