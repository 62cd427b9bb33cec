r"""Surrogate gradients: the spike as a Heaviside step with a smooth derivative.

A spike is :math:`s = H(u)` with :math:`u = v - \theta` and :math:`H` the
Heaviside step (:math:`H(u) = 1` for :math:`u \ge 0`).  Its derivative is zero
almost everywhere, so backpropagation through time replaces it by a
*surrogate* :math:`\sigma'(u)` (Neftci, Mostafa & Zenke 2019): the forward
pass keeps the exact 0/1 spikes, the backward pass uses

.. math:: \frac{\partial s}{\partial u} := \sigma'(u).

Each surrogate is the derivative of a smooth step :math:`\sigma` (its
*primitive*), with a slope :math:`\beta` (or :math:`\alpha`) that sets how
sharply it peaks at the threshold (units: one over the voltage unit):

``"fast_sigmoid"``
    :math:`\sigma(u) = \tfrac12\left(1 + \frac{\beta u}{1 + \beta|u|}\right)`,
    :math:`\sigma'(u) = \frac{\beta}{2\,(1 + \beta|u|)^2}` (a step from 0 to 1,
    unit area; SpikingJelly's ``SoftSign``).
``"superspike"``
    :math:`\sigma(u) = \frac{u}{1 + \beta|u|}`,
    :math:`\sigma'(u) = \frac{1}{(1 + \beta|u|)^2}` (peak 1; Zenke & Ganguli
    2018, snnTorch's ``fast_sigmoid``, Norse's ``"super"``).
``"arctan"``
    :math:`\sigma(u) = \tfrac12 + \tfrac1\pi\arctan\left(\tfrac{\pi}{2}\alpha u\right)`,
    :math:`\sigma'(u) = \frac{\alpha/2}{1 + (\pi\alpha u/2)^2}` (unit area;
    Fang et al. 2021, SpikingJelly's and snnTorch's ``ATan``).

:func:`spike` applies the step with the surrogate derivative.  A surrogate
built with ``smooth=True`` makes the forward pass the primitive itself,
:math:`s = \sigma(u)`, with the same derivative: the *surrogate-smoothed*
model, whose gradient the surrogate gradient is, and which finite
differences can check.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

Tensor = torch.Tensor

__all__ = ["SURROGATES", "Surrogate", "SpikeFunction", "as_surrogate", "spike"]

#: surrogate names and their default slopes
SURROGATES = {"fast_sigmoid": 10.0, "superspike": 10.0, "arctan": 2.0}


class Surrogate(NamedTuple):
    r"""A surrogate derivative of the spike: its kind and slope (see the module docstring)."""

    #: ``"fast_sigmoid"``, ``"superspike"`` or ``"arctan"``: the smooth step
    #: whose derivative replaces the Heaviside's
    kind: str = "fast_sigmoid"
    #: :math:`\beta` (fast sigmoid, SuperSpike) or :math:`\alpha` (arctan), in
    #: one over the voltage unit; > 0
    slope: float = SURROGATES["fast_sigmoid"]
    #: the forward pass returns the smooth step :math:`\sigma(u)` instead of
    #: :math:`H(u)` (the surrogate-smoothed model, for checks by finite differences)
    smooth: bool = False

    def derivative(self, u: Tensor) -> Tensor:
        r""":math:`\sigma'(u)`, the surrogate of :math:`\partial H(u) / \partial u`."""
        return self.derivative_(u.clone())

    def derivative_(self, u: Tensor) -> Tensor:
        r""":meth:`derivative` computed in place in ``u`` (returned).

        One allocation fewer per operation: over a window of steps (``[T, ...]``
        tensors, :mod:`pysnn.functional.bptt`) fresh intermediates cost more
        than the arithmetic.
        """
        slope = self.slope
        if self.kind == "arctan":  # (alpha/2) / (1 + (pi alpha u / 2)^2)
            return u.mul_(0.5 * math.pi * slope).square_().add_(1.0).reciprocal_().mul_(0.5 * slope)
        # fast sigmoid: (beta/2) / (1 + beta |u|)^2; SuperSpike: 1 / (1 + beta |u|)^2
        u.abs_().mul_(slope).add_(1.0).square_().reciprocal_()
        return u.mul_(0.5 * slope) if self.kind == "fast_sigmoid" else u

    def primitive(self, u: Tensor) -> Tensor:
        r"""The smooth step :math:`\sigma(u)` whose derivative is :meth:`derivative`."""
        slope = self.slope
        if self.kind == "fast_sigmoid":
            return 0.5 + 0.5 * slope * u / (1.0 + slope * u.abs())
        if self.kind == "superspike":
            return u / (1.0 + slope * u.abs())
        return 0.5 + torch.atan(0.5 * math.pi * slope * u) / math.pi


def as_surrogate(value: Any, name: str = "surrogate") -> Surrogate:
    """A :class:`Surrogate` from a name (its default slope), a ``(name, slope)`` pair or itself.

    Raises
    ------
    ValueError
        For an unknown kind or a slope that is not a positive finite number.
    TypeError
        For anything else.
    """
    if isinstance(value, Surrogate):
        kind, slope, smooth = value
    elif isinstance(value, str):
        kind, slope, smooth = value, SURROGATES.get(value, 1.0), False
    elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        (kind, slope), smooth = value, False
    else:
        raise TypeError(
            f"{name} must be one of {tuple(SURROGATES)}, a (name, slope) pair or a Surrogate, "
            f"got {value!r}"
        )
    if kind not in SURROGATES:
        raise ValueError(f"{name} must be one of {tuple(SURROGATES)}, got {kind!r}")
    if isinstance(slope, bool) or not isinstance(slope, (int, float)):
        raise TypeError(f"{name}: slope must be a number, got {type(slope).__name__}")
    if not (math.isfinite(slope) and slope > 0):
        raise ValueError(f"{name}: slope must be a positive finite number, got {slope}")
    return Surrogate(kind, float(slope), bool(smooth))


class SpikeFunction(torch.autograd.Function):
    r"""Heaviside step forward, surrogate derivative backward.

    .. math::
        s = H(u) = [u \ge 0],\qquad
        \frac{\partial L}{\partial u} = \frac{\partial L}{\partial s}\,\sigma'(u)

    (``surrogate.smooth``: :math:`s = \sigma(u)`, same backward).
    """

    @staticmethod
    def forward(ctx: Any, u: Tensor, surrogate: Surrogate) -> Tensor:
        """:math:`H(u)` (or :math:`\\sigma(u)` when ``surrogate.smooth``); keeps ``u``."""
        ctx.save_for_backward(u)
        ctx.surrogate = surrogate
        if surrogate.smooth:
            return surrogate.primitive(u)
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        """:math:`\\partial L/\\partial u = \\partial L/\\partial s\\,\\sigma'(u)`."""
        (u,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(u), None


def spike(u: Tensor, surrogate: Surrogate) -> Tensor:
    r"""Spikes :math:`H(u)` (0/1 in the dtype of ``u``) with the surrogate derivative :math:`\sigma'(u)`.

    Parameters
    ----------
    u : Tensor
        Distance to the threshold, :math:`u = v - \theta`.
    surrogate : Surrogate
        The derivative used by backpropagation (see :class:`Surrogate`).
    """
    return SpikeFunction.apply(u, surrogate)
