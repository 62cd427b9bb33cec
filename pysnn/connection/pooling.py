"""Weightless pooling connections: :class:`MaxPool2d`, :class:`AdaptiveMaxPool2d`, :class:`AvgPool2d`.

Pools have no weights and no delay: they are their own small family, not
:class:`~pysnn.connection.Connection` subclasses.  Like connections they are
called per step as ``pool(spikes, trace) -> (spikes, trace)``, and they follow
the dtype and device of their input (of the trace when the spikes are bool).

Inputs: the max pools take spikes only (bool or exactly 0.0/1.0), since their
winner rule asks which element *spiked*; :class:`AvgPool2d` also takes graded
values (rates), whose average is as meaningful as that of spikes.  NaN or inf
is a :class:`ValueError` for every pool.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from pysnn import functional as sf
from pysnn.capabilities import Capabilities
from pysnn.connection.base import IntPair, check_step_inputs, check_steps_input, pair, steps_by_loop

Tensor = torch.Tensor

__all__ = ["Pool2d", "MaxPool2d", "AdaptiveMaxPool2d", "AvgPool2d"]


def _drop_legacy_delay_keys(
    module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any
) -> None:
    """Load hook: checkpoints from when pools were connections carry an empty delay line."""
    for name in ("spike_history", "trace_history", "delay_steps", "_extra_state"):
        state_dict.pop(prefix + name, None)


class Pool2d(nn.Module):
    """Base of the weightless pooling connections over ``(batch, C, H, W)`` inputs.

    Subclasses implement :meth:`pool` (and :meth:`receptive_field_sum`).

    Attributes
    ----------
    pre_spikes, pre_trace : Tensor or None
        The input of the last step (``None`` after :meth:`reset_state`).
    """

    kind = "pool"
    #: whether graded (any finite) input values are valid, or only 0 and 1
    graded_input = False
    #: no weights (read by learning rules and summaries)
    weight = None
    #: pools propagate without delay
    max_delay = 0
    per_synapse_delay = False
    #: what the pool supports (``graded_input`` as the class declares it)
    capabilities: ClassVar[Capabilities] = Capabilities(multi_step=True, graded_input=False)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "capabilities" not in cls.__dict__:
            cls.capabilities = Capabilities(multi_step=True, graded_input=bool(cls.graded_input))

    def __init__(self) -> None:
        super().__init__()
        # dtype/device of the last floating input (follows .to()/.double() too)
        self.register_buffer("_like", torch.zeros(0), persistent=False)
        self.pre_spikes: Tensor | None = None
        self.pre_trace: Tensor | None = None
        self.register_load_state_dict_pre_hook(_drop_legacy_delay_keys)

    @property
    def is_fresh(self) -> bool:
        """True between :meth:`reset_state` (or construction) and the first step."""
        return self.pre_spikes is None

    @property
    def batch_size(self) -> int | None:
        """Batch size of the last step, ``None`` when fresh."""
        return None if self.pre_spikes is None else int(self.pre_spikes.shape[0])

    def reset_state(self, batch_size: int | None = None) -> None:
        """Forget the last step (pools keep no other state; ``batch_size`` is accepted and unused)."""
        self.pre_spikes = self.pre_trace = None

    def _set_window(
        self, kernel_size: IntPair, stride: IntPair | None, padding: IntPair, ceil_mode: bool
    ) -> None:
        """Window geometry of a fixed-size pool (``stride`` defaults to ``kernel_size``).

        Raises :class:`ValueError` for a kernel or stride below 1, a negative
        padding or a padding over half the (dilated) kernel.
        """
        self.kernel_size = pair(kernel_size, "kernel_size", minimum=1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", minimum=1)
        self.padding = pair(padding, "padding", minimum=0)
        self.ceil_mode = bool(ceil_mode)
        for k, p in zip(self._extent(), self.padding):
            if 2 * p > k:
                raise ValueError(
                    f"{type(self).__name__}: padding must be at most half the kernel size "
                    f"{self.kernel_size}, got {padding!r}"
                )

    def _extent(self) -> tuple[int, int]:
        """Pixels spanned by the (dilated) window, per axis."""
        dilation = getattr(self, "dilation", (1, 1))
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, dilation))

    def check_input_shape(self, shape: torch.Size) -> None:
        """Raise :class:`ValueError` unless ``shape`` is ``(batch, C, H, W)`` and fits the window."""
        if len(shape) != 4:
            raise ValueError(
                f"{type(self).__name__}: spikes must have shape (batch, C, H, W), got {tuple(shape)}"
            )
        if getattr(self, "kernel_size", None) is None:
            return
        for axis, size, k, p in zip(("height", "width"), shape[2:], self._extent(), self.padding):
            if k > size + 2 * p:
                raise ValueError(
                    f"{type(self).__name__}: kernel_size {self.kernel_size} spans {k} pixels, "
                    f"more than the padded input {axis} {size} + 2 * {p} of spikes "
                    f"{tuple(shape)}"
                )

    def pool(self, spikes: Tensor, trace: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Pooled ``(spikes, trace)`` of one step (``trace`` may be ``None``)."""
        raise NotImplementedError

    def receptive_field_sum(self, trace: Tensor) -> Tensor:
        raise TypeError(f"{type(self).__name__} has no synapses to sum over")

    def forward(self, spikes: Tensor, trace: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Pool one step: ``(spikes, trace)`` of shape ``(batch, C, H, W)`` (``trace`` optional)."""
        like = None
        if isinstance(spikes, Tensor) and spikes.is_floating_point():
            like = spikes
        elif isinstance(trace, Tensor) and trace.is_floating_point():
            like = trace
        ref = self._buffers["_like"]
        if like is not None and (ref.dtype != like.dtype or ref.device != like.device):
            ref = self._buffers["_like"] = ref.to(like)
        spikes, trace = check_step_inputs(self, spikes, trace, ref)
        # plain attributes through __dict__: nn.Module.__setattr__ is slow per step
        self.__dict__["pre_spikes"], self.__dict__["pre_trace"] = spikes, trace
        return self.pool(spikes, trace)

    def forward_steps(
        self, spikes: Tensor, trace: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """``T`` steps ``[T, batch, C, H, W]`` one after the other, outputs stacked."""
        check_steps_input(self, spikes, trace)
        return steps_by_loop(self.forward, spikes, trace)


class MaxPool2d(Pool2d):
    r"""Spiking max pooling; see :func:`pysnn.functional.max_pool2d_winner` for the winner rule.

    The winner of each window is the element that spiked (ties broken by the
    larger trace); when none spiked, the element with the largest trace.  The
    output spike is the winner's spike (1 when any element spiked).
    Parameters are those of :class:`torch.nn.MaxPool2d`.

    Inputs are spikes only (``graded_input = False``): bool or exactly 0.0/1.0;
    graded values, NaN and inf are a :class:`ValueError` naming ``spikes``.

    With ``first_spike=True`` each output spikes at most once per sample, at the
    step of the earliest spike in its window (time-to-first-spike networks,
    SpykeTorch's pooling): an output that has spiked stays silent until
    :meth:`reset_state`.  With inputs that fire at most once, the output spike
    step is :math:`t_{out} = \min_{window} t_{in}`.
    """

    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        ceil_mode: bool = False,
        first_spike: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(first_spike, bool):
            raise TypeError(f"first_spike must be a bool, got {type(first_spike).__name__}")
        self.dilation = pair(dilation, "dilation", minimum=1)
        self._set_window(kernel_size, stride, padding, ceil_mode)
        self.first_spike = first_spike
        #: outputs that have spiked since the last reset (``first_spike=True``)
        self.fired: Tensor | None = None

    def reset_state(self, batch_size: int | None = None) -> None:
        super().reset_state(batch_size)
        self.fired = None

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}, first_spike={self.first_spike}"
        )

    def pool(self, spikes: Tensor, trace: Tensor | None) -> tuple[Tensor, Tensor | None]:
        out, out_trace = self._pool(spikes, trace)
        if not self.first_spike:
            return out, out_trace
        fired = self.fired
        if fired is None or fired.shape != out.shape or fired.device != out.device:
            fired = torch.zeros(out.shape, dtype=torch.bool, device=out.device)
        spiked = out > 0
        out = torch.where(fired, torch.zeros_like(out), out)
        self.__dict__["fired"] = fired | spiked
        return out, out_trace

    def _pool(self, spikes: Tensor, trace: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return sf.max_pool2d_winner(
            spikes,
            trace,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
        )


class AdaptiveMaxPool2d(Pool2d):
    """Spiking adaptive max pooling to ``output_size``; winner rule of :class:`MaxPool2d`.

    Inputs are spikes only (``graded_input = False``), as for :class:`MaxPool2d`.
    """

    def __init__(self, output_size: IntPair) -> None:
        super().__init__()
        self.output_size = pair(output_size, "output_size", minimum=1)

    def pool(self, spikes: Tensor, trace: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return sf.adaptive_max_pool2d_winner(spikes, trace, self.output_size)


class AvgPool2d(Pool2d):
    r"""Average pooling of spikes and traces (outputs are rates in [0, 1], not spikes).

    Parameters are those of :class:`torch.nn.AvgPool2d`.

    **Graded inputs** are allowed (``graded_input = True``): bool spikes, 0/1
    or any finite value (pooling rates, e.g. the output of another
    ``AvgPool2d``); NaN or inf is a :class:`ValueError` naming ``spikes``.
    """

    graded_input = True

    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        self._set_window(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def pool(self, spikes: Tensor, trace: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return sf.avg_pool2d(
            spikes,
            trace,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
        )

    def receptive_field_sum(self, trace: Tensor) -> Tensor:
        # the plain sum over each window (padding and ceil_mode windows hold fewer
        # than kernel_size elements)
        return sf.avg_pool2d_window_sum(
            trace, self.kernel_size, self.stride, self.padding, self.ceil_mode
        )
