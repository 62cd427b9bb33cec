"""``SNNNetwork``: the base class of spiking networks.

A network subclasses :class:`SNNNetwork` like a ``torch.nn.Module``, creates
neurons and connections in ``__init__``, registers each (connection,
postsynaptic neuron) pair with :meth:`SNNNetwork.add_layer`, and implements
``forward`` as **one timestep**.  :meth:`SNNNetwork.run` steps it through a
sequence; :meth:`SNNNetwork.reset_state` clears the state between samples.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterable, NamedTuple

import torch
from torch import nn

from pysnn import fusion
from pysnn.connection import Conv2d, Linear, Recurrent, _Pool
from pysnn.neuron import BaseNeuron, _PopulationMixin
from pysnn.state import StatefulModule

Tensor = torch.Tensor

__all__ = ["Layer", "SNNNetwork"]


class Layer(NamedTuple):
    """A registered layer: a connection and its postsynaptic neuron population.

    Holds the live modules, so it stays valid after ``.to()``, ``.double()``
    or ``.cuda()``.
    """

    name: str
    connection: nn.Module
    neuron: nn.Module

    @property
    def type(self) -> str:
        """``"recurrent"``, ``"linear"``, ``"conv2d"``, ``"pool"`` or ``"custom"``."""
        if isinstance(self.connection, Recurrent):
            return "recurrent"
        if isinstance(self.connection, Linear):
            return "linear"
        if isinstance(self.connection, Conv2d):
            return "conv2d"
        if isinstance(self.connection, _Pool):
            return "pool"
        return "custom"


def _first_tensor(args: tuple[Any, ...]) -> Tensor | None:
    for arg in args:
        if isinstance(arg, Tensor):
            return arg
        if isinstance(arg, (list, tuple)) and arg and isinstance(arg[0], Tensor):
            return arg[0]
    return None


class SNNNetwork(nn.Module):
    """Base class of spiking networks; ``forward`` computes one timestep.

    Examples
    --------
    >>> class Net(SNNNetwork):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.input = Input((784,), dt=1.0, alpha_t=1.0, tau_t=0.9)
    ...         self.fc = Linear(784, 100)
    ...         self.lif = LIFNeuron((100,))
    ...         self.add_layer("fc", self.fc, self.lif)
    ...     def forward(self, x):
    ...         s, t = self.input(x)
    ...         s, t = self.fc(s, t)
    ...         return self.lif(s)[0]
    >>> out = Net().run(torch.rand(50, 8, 784) < 0.05)   # (50, 8, 100)
    """

    def __init__(self) -> None:
        super().__init__()
        self._layers: OrderedDict[str, tuple[nn.Module, nn.Module]] = OrderedDict()
        _arm_batch_check(self)

    # -- layers ------------------------------------------------------------------
    def add_layer(self, name: str, connection: nn.Module, neuron: nn.Module) -> None:
        """Register ``connection`` and its postsynaptic ``neuron`` as layer ``name``.

        Learning rules find their connections through these layers.  Modules
        not yet assigned as attributes are registered as submodules
        ``{name}_connection`` and ``{name}_neuron``.

        Raises
        ------
        TypeError
            If ``name`` is not a string or the modules are not ``nn.Module``.
        KeyError
            If ``name`` is empty, contains ``"."`` or is already used.
        """
        if not isinstance(name, str):
            raise TypeError(f"layer name must be a str, got {type(name).__name__}")
        if not name:
            raise KeyError("layer name cannot be an empty string")
        if "." in name:
            raise KeyError(f'layer name cannot contain ".", got {name!r}')
        if name in self._layers:
            raise KeyError(f"layer {name!r} already exists")
        for label, module in (("connection", connection), ("neuron", neuron)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{label} must be an nn.Module, got {type(module).__name__}")
        known = {id(m) for m in self.modules()}
        if id(connection) not in known:
            self.add_module(f"{name}_connection", connection)
        if id(neuron) not in known:
            self.add_module(f"{name}_neuron", neuron)
        self._layers[name] = (connection, neuron)

    @property
    def layers(self) -> OrderedDict[str, Layer]:
        """Live registry of layers, name → :class:`Layer`, in registration order."""
        return OrderedDict(
            (name, Layer(name, conn, neuron)) for name, (conn, neuron) in self._layers.items()
        )

    def layer_state_dict(self) -> OrderedDict[str, dict[str, Any]]:
        """Per-layer state, in the PySNN 0.1 format.

        Returns
        -------
        OrderedDict
            ``name -> {"connection": state_dict, "neuron": state_dict, "type": str,
            "layer": Layer}``; ``"layer"`` holds the live modules, which is what
            :mod:`pysnn.learning` uses.
        """
        out: OrderedDict[str, dict[str, Any]] = OrderedDict()
        for name, layer in self.layers.items():
            out[name] = {
                "connection": layer.connection.state_dict(),
                "neuron": layer.neuron.state_dict(),
                "type": layer.type,
                "layer": layer,
            }
        return out

    # -- state -------------------------------------------------------------------
    def reset_state(self, batch_size: int | None = None) -> None:
        """Reset the state of every stateful submodule (voltages, traces, delays...).

        Submodules without state (plain ``nn.Module``) are skipped; other
        modules with their own ``reset_state()`` are reset too.
        """
        _arm_batch_check(self)
        for module in self.modules():
            if module is self:
                continue
            if isinstance(module, StatefulModule):
                module.reset_state(batch_size)
            elif not isinstance(module, SNNNetwork) and callable(
                getattr(module, "reset_state", None)
            ):
                module.reset_state()

    # -- fused execution -----------------------------------------------------------
    def fuse(
        self,
        enabled: bool = True,
        backend: str | Callable[..., Any] = fusion.DEFAULT_BACKEND,
        mode: str | None = None,
    ) -> SNNNetwork:
        """Switch fused (compiled) state updates on or off for every neuron population.

        Calls :meth:`BaseNeuron.fuse <pysnn.neuron.BaseNeuron.fuse>` on each
        spiking neuron submodule (input populations only pass spikes through and
        stay eager); see :mod:`pysnn.fusion`.  Returns ``self``.
        """
        for module in self.modules():
            if isinstance(module, BaseNeuron):
                module.fuse(enabled, backend, mode)
        return self

    # -- running -----------------------------------------------------------------
    @torch.no_grad()
    def run(
        self,
        inputs: Tensor | Iterable[Any],
        callback: Callable[[int, Any], None] | None = None,
        reset: bool = True,
    ) -> Tensor:
        """Step the network through a sequence and stack its outputs.

        Parameters
        ----------
        inputs : Tensor or iterable
            ``[T, B, ...]`` tensor (one slice per step) or any iterable of
            per-step inputs (e.g. a streaming encoder).
        callback : callable, optional
            Called as ``callback(t, output)`` after every step, e.g. to apply a
            learning rule or record a monitor.
        reset : bool
            Call :meth:`reset_state` first.

        Returns
        -------
        Tensor
            ``[T, ...]`` stack of the per-step outputs (the first element when
            ``forward`` returns a tuple).
        """
        if isinstance(inputs, Tensor):
            if inputs.dim() < 2 or inputs.shape[0] == 0:
                raise ValueError(
                    f"inputs must have shape [T, batch, ...] with T >= 1, got {tuple(inputs.shape)}"
                )
        elif not isinstance(inputs, Iterable):
            raise TypeError(
                f"inputs must be a tensor [T, batch, ...] or an iterable of per-step inputs, "
                f"got {type(inputs).__name__}"
            )
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        if reset:
            self.reset_state()
        outputs = []
        for t, x in enumerate(inputs):
            out = self(x)
            if callback is not None:
                callback(t, out)
            outputs.append(out[0] if isinstance(out, (tuple, list)) else out)
        if not outputs:
            raise ValueError("inputs is empty: nothing to run")
        return torch.stack(outputs)


def _arm_batch_check(network: SNNNetwork) -> None:
    """Install :func:`_adopt_batch_size` as a forward pre-hook until the next step.

    The hook removes itself when it has run, so the steps in between take
    ``nn.Module``'s hook-free fast call path.
    """
    if _adopt_batch_size not in network._forward_pre_hooks.values():
        network.register_forward_pre_hook(_adopt_batch_size)


def _adopt_batch_size(network: SNNNetwork, args: tuple[Any, ...]) -> None:
    """Before the first step, give fresh neurons the batch size of the input.

    Feedback connections read a neuron's spikes before that neuron has run in
    the step, so a fresh neuron must already have the right batch size.  Runs
    on the first step after construction or :meth:`SNNNetwork.reset_state`
    (a step without tensor input keeps the hook for the next one).
    """
    x = _first_tensor(args)
    if x is None or x.dim() == 0:
        return
    hooks = network._forward_pre_hooks
    for key in [key for key, hook in hooks.items() if hook is _adopt_batch_size]:
        del hooks[key]
    batch = int(x.shape[0])
    for module in network.modules():
        if isinstance(module, _PopulationMixin) and module.is_fresh:
            if module.batch_size != batch:
                module.reset_state(batch)
