r"""Weightless projection stages and chains of stages.

A projection between two populations may be a sequence of stages (e.g. a pool,
a flatten and a linear map, as NIR graphs write them between two neuron
nodes).  Each stage is called per step as ``stage(spikes, trace) -> (values,
trace)``; :class:`Chain` applies several in order.

* :class:`Flatten`: flatten per-sample dimensions;
* :class:`SumPool2d`: sum pooling (NIR's ``SumPool2d``);
* :class:`Chain`: stages applied in order, one projection of the graph.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pysnn.capabilities import Capabilities, capabilities_of

Tensor = torch.Tensor


def fold_steps(
    step: Callable[[Tensor, Tensor | None], tuple[Tensor, Tensor | None]],
    spikes: Tensor,
    trace: Tensor | None,
) -> tuple[Tensor, Tensor | None]:
    """A stateless stage over a window ``[T, batch, ...]``: the steps folded into the batch.

    ``step(values, trace)`` maps ``(N, ...)`` to ``(N, ...)`` sample by sample,
    so one call over ``T * batch`` samples equals ``T`` calls.
    """
    steps, batch = int(spikes.shape[0]), int(spikes.shape[1])
    out, out_trace = step(
        spikes.reshape(steps * batch, *spikes.shape[2:]),
        None if trace is None else trace.reshape(steps * batch, *trace.shape[2:]),
    )

    def unfold(x: Tensor) -> Tensor:
        return x.reshape(steps, batch, *x.shape[1:])

    return unfold(out), None if out_trace is None else unfold(out_trace)


__all__ = ["Chain", "Flatten", "SumPool2d"]


class Flatten(nn.Module):
    """Flatten the per-sample dimensions ``start_dim..end_dim`` (batch excluded), a projection stage.

    Parameters
    ----------
    start_dim, end_dim : int
        First and last per-sample dimension to flatten (``end_dim=-1``: the last).
    """

    kind = "flatten"
    weight = None
    max_delay = 0
    per_synapse_delay = False
    capabilities: ClassVar[Capabilities] = Capabilities(multi_step=True)

    def __init__(self, start_dim: int = 0, end_dim: int = -1) -> None:
        super().__init__()
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        self.start_dim = start_dim
        self.end_dim = end_dim

    def _dims(self, ndim: int) -> tuple[int, int]:
        start = self.start_dim % ndim + 1
        end = self.end_dim % ndim + 1
        return start, end

    def forward(self, spikes: Tensor, trace: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Flatten ``spikes`` (and ``trace``) of shape ``(batch, *features)``."""
        start, end = self._dims(spikes.dim() - 1)
        flat = spikes.flatten(start, end)
        return flat, None if trace is None else trace.flatten(start, end)

    def forward_steps(
        self, spikes: Tensor, trace: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Flatten a window ``[T, batch, *features]`` (``T`` calls of :meth:`forward`)."""
        return fold_steps(self.forward, spikes, trace)


class SumPool2d(nn.Module):
    """Sum pooling of ``(batch, C, H, W)`` values (NIR's ``SumPool2d``), a projection stage.

    Parameters
    ----------
    kernel_size, stride, padding : int or (int, int)
        As in :class:`torch.nn.AvgPool2d` (``stride`` defaults to ``kernel_size``).
    """

    kind = "pool"
    weight = None
    max_delay = 0
    per_synapse_delay = False
    capabilities: ClassVar[Capabilities] = Capabilities(multi_step=True)

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
        self.padding = _pair(padding, "padding", minimum=0)

    def forward(self, spikes: Tensor, trace: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Sum over each window of ``spikes`` (and ``trace``)."""

        def pool(x: Tensor) -> Tensor:
            x = x.to(torch.get_default_dtype()) if not x.is_floating_point() else x
            return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, divisor_override=1)

        return pool(spikes), None if trace is None else pool(trace)

    def forward_steps(
        self, spikes: Tensor, trace: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Sum-pool a window ``[T, batch, C, H, W]`` (``T`` calls of :meth:`forward`)."""
        return fold_steps(self.forward, spikes, trace)


def _pair(value: Any, name: str, minimum: int = 1) -> tuple[int, int]:
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2 or not np.all(np.equal(np.mod(arr, 1), 0)) or np.any(arr < minimum):
        raise ValueError(f"{name} must be an int or a pair of ints >= {minimum}, got {value!r}")
    return int(arr[0]), int(arr[1])


class Chain(nn.Module):
    """A projection made of several stages applied in order (pooling, flatten, linear...).

    NIR graphs put such sequences (e.g. ``SumPool2d -> Flatten -> Linear`` or
    ``Conv2d -> AvgPool2d -> Conv2d``) between two neuron nodes;
    :func:`pysnn.nir.load` builds one :class:`Chain` per path and
    :func:`pysnn.nir.export` writes each stage back as a node.  Every stage is
    called as ``stage(values, trace)`` and returns ``(values, trace)``: a
    weightless stage (pooling, flatten) transforms the trace with the values;
    a weighted stage (:class:`~pysnn.connection.Linear`,
    :class:`~pysnn.connection.Conv2d`) passes on its own output, weighted sums
    that have no trace of their own, so the stages after it get ``None`` (the
    presynaptic trace a weighted stage returns describes its input, not its
    output).  The chain returns the last stage's ``(values, trace)``.

    Parameters
    ----------
    stages : nn.Module
        The stages: :class:`~pysnn.connection.Linear`,
        :class:`~pysnn.connection.Conv2d`, :class:`~pysnn.connection.AvgPool2d`,
        :class:`SumPool2d`, :class:`Flatten`...
    """

    kind = "chain"
    weight = None
    per_synapse_delay = False

    def __init__(self, *stages: nn.Module) -> None:
        super().__init__()
        if not stages:
            raise ValueError("stages must hold at least one module")
        for k, stage in enumerate(stages):
            if not isinstance(stage, nn.Module):
                raise TypeError(f"stages[{k}] must be an nn.Module, got {type(stage).__name__}")
        self.stages = nn.ModuleList(stages)

    @property
    def max_delay(self) -> int:
        """Largest delay in steps over the stages."""
        return max(int(getattr(s, "max_delay", 0)) for s in self.stages)

    @property
    def capabilities(self) -> Capabilities:
        """What every stage supports (``graded_input`` of the first stage)."""
        parts = [capabilities_of(stage) for stage in self.stages]
        return Capabilities(
            multi_step=all(c.multi_step for c in parts), graded_input=parts[0].graded_input
        )

    def forward(self, spikes: Tensor, trace: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Apply the stages in order to one step's ``(spikes, trace)``."""
        for stage in self.stages:
            spikes, trace = stage(spikes, trace)
            if getattr(stage, "weight", None) is not None:
                trace = None  # weighted sums carry no trace of their own
        return spikes, trace

    def forward_steps(
        self, spikes: Tensor, trace: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Apply every stage's ``forward_steps`` to a window ``[T, batch, ...]`` in order."""
        for stage in self.stages:
            spikes, trace = stage.forward_steps(spikes, trace)
            if getattr(stage, "weight", None) is not None:
                trace = None  # weighted sums carry no trace of their own
        return spikes, trace
