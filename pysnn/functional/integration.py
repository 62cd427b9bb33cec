r"""Shared pieces of the integrators: exact decay factors and small fused helpers.

Three integration schemes exist for a first-order ODE
:math:`\tau \dot y = -(y - y_\infty) + u`:

``"euler"``
    forward Euler, :math:`y \leftarrow y + \tfrac{\Delta t}{\tau}(-(y - y_\infty) + u)`;
    stable for :math:`\Delta t < 2\tau`.
``"exact"``
    exact solution over one step with the input held constant during the step,
    :math:`y \leftarrow y_\infty + u + (y - y_\infty - u)\,e^{-\Delta t/\tau}`.
    A LIF membrane fed by exponential or alpha current synapses that integrate
    ``"exact"`` too is advanced with the synaptic currents as one linear system,
    exactly: the synapse hands the membrane the constant input with the effect
    of its decaying current (:func:`pysnn.functional.membrane_coupling`).
``"impulse"``
    exact decay with the input of the step delivered as an instantaneous jump,
    :math:`y \leftarrow y_\infty + (y - y_\infty)\,e^{-\Delta t/\tau} + u`
    (the exact solution for delta-pulse input).  A decay factor
    :math:`\lambda` per step stands for :math:`\tau = -\Delta t / \ln \lambda`.

The names of PySNN 0.1 (``update_type``) are translated by :mod:`pysnn.compat`.
"""

from __future__ import annotations

from typing import Union

import torch

Tensor = torch.Tensor
Scalar = Union[float, int, Tensor]

__all__ = ["INTEGRATORS", "decay_factor", "exact_gain"]

#: integrator names; every time constant is in ms for each of them
INTEGRATORS = ("euler", "exact", "impulse")


def _gate(delta: Tensor, refrac_counts: Tensor | None) -> Tensor:
    """Multiply ``delta`` by ``[r = 0]``; ``refrac_counts=None`` means no neuron is refractory."""
    if refrac_counts is None:
        return delta
    return delta * (refrac_counts == 0)


def _add_scaled(base: Tensor, scale: Scalar, x: Tensor) -> Tensor:
    """``base + scale * x`` as one kernel (``addcmul``) instead of two."""
    if isinstance(scale, Tensor):
        return torch.addcmul(base, scale, x)
    return torch.add(base, x, alpha=scale)


def _saturate(trace: Tensor, spikes: Tensor, alpha_t: Scalar) -> Tensor:
    """Set the trace to ``alpha_t`` where a spike occurred ("nearest spike")."""
    alpha_t = torch.as_tensor(alpha_t, dtype=trace.dtype, device=trace.device)
    return torch.where(spikes > 0, alpha_t, trace)


def _dt_over_tau(tau: Scalar, dt: Scalar, like: Tensor | None = None) -> Tensor:
    r""":math:`\Delta t / \tau` in at least the precision of ``like`` (or the default dtype).

    ``torch.as_tensor`` of a Python float gives float32, which would lose
    precision for float64 states.
    """
    dtype = torch.get_default_dtype() if like is None else like.dtype
    dtype = torch.promote_types(dtype, torch.float32)
    device = like.device if like is not None else None
    if isinstance(tau, Tensor):
        dtype = torch.promote_types(dtype, tau.dtype)
        device = tau.device if device is None else device
    tau_t = torch.as_tensor(tau, dtype=dtype, device=device)
    return torch.as_tensor(dt, dtype=dtype, device=tau_t.device) / tau_t


def decay_factor(tau: Scalar, dt: Scalar, like: Tensor | None = None) -> Tensor:
    r"""Exact per-step decay factor of a first-order ODE.

    .. math:: \lambda = e^{-\Delta t / \tau}

    Parameters
    ----------
    tau : float or Tensor
        Time constant in ms (must be > 0).
    dt : float or Tensor
        Timestep in ms.
    like : Tensor, optional
        Return the factor in this tensor's dtype and device (computed in at
        least its precision).

    Returns
    -------
    Tensor
        :math:`\lambda`, broadcast over ``tau``.
    """
    out = torch.exp(-_dt_over_tau(tau, dt, like))
    return out if like is None else out.to(like)


def exact_gain(tau: Scalar, dt: Scalar, like: Tensor | None = None) -> Tensor:
    r"""Gain of an exact first-order step, :math:`1 - e^{-\Delta t/\tau}`.

    Computed as ``-expm1(-dt/tau)``, accurate also for :math:`\Delta t \ll \tau`.
    Parameters as in :func:`decay_factor`.
    """
    out = -torch.expm1(-_dt_over_tau(tau, dt, like))
    return out if like is None else out.to(like)
