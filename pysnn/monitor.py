"""Monitors: record state of neurons and connections during a simulation.

A monitor attaches a forward hook to a module; after every call (one timestep) it copies the
named attributes (e.g. ``"spikes"``, ``"v_cell"``, ``"trace"``, ``"thresh"`` of a neuron, or
``"weight"`` of a connection) into a buffer on the simulation's device (or on ``device``):

- ``num_steps=T``: a preallocated ``[T, ...]`` tensor; recording more than ``T`` steps raises
  (or, with ``overflow="ignore"``, stops recording);
- ``window=W``: a bounded rolling window that keeps the last ``W`` steps.

:meth:`StateMonitor.get` returns the recorded steps in time order, shape ``[t, *state.shape]``.
Buffers are allocated at the first recorded step (when the state shape is known) and reused
after :meth:`StateMonitor.reset`.  A monitor is reset together with the network that holds
its module (``net.reset_state()``, and so at the start of every ``net.run()``): read the
recording of a sample before the next one starts, or pass ``reset_with_network=False`` to
record across samples.

Examples
--------
>>> import torch
>>> from pysnn.neuron import LIFNeuron
>>> neuron = LIFNeuron((10,), thresh=1.0, v_rest=0.0, tau_v=20.0, integrator="exact")
>>> mon = StateMonitor(neuron, ["v_cell", "spikes"], num_steps=100)
>>> for x in torch.rand(100, 4, 10):    # 100 steps, batch 4
...     _ = neuron(x)
>>> mon.get("v_cell").shape   # [100, batch, *neuron_shape]
torch.Size([100, 4, 10])
"""

from __future__ import annotations

import weakref
from typing import Optional, Sequence, Union

import torch
from torch import nn

from pysnn.fusion import is_compiling

Tensor = torch.Tensor

__all__ = [
    "StateMonitor",
    "SpikeMonitor",
    "is_monitor_hook",
    "monitors_of",
    "recording_monitors",
]

#: module -> the monitors that reset with it (``reset_with_network=True``)
_MONITORS: weakref.WeakKeyDictionary[nn.Module, weakref.WeakSet[StateMonitor]] = (
    weakref.WeakKeyDictionary()
)


#: module -> the monitors that record it through a forward hook (``auto=True``)
_RECORDING: weakref.WeakKeyDictionary[nn.Module, weakref.WeakSet[StateMonitor]] = (
    weakref.WeakKeyDictionary()
)


def monitors_of(module: nn.Module) -> list[StateMonitor]:
    """The live monitors of ``module`` that reset with its network."""
    return list(_MONITORS.get(module, ()))


def recording_monitors(network: nn.Module) -> list[StateMonitor]:
    """The monitors recording (``auto=True``) any module of ``network``."""
    out: list[StateMonitor] = []
    for module in network.modules():
        out += [m for m in _RECORDING.get(module, ()) if m._handle is not None]
    return out


def is_monitor_hook(hook: object) -> bool:
    """Whether a forward hook is the recording hook of a :class:`StateMonitor`."""
    return isinstance(getattr(hook, "__self__", None), StateMonitor)


class StateMonitor:
    """Record named tensor attributes of a module after each of its forward calls.

    Parameters
    ----------
    module : torch.nn.Module
        A neuron, connection or any module whose attributes are tensors.
    attributes : str or sequence of str
        Names of the attributes to record.
    num_steps : int, optional
        Size of the preallocated recording (exclusive with ``window``).
    window : int, optional
        Length of the rolling window (exclusive with ``num_steps``).
    device : torch.device, optional
        Where to store the recording (default: the device of the recorded tensor).
    dtype : torch.dtype, optional
        Storage dtype (default: the recorded tensor's dtype).
    overflow : {"error", "ignore"}
        What happens beyond ``num_steps`` steps.
    auto : bool
        Record on every forward call (hook); with ``False`` call :meth:`record` yourself.
    reset_with_network : bool
        Forget the recording when a network holding ``module`` calls
        :meth:`~pysnn.network.SNNNetwork.reset_state` (default), so that
        sample after sample can be recorded without calling :meth:`reset`.
    """

    def __init__(
        self,
        module: nn.Module,
        attributes: Union[str, Sequence[str]],
        num_steps: Optional[int] = None,
        window: Optional[int] = None,
        device: Optional[Union[str, torch.device]] = None,
        dtype: Optional[torch.dtype] = None,
        overflow: str = "error",
        auto: bool = True,
        reset_with_network: bool = True,
    ) -> None:
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        if isinstance(attributes, str):
            attributes = (attributes,)
        attributes = tuple(attributes)
        if not attributes or not all(isinstance(a, str) for a in attributes):
            raise TypeError("attributes must be a name or a non-empty sequence of names")
        for name in attributes:
            if not hasattr(module, name):
                raise ValueError(f"attributes: {type(module).__name__} has no attribute {name!r}")
        if (num_steps is None) == (window is None):
            raise ValueError("give exactly one of num_steps and window")
        size = num_steps if num_steps is not None else window
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            name = "num_steps" if num_steps is not None else "window"
            raise ValueError(f"{name} must be an int >= 1, got {size!r}")
        if overflow not in ("error", "ignore"):
            raise ValueError(f"overflow must be 'error' or 'ignore', got {overflow!r}")
        self.module = module
        self.attributes = attributes
        self.size = int(size)
        self.rolling = window is not None
        self.device = torch.device(device) if device is not None else None
        self.dtype = dtype
        self.overflow = overflow
        self._buffers: dict[str, Tensor] = {}
        self._count = 0
        self._handle = module.register_forward_hook(self._hook) if auto else None
        if auto:
            _RECORDING.setdefault(module, weakref.WeakSet()).add(self)
        if not isinstance(reset_with_network, bool):
            raise TypeError(
                f"reset_with_network must be a bool, got {type(reset_with_network).__name__}"
            )
        if reset_with_network:
            _MONITORS.setdefault(module, weakref.WeakSet()).add(self)

    # -- recording ---------------------------------------------------------
    def _hook(self, module: nn.Module, inputs, output) -> None:
        if not is_compiling():  # a compiled chunk records its stacked steps afterwards
            self.record()

    def _value(self, name: str) -> Tensor:
        value = getattr(self.module, name)
        if not isinstance(value, Tensor):
            raise TypeError(f"{type(self.module).__name__}.{name} is not a tensor")
        return self._convert(value.detach())

    def _convert(self, value: Tensor) -> Tensor:
        """A recorded value as stored (a hook of :class:`SpikeMonitor`)."""
        return value

    def _store_dtype(self, value: Tensor) -> torch.dtype:
        return self.dtype if self.dtype is not None else value.dtype

    def _buffer(self, name: str, value: Tensor, steps: int) -> Tensor:
        """The recording of ``name`` for values shaped like ``value`` (allocated when needed)."""
        buf = self._buffers.get(name)
        device = self.device if self.device is not None else value.device
        if buf is None or buf.shape[1:] != value.shape or buf.device != device:
            if self._count > 0:
                raise ValueError(
                    f"{type(self.module).__name__}.{name} changed shape from "
                    f"{tuple(buf.shape[1:])} to {tuple(value.shape)} during a recording; "
                    f"call reset() first"
                )
            buf = torch.zeros(
                (self.size, *value.shape), dtype=self._store_dtype(value), device=device
            )
            self._buffers[name] = buf
        return buf

    def _room(self, steps: int) -> int:
        """How many of ``steps`` new steps fit (raises when full, see ``overflow``)."""
        if self.rolling:
            return steps
        room = self.size - self._count
        if steps > room and self.overflow != "ignore":
            raise RuntimeError(
                f"monitor of {type(self.module).__name__} is full ({self.size} steps); call "
                f"reset(), give a larger num_steps, or use window= for a rolling recording"
            )
        return max(0, min(steps, room))

    def record(self) -> None:
        """Record the current value of every attribute as the next step."""
        if self._room(1) == 0:
            return
        slot = self._count % self.size
        for name in self.attributes:
            value = self._value(name)
            self._buffer(name, value, 1)[slot].copy_(value)
        self._count += 1

    def record_steps(self, values: dict[str, Tensor]) -> None:
        """Record several steps at once: ``values[name]`` is ``[T, *state.shape]``, oldest first.

        What :meth:`record` would store after each of the ``T`` steps (used by
        the window and compiled strategies of ``run``).
        """
        steps = int(next(iter(values.values())).shape[0])
        keep = self._room(steps)
        if keep == 0:
            return
        for name in self.attributes:
            stacked = self._convert(values[name].detach()[:keep])
            if self.rolling and keep > self.size:
                stacked, skipped = stacked[-self.size :], keep - self.size
            else:
                skipped = 0
            buf = self._buffer(name, stacked[0], keep)
            first = (self._count + skipped) % self.size
            n = stacked.shape[0]
            head = min(n, self.size - first)
            buf[first : first + head].copy_(stacked[:head])
            if head < n:
                buf[: n - head].copy_(stacked[head:])
        self._count += keep

    # -- access ------------------------------------------------------------
    def __len__(self) -> int:
        """Number of steps available through :meth:`get`."""
        return min(self._count, self.size)

    @property
    def steps_seen(self) -> int:
        """Number of steps recorded since the last reset (also those out of the window)."""
        return self._count

    def get(self, name: Optional[str] = None) -> Tensor:
        """The recorded steps of attribute ``name``, oldest first, shape ``[t, *state.shape]``.

        ``name`` may be omitted when a single attribute is recorded.
        """
        if name is None:
            if len(self.attributes) != 1:
                raise ValueError(f"name is required: this monitor records {self.attributes}")
            name = self.attributes[0]
        if name not in self.attributes:
            raise ValueError(f"name must be one of {self.attributes}, got {name!r}")
        buf = self._buffers.get(name)
        if buf is None:
            raise RuntimeError(f"nothing recorded yet for {name!r}")
        n = len(self)
        if self.rolling and self._count > self.size:
            start = self._count % self.size
            return torch.cat([buf[start:], buf[:start]], dim=0)
        return buf[:n]

    def reset(self) -> None:
        """Forget the recording (buffers are kept and reused when the shapes match)."""
        self._count = 0

    def remove(self) -> None:
        """Detach the monitor from the module (the recording stays readable)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        _MONITORS.get(self.module, weakref.WeakSet()).discard(self)
        _RECORDING.get(self.module, weakref.WeakSet()).discard(self)

    detach = remove

    def __enter__(self) -> StateMonitor:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __repr__(self) -> str:
        kind = f"window={self.size}" if self.rolling else f"num_steps={self.size}"
        return (
            f"{type(self).__name__}({type(self.module).__name__}, {list(self.attributes)}, "
            f"{kind}, recorded={len(self)})"
        )


class SpikeMonitor(StateMonitor):
    """Record the ``spikes`` of a neuron (or another 0/1 attribute) as booleans.

    Same arguments as :class:`StateMonitor` with ``attributes="spikes"`` and ``dtype=torch.bool``
    by default.  Extra helpers: :meth:`counts` and :meth:`rates`.
    """

    def __init__(
        self,
        module: nn.Module,
        num_steps: Optional[int] = None,
        window: Optional[int] = None,
        attribute: str = "spikes",
        device: Optional[Union[str, torch.device]] = None,
        dtype: Optional[torch.dtype] = torch.bool,
        overflow: str = "error",
        auto: bool = True,
        reset_with_network: bool = True,
    ) -> None:
        super().__init__(
            module,
            (attribute,),
            num_steps=num_steps,
            window=window,
            device=device,
            dtype=dtype,
            overflow=overflow,
            auto=auto,
            reset_with_network=reset_with_network,
        )

    def _convert(self, value: Tensor) -> Tensor:
        if self.dtype == torch.bool and value.dtype != torch.bool:
            value = value != 0
        return value

    def counts(self) -> Tensor:
        """Spike count per cell over the recorded steps (int64, shape of the state)."""
        return self.get().sum(dim=0, dtype=torch.int64)

    def rates(self, dt: float) -> Tensor:
        """Mean firing rate per cell in Hz over the recorded steps (``dt`` in ms)."""
        if not dt > 0:
            raise ValueError(f"dt must be > 0 (ms), got {dt}")
        return self.counts().to(torch.get_default_dtype()) * (1000.0 / (dt * max(len(self), 1)))
