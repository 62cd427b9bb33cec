r"""Multisynaptic convolution (:class:`Conv2dSep`) and the channel-summing :class:`Merge`.

The hierarchical network of Paredes-Vallés, Scheper & de Croon (TPAMI 2019,
cuSNN) detects local motion with a *multisynaptic* convolution (MS-Conv): every
synapse between presynaptic pixel :math:`(c, y + u, x + v)` and a postsynaptic
neuron is :math:`D` synapses with transmission delays
:math:`\tau_0 < \dots < \tau_{D-1}`, each with its own weight,

.. math:: I_{b,o,y,x}(t) = \sum_{c,d,u,v} W_{o,c,d,u,v}\;
          s_{b,c,y+u,x+v}(t - \tau_d).

A kernel whose spatial pattern changes with the delay is a space-time oriented
filter, which responds to one direction of motion more than to the opposite one.
The cuSNN Merge layer feeds it a single map, the sum of the feature maps of the
layer before (:class:`Merge`).
"""

from __future__ import annotations

from typing import Callable, ClassVar, Sequence

import torch

from pysnn import functional as sf
from pysnn.capabilities import Capabilities
from pysnn.connection.base import IntPair
from pysnn.connection.conv import Conv2d
from pysnn.delay import DelayLike
from pysnn.validation import check_dt

Tensor = torch.Tensor

__all__ = ["Conv2dSep", "Merge"]


def _tap_steps(delays: Sequence[float], dt: float) -> tuple[int, ...]:
    """``delays`` (ms) as distinct whole numbers of steps; ValueError/TypeError naming ``delays``."""
    if isinstance(delays, Tensor):
        delays = delays.detach().cpu().flatten().tolist()
    if isinstance(delays, (str, bytes)) or not isinstance(delays, Sequence):
        raise TypeError(f"delays must be a sequence of delays in ms, got {type(delays).__name__}")
    if len(delays) == 0:
        raise ValueError("delays must hold at least one delay (ms), got an empty sequence")
    for value in delays:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"delays must hold numbers (ms), got {value!r}")
    steps = tuple(int(s) for s in sf.duration_to_steps(list(delays), dt, "delays").tolist())
    if len(set(steps)) != len(steps):
        raise ValueError(f"delays must be distinct, got {list(delays)} ms = {list(steps)} steps")
    return steps


class Conv2dSep(Conv2d):
    r"""Multisynaptic convolution (MS-Conv of Paredes-Vallés et al. 2019), optionally separable.

    .. math:: I_{b,o,y,x}(t) = \sum_{c,d,u,v} W_{o,c,d,u,v}\;
              s_{b,c,\,\sigma y - p + \delta u,\,\sigma x - p + \delta v}(t - \tau_d)

    Every synapse of a :class:`~pysnn.connection.Conv2d` kernel becomes
    :math:`D` synapses with the delays ``delays`` :math:`\tau_d` (ms).  The
    spatiotemporal kernel is either

    * ``separable=False``: free, ``weight`` is ``(O, C_g, D, kh, kw)``, one
      spatial kernel per delay (the MS-Conv of the paper and cuSNN); or
    * ``separable=True`` (default): :math:`W_{o,c,d,u,v} = S_{o,c,u,v}\, T_{o,c,d}`
      (:func:`pysnn.functional.separable_weight`), ``weight`` is the spatial
      kernel :math:`S` ``(O, C_g, kh, kw)`` shared by the delays and
      ``temporal_weight`` :math:`T` holds the fixed weights of the delays:
      ``(D,)``, one per delay shared by every synapse, or ``(O, C_g, D)``, one
      per synapse and delay.  Learning rules train :math:`S`; its correlation
      is :math:`C^S = \sum_d T_d C_d` (:func:`pysnn.functional.separable_contract`).

    A separable kernel is not direction selective (its response to a pattern
    moving one way and to the mirror motion have the same energy, Adelson &
    Bergen 1985); use ``separable=False`` to learn motion detectors.

    The step is one :func:`torch.nn.functional.conv2d` over the delayed copies of
    the input stacked as channels, channel :math:`c D + d` holding
    :math:`s_c(t - \tau_d)` (:func:`pysnn.functional.delay_taps_stack`, read from
    the connection's :class:`~pysnn.delay.DelayLine`, which keeps the last
    :math:`\max_d \tau_d + 1` steps).  These stacked spikes and traces are what
    *arrives* at the synapses: :meth:`~pysnn.connection.Connection.arriving`,
    :meth:`~pysnn.connection.Connection.correlate` (so every rule of
    :mod:`pysnn.learning` that works on ``Conv2d`` works here, e.g.
    :class:`~pysnn.learning.STDP` pairs each delayed copy with the
    postsynaptic spikes and :class:`~pysnn.learning.FedeSTDP` normalises the
    trace by its maximum over the receptive field of all delays), the trace
    returned by :meth:`forward` ``(batch, C D, H, W)`` and
    :meth:`receptive_field_sum` of it (for :class:`~pysnn.neuron.FedeNeuron`).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the presynaptic and postsynaptic populations.
    kernel_size : int or (int, int)
        Spatial kernel size.
    delays : sequence of float
        The :math:`D` distinct delays :math:`\tau_d` in ms, whole numbers of
        ``dt`` (the paper spaces them evenly, e.g. ``[1, 4, 7, ..., 28]``).
    separable : bool
        Separable kernel (see above) or one free kernel per delay.
    temporal_weight : Tensor or sequence of float, optional
        With ``separable=True``: :math:`T`, ``(D,)`` or ``(O, C_g, D)``
        (default: ones ``(D,)``).  Must be ``None`` when ``separable=False``.
    im_dims, dt, stride, padding, dilation, groups, trace_per_synapse
        As in :class:`~pysnn.connection.Conv2d` (``trace_per_synapse`` gives
        ``(batch, O, H_out, W_out, C_g D kh kw)``).

    Notes
    -----
    Delays per synapse (a tensor ``delay``) are not supported: the delays are
    the taps ``delays``.  :meth:`forward_steps` runs ``T`` steps as one
    convolution and leaves the same state as ``T`` calls of :meth:`forward`.
    """

    kind = "conv2d_sep"
    learnable_delays = False
    #: per-synapse delays are not supported: the delays are the taps
    capabilities: ClassVar[Capabilities] = Conv2d.capabilities._replace(per_synapse_delay=False)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        delays: Sequence[float],
        *,
        separable: bool = True,
        temporal_weight: Tensor | Sequence[float] | None = None,
        im_dims: IntPair | None = None,
        dt: float = 1.0,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        trace_per_synapse: bool = False,
    ) -> None:
        if not isinstance(separable, bool):
            raise TypeError(f"separable must be a bool, got {type(separable).__name__}")
        taps = _tap_steps(delays, check_dt(dt))
        if not separable and temporal_weight is not None:
            raise ValueError(
                "temporal_weight is only for separable=True (with separable=False every "
                "delay has its own spatial kernel in weight)"
            )
        self.separable = separable
        self.n_delays = len(taps)
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            im_dims=im_dims,
            dt=dt,
            delay=max(taps) * float(dt),
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            trace_per_synapse=trace_per_synapse,
        )
        self.register_buffer("taps", torch.tensor(taps, dtype=torch.int64))
        self.register_buffer("temporal_weight", None)
        if separable:
            self.set_temporal_weight(
                torch.ones(len(taps)) if temporal_weight is None else temporal_weight
            )

    def _weight_shape(self) -> tuple[int, ...]:
        cg = self.in_channels // self.groups
        if self.separable:
            return (self.out_channels, cg, *self.kernel_size)
        return (self.out_channels, cg, self.n_delays, *self.kernel_size)

    @property
    def delays(self) -> list[float]:
        """The delays :math:`\\tau_d` in ms."""
        return [float(s) * self.dt for s in self.taps.tolist()]

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        """Shape of the spatiotemporal kernel :math:`W`, ``(O, C_g, D, kh, kw)``."""
        return (
            self.out_channels,
            self.in_channels // self.groups,
            self.n_delays,
            *self.kernel_size,
        )

    @torch.no_grad()
    def set_temporal_weight(self, temporal_weight: Tensor | Sequence[float]) -> None:
        """Set :math:`T` (``separable=True`` only): ``(D,)`` or ``(O, C_g, D)``, finite."""
        if not self.separable:
            raise ValueError("temporal_weight is only for separable=True")
        weight = self._parameters["weight"]
        if not isinstance(temporal_weight, Tensor):
            if isinstance(temporal_weight, (str, bytes)) or not isinstance(
                temporal_weight, Sequence
            ):
                raise TypeError(
                    "temporal_weight must be a tensor or a sequence of numbers, got "
                    f"{type(temporal_weight).__name__}"
                )
            temporal_weight = torch.tensor(temporal_weight, dtype=weight.dtype)
        out, cg, n_delays = self.kernel_shape[:3]
        if tuple(temporal_weight.shape) not in ((n_delays,), (out, cg, n_delays)):
            raise ValueError(
                f"temporal_weight must have shape ({n_delays},) or ({out}, {cg}, {n_delays}), "
                f"got {tuple(temporal_weight.shape)}"
            )
        if not bool(torch.isfinite(temporal_weight).all()):
            raise ValueError("temporal_weight must be finite")
        self.temporal_weight = temporal_weight.to(weight.dtype, copy=True).to(weight.device)

    @property
    def min_delay(self) -> int:
        """The shortest tap in steps."""
        return int(self.taps.min())

    def _check_dt_change(self, dt: float) -> None:
        _tap_steps(self.delays, dt)

    def _dt_changed(self, old: float) -> None:
        """The taps keep their delays in ms; in steps they change, so the delay state resets."""
        delays = [float(s) * old for s in self.taps.tolist()]
        taps = _tap_steps(delays, self.dt)
        self.taps = torch.tensor(taps, dtype=torch.int64, device=self.taps.device)
        self._line.set_delay(max(taps) * self.dt, self.dt)
        self.reset_state()

    def set_delay(self, delay: DelayLike) -> None:
        """Not available: the delays of a ``Conv2dSep`` are its ``delays``, fixed at construction."""
        raise TypeError(
            "Conv2dSep: the delays are the taps given as delays=... at construction; "
            "build a new Conv2dSep to change them"
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, delays={self.delays}, separable={self.separable}"

    def kernel(self) -> Tensor:
        """The spatiotemporal kernel :math:`W` ``(O, C_g, D, kh, kw)`` (a new tensor when separable)."""
        weight: Tensor = self.weight
        if not self.separable:
            return weight
        return sf.separable_weight(weight, self.temporal_weight)

    def _stacked_shape(self) -> tuple[int, ...]:
        out, cg, n_delays, kh, kw = self.kernel_shape
        return (out, cg * n_delays, kh, kw)

    # -- what arrives: the delayed copies stacked as channels --------------------------
    def arriving_from_line(self, with_trace: bool) -> tuple[Tensor, Tensor | None]:
        """The stacked taps ``(batch, C D, H, W)`` of the spike (and trace) history."""
        line = self._line
        spikes = sf.delay_taps_stack(line.history_by_delay("spikes"), self.taps)
        if not with_trace:
            return spikes, None
        return spikes, sf.delay_taps_stack(line.history_by_delay("trace"), self.taps)

    def arriving_from_window(
        self, full: Tensor, full_trace: Tensor | None, steps: int
    ) -> tuple[Tensor, Tensor | None]:
        """The stacked taps of every step of the window, ``[T, batch, C D, H, W]``."""
        line = self._line

        def stack(history: Tensor) -> Tensor:
            stacked = sf.delay_taps_stack(line.windows_by_delay(history), self.taps)
            return stacked.view(steps, -1, *stacked.shape[1:])

        return stack(full), None if full_trace is None else stack(full_trace)

    # -- the connection protocol (on the stacked taps) -----------------------------
    def propagate(self, spikes: Tensor) -> Tensor:
        """Postsynaptic input of stacked taps ``(N, C D, H, W)`` (:func:`delay_taps_stack`)."""
        kernel = self.kernel().reshape(self._stacked_shape())
        return sf.conv2d_propagate(spikes, kernel, *self._geometry())

    def propagate_delayed(self, history_by_delay: Tensor) -> Tensor:
        raise NotImplementedError("Conv2dSep does not support per-synapse delays")

    def synapse_layout(self, values: Tensor) -> Tensor:
        if self.separable:  # one spatial weight for the D copies of a synapse
            values = values.unsqueeze(2).expand(self.kernel_shape)
        return values.reshape(self.out_channels, 1, 1, -1)

    def receptive_field_sum(self, trace: Tensor) -> Tensor:
        r"""Sum of a stacked trace ``(N, C D, H, W)`` over each receptive field (all delays).

        .. math:: X_{n,o,y,x} = \sum_{c,d,u,v} x_{n,c,\ldots}(t - \tau_d)
        """
        return sf.conv2d_receptive_field_sum(trace, self._stacked_shape(), *self._geometry())

    def correlate_arriving(
        self, post: Tensor, pre: Tensor, per_batch: bool, pre_map: Callable | None
    ) -> Tensor:
        full = sf.conv2d_correlate(post, self._unfold(pre), self.kernel_shape, per_batch, pre_map)
        if not self.separable:
            return full
        return sf.separable_contract(full, self.temporal_weight)

    def correlate_history(self, post: Tensor, history: Tensor, per_batch: bool) -> Tensor:
        raise NotImplementedError("Conv2dSep does not support per-synapse delays")


class Merge(Conv2d):
    r"""Sum of the input channels: a 1x1 convolution with fixed unit weights (cuSNN's Merge).

    .. math:: I_{b,0,y,x}(t) = \sum_c s_{b,c,y,x}(t - d)

    Output ``(batch, 1, H, W)``.  The weights are fixed at 1: :meth:`reset_weights`
    keeps them at 1 and a learning rule that tries to correlate on a ``Merge``
    gets a :class:`TypeError`.  Everything else (delay, multi-step,
    :meth:`receptive_field_sum`) is that of :class:`~pysnn.connection.Conv2d`.

    Parameters
    ----------
    in_channels : int
        Channels to sum.
    im_dims : (int, int), optional
        Input height and width, checked when given.
    dt : float
        Timestep in ms.
    delay : float
        One delay (ms) for the whole connection.
    """

    kind = "merge"
    learnable_delays = False

    def __init__(
        self,
        in_channels: int,
        im_dims: IntPair | None = None,
        dt: float = 1.0,
        delay: float = 0,
    ) -> None:
        if isinstance(delay, Tensor) and delay.dim() > 0:
            raise ValueError("Merge: delay must be one number (ms), not a tensor per synapse")
        super().__init__(in_channels, 1, 1, im_dims=im_dims, dt=dt, delay=delay)

    def after_reset_weights(self) -> None:
        self.weight.fill_(1.0)

    def correlate_arriving(
        self, post: Tensor, pre: Tensor, per_batch: bool, pre_map: Callable | None
    ) -> Tensor:
        raise TypeError("Merge has fixed unit weights; do not pass it to a learning rule")

    def extra_repr(self) -> str:
        return f"{self.in_channels} -> 1 (sum of channels, fixed unit weights)"
