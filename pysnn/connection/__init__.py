r"""Connection modules: weights, synaptic delays and pooling.

A connection is called once per timestep with the presynaptic spikes and trace
and returns ``(input for the postsynaptic neurons, presynaptic trace as it
arrives at the synapses)``:

.. code-block:: python

    x, trace = connection(pre_spikes, pre_trace)   # pre_trace may be None

* :mod:`pysnn.connection.base`: :class:`Connection`, the weighted base (weights,
  a :class:`~pysnn.delay.DelayLine`, the learning API) and the protocol a new
  connection type implements,
* :mod:`pysnn.connection.linear`: :class:`Linear`, :class:`Recurrent`,
* :mod:`pysnn.connection.conv`: :class:`Conv2d`,
* :mod:`pysnn.connection.separable`: :class:`Conv2dSep` (multisynaptic
  convolution with delayed copies of every synapse), :class:`Merge` (sum of channels),
* :mod:`pysnn.connection.sparse`: :class:`Sparse` (only existing synapses, event-driven),
* :mod:`pysnn.connection.procedural`: :class:`RandomConnectivity` (random synapses
  regenerable from a seed) and :class:`ProceduralSparse` (synapses regenerated at
  every spike, never stored),
* :mod:`pysnn.connection.pooling`: the weightless pools,
* :mod:`pysnn.connection.stages`: :class:`Flatten`, :class:`SumPool2d` and
  :class:`Chain` (several stages as one projection).

Delays
------
``delay`` (ms, a whole number of timesteps) is either one number for the whole
connection or an integer tensor shaped like the weight, one delay per synapse;
see :mod:`pysnn.delay`.  The postsynaptic input is

.. math:: I_i(t) = \sum_j W_{ij}\, s_j(t - d_{ij})
"""

from pysnn.connection.base import Connection
from pysnn.connection.conv import Conv2d
from pysnn.connection.linear import Linear, Recurrent
from pysnn.connection.pooling import AdaptiveMaxPool2d, AvgPool2d, MaxPool2d, Pool2d
from pysnn.connection.procedural import ProceduralSparse, RandomConnectivity
from pysnn.connection.separable import Conv2dSep, Merge
from pysnn.connection.sparse import Sparse
from pysnn.connection.stages import Chain, Flatten, SumPool2d

__all__ = [
    "Connection",
    "Linear",
    "Recurrent",
    "Conv2d",
    "Conv2dSep",
    "Merge",
    "Sparse",
    "ProceduralSparse",
    "RandomConnectivity",
    "Pool2d",
    "MaxPool2d",
    "AdaptiveMaxPool2d",
    "AvgPool2d",
    "SumPool2d",
    "Flatten",
    "Chain",
]
