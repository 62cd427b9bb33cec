"""Neuron equations: voltages, adaptive thresholds, spikes, reset and refractoriness."""

from __future__ import annotations

import torch

from pysnn.functional.integration import (
    Scalar,
    Tensor,
    _add_scaled,
    _gate,
    decay_factor,
    exact_gain,
)
from pysnn.functional.surrogate import Surrogate, spike

RESET_MODES = ("rest", "subtract")


def if_voltage_update(
    v: Tensor, x: Tensor, alpha_v: Scalar, refrac_counts: Tensor | None
) -> Tensor:
    r"""Integrate-and-fire voltage update (no leak).

    .. math:: v \leftarrow v + \alpha_v I\,[r=0]

    Parameters
    ----------
    v : Tensor
        Current voltage.
    x : Tensor
        Summed input :math:`I`.
    alpha_v : float or Tensor
        Input scaling.
    refrac_counts : Tensor or None
        Refractory steps left (from the previous step); ``None`` when no
        neuron can be refractory (skips the gating).
    """
    return v + _gate(alpha_v * x, refrac_counts)


def lif_linear_voltage_update(
    v: Tensor,
    v_rest: Scalar,
    x: Tensor,
    alpha_v: Scalar,
    v_decay: Scalar,
    refrac_counts: Tensor | None,
) -> Tensor:
    r"""Leaky integrate-and-fire update with a decay factor per step.

    .. math:: v \leftarrow v_{rest} + \left((v - v_{rest})\lambda_v + \alpha_v I\right)[r=0]

    A refractory neuron is clamped to :math:`v_{rest}` (PySNN 0.1 behaviour).
    Without refractory gating it is computed as
    :math:`\lambda_v v + (1 - \lambda_v) v_{rest} + \alpha_v I` (two kernels
    on the population; the same bits as :math:`\lambda_v v + \alpha_v I` when
    :math:`v_{rest} = 0`).
    """
    if refrac_counts is None and isinstance(v_decay, Tensor):
        leak_target = v_rest * (1 - v_decay)  # parameter-sized, not population-sized
        return _add_scaled(torch.addcmul(leak_target, v, v_decay), alpha_v, x)
    return v_rest + _gate(_add_scaled((v - v_rest) * v_decay, alpha_v, x), refrac_counts)


def lif_euler_voltage_update(
    v: Tensor,
    v_rest: Scalar,
    x: Tensor,
    alpha_v: Scalar,
    tau_v: Scalar,
    dt: Scalar,
    refrac_counts: Tensor | None,
) -> Tensor:
    r"""Forward-Euler step of the LIF ODE :math:`\tau_v \dot v = -(v - v_{rest}) + \alpha_v I`.

    .. math::
        v \leftarrow v + \frac{\Delta t}{\tau_v}\left(-(v - v_{rest}) + \alpha_v I\right)[r=0]

    Stable for :math:`\Delta t < 2\tau_v`; use :func:`lif_exact_voltage_update`
    for large steps.
    """
    return v + _gate((dt / tau_v) * (alpha_v * x - (v - v_rest)), refrac_counts)


def lif_exact_voltage_update(
    v: Tensor,
    v_rest: Scalar,
    x: Tensor,
    alpha_v: Scalar,
    tau_v: Scalar,
    dt: Scalar,
    refrac_counts: Tensor | None,
    gain: Tensor | None = None,
) -> Tensor:
    r"""Exact step of the LIF ODE with the input held constant during the step.

    .. math::
        v_\infty = v_{rest} + \alpha_v I,\qquad
        v \leftarrow v + \left(v_\infty - v\right)\left(1 - e^{-\Delta t/\tau_v}\right)[r=0]

    Exact for any :math:`\Delta t`; converges to the Euler update as
    :math:`\Delta t/\tau_v \to 0`.  ``gain`` may pass a precomputed
    :math:`1 - e^{-\Delta t/\tau_v}` (modules cache it).
    """
    if gain is None:
        gain = exact_gain(tau_v, dt, v)
    return v + _gate((v_rest + alpha_v * x - v) * gain, refrac_counts)


def fede_voltage_update(
    v: Tensor,
    v_rest: Scalar,
    x: Tensor,
    pre_trace: Tensor,
    alpha_v: Scalar,
    tau_v: Scalar,
    dt: Scalar,
    refrac_counts: Tensor | None,
) -> Tensor:
    r"""Voltage update of Paredes-Vallés et al. (TPAMI 2019).

    .. math::
        v \leftarrow v + \frac{\Delta t}{\tau_v}\left(-(v - v_{rest})
        + \alpha_v \left(I - X\right)\right)[r=0]

    where :math:`I = \sum_j W_{ij} s_j` is the synaptic input and
    :math:`X = \sum_j x_j` the sum of the presynaptic traces in the receptive
    field of the neuron (already summed; see
    :meth:`pysnn.connection.Connection.receptive_field_sum`).
    """
    drive = alpha_v * (x - pre_trace) - (v - v_rest)
    return v + _gate((dt / tau_v) * drive, refrac_counts)


def izhikevich_update(
    v: Tensor,
    u: Tensor,
    x: Tensor,
    a: Scalar,
    b: Scalar,
    alpha_v: Scalar,
    dt: Scalar,
    refrac_counts: Tensor | None,
) -> tuple[Tensor, Tensor]:
    r"""Forward-Euler step of the Izhikevich (2003) model (v in mV, t in ms).

    .. math::
        v &\leftarrow v + \Delta t\left(0.04 v^2 + 5 v + 140 - u + \alpha_v I\right)[r=0]\\
        u &\leftarrow u + \Delta t\, a\,(b v - u)

    The recovery variable :math:`u` uses the voltage of the previous step.
    Spike and reset (:math:`v \leftarrow c`, :math:`u \leftarrow u + d` where
    :math:`v \ge v_{peak}`) are applied by the neuron.

    Returns
    -------
    tuple of Tensor
        New ``(v, u)``.
    """
    dv = 0.04 * v * v + 5.0 * v + 140.0 - u + alpha_v * x
    v_new = v + _gate(dt * dv, refrac_counts)
    u_new = u + dt * a * (b * v - u)
    return v_new, u_new


# ---------------------------------------------------------------------------
# Thresholds
# ---------------------------------------------------------------------------
def linear_thresh_update(
    thresh: Tensor,
    thresh_base: Scalar,
    spikes: Tensor,
    alpha_thresh: Scalar,
    thresh_decay: Scalar,
) -> Tensor:
    r"""Adaptive threshold with a decay factor, relaxing to its base value.

    .. math:: \theta \leftarrow \theta_0 + \lambda_\theta(\theta - \theta_0) + \alpha_\theta s
    """
    return thresh_base + (thresh - thresh_base) * thresh_decay + alpha_thresh * spikes


def euler_thresh_update(
    thresh: Tensor,
    thresh_base: Scalar,
    spikes: Tensor,
    alpha_thresh: Scalar,
    tau_thresh: Scalar,
    dt: Scalar,
) -> Tensor:
    r"""Forward-Euler adaptive threshold, relaxing to its base value.

    .. math::
        \theta \leftarrow \theta + \frac{\Delta t}{\tau_\theta}
        \left(-(\theta - \theta_0) + \alpha_\theta s\right)
    """
    return thresh + (dt / tau_thresh) * (alpha_thresh * spikes - (thresh - thresh_base))


def exact_thresh_update(
    thresh: Tensor,
    thresh_base: Scalar,
    spikes: Tensor,
    alpha_thresh: Scalar,
    tau_thresh: Scalar,
    dt: Scalar,
    decay: Tensor | None = None,
) -> Tensor:
    r"""Adaptive threshold with exact decay and a jump of :math:`\alpha_\theta` per spike.

    .. math:: \theta \leftarrow \theta_0 + (\theta - \theta_0)e^{-\Delta t/\tau_\theta} + \alpha_\theta s

    ``decay`` may pass a precomputed :math:`e^{-\Delta t/\tau_\theta}`.
    """
    if decay is None:
        decay = decay_factor(tau_thresh, dt, thresh)
    return linear_thresh_update(thresh, thresh_base, spikes, alpha_thresh, decay)


# ---------------------------------------------------------------------------
# Spiking, reset, refractoriness
# ---------------------------------------------------------------------------
def spike_mask(v: Tensor, thresh: Scalar, refrac_counts: Tensor | None = None) -> Tensor:
    r"""Boolean spikes where the voltage reaches the threshold: :math:`[v \ge \theta]`.

    With ``refrac_counts`` (refractory steps left from the previous step) a
    refractory neuron cannot spike: :math:`s = [v \ge \theta]\,[r=0]`.  This
    matters for ``reset="subtract"``, where the voltage kept after a reset may
    still be above the threshold.
    """
    fired = v >= thresh
    if refrac_counts is not None:
        fired &= refrac_counts == 0
    return fired


def spike_fn(v: Tensor, thresh: Scalar, refrac_counts: Tensor | None = None) -> Tensor:
    r"""Spikes as 0/1 values in the dtype of ``v``; see :func:`spike_mask`."""
    return spike_mask(v, thresh, refrac_counts).to(dtype=v.dtype)


def fire(
    v: Tensor,
    thresh: Scalar,
    refrac_counts: Tensor | None = None,
    surrogate: Surrogate | None = None,
) -> tuple[Tensor | None, Tensor]:
    r"""The threshold crossing of every spiking neuron: ``(fired, spikes)``.

    .. math:: s = H(v - \theta)\,[r=0],\qquad
              \frac{\partial s}{\partial v} = -\frac{\partial s}{\partial \theta}
              := \sigma'(v - \theta)\,[r=0]

    ``fired`` is the boolean mask :math:`[v \ge \theta][r=0]`
    (:func:`spike_mask`), ``spikes`` the same as 0/1 values in the dtype of
    ``v``.  When autograd records (gradients enabled and ``v`` or
    ``thresh`` requiring them) the spikes come from
    :func:`~pysnn.functional.surrogate.spike` with the ``surrogate``
    derivative :math:`\sigma'` (see :mod:`pysnn.functional.surrogate`; the
    default is the fast sigmoid), and ``fired`` is ``None`` unless
    ``refrac_counts`` is given (nothing else needs the mask then); so they do,
    with or without autograd, for a ``surrogate`` with ``smooth=True`` (the
    surrogate-smoothed model).  Otherwise the spikes are the mask converted,
    with no autograd bookkeeping at all.
    """
    if (surrogate is not None and surrogate.smooth) or (
        torch.is_grad_enabled()
        and (v.requires_grad or (isinstance(thresh, Tensor) and thresh.requires_grad))
    ):
        spikes = spike(v - thresh, surrogate or Surrogate())
        if refrac_counts is None:
            return None, spikes
        free = refrac_counts == 0
        return spike_mask(v, thresh) & free, spikes * free
    fired = spike_mask(v, thresh, refrac_counts)
    return fired, fired.to(dtype=v.dtype)


def reset_voltage(
    v: Tensor,
    spikes: Tensor,
    v_rest: Scalar,
    thresh: Scalar,
    mode: str = "rest",
    detach: bool | None = None,
) -> Tensor:
    r"""Reset the voltage of the neurons that spiked.

    ``mode="rest"``: :math:`v \leftarrow v_{rest}` where :math:`s=1`.
    ``mode="subtract"``: :math:`v \leftarrow v - (\theta - v_{rest})` where
    :math:`s=1`, which keeps the overshoot above threshold.  ``spikes`` may be
    0/1 values or a boolean mask.

    With ``detach`` given (``True`` or ``False``: surrogate spikes, see
    :func:`fire`) the reset is arithmetic, so that it is differentiable in the
    spikes (and defined for the smooth spikes of the surrogate-smoothed model):

    .. math:: v \leftarrow v - s\,(v - v_{rest})\ \text{(rest)},\qquad
              v \leftarrow v - s\,(\theta - v_{rest})\ \text{(subtract)}

    equal to the above for :math:`s \in \{0, 1\}`; ``detach=True`` takes
    :math:`s` as a constant there (no gradient through the reset, as in
    Zenke & Vogels 2021).
    """
    if detach is not None:
        s = spikes.detach() if detach else spikes
        if mode == "rest":
            return v - s * (v - v_rest)
        return v - s * (thresh - v_rest)
    if mode == "rest":
        fired = spikes if spikes.dtype == torch.bool else spikes > 0
        return torch.where(fired, v_rest, v)
    return v - spikes * (thresh - v_rest)


def duration_to_steps(
    duration: Scalar, dt: float, name: str = "duration", rtol: float = 1e-6
) -> Tensor:
    r"""Convert a duration in ms (refractory period, delay) to whole timesteps.

    .. math:: n = \mathrm{round}(t / \Delta t)

    Raises a :class:`ValueError` naming ``name`` unless :math:`t/\Delta t` is
    a non-negative number within ``rtol`` (relative) of an integer, so
    ``dt=0.1, duration=0.3`` gives 3 steps although ``0.3 % 0.1 != 0`` in
    floating point.

    Returns
    -------
    Tensor
        Integer (``int64``) number of steps, same shape as ``duration``.
    """
    ratio = torch.as_tensor(duration).to(torch.float64) / float(dt)
    if not bool(torch.isfinite(ratio).all()) or bool((ratio < 0).any()):
        raise ValueError(f"{name} must be a finite number >= 0 ms, got {duration}")
    steps = torch.round(ratio)
    tol = rtol * torch.clamp(steps.abs(), min=1.0)
    if bool(((ratio - steps).abs() > tol).any()):
        raise ValueError(f"{name} ({duration} ms) must be a whole number of timesteps dt={dt} ms")
    return steps.to(torch.int64)


def refractory_update(refrac_counts: Tensor, spikes: Tensor, n_steps: Tensor | int) -> Tensor:
    r"""Count down the refractory period and start a new one on each spike.

    .. math:: r \leftarrow \max(r - 1, 0) + n\,s

    A neuron that spikes at step :math:`t` integrates no input during steps
    :math:`t+1 \dots t+n`.
    """
    return (refrac_counts - 1).clamp_(min=0) + spikes.to(refrac_counts.dtype) * n_steps


def adex_update(
    v: Tensor,
    w: Tensor,
    x: Tensor,
    v_rest: Scalar,
    c_m: Scalar,
    g_l: Scalar,
    v_t: Scalar,
    delta_t: Scalar,
    a: Scalar,
    tau_w: Scalar,
    alpha_v: Scalar,
    dt: Scalar,
    refrac_counts: Tensor | None,
) -> tuple[Tensor, Tensor]:
    r"""Forward-Euler step of the adaptive exponential integrate-and-fire model.

    Brette & Gerstner (2005), with :math:`E_L` = ``v_rest``:

    .. math::
        C \dot v &= -g_L (v - E_L) + g_L \Delta_T\, e^{(v - V_T)/\Delta_T} - w + \alpha_v I\\
        \tau_w \dot w &= a (v - E_L) - w

    .. math::
        v &\leftarrow v + \frac{\Delta t}{C}\left(-g_L (v - E_L)
            + g_L \Delta_T e^{(v - V_T)/\Delta_T} - w + \alpha_v I\right)[r=0]\\
        w &\leftarrow w + \frac{\Delta t}{\tau_w}\left(a (v - E_L) - w\right)

    Both right-hand sides use the values of the previous step.  Units: v in
    mV, :math:`C` in pF, :math:`g_L` and :math:`a` in nS, :math:`w` and
    :math:`\alpha_v I` in pA, times in ms (pA/pF = mV/ms).  Spike
    (:math:`v \ge v_{peak}`) and reset (:math:`v \leftarrow V_r`,
    :math:`w \leftarrow w + b`) are applied by the neuron.

    Returns
    -------
    tuple of Tensor
        New ``(v, w)``.
    """
    leak = v - v_rest
    spike_current = (g_l * delta_t) * torch.exp((v - v_t) / delta_t)
    dv = (dt / c_m) * (spike_current - g_l * leak - w + alpha_v * x)
    v_new = v + _gate(dv, refrac_counts)
    w_new = w + (dt / tau_w) * (a * leak - w)
    return v_new, w_new
