"""2-D convolution connection: :class:`Conv2d`."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from pysnn import functional as sf
from pysnn.connection.base import Connection, IntPair, pair
from pysnn.delay import DelayLike

Tensor = torch.Tensor

__all__ = ["Conv2d"]


class Conv2d(Connection):
    r"""2-D convolution connection, equal to :func:`torch.nn.functional.conv2d`.

    .. math:: I_{b,o}(t) = \sum_{c, k} W_{o,c,k}\, s_{b,c}(t - d_{o,c,k})[\text{window}]

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the presynaptic and postsynaptic populations.
    kernel_size : int or (int, int)
        Kernel size.  Every other argument is a keyword (:mod:`pysnn.compat`
        translates PySNN 0.1's positional order).
    im_dims : (int, int), optional
        Input height and width; checked when given, not needed.
    dt : float
        Timestep in ms.
    delay : float or Tensor
        Delay in ms: a number, or a tensor shaped like the weight
        ``(out_channels, in_channels // groups, kh, kw)``.
    stride, padding, dilation, groups
        As in :class:`torch.nn.Conv2d`.
    trace_per_synapse : bool
        Return the presynaptic trace per synapse,
        ``(batch, out_channels, H_out, W_out, in_channels // groups * kh * kw)``.
    bias : bool
        Add a constant :math:`b_o` per output channel (``bias``, zeros at
        construction) to the output of every step, as :class:`torch.nn.Conv2d`
        does (NIR's ``Conv2d`` bias); default ``False``.

    Notes
    -----
    **Graded inputs** are allowed (``graded_input = True``): bool spikes, 0/1
    or any finite value (e.g. pixel intensities fed to a first layer), since
    the convolution is exact for any input.  NaN or inf in ``spikes`` (or
    ``trace``) is a :class:`ValueError`, and so is an input smaller than the
    dilated kernel after padding.
    """

    kind = "conv2d"
    learnable_delays = True
    unit_dim = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        *args: Any,
        im_dims: IntPair | None = None,
        dt: float = 1.0,
        delay: DelayLike = 0,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        trace_per_synapse: bool = False,
        bias: bool = False,
    ) -> None:
        if args:  # the original positional order, see pysnn.compat
            from pysnn import compat

            order = ("im_dims", "batch_size", "dt", "delay", "stride", "padding", "dilation")
            given = compat.connection_arguments(type(self).__name__, order + ("groups",), args)
            im_dims = given.get("im_dims", im_dims)
            dt, delay = given.get("dt", dt), given.get("delay", delay)
            stride, padding = given.get("stride", stride), given.get("padding", padding)
            dilation, groups = given.get("dilation", dilation), given.get("groups", groups)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__}")
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("groups", groups),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                f"divisible by groups ({groups})"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = pair(kernel_size, "kernel_size", minimum=1)
        self.stride = pair(stride, "stride", minimum=1)
        self.padding = pair(padding, "padding", minimum=0)
        self.dilation = pair(dilation, "dilation", minimum=1)
        self.groups = groups
        self.im_dims = None if im_dims is None else pair(im_dims, "im_dims", minimum=1)
        if self.im_dims is not None:
            self._check_fits(self.im_dims, "im_dims")
        super().__init__(self._weight_shape(), dt, delay, trace_per_synapse)
        bias_value = nn.Parameter(torch.zeros(out_channels), requires_grad=False) if bias else None
        self.register_parameter("bias", bias_value)
        self.reset_weights()

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={self.groups}"
            + (", bias=True" if self._parameters["bias"] is not None else "")
        )

    def _add_bias(self, out: Tensor) -> Tensor:
        bias = self._parameters["bias"]
        return out if bias is None else out + bias.view(-1, 1, 1)

    def _weight_shape(self) -> tuple[int, ...]:
        """Shape of ``weight``: ``(out_channels, in_channels // groups, kh, kw)``."""
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    def _check_fits(self, hw: tuple[int, ...], name: str) -> None:
        """:class:`ValueError` when the dilated kernel is larger than the padded input."""
        geometry = (hw, self.kernel_size, self.padding, self.dilation)
        for axis, size, k, p, d in zip(("height", "width"), *geometry):
            if d * (k - 1) + 1 > size + 2 * p:
                raise ValueError(
                    f"{type(self).__name__}: kernel_size {self.kernel_size} (dilation {self.dilation}) spans "
                    f"{d * (k - 1) + 1} pixels, more than the padded input {axis} "
                    f"{size} + 2 * {p} = {size + 2 * p} of {name} {tuple(hw)}"
                )

    def output_shape(self, im_dims: IntPair) -> tuple[int, int]:
        """Output height and width for an input of ``im_dims``."""
        return sf.conv2d_output_shape(
            pair(im_dims, "im_dims"), self.kernel_size, self.stride, self.padding, self.dilation
        )

    def _geometry(self) -> tuple:
        return (self.stride, self.padding, self.dilation, self.groups)

    def _unfold(self, x: Tensor) -> Tensor:
        """Patches ``(N, groups, C/groups * kh * kw, H_out, W_out)``."""
        return sf.conv2d_unfold(x, self.kernel_size, *self._geometry())

    def _unfold_history(self, history: Tensor) -> Tensor:
        """Patches ``(L, B, groups, M, H_out, W_out)`` of a history ``(L, B, C, H, W)``."""
        patches = self._unfold(history.flatten(0, 1))
        return patches.view(history.shape[0], history.shape[1], *patches.shape[1:])

    # -- the connection protocol -----------------------------------------------------
    def check_input_shape(self, shape: torch.Size) -> None:
        ok = len(shape) == 4 and shape[1] == self.in_channels
        if ok and self.im_dims is not None:
            ok = tuple(shape[2:]) == self.im_dims
        if not ok:
            hw = "H, W" if self.im_dims is None else f"{self.im_dims[0]}, {self.im_dims[1]}"
            raise ValueError(
                f"{type(self).__name__}: spikes must have shape (batch, in_channels={self.in_channels}, {hw}), "
                f"got {tuple(shape)}"
            )
        if self.im_dims is None:
            self._check_fits(tuple(shape[2:]), "the spikes of shape")

    def propagate(self, spikes: Tensor) -> Tensor:
        out = sf.conv2d_propagate(spikes, self._parameters["weight"], *self._geometry())
        return self._add_bias(out)

    def propagate_delayed(self, history_by_delay: Tensor) -> Tensor:
        stacked = self.stacked_weight(sf.conv2d_stack_weight)
        out = sf.conv2d_propagate_delayed(history_by_delay, stacked, *self._geometry())
        return self._add_bias(out)

    def synapse_trace(self, trace: Tensor) -> Tensor:
        return sf.conv2d_synapse_trace(self._unfold(trace), self.out_channels)

    def synapse_layout(self, values: Tensor) -> Tensor:
        # synapse_trace is (N, O, H_out, W_out, M): the kernel's synapses come last
        return values.reshape(self.out_channels, 1, 1, -1)

    def receptive_field_sum(self, trace: Tensor) -> Tensor:
        return sf.conv2d_receptive_field_sum(trace, self.weight.shape, *self._geometry())

    def correlate_arriving(
        self, post: Tensor, pre: Tensor, per_batch: bool, pre_map: Callable | None
    ) -> Tensor:
        return sf.conv2d_correlate(post, self._unfold(pre), self.weight.shape, per_batch, pre_map)

    def correlate_history(self, post: Tensor, history: Tensor, per_batch: bool) -> Tensor:
        patches = self._unfold_history(history)
        return sf.conv2d_correlate_delayed(post, patches, self.delay_steps, per_batch)
