"""Integrate-and-fire and leaky integrate-and-fire neurons."""

from __future__ import annotations

from typing import ClassVar

import torch

from pysnn.neuron.parameters import LinearODE, Param, StateVar
from pysnn.neuron.spiking import NEURON_PARAMS, SPIKE_STATE, BaseNeuron

Tensor = torch.Tensor

__all__ = ["IFNeuron", "LIFNeuron"]


class IFNeuron(BaseNeuron):
    r"""Integrate-and-fire neuron.

    .. math:: v \leftarrow v + \alpha_v I\,[r=0]

    See :class:`~pysnn.neuron.BaseNeuron` for the parameters (there is no ``tau_v``).
    The model is its declaration: a voltage without leak, held while refractory.
    """

    state_vars: ClassVar[tuple[StateVar, ...]] = (
        StateVar("v_cell", "v_rest", refractory="hold", ode=LinearODE(gain="alpha_v")),
    ) + SPIKE_STATE


class LIFNeuron(BaseNeuron):
    r"""Leaky integrate-and-fire neuron, :math:`\tau_v \dot v = -(v - v_{rest}) + \alpha_v I`.

    .. math::
        \text{exact:}\quad & v \leftarrow v + (v_{rest} + \alpha_v I - v)
            (1 - e^{-\Delta t/\tau_v})[r=0]\\
        \text{impulse:}\quad & v \leftarrow v_{rest} + ((v - v_{rest})e^{-\Delta t/\tau_v}
            + \alpha_v I)[r=0]\\
        \text{euler:}\quad & v \leftarrow v + \tfrac{\Delta t}{\tau_v}
            (-(v - v_{rest}) + \alpha_v I)[r=0]

    The default integrator is ``"exact"``: a constant input current :math:`I`
    drives the voltage to :math:`v_{rest} + \alpha_v I`, so a weight is the
    steady-state voltage its input holds (under ``"impulse"`` a weight is the
    voltage jump of one input spike).

    Parameters
    ----------
    tau_v : float, Tensor or DecayFactor
        Membrane time constant :math:`\tau_v` in ms (default 20).

    Notes
    -----
    See :class:`~pysnn.neuron.BaseNeuron` for the other parameters.

    Examples
    --------
    >>> lif = LIFNeuron((400,), thresh=1.0, v_rest=0.0, alpha_v=0.3, alpha_t=1.0,
    ...                 dt=1.0, duration_refrac=2.0, tau_v=20.0, tau_t=20.0,
    ...                 integrator="exact")
    >>> spikes, trace = lif(torch.rand(8, 400))
    """

    params: ClassVar[tuple[Param, ...]] = NEURON_PARAMS + (
        Param("tau_v", 20.0, "time", doc="membrane time constant (ms)"),
    )
    #: the model is its ODE, integrated by the population (no integrate() of its own)
    state_vars: ClassVar[tuple[StateVar, ...]] = (
        StateVar(
            "v_cell",
            "v_rest",
            refractory="hold",
            ode=LinearODE(tau="tau_v", rest="v_rest", gain="alpha_v"),
        ),
    ) + SPIKE_STATE
