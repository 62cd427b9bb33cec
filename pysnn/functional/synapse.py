r"""Synaptic currents: the dynamics between a connection's output and a neuron's input.

A connection delivers the weighted spikes of a step, :math:`x = \sum_j W_{ij} s_j`.
The delta synapse passes :math:`x` on as the input current of the step; the
functions here filter it.
"""

from __future__ import annotations

import math

from pysnn.functional.integration import Scalar, Tensor, _add_scaled, decay_factor

__all__ = [
    "exponential_current_update",
    "alpha_current_update",
    "alpha_drive",
    "conductance_current",
]


def exponential_current_update(current: Tensor, x: Tensor, decay: Scalar) -> Tensor:
    r"""Exact step of an exponentially decaying current that jumps by the weighted spikes.

    .. math::
        \tau_{syn} \dot I = -I + \tau_{syn} \sum_k x_k\, \delta(t - t_k)
        \quad\Longrightarrow\quad
        I \leftarrow I\, e^{-\Delta t/\tau_{syn}} + x

    Parameters
    ----------
    current : Tensor
        Synaptic current :math:`I` of the previous step.
    x : Tensor
        Weighted spikes arriving in this step (the connection's output).
    decay : float or Tensor
        :math:`e^{-\Delta t/\tau_{syn}}`, scalar or per postsynaptic neuron.

    Returns
    -------
    Tensor
        New current.  A single unit jump at step :math:`t_0` leaves
        :math:`I(t) = e^{-(t - t_0)\Delta t/\tau_{syn}}`.
    """
    return _add_scaled(x, decay, current)


def alpha_current_update(
    current: Tensor, rise: Tensor, x: Tensor, decay: Scalar, drive: Scalar
) -> tuple[Tensor, Tensor]:
    r"""Exact step of an alpha-shaped current (peak :math:`x` at :math:`\tau_{syn}` after a spike).

    The current is the impulse response :math:`\alpha(t) = \tfrac{e}{\tau} t\, e^{-t/\tau}`
    of the system

    .. math::
        \tau \dot h = -h + \tau \sum_k x_k\, \delta(t - t_k),\qquad
        \tau \dot I = -I + e\, h,

    whose exact discrete step over :math:`\Delta t` (with :math:`\lambda = e^{-\Delta t/\tau}`,
    the input of the step entering :math:`h` at its end) is

    .. math::
        I \leftarrow \lambda I + \frac{e\,\Delta t}{\tau} \lambda\, h,\qquad
        h \leftarrow \lambda h + x.

    A unit input at step 0 gives :math:`I_k = \tfrac{e}{\tau} k\Delta t\,
    e^{-k\Delta t/\tau}`: exact samples of :math:`\alpha`, 0 at the spike, peak 1
    at :math:`t = \tau`.

    Parameters
    ----------
    current, rise : Tensor
        :math:`I` and :math:`h` of the previous step.
    x : Tensor
        Weighted spikes arriving in this step.
    decay : float or Tensor
        :math:`\lambda = e^{-\Delta t/\tau}`.
    drive : float or Tensor
        :math:`\tfrac{e\,\Delta t}{\tau}\lambda`.

    Returns
    -------
    tuple of Tensor
        New ``(current, rise)``.
    """
    new_current = _add_scaled(current * decay, drive, rise)
    return new_current, _add_scaled(x, decay, rise)


def alpha_drive(tau: Scalar, dt: Scalar, like: Tensor | None = None) -> Tensor:
    r"""The factor :math:`\tfrac{e\,\Delta t}{\tau} e^{-\Delta t/\tau}` of :func:`alpha_current_update`."""
    return decay_factor(tau, dt, like) * (math.e * dt) / tau


def conductance_current(conductance: Tensor, e_rev: Scalar, v: Tensor) -> Tensor:
    r"""Current of a conductance with reversal potential :math:`E`: :math:`I = g\,(E - v)`.

    ``v`` is the postsynaptic voltage at the start of the step.  With :math:`g`
    in units of the leak conductance and :math:`\alpha_v = 1`, a LIF neuron then
    integrates :math:`\tau_m \dot v = -(v - v_{rest}) + \sum_s g_s (E_s - v)`.
    """
    return conductance * (e_rev - v)
