r"""Synaptic currents: the dynamics between a connection's output and a neuron's input.

A connection delivers the weighted spikes of a step, :math:`x = \sum_j W_{ij} s_j`.
The delta synapse passes :math:`x` on as the input current of the step; the
functions here filter it.
"""

from __future__ import annotations

from pysnn.functional.integration import Scalar, Tensor, _add_scaled

__all__ = ["exponential_current_update"]


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
