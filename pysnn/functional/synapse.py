r"""Synaptic currents: the dynamics between a connection's output and a neuron's input.

A connection delivers the weighted spikes of a step, :math:`x = \sum_j W_{ij} s_j`.
The delta synapse passes :math:`x` on as the input current of the step; the
functions here filter it.

**Integrators.**  A spike is an impulse: it makes the synaptic variable jump by
:math:`x` at the start of the step that receives it, under every integrator.
Between jumps the variable decays, by the exact factor
:math:`\lambda = e^{-\Delta t/\tau}` (``"exact"``, :func:`decay_factor`) or by
the forward-Euler factor :math:`1 - \Delta t/\tau` (``"euler"``,
:func:`euler_decay_factor`), as Brian2's ``method="exact"`` and ``"euler"``
update a variable that ``on_pre`` increments.

**The membrane sees the current of the whole step.**  A LIF membrane
integrated exactly (:func:`~pysnn.functional.lif_exact_voltage_update`) holds
its input :math:`J` constant over the step.  A synaptic current decays during
the step, so the exact solution of the coupled linear system
(:math:`v` and :math:`I`, or :math:`v`, :math:`I` and :math:`h`) is obtained by
handing the membrane the constant current that moves it exactly as the
decaying current does, :math:`J = c_I I + c_h h`
(:func:`membrane_coupling`, :func:`alpha_membrane_coupling`).  This is the
matrix exponential of the linear system, as Brian2's ``method="exact"``
computes it, written in closed form.
"""

from __future__ import annotations

import math

import torch

from pysnn.functional.integration import (
    Scalar,
    Tensor,
    _add_scaled,
    _dt_over_tau,
    decay_factor,
)

__all__ = [
    "exponential_current_update",
    "held_current_update",
    "alpha_current_update",
    "alpha_drive",
    "alpha_euler_drive",
    "euler_decay_factor",
    "conductance_current",
    "membrane_coupling",
    "alpha_membrane_coupling",
    "coupled_current",
    "alpha_coupled_current",
    "held_coupled_current",
]


def exponential_current_update(current: Tensor, x: Tensor, decay: Scalar) -> Tensor:
    r"""Step of an exponentially decaying current that jumps by the weighted spikes.

    .. math::
        \tau_{syn} \dot I = -I + \tau_{syn} \sum_k x_k\, \delta(t - t_k)
        \quad\Longrightarrow\quad
        I \leftarrow a\, I + x

    with :math:`a = e^{-\Delta t/\tau_{syn}}` (exact, :func:`decay_factor`) or
    :math:`a = 1 - \Delta t/\tau_{syn}` (forward Euler, :func:`euler_decay_factor`).
    The result is the current at the start of the step, right after this step's
    jump.

    Parameters
    ----------
    current : Tensor
        Synaptic current :math:`I` of the previous step.
    x : Tensor
        Weighted spikes arriving in this step (the connection's output).
    decay : float or Tensor
        :math:`a`, scalar or per postsynaptic neuron.

    Returns
    -------
    Tensor
        New current.  A single unit jump at step :math:`t_0` leaves
        :math:`I_t = a^{t - t_0}` (exact: :math:`e^{-(t - t_0)\Delta t/\tau_{syn}}`).
    """
    return _add_scaled(x, decay, current)


def held_current_update(current: Tensor, x: Tensor, decay: Scalar) -> Tensor:
    r"""Step of a current driven by an input held constant over the step (NIR's ``CubaLIF``).

    .. math::
        \tau_{syn} \dot I = -I + x \quad\Longrightarrow\quad
        I \leftarrow x + (I - x)\, a

    with :math:`a = e^{-\Delta t/\tau_{syn}}` (exact for an input constant over
    the step) or :math:`a = 1 - \Delta t/\tau_{syn}` (forward Euler,
    :math:`I \leftarrow I + \tfrac{\Delta t}{\tau_{syn}}(x - I)`).  ``current`` is
    the value at the start of the step, the result the value at its end.
    """
    return _add_scaled(x, decay, current - x)


def alpha_current_update(
    current: Tensor, rise: Tensor, x: Tensor, decay: Scalar, drive: Scalar
) -> tuple[Tensor, Tensor]:
    r"""Step of an alpha-shaped current (peak :math:`x` at :math:`\tau_{syn}` after a spike).

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
    at :math:`t = \tau`.  Forward Euler of the same system is the same update
    with :math:`\lambda` replaced by :math:`1 - \Delta t/\tau` and the drive by
    :math:`e\,\Delta t/\tau` (:func:`alpha_euler_drive`):
    :math:`I \leftarrow I + \tfrac{\Delta t}{\tau}(-I + e\,h)`.

    Parameters
    ----------
    current, rise : Tensor
        :math:`I` and :math:`h` of the previous step.
    x : Tensor
        Weighted spikes arriving in this step.
    decay : float or Tensor
        :math:`\lambda = e^{-\Delta t/\tau}` (Euler: :math:`1 - \Delta t/\tau`).
    drive : float or Tensor
        :math:`\tfrac{e\,\Delta t}{\tau}\lambda` (Euler: :math:`e\,\Delta t/\tau`).

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


def alpha_euler_drive(tau: Scalar, dt: Scalar, like: Tensor | None = None) -> Tensor:
    r"""The forward-Euler drive :math:`e\,\Delta t/\tau` of :func:`alpha_current_update`."""
    out = _dt_over_tau(tau, dt, like) * math.e
    return out if like is None else out.to(like)


def euler_decay_factor(tau: Scalar, dt: Scalar, like: Tensor | None = None) -> Tensor:
    r"""Forward-Euler decay factor per step, :math:`1 - \Delta t/\tau`.

    Parameters as in :func:`~pysnn.functional.decay_factor` (``tau`` in ms,
    ``inf`` for no decay).  Stable (no sign flip) for :math:`\Delta t \le \tau`.
    """
    out = 1.0 - _dt_over_tau(tau, dt, like)
    return out if like is None else out.to(like)


def conductance_current(conductance: Tensor, e_rev: Scalar, v: Tensor) -> Tensor:
    r"""Current of a conductance with reversal potential :math:`E`: :math:`I = g\,(E - v)`.

    ``v`` is the postsynaptic voltage at the start of the step.  With :math:`g`
    in units of the leak conductance and :math:`\alpha_v = 1`, a LIF neuron then
    integrates :math:`\tau_m \dot v = -(v - v_{rest}) + \sum_s g_s (E_s - v)`.
    """
    return conductance * (e_rev - v)


# ---------------------------------------------------------------------------
# exact coupling of a decaying current to a LIF membrane
# ---------------------------------------------------------------------------
def _phi1(z: Tensor) -> Tensor:
    r""":math:`\varphi_1(z) = (e^z - 1)/z` for :math:`z \le 0` (1 at 0), accurate near 0."""
    safe = torch.where(z == 0, torch.ones_like(z), z)
    return torch.where(z == 0, torch.ones_like(z), torch.expm1(safe) / safe)


def _phi2(z: Tensor) -> Tensor:
    r""":math:`\varphi_2(z) = (e^z - 1 - z)/z^2` for :math:`z \le 0` (1/2 at 0).

    A Taylor series :math:`\sum_k z^k/(k+2)!` for :math:`|z| < 0.1` (the direct
    formula cancels there), the direct formula elsewhere.
    """
    small = z.abs() < 0.1
    zs = torch.where(small, z, torch.zeros_like(z))
    series = torch.zeros_like(z)
    term = torch.full_like(z, 0.5)  # z^0 / 2!
    for k in range(12):
        series = series + term
        term = term * zs / (k + 3)
    safe = torch.where(small, torch.ones_like(z), z)
    direct = (torch.expm1(safe) - safe) / (safe * safe)
    return torch.where(small, series, direct)


def _rates(tau_syn: Scalar, tau_mem: Scalar, dt: Scalar, like: Tensor | None):
    """``dt/tau_syn``, ``dt/tau_mem`` in float64, broadcast together (``inf`` tau: 0)."""
    device = None if like is None else like.device
    like64 = torch.empty(0, dtype=torch.float64, device=device)
    b = _dt_over_tau(tau_syn, dt, like64).to(torch.float64)
    a = _dt_over_tau(tau_mem, dt, like64).to(torch.float64)
    a, b = torch.broadcast_tensors(a, b.to(a.device))
    return a, b


def membrane_coupling(
    tau_syn: Scalar, tau_mem: Scalar, dt: Scalar, like: Tensor | None = None
) -> Tensor:
    r"""Factor :math:`c_I` that makes an exact LIF step see a decaying current exactly.

    Over one step the system

    .. math::
        \tau_m \dot v = -(v - v_{rest}) + \alpha_v I,\qquad \tau_s \dot I = -I

    moves the voltage from :math:`v_0` to

    .. math::
        v_{rest} + (v_0 - v_{rest})\,e^{-\Delta t/\tau_m} + \alpha_v \kappa I_0,\qquad
        \kappa = \frac{\tau_s}{\tau_s - \tau_m}
                 \left(e^{-\Delta t/\tau_s} - e^{-\Delta t/\tau_m}\right),

    which is :func:`~pysnn.functional.lif_exact_voltage_update` with the
    constant input :math:`J = c_I I_0`,

    .. math::
        c_I = \frac{\kappa}{1 - e^{-\Delta t/\tau_m}}
            = \frac{e^{-\Delta t \min(1/\tau_m, 1/\tau_s)}\,
                     \varphi_1\!\left(-\Delta t\,|1/\tau_m - 1/\tau_s|\right)}
                    {\varphi_1(-\Delta t/\tau_m)},\qquad
        \varphi_1(z) = \frac{e^z - 1}{z}.

    The second form is the one computed (in float64): it has no cancellation
    and covers :math:`\tau_s = \tau_m` (:math:`\kappa = \tfrac{\Delta t}{\tau}
    e^{-\Delta t/\tau}`), :math:`\tau_m = \infty` (an IF membrane,
    :math:`c_I = \varphi_1(-\Delta t/\tau_s)`, the mean of the current over the
    step) and :math:`\tau_s = \infty` (:math:`c_I = 1`).

    Parameters
    ----------
    tau_syn, tau_mem : float or Tensor
        Synaptic and membrane time constants in ms (``inf`` allowed), scalar or
        per neuron.
    dt : float
        Timestep in ms.
    like : Tensor, optional
        Return the factor in this tensor's dtype and device.

    Returns
    -------
    Tensor
        :math:`c_I`, broadcast over both time constants.
    """
    a, b = _rates(tau_syn, tau_mem, dt, like)
    out = torch.exp(-torch.minimum(a, b)) * _phi1(-(a - b).abs()) / _phi1(-a)
    return out if like is None else out.to(like)


def alpha_membrane_coupling(
    tau_syn: Scalar, tau_mem: Scalar, dt: Scalar, like: Tensor | None = None
) -> Tensor:
    r"""Factor :math:`c_h` of the rise :math:`h` of an alpha current seen by an exact LIF step.

    Over one step the alpha current of :func:`alpha_current_update` is
    :math:`I(s) = e^{-s/\tau_s}\left(I_0 + \tfrac{e}{\tau_s} h_0 s\right)`; its
    effect on an exact LIF step is that of the constant input
    :math:`J = c_I I_0 + c_h h_0` (:math:`c_I` from :func:`membrane_coupling`),

    .. math::
        c_h = \frac{e\,\Delta t}{\tau_s\,\varphi_1(-\Delta t/\tau_m)}
        \begin{cases}
            e^{-\Delta t/\tau_s}\,\varphi_2(z) & \tau_m \le \tau_s\\
            e^{-\Delta t/\tau_m}\,\left(\varphi_1(z) - \varphi_2(z)\right) & \tau_m > \tau_s
        \end{cases},\qquad z = -\Delta t\,|1/\tau_m - 1/\tau_s|,

    with :math:`\varphi_2(z) = (e^z - 1 - z)/z^2`, the closed form of
    :math:`\tfrac{e}{\tau_s \tau_m (1 - e^{-\Delta t/\tau_m})}
    \int_0^{\Delta t} e^{-(\Delta t - s)/\tau_m}\, s\, e^{-s/\tau_s}\,ds`.  Both
    branches give :math:`\tfrac{e \Delta t}{2\tau} e^{-\Delta t/\tau} / \varphi_1(-\Delta t/\tau)`
    at :math:`\tau_s = \tau_m = \tau`.  Parameters and return value as in
    :func:`membrane_coupling`.
    """
    a, b = _rates(tau_syn, tau_mem, dt, like)
    z = -(a - b).abs()
    faster_membrane = a >= b
    phi1, phi2 = _phi1(z), _phi2(z)
    integral = torch.where(
        faster_membrane, torch.exp(-b) * phi2, torch.exp(-a) * (phi1 - phi2)
    )  # (1/dt^2) * int_0^dt e^{-(dt-s)/tau_m} s e^{-s/tau_s} ds
    out = math.e * b * integral / _phi1(-a)
    return out if like is None else out.to(like)


def coupled_current(current: Tensor, coupling: Scalar) -> Tensor:
    r"""The constant input :math:`J = c_I I` of an exact LIF step fed by a decaying current.

    See :func:`membrane_coupling`; ``current`` is the current at the start of
    the step (after this step's jump).
    """
    return current * coupling


def alpha_coupled_current(
    current: Tensor, rise: Tensor, c_current: Scalar, c_rise: Scalar
) -> Tensor:
    r"""The constant input :math:`J = c_I I + c_h h` of an exact LIF step fed by an alpha current.

    See :func:`alpha_membrane_coupling`; ``current`` and ``rise`` are
    :math:`I` and :math:`h` at the start of the step (after this step's jump).
    """
    return _add_scaled(current * c_current, c_rise, rise)


def held_coupled_current(start: Tensor, x: Tensor, coupling: Scalar) -> Tensor:
    r"""The constant input :math:`J` of an exact LIF step fed by a held-input current.

    With the input :math:`x` held over the step (:func:`held_current_update`),
    the current is :math:`I(s) = x + (I_0 - x) e^{-s/\tau_s}` and the exact LIF
    step sees

    .. math:: J = x + c_I\,(I_0 - x)

    (:math:`c_I` from :func:`membrane_coupling`, :math:`I_0` = ``start``, the
    current at the start of the step): NIR's ``CubaLIF`` solved exactly.
    """
    return _add_scaled(x, coupling, start - x)
