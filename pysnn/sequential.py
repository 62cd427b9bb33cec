r"""A short way to write feedforward networks: :class:`Sequential`.

.. code-block:: python

    net = Sequential(
        Input((784,)),
        Linear(784, 100), LIFNeuron((100,)),
        Linear(100, 10), ExponentialSynapse((10,), tau_syn=5.0), LIFNeuron((10,)),
    )
    out = net.run(spikes)              # [T, B, 10]

The modules alternate: a population, then for every projection its
connection, optionally a synapse model, and the postsynaptic population.  The
result is an ordinary :class:`~pysnn.network.SNNNetwork` built with
:meth:`~pysnn.network.SNNNetwork.connect`: the same graph, ``summary()``,
strategies of ``run`` and NIR export as a network written by hand.  Like
:class:`torch.nn.Sequential`, the modules are the children ``"0"``, ``"1"``,
... (``net[2]``, ``len(net)``); the projections are the layers ``"layer1"``,
``"layer2"``, ... (``net.layers``, what learning rules train).
"""

from __future__ import annotations

from typing import Iterator

from torch import nn

from pysnn.network import SNNNetwork

__all__ = ["Sequential"]


def _is_population(module: nn.Module) -> bool:
    """A module with spikes of its own (a neuron or input population)."""
    return hasattr(module, "features_shape") and "spikes" in getattr(
        type(module), "_state_names", ()
    )


def _is_connection(module: nn.Module) -> bool:
    return isinstance(getattr(type(module), "kind", None), str)


class Sequential(SNNNetwork):
    """Populations and the projections between them, in order (see the module docstring).

    Parameters
    ----------
    *modules : nn.Module
        A population, then per projection: a connection (``Linear``,
        ``Conv2d``, a pool, a ``Chain``...), optionally a synapse model, and
        the postsynaptic population.

    Raises
    ------
    TypeError
        If the sequence does not start with a population, a connection is
        missing, or a module is neither a population, a connection nor a
        synapse model (naming its position).
    """

    def __init__(self, *modules: nn.Module) -> None:
        super().__init__()
        if not modules:
            raise TypeError("Sequential needs at least a population and one projection")
        for index, module in enumerate(modules):
            if not isinstance(module, nn.Module):
                raise TypeError(
                    f"Sequential: module {index} must be an nn.Module, got {type(module).__name__}"
                )
        if not _is_population(modules[0]):
            raise TypeError(
                f"Sequential: module 0 must be the input population, got {type(modules[0]).__name__}"
            )
        projections = []
        pre, index, k = modules[0], 1, 1
        while index < len(modules):
            connection = modules[index]
            if not _is_connection(connection):
                raise TypeError(
                    f"Sequential: module {index} must be a connection (after the population "
                    f"{type(pre).__name__}), got {type(connection).__name__}"
                )
            synapse = None
            index += 1
            if index < len(modules) and not _is_population(modules[index]):
                synapse, index = modules[index], index + 1
            if index >= len(modules) or not _is_population(modules[index]):
                got = type(modules[index]).__name__ if index < len(modules) else "nothing"
                raise TypeError(
                    f"Sequential: module {index} must be the postsynaptic population of "
                    f"{type(connection).__name__}, got {got}"
                )
            post = modules[index]
            projections.append((f"layer{k}", pre, connection, synapse, post))
            pre, index, k = post, index + 1, k + 1
        if not projections:
            raise TypeError("Sequential needs at least one projection (connection, population)")
        for position, module in enumerate(modules):
            self.add_module(str(position), module)
        for name, pre, connection, synapse, post in projections:
            self.connect(pre, connection, post, name, synapse=synapse)

    def __getitem__(self, index: int) -> nn.Module:
        """The ``index``-th module, as in :class:`torch.nn.Sequential`."""
        children = [child for child in self._modules.values() if child is not None]
        return children[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[nn.Module]:
        return iter(self._modules.values())
