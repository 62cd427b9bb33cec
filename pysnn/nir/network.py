"""What export and load share: the ``nir`` import, units, the loaded network class, shapes."""

from __future__ import annotations

import keyword
import re
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from pysnn.connection.stages import Flatten
from pysnn.network import SNNNetwork

Tensor = torch.Tensor

__all__ = ["NIRNetwork"]

#: NIR times are in seconds, PySNN's in ms
MS = 1e-3
#: NIR's reference semantics that PySNN runs and writes: exact, or forward Euler
INTEGRATORS = ("exact", "euler")


def import_nir() -> Any:
    try:
        import nir
    except ImportError as err:  # pragma: no cover - exercised without nir installed
        raise ImportError(
            "pysnn.nir needs the optional dependency 'nir': pip install pysnn[nir]"
        ) from err
    return nir


class NIRNetwork(SNNNetwork):
    """A network loaded by :func:`load`: runs its registered graph and returns the NIR outputs.

    ``net(*inputs)`` takes one input per NIR ``Input`` node (in graph order) and
    returns, for each NIR ``Output`` node (in graph order), the spikes of the
    spiking population feeding it, or the voltage of a readout (``LI``,
    ``CubaLI``, ``I``): one tensor, or a tuple.

    Attributes
    ----------
    input_names, output_names : tuple of str
        Names of the NIR input and output nodes.
    node_names : dict of str to str
        NIR node name -> attribute name of its population.  A node name is
        used as it is when it is a Python identifier that the network does
        not use already; otherwise every character that cannot appear in an
        identifier becomes ``"_"`` (``"r.lif"`` -> ``r_lif``) and a name that
        then starts with a digit, is a keyword or is taken gets the prefix
        ``node_`` (``"1"`` -> ``node_1``), and a suffix ``_2``, ``_3``... if
        still taken.
    """

    def __init__(self) -> None:
        super().__init__()
        self.input_names: tuple[str, ...] = ()
        self.output_names: tuple[str, ...] = ()
        self.node_names: dict[str, str] = {}
        self._outputs: list[tuple[str, str]] = []
        #: argument index of each input population in registration order
        self._arguments: list[int] = []

    def forward(self, *inputs: Any) -> Any:
        """One timestep of the graph; the spikes (or readout voltages) of the NIR outputs.

        ``inputs`` are in the order of :attr:`input_names`.
        """
        if len(inputs) == len(self._arguments):  # the graph takes them in registration order
            inputs = tuple(inputs[k] for k in self._arguments)
        super().forward(*inputs)
        out = tuple(getattr(getattr(self, attr), field) for attr, field in self._outputs)
        return out[0] if len(out) == 1 else out


def attribute_name(name: str, net: nn.Module, taken: set[str]) -> str:
    """A valid, unused attribute name for NIR node ``name`` (rules in :class:`NIRNetwork`)."""
    if name.isidentifier() and not keyword.iskeyword(name):
        if name not in taken and not hasattr(net, name):
            return name
    key = re.sub(r"\W", "_", name) or "node"
    if key[0].isdigit() or keyword.iskeyword(key) or key in taken or hasattr(net, key):
        key = f"node_{key}"
    base, k = key, 2
    while key in taken or hasattr(net, key):
        key, k = f"{base}_{k}", k + 1
    return key


def pool_shape(shape: tuple[int, ...], k: Any, s: Any, p: Any) -> tuple[int, ...]:
    """Per-sample output shape of a 2-D pool over ``shape`` ``(C, H, W)``."""
    out = F.avg_pool2d(torch.zeros(1, *shape), k, s, p)
    return tuple(out.shape[1:])


def flatten_shape(stage: Flatten, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Per-sample output shape of a :class:`~pysnn.connection.stages.Flatten` over ``shape``."""
    start, end = stage._dims(len(shape))
    return tuple(torch.empty((1, *shape)).flatten(start, end).shape[1:])
