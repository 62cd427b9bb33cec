r"""Export to and import from NIR, the Neuromorphic Intermediate Representation.

:func:`export` writes a network's registered graph (``add_layer``/``connect``)
as a :class:`nir.NIRGraph`; :func:`load` builds a graph-driven
:class:`~pysnn.network.SNNNetwork` from a NIR graph or file, including the
files snnTorch and Norse write.  ``nir`` is an optional dependency
(``pip install pysnn[nir]``), imported only inside these functions.

Conventions (see ``docs/nir.rst``)
----------------------------------
* NIR node parameters are continuous-time; times are written in **seconds**
  (PySNN's ``dt``, ``tau_v``, ``tau_syn`` and delays are in ms).
* The input of a node is held constant during a step.  ``integrator="exact"``
  solves NIR's equations exactly under that assumption, ``integrator="euler"``
  with forward Euler, updating a ``CubaLIF``'s current before its voltage (what
  snnTorch and Norse do).
* NIR spikes where :math:`v > v_{thr}`, PySNN where :math:`v \ge \theta`: the
  threshold is moved by one floating-point step (``nextafter``) each way, so
  both tests agree bit for bit.
* A neuron's initial voltage is ``v_leak`` (LIF, LI, CubaLIF, CubaLI) or 0 (IF, I).

The package: :mod:`pysnn.nir.to_nir` (export, one conversion per exact
connection and population type), :mod:`pysnn.nir.from_nir` (load),
:mod:`pysnn.nir.network` (:class:`NIRNetwork` and what both share).
"""

from pysnn.connection.stages import Chain, Flatten, SumPool2d
from pysnn.nir.from_nir import NORSE_EXPORT_DT, WRITERS, load
from pysnn.nir.network import NIRNetwork
from pysnn.nir.to_nir import export

__all__ = [
    "Chain",
    "Flatten",
    "NIRNetwork",
    "SumPool2d",
    "export",
    "load",
    "WRITERS",
    "NORSE_EXPORT_DT",
]
