r"""A non-spiking readout: a leaky integrator whose output is its voltage.

Networks trained by gradients usually read their answer from the membrane
voltage of non-spiking output units (Zenke & Vogels 2021; snnTorch's and
Norse's leaky integrators), e.g. the maximum or the mean over time of each
class unit's voltage:

.. math:: \tau_v \dot v = -(v - v_{rest}) + \alpha_v I,\qquad y = v

integrated as any declared linear variable (:class:`~pysnn.neuron.parameters.LinearODE`,
``integrator="exact"`` by default).  Its output (``spikes``) and its trace are
the voltage, graded values, so ``net.run(x)`` returns the readout's voltage of
every step, differentiable when the run records gradients.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import torch

from pysnn.neuron.parameters import LinearODE, Option, Param, StateVar
from pysnn.neuron.population import Population
from pysnn.neuron.validation import InputLike
from pysnn.validation import mark_valid

Tensor = torch.Tensor

__all__ = ["LeakyIntegrator"]


class LeakyIntegrator(Population):
    r"""Leaky integrator readout: :math:`\tau_v \dot v = -(v - v_{rest}) + \alpha_v I`, output :math:`v`.

    Parameters
    ----------
    cells_shape : tuple of int
        Per-sample shape, e.g. ``(10,)`` for ten class units.
    v_rest : float or Tensor
        Resting voltage (the initial value).
    alpha_v : float or Tensor
        Input scaling :math:`\alpha_v`.
    tau_v : float, Tensor or DecayFactor
        Time constant in ms (``inf``: a perfect integrator).
    dt : float
        Timestep in ms.
    integrator : {"exact", "euler", "impulse"}
        See :mod:`pysnn.functional.integration`.

    Examples
    --------
    >>> readout = LeakyIntegrator((10,), tau_v=20.0)
    >>> v, _ = readout(torch.ones(4, 10))     # the voltage after one step
    >>> v.shape
    torch.Size([4, 10])
    """

    params: ClassVar[tuple[Param, ...]] = (
        Param("v_rest", 0.0, doc="resting voltage"),
        Param("alpha_v", 1.0, doc="input scaling"),
        Param("tau_v", 20.0, "time", doc="time constant (ms)"),
    )
    state_vars: ClassVar[tuple[StateVar, ...]] = (
        StateVar("v_cell", "v_rest", ode=LinearODE(tau="tau_v", rest="v_rest", gain="alpha_v")),
        StateVar("spikes"),
        StateVar("trace"),
    )
    options: ClassVar[tuple[Option, ...]] = ()

    def _step(self, x: Tensor) -> Tensor:
        state = self._buffers
        (var,) = self.state_vars[:1]
        v = self._linear_update(var.ode, state["v_cell"], x)
        state["v_cell"] = state["spikes"] = state["trace"] = v
        return v

    def forward(self, x: InputLike) -> tuple[Tensor, Tensor]:
        """Advance one step with input ``x`` (a tensor or a list, summed); returns ``(v, v)``."""
        v = self._step(self._prepare_input(x))
        mark_valid(v)
        return v, v

    def advance_window(
        self, x: Tensor, record: Sequence[str] = ()
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """:meth:`forward_steps`, with the stacked ``record`` values (all of them are the voltage)."""
        window = self._prepare_window(x)
        values = torch.stack([self._step(current) for current in window])
        mark_valid(values)
        return values, values, {name: values for name in record}
