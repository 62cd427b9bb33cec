r"""Neuron populations: a generic population plus one small file per model.

One call is one timestep.  A neuron takes its input current as one tensor or a
list of tensors (summed), updates its state and returns ``(spikes, trace)``.
After each step ``.spikes``, ``.trace`` and ``.v_cell`` hold the new state.

Each model declares its parameters, state variables and options once
(:mod:`pysnn.neuron.parameters`); the generic
:class:`~pysnn.neuron.population.Population` registers the buffers, allocates
and resets the state for any batch size, dtype and device, validates the input
and builds the constructor (``cells_shape``, then keywords);
:class:`~pysnn.neuron.spiking.BaseNeuron` holds the step shared by spiking
models, which only provide their pure integration step from
:mod:`pysnn.functional`.

**Time constants** are in ms, with the integrator chosen by name
(``integrator="exact"``, the default, ``"euler"`` or ``"impulse"``); a time
constant may also be given as its decay factor per step
(:class:`~pysnn.neuron.parameters.DecayFactor`).  ``neuron.tau_v`` always
reads in ms.  Calls spelled as in PySNN 0.1 (dynamics by position,
``update_type``) are translated by :mod:`pysnn.compat`.

Writing a model
---------------
.. code-block:: python

    class QuadraticIF(BaseNeuron):
        params = NEURON_PARAMS + (Param("v_c", 0.5, doc="critical voltage"),)

        def integrate(self, state, x):
            v = state["v_cell"]
            dv = (v - state["v_rest"]) * (v - state["v_c"]) + state["alpha_v"] * x
            return {"v_cell": v + self.dt * dv}
"""

from pysnn.neuron.adaptive import AdaptiveLIFNeuron
from pysnn.neuron.adex import AdExNeuron
from pysnn.neuron.fede import FedeNeuron
from pysnn.neuron.input import BaseInput, Input
from pysnn.neuron.izhikevich import IzhikevichNeuron
from pysnn.neuron.lif import IFNeuron, LIFNeuron
from pysnn.neuron.parameters import DecayFactor, Option, Param, StateVar
from pysnn.neuron.population import TRACE_MODES, Population
from pysnn.neuron.rate import RatePopulation
from pysnn.neuron.readout import LeakyIntegrator
from pysnn.neuron.spiking import NEURON_OPTIONS, NEURON_PARAMS, NEURON_STATE, BaseNeuron

__all__ = [
    "Population",
    "DecayFactor",
    "Param",
    "StateVar",
    "Option",
    "TRACE_MODES",
    "NEURON_PARAMS",
    "NEURON_STATE",
    "NEURON_OPTIONS",
    "BaseInput",
    "Input",
    "RatePopulation",
    "LeakyIntegrator",
    "BaseNeuron",
    "IFNeuron",
    "LIFNeuron",
    "AdaptiveLIFNeuron",
    "FedeNeuron",
    "IzhikevichNeuron",
    "AdExNeuron",
]
