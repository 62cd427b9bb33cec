r"""Synapse models: the dynamics between a connection and a neuron.

A connection outputs the weighted spikes of each step; a synapse turns them
into the neuron's input current.  Without a synapse module the synapse is a
**delta** synapse: the weighted spikes are the current of that step.  A
synapse works between any connection and any neuron:

.. code-block:: python

    current, _ = fc(spikes, trace)         # weighted spikes, (B, N)
    lif(syn(current))                      # filtered current into the neuron

or in a network graph, ``net.add_layer("fc", fc, lif, pre, synapse=syn)``.

* delta (no module): :math:`I = x`;
* :class:`ExponentialSynapse`: :math:`I \leftarrow I e^{-\Delta t/\tau} + x` (state ``current``);
* :class:`AlphaSynapse`: the alpha kernel :math:`\tfrac{e}{\tau} t e^{-t/\tau}`, exact
  (state ``current``, ``rise``);
* :class:`ConductanceSynapse`: :math:`g \leftarrow g e^{-\Delta t/\tau} + x`,
  :math:`I = g (E_{rev} - v)` (state ``g``).

A conductance synapse needs the postsynaptic voltage: it is called as
``syn(x, neuron.v_cell)`` (the network's default step passes it, reading the
voltage at the start of the step).  Use one module per synapse type
(excitatory, inhibitory), each with its own time constant and reversal
potential, and give the neuron the list of their currents.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from pysnn import functional as sf
from pysnn.neuron.parameters import Param, StateVar
from pysnn.neuron.population import Population

Tensor = torch.Tensor

__all__ = ["ExponentialSynapse", "AlphaSynapse", "ConductanceSynapse"]


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


class AlphaSynapse(ExponentialSynapse):
    r"""Alpha-shaped synaptic current: rises after each spike and peaks ``tau_syn`` later.

    A unit input gives :math:`I(t) = \tfrac{e}{\tau} t\, e^{-t/\tau}` (peak 1 at
    :math:`t = \tau`), integrated exactly
    (:func:`pysnn.functional.alpha_current_update`).

    Parameters
    ----------
    cells_shape : tuple of int
        Shape of the postsynaptic population.
    tau_syn : float or Tensor
        Time to peak in ms (default 5).
    dt : float
        Timestep in ms.
    """

    state_vars: ClassVar[tuple[StateVar, ...]] = (StateVar("current"), StateVar("rise"))

    def forward(self, x: Tensor | list[Tensor]) -> Tensor:
        """Add this step's weighted spikes ``x``; return the current."""
        x = self._prepare_input(x)
        state = self._buffers
        current, rise = sf.alpha_current_update(
            state["current"],
            state["rise"],
            x,
            self.decay("tau_syn"),
            self.factor("tau_syn", sf.alpha_drive),
        )
        state["current"], state["rise"] = current, rise
        return current


class ConductanceSynapse(ExponentialSynapse):
    r"""Conductance-based synapse: :math:`g` decays with ``tau_syn``, the current is :math:`g (E - v)`.

    .. math:: g \leftarrow g\, e^{-\Delta t/\tau_{syn}} + x,\qquad I = g\,(E_{rev} - v)

    with :math:`x` the weighted spikes (conductance increments, in units of the
    neuron's leak conductance when the neuron has :math:`\alpha_v = 1`) and
    :math:`v` the postsynaptic voltage at the start of the step.

    Parameters
    ----------
    cells_shape : tuple of int
        Shape of the postsynaptic population.
    tau_syn : float or Tensor
        Conductance time constant in ms (default 5).
    e_rev : float or Tensor
        Reversal potential in mV (default 0, excitatory; e.g. -80 for inhibition).
    dt : float
        Timestep in ms.

    Examples
    --------
    >>> import torch
    >>> from pysnn.neuron import LIFNeuron
    >>> exc = ConductanceSynapse((100,), tau_syn=5.0, e_rev=0.0)
    >>> inh = ConductanceSynapse((100,), tau_syn=10.0, e_rev=-80.0)
    >>> lif = LIFNeuron((100,), thresh=-50.0, v_rest=-60.0, tau_v=20.0, integrator="exact")
    >>> v = lif.v_cell
    >>> spikes, _ = lif([exc(torch.rand(1, 100) * 0.1, v), inh(torch.zeros(1, 100), v)])
    >>> spikes.shape
    torch.Size([1, 100])
    """

    params: ClassVar[tuple[Param, ...]] = ExponentialSynapse.params + (
        Param("e_rev", 0.0, doc="reversal potential (mV)"),
    )
    state_vars: ClassVar[tuple[StateVar, ...]] = (StateVar("g"),)
    positional: ClassVar[tuple[str, ...]] = ("tau_syn", "e_rev", "dt")
    needs_voltage: ClassVar[bool] = True

    def forward(self, x: Tensor | list[Tensor], v: Tensor) -> Tensor:  # type: ignore[override]
        """Add this step's conductance increments ``x``; return the current at voltage ``v``."""
        total, features = self._sum_input(x)
        v = self._check_like_input("v", v, total)
        self._adopt_input(total, features)
        state = self._buffers
        g = sf.exponential_current_update(state["g"], total, self.decay("tau_syn"))
        state["g"] = g
        return sf.conductance_current(g, state["e_rev"], v)
