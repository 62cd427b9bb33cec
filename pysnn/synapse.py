r"""Synapse models: the dynamics between a connection and a neuron.

A connection outputs the weighted spikes of each step; a synapse turns them
into the neuron's input current.  Without a synapse module the synapse is a
**delta** synapse: the weighted spikes are the current of that step.  A
synapse works between any connection and any neuron:

.. code-block:: python

    current, _ = fc(spikes, trace)         # weighted spikes, (B, N)
    lif(syn(current))                      # filtered current into the neuron

or in a network graph, ``net.add_layer("fc", fc, lif, pre, synapse=syn)``.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from pysnn import functional as sf
from pysnn.neuron.parameters import Param, StateVar
from pysnn.neuron.population import Population

Tensor = torch.Tensor

__all__ = ["ExponentialSynapse"]


class ExponentialSynapse(Population):
    r"""Exponential current-based synapse: the current decays with ``tau_syn`` and jumps by the input.

    .. math:: I \leftarrow I\, e^{-\Delta t/\tau_{syn}} + x

    (exact; :func:`pysnn.functional.exponential_current_update`).  One synapse
    type per module: ``tau_syn`` is a number or one value per postsynaptic
    neuron; use one module per synapse type (e.g. excitatory and inhibitory)
    and sum the currents in the neuron.

    Parameters
    ----------
    cells_shape : tuple of int
        Shape of the postsynaptic population (the connection's output).
    tau_syn : float or Tensor
        Synaptic time constant in ms (default 5).
    dt : float
        Timestep in ms.

    Attributes
    ----------
    current : Tensor
        The current :math:`I`, ``(batch, *cells_shape)``.

    Examples
    --------
    >>> syn = ExponentialSynapse((100,), tau_syn=5.0, dt=1.0)
    >>> current = syn(torch.rand(8, 100))
    """

    params: ClassVar[tuple[Param, ...]] = (
        Param("tau_syn", 5.0, "time", doc="synaptic time constant (ms)"),
    )
    state_vars: ClassVar[tuple[StateVar, ...]] = (StateVar("current"),)
    options = ()
    positional: ClassVar[tuple[str, ...]] = ("tau_syn", "dt")
    fixed_integrator: ClassVar[str | None] = "exact"

    def forward(self, x: Tensor | list[Tensor]) -> Tensor:
        """Add this step's weighted spikes ``x`` (a tensor or a list, summed); return the current."""
        x = self._prepare_input(x)
        state = self._buffers
        current = sf.exponential_current_update(state["current"], x, self.decay("tau_syn"))
        state["current"] = current
        return current
