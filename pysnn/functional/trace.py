"""Spike traces: low-pass filtered spike trains read by learning rules."""

from __future__ import annotations

from pysnn.functional.integration import Scalar, Tensor, _add_scaled, _saturate, decay_factor


def linear_trace_update(
    trace: Tensor,
    spikes: Tensor,
    alpha_t: Scalar,
    trace_decay: Scalar,
    saturate: bool = False,
) -> Tensor:
    r"""Trace update with a fixed decay factor per step.

    Additive (all-to-all pairing):

    .. math:: x \leftarrow \lambda_t x + \alpha_t s

    Saturating (nearest-spike pairing): :math:`x \leftarrow \alpha_t` where
    :math:`s = 1`, else :math:`\lambda_t x`.

    Parameters
    ----------
    trace : Tensor
        Current trace :math:`x`.
    spikes : Tensor
        Spikes :math:`s` of this step (0/1, same shape as ``trace``).
    alpha_t : float or Tensor
        Trace increment per spike.
    trace_decay : float or Tensor
        Decay factor :math:`\lambda_t \in [0, 1]` per step.
    saturate : bool
        Saturating instead of additive trace.

    Returns
    -------
    Tensor
        New trace.
    """
    if saturate:
        return _saturate(trace * trace_decay, spikes, alpha_t)
    return _add_scaled(trace * trace_decay, alpha_t, spikes)


def euler_trace_update(
    trace: Tensor,
    spikes: Tensor,
    alpha_t: Scalar,
    tau_t: Scalar,
    dt: Scalar,
    saturate: bool = False,
) -> Tensor:
    r"""Forward-Euler trace update.

    .. math:: x \leftarrow x + \frac{\Delta t}{\tau_t}\left(-x + \alpha_t s\right)

    Saturating: :math:`x \leftarrow \alpha_t` where :math:`s = 1`, else
    :math:`x (1 - \Delta t / \tau_t)`.

    Parameters
    ----------
    trace, spikes : Tensor
        Current trace and spikes of this step.
    alpha_t : float or Tensor
        Spike amplitude.
    tau_t : float or Tensor
        Trace time constant in ms.
    dt : float or Tensor
        Timestep in ms.
    saturate : bool
        Saturating instead of additive trace.
    """
    if saturate:
        return _saturate(trace - (dt / tau_t) * trace, spikes, alpha_t)
    return trace + (dt / tau_t) * (alpha_t * spikes - trace)


def exact_trace_update(
    trace: Tensor,
    spikes: Tensor,
    alpha_t: Scalar,
    tau_t: Scalar,
    dt: Scalar,
    saturate: bool = False,
    decay: Tensor | None = None,
) -> Tensor:
    r"""Exact trace update: the spike is an instantaneous jump, decay is exact.

    .. math:: x \leftarrow x\, e^{-\Delta t/\tau_t} + \alpha_t s

    Saturating: :math:`x \leftarrow \alpha_t` where :math:`s = 1`, else
    :math:`x\, e^{-\Delta t/\tau_t}`.  With this update a spike at step
    :math:`t_0` leaves :math:`x(t) = \alpha_t e^{-(t - t_0)\Delta t/\tau_t}`,
    the trace assumed by pair-based STDP windows.  ``decay`` may pass a
    precomputed :math:`e^{-\Delta t/\tau_t}` (modules cache it).
    """
    if decay is None:
        decay = decay_factor(tau_t, dt, trace)
    return linear_trace_update(trace, spikes, alpha_t, decay, saturate)
