r"""Functional core of PySNN: every state update, written once, as a pure function.

Each function takes the current state and returns the new state; none of them
modifies its arguments.  The modules in :mod:`pysnn.neuron` and
:mod:`pysnn.connection` are thin wrappers that keep the state in buffers and call
these functions once per timestep.

Notation used in the docstrings (all per neuron, per batch element):

* :math:`I` summed synaptic input (arbitrary units, scaled by :math:`\alpha_v`),
* :math:`s \in \{0, 1\}` spike of the current step,
* :math:`v` membrane voltage, :math:`v_{rest}` resting voltage,
* :math:`x` spike trace, :math:`\theta` firing threshold,
* :math:`r` refractory counter in whole timesteps, :math:`[r=0]` is 1 when the
  neuron is not refractory,
* :math:`\lambda \in [0, 1]` decay factor per step ("linear" updates),
* :math:`\tau` time constant and :math:`\Delta t` timestep, both in ms.

Three ``update_type`` families exist:

``"linear"``
    multiply by a decay factor :math:`\lambda` per step (PySNN 0.1 behaviour),
``"exponential"``
    forward-Euler step of the ODE :math:`\tau \dot y = -(y - y_\infty) + u`
    (PySNN 0.1 behaviour),
``"exact"``
    exact solution of the same ODE over one step with the input held constant
    during the step: :math:`y \leftarrow y_\infty + u + (y - y_\infty - u)\,
    e^{-\Delta t/\tau}`.
"""

from __future__ import annotations

from typing import Union

import torch

Tensor = torch.Tensor
Scalar = Union[float, int, Tensor]

__all__ = [
    "UPDATE_TYPES",
    "RESET_MODES",
    "decay_factor",
    "exact_gain",
    "linear_trace_update",
    "exponential_trace_update",
    "exact_trace_update",
    "trace_update",
    "if_voltage_update",
    "lif_linear_voltage_update",
    "lif_exponential_voltage_update",
    "lif_exact_voltage_update",
    "lif_voltage_update",
    "fede_voltage_update",
    "izhikevich_update",
    "linear_thresh_update",
    "exponential_thresh_update",
    "exact_thresh_update",
    "thresh_update",
    "spike_mask",
    "spike_fn",
    "reset_voltage",
    "duration_to_steps",
    "refractory_update",
    "delay_write",
    "delay_read",
    "delay_read_per_synapse",
]

UPDATE_TYPES = ("linear", "exponential", "exact")
RESET_MODES = ("rest", "subtract")


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


# ---------------------------------------------------------------------------
# Traces
# ---------------------------------------------------------------------------
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


def exponential_trace_update(
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


def trace_update(
    update_type: str,
    trace: Tensor,
    spikes: Tensor,
    alpha_t: Scalar,
    tau_t: Scalar,
    dt: Scalar,
    saturate: bool = False,
    decay: Tensor | None = None,
) -> Tensor:
    r"""Dispatch to the trace update of ``update_type``.

    For ``"linear"``, ``tau_t`` is the decay factor :math:`\lambda_t`;
    ``decay`` is the optional precomputed factor of ``"exact"``.
    """
    if update_type == "linear":
        return linear_trace_update(trace, spikes, alpha_t, tau_t, saturate)
    if update_type == "exponential":
        return exponential_trace_update(trace, spikes, alpha_t, tau_t, dt, saturate)
    return exact_trace_update(trace, spikes, alpha_t, tau_t, dt, saturate, decay)


# ---------------------------------------------------------------------------
# Voltages
# ---------------------------------------------------------------------------
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


def lif_exponential_voltage_update(
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


def lif_voltage_update(
    update_type: str,
    v: Tensor,
    v_rest: Scalar,
    x: Tensor,
    alpha_v: Scalar,
    tau_v: Scalar,
    dt: Scalar,
    refrac_counts: Tensor | None,
    gain: Tensor | None = None,
) -> Tensor:
    r"""Dispatch to the LIF update of ``update_type`` (``tau_v`` is :math:`\lambda_v` for "linear").

    ``gain`` is the optional precomputed factor of ``"exact"``.
    """
    if update_type == "linear":
        return lif_linear_voltage_update(v, v_rest, x, alpha_v, tau_v, refrac_counts)
    if update_type == "exponential":
        return lif_exponential_voltage_update(v, v_rest, x, alpha_v, tau_v, dt, refrac_counts)
    return lif_exact_voltage_update(v, v_rest, x, alpha_v, tau_v, dt, refrac_counts, gain)


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


def exponential_thresh_update(
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


def thresh_update(
    update_type: str,
    thresh: Tensor,
    thresh_base: Scalar,
    spikes: Tensor,
    alpha_thresh: Scalar,
    tau_thresh: Scalar,
    dt: Scalar,
    decay: Tensor | None = None,
) -> Tensor:
    r"""Dispatch to the threshold update of ``update_type`` (``tau_thresh`` is :math:`\lambda_\theta` for "linear").

    ``decay`` is the optional precomputed factor of ``"exact"``.
    """
    if update_type == "linear":
        return linear_thresh_update(thresh, thresh_base, spikes, alpha_thresh, tau_thresh)
    if update_type == "exponential":
        return exponential_thresh_update(thresh, thresh_base, spikes, alpha_thresh, tau_thresh, dt)
    return exact_thresh_update(thresh, thresh_base, spikes, alpha_thresh, tau_thresh, dt, decay)


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


def reset_voltage(
    v: Tensor, spikes: Tensor, v_rest: Scalar, thresh: Scalar, mode: str = "rest"
) -> Tensor:
    r"""Reset the voltage of the neurons that spiked.

    ``mode="rest"``: :math:`v \leftarrow v_{rest}` where :math:`s=1`.
    ``mode="subtract"``: :math:`v \leftarrow v - (\theta - v_{rest})` where
    :math:`s=1`, which keeps the overshoot above threshold.  ``spikes`` may be
    0/1 values or a boolean mask.
    """
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


# ---------------------------------------------------------------------------
# Delay ring buffers
# ---------------------------------------------------------------------------
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
