r"""Backpropagation through time of a window of linear spiking neurons, as two linear recurrences.

A population whose voltage obeys a declared linear ODE advances, per step
:math:`t = 1 \dots T` of a window (see :class:`~pysnn.neuron.BaseNeuron`),

.. math::

    h_t &= a\, v_{t-1} + b\, x_t + c
          && \text{(the integrator's affine step)}\\
    \hat h_t &= f_t\, h_t + (1 - f_t)\, v_{t-1}
          && f_t = [r_t = 0]\ \text{(held while refractory)}\\
    s_t &= H(\hat h_t - \theta)\, f_t\\
    v_t &= \hat h_t - s_t\,(\hat h_t - v_r)\ \text{(rest)}\quad\text{or}\quad
          \hat h_t - s_t\,(\theta - v_r)\ \text{(subtract)}\\
    y_t &= \lambda_t\, y_{t-1} + \alpha\, s_t
          && \text{(trace; saturating: } \lambda_t = \lambda\,[s_t = 0],\ \alpha = 0
          \text{ for the derivative)}

With the surrogate :math:`\sigma'` for :math:`\partial s_t / \partial \hat h_t`
(:mod:`pysnn.functional.surrogate`), the adjoints :math:`\bar z = \partial L / \partial z`
follow backwards in time from the gradients of the outputs
(:math:`\partial L/\partial s_t`, :math:`\partial L/\partial y_t`, and of the
final state):

.. math::

    \bar y_t &= \frac{\partial L}{\partial y_t} + \lambda_{t+1}\, \bar y_{t+1}\\
    \bar s_t^{\,ext} &= \frac{\partial L}{\partial s_t} + \alpha\, \bar y_t\\
    \bar{\hat h}_t &= \underbrace{\bar s_t^{\,ext}\, \sigma'_t f_t}_{\beta_t}
        + \underbrace{\left(\frac{\partial v_t}{\partial \hat h_t}
        + \frac{\partial v_t}{\partial s_t}\, \sigma'_t f_t\right)}_{\gamma_t}\, \bar v_t\\
    \bar v_{t-1} &= m_t\, \bar{\hat h}_t,\qquad m_t = a f_t + (1 - f_t),\qquad
    \bar h_t = f_t\, \bar{\hat h}_t

(:math:`\partial v_t/\partial s_t` is 0 with a detached reset), two linear
recurrences of **one or two operations per step**; everything else
(:math:`\sigma'`, :math:`\beta`, :math:`\gamma`, and the gradients of the input
:math:`\bar x_t = b\, \bar h_t` and of the parameters) is computed for the
whole window at once.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from pysnn.functional.integration import Scalar, Tensor
from pysnn.functional.surrogate import Surrogate

__all__ = ["WindowAdjoint", "spiking_window_adjoint"]


class WindowAdjoint(NamedTuple):
    """The adjoints of :func:`spiking_window_adjoint`, each ``[T, ...]`` unless named otherwise."""

    #: :math:`\bar h_t`, of the integrator's output
    grad_h: Tensor
    #: :math:`\bar s_t^{\,ext}`, of the spikes other than through the reset
    grad_spikes: Tensor | None
    #: :math:`\bar v_t`, of the voltage after the reset
    grad_v: Tensor
    #: :math:`\bar y_t`, of the trace (``None`` when no gradient reaches it)
    grad_trace: Tensor | None
    #: of the voltage before the window, ``[...]``
    grad_v0: Tensor
    #: of the trace before the window, ``[...]`` (``None`` when none reaches it)
    grad_trace0: Tensor | None


def spiking_window_adjoint(
    grad_spikes: Tensor | None,
    grad_traces: Tensor | None,
    grad_v_end: Tensor | None,
    voltage: Tensor,
    spikes: Tensor,
    free: Tensor | None,
    decay: Scalar,
    thresh: Scalar,
    v_reset: Scalar,
    surrogate: Surrogate,
    reset: str,
    detach_reset: bool,
    trace_decay: Scalar,
    trace_gain: Scalar,
    saturating: bool,
) -> WindowAdjoint:
    r"""The adjoints of a window of linear spiking neurons (see the module docstring).

    Parameters
    ----------
    grad_spikes, grad_traces : Tensor or None
        :math:`\partial L/\partial s_t` and :math:`\partial L/\partial y_t`,
        ``[T, ...]`` (``None``: zero).
    grad_v_end : Tensor or None
        :math:`\partial L/\partial v_T` of the voltage after the window.
    voltage : Tensor
        :math:`\hat h_t`, the voltage before the reset of every step.
    spikes : Tensor
        :math:`s_t` (0/1, or the smooth spikes of a smoothed surrogate).
    free : Tensor or None
        :math:`f_t` as bool (``None``: no refractory period).
    decay : float or Tensor
        :math:`a = \partial h_t / \partial v_{t-1}`.
    thresh, v_reset : float or Tensor
        :math:`\theta` and :math:`v_r`.
    surrogate : Surrogate
        The surrogate derivative :math:`\sigma'`.
    reset : {"rest", "subtract"}
        The reset mode.
    detach_reset : bool
        No gradient through the reset's :math:`s_t`.
    trace_decay, trace_gain : float or Tensor
        :math:`\lambda` and :math:`\alpha` of the trace (additive), as
        :math:`\partial y_t/\partial y_{t-1}` and :math:`\partial y_t/\partial s_t`.
    saturating : bool
        Saturating trace (:math:`y_t = \alpha` where :math:`s_t = 1`).
    """
    # every [T, ...] intermediate below is computed in place where the math allows: a
    # fresh window-sized tensor costs more (allocation, first touch) than its arithmetic
    steps = voltage.shape[0]
    slope = surrogate.derivative_(voltage - thresh)  # sigma'_t
    if free is not None:
        slope.mul_(free)
    # the trace: ybar_t = dL/dy_t + lambda_{t+1} ybar_{t+1}
    grad_trace = grad_trace0 = None
    if grad_traces is not None:
        grad_trace = torch.empty_like(grad_traces)
        grad_trace[steps - 1] = grad_traces[steps - 1]
        # lambda_t; the saturating trace is where(s > 0, alpha, lambda y): no gradient through s
        factor = trace_decay * (spikes <= 0) if saturating else trace_decay
        for t in range(steps - 1, 0, -1):
            torch.addcmul(
                grad_traces[t - 1],
                grad_trace[t],
                factor[t] if saturating else factor,
                out=grad_trace[t - 1],
            )
        grad_trace0 = grad_trace[0] * (factor[0] if saturating else factor)
    external = grad_spikes
    if grad_trace is not None and not saturating:
        external = (
            grad_trace * trace_gain if external is None else external + grad_trace * trace_gain
        )
    # gamma_t = dv/dh + dv/ds sigma'_t f_t ; beta_t = sbar_ext sigma'_t f_t
    if reset == "rest":  # 1 - s_t - (h_t - v_r) sigma'_t f_t
        if detach_reset:
            gamma = torch.rsub(spikes, 1.0)
        else:
            gamma = torch.sub(voltage, v_reset).mul_(slope).neg_().add_(1.0).sub_(spikes)
    elif detach_reset:  # subtract: 1 - (theta - v_r) sigma'_t f_t
        gamma = torch.ones_like(voltage)
    else:
        gamma = torch.mul(slope, v_reset - thresh).add_(1.0)
    # beta_t, in the memory of sigma'_t (not needed any more)
    grad_hat = slope.zero_() if external is None else slope.mul_(external)
    # m_t = a f_t + (1 - f_t): vbar_{t-1} = m_t hbar_t
    factor = decay if free is None else torch.where(free, decay, torch.ones_like(voltage))
    grad_v = torch.empty_like(voltage)
    if grad_v_end is None:
        grad_v[steps - 1].zero_()
    else:
        grad_v[steps - 1] = grad_v_end
    for t in range(steps - 1, 0, -1):
        hat = grad_hat[t].addcmul_(gamma[t], grad_v[t])  # hbar_t = beta_t + gamma_t vbar_t
        torch.mul(hat, factor if free is None else factor[t], out=grad_v[t - 1])
    hat = grad_hat[0].addcmul_(gamma[0], grad_v[0])
    grad_v0 = hat * (factor if free is None else factor[0])
    grad_h = grad_hat if free is None else grad_hat.mul_(free)
    return WindowAdjoint(grad_h, external, grad_v, grad_trace, grad_v0, grad_trace0)
