r"""Spike encoders: turn static values (rates, probabilities, intensities) into spike trains.

Every encoder is an :class:`torch.nn.Module` with the same contract:

- ``encoder(x)`` returns the whole spike train, a tensor of shape ``[T, *x.shape]``
  (time first, then the batch and feature dimensions of ``x``);
- ``encoder.iter(x)`` yields the same train one timestep at a time, ``T`` tensors of shape
  ``x.shape``, without materialising ``[T, ...]``.  With the same random generator state the
  streamed steps equal the materialised train exactly (the materialised train *is* the stack of
  the streamed steps).

Outputs live on the device of ``x`` and have dtype ``dtype`` (default: the default floating
dtype, 0/1 values; pass ``dtype=torch.bool`` to save memory, neurons accept both).  Random
encoders take an optional :class:`torch.Generator` (at construction and/or per call; the per-call
one wins) that must live on the device of ``x``; with it, results are reproducible.

Units: rates are in Hz, ``dt`` and durations in ms, so a cell with rate ``r`` spikes in a step with
probability :math:`p = r \, dt / 1000`.
"""

from __future__ import annotations

import math
from typing import Iterator, Optional, Union

import torch
from torch import nn

from pysnn.validation import check_choice, check_dt

Tensor = torch.Tensor
Number = Union[float, int]

__all__ = [
    "Encoder",
    "PoissonEncoder",
    "PoissonRateEncoder",
    "BernoulliEncoder",
    "RateEncoder",
    "LatencyEncoder",
    "RankOrderEncoder",
    "num_steps_from_duration",
]


def num_steps_from_duration(duration: Number, dt: Number) -> int:
    """Number of timesteps ``T = duration / dt``, which must be a whole number.

    The check tolerates floating-point rounding (``duration=0.3, dt=0.1`` gives 3).

    Raises
    ------
    ValueError
        When ``duration`` is not a positive multiple of ``dt``.
    """
    dt = check_dt(dt)
    if isinstance(duration, bool) or not isinstance(duration, (int, float)):
        raise TypeError(f"duration must be a number (ms), got {type(duration).__name__}")
    if not math.isfinite(duration) or duration <= 0:
        raise ValueError(f"duration must be a finite number > 0 (ms), got {duration}")
    steps = round(duration / dt)
    if steps < 1 or abs(steps * dt - duration) > 1e-9 * max(1.0, abs(duration)):
        raise ValueError(
            f"duration ({duration} ms) must be a positive whole multiple of dt ({dt} ms)"
        )
    return int(steps)


def _check_num_steps(num_steps: int) -> int:
    if isinstance(num_steps, bool) or not isinstance(num_steps, int):
        raise TypeError(f"num_steps must be an int, got {type(num_steps).__name__}")
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    return num_steps


def _check_input(x: object, name: str = "x") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.device.type == "meta":
        raise ValueError(
            f"{name} is on device {x.device}, which holds no values to encode; "
            "give a tensor on a real device (cpu, cuda, ...)"
        )
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return x


def _check_rates(x: object) -> Tensor:
    """Validate firing rates in Hz: a finite, non-negative tensor."""
    rates = _check_input(x, "rates")
    if bool((rates < 0).any()):
        raise ValueError("rates must be >= 0 Hz")
    return rates


class Encoder(nn.Module):
    """Base class of the encoders.

    Subclasses implement :meth:`iter`; :meth:`forward` stacks its steps.

    Parameters
    ----------
    num_steps : int
        Number of timesteps ``T`` of the produced spike train.
    generator : torch.Generator, optional
        Default random generator of the random encoders.
    dtype : torch.dtype, optional
        Dtype of the spikes; when omitted, the dtype of a floating input (so
        float64 rates give float64 spikes), else the default floating dtype.
    """

    def __init__(
        self,
        num_steps: int,
        generator: Optional[torch.Generator] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.num_steps = _check_num_steps(num_steps)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        self.generator = generator
        if dtype is not None and not isinstance(dtype, torch.dtype):
            raise TypeError(f"dtype must be a torch.dtype, got {type(dtype).__name__}")
        self.dtype = dtype

    # -- helpers -----------------------------------------------------------
    def _out_dtype(self, x: Tensor) -> torch.dtype:
        """The spikes' dtype: ``dtype``, else the input's floating dtype (a float64 network's
        encoder gives float64 spikes), else the default floating dtype."""
        if self.dtype is not None:
            return self.dtype
        return x.dtype if x.is_floating_point() else torch.get_default_dtype()

    def _generator(
        self, x: Tensor, generator: Optional[torch.Generator]
    ) -> Optional[torch.Generator]:
        gen = generator if generator is not None else self.generator
        if gen is None:
            return None
        if not isinstance(gen, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(gen).__name__}")
        if torch.device(gen.device).type != x.device.type:
            raise ValueError(
                f"generator is on device {gen.device} but the input is on {x.device}; "
                f"create the generator with torch.Generator(device=x.device)"
            )
        return gen

    def _rand(self, x: Tensor, gen: Optional[torch.Generator]) -> Tensor:
        return torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype)

    # -- public API --------------------------------------------------------
    def iter(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Iterator[Tensor]:
        """Yield the spikes of each of the ``T`` steps, each of shape ``x.shape``."""
        raise NotImplementedError

    def forward(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """Return the whole spike train, shape ``[T, *x.shape]``, on the device of ``x``."""
        return torch.stack(list(self.iter(x, generator)), dim=0)

    def __iter__(self):  # pragma: no cover - guard against a common mistake
        raise TypeError(f"{type(self).__name__} is not iterable; use encoder.iter(x)")

    def extra_repr(self) -> str:
        return f"num_steps={self.num_steps}"


class PoissonRateEncoder(Encoder):
    r"""Per-step Poisson (Bernoulli) spike trains from rates in Hz.

    In every step each cell spikes independently with probability

    .. math:: p = r \, dt / 1000,

    the discrete-time Poisson process (rate ``r`` in Hz, ``dt`` in ms).  ``p`` must not exceed 1,
    i.e. ``r <= 1000 / dt``.  Because steps are independent the rates may change from step to
    step: :meth:`step` draws a single step.

    Parameters
    ----------
    num_steps : int
        Number of timesteps ``T``.
    dt : float
        Timestep in ms.
    generator : torch.Generator, optional
        Random generator (on the device of the inputs).
    dtype : torch.dtype, optional
        Dtype of the spikes.

    Examples
    --------
    >>> import torch
    >>> image = torch.rand(4, 28, 28)              # intensities in [0, 1]
    >>> enc = PoissonRateEncoder(num_steps=350, dt=1.0)
    >>> enc(image.flatten(1) * 63.75).shape        # rates in Hz -> [350, B, 784] spikes
    torch.Size([350, 4, 784])
    """

    def __init__(
        self,
        num_steps: int,
        dt: Number = 1.0,
        generator: Optional[torch.Generator] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(num_steps, generator, dtype)
        self.dt = check_dt(dt)

    def probabilities(self, rates: Tensor) -> Tensor:
        """Spike probability per step ``rates * dt / 1000`` after checking ``0 <= p <= 1``."""
        rates = _check_rates(rates)
        p = rates * (self.dt / 1000.0)
        if bool((p > 1).any()):
            raise ValueError(
                f"rates must be <= 1000/dt = {1000.0 / self.dt:g} Hz so that the spike "
                f"probability per step rate*dt/1000 is <= 1; got a maximum of {float(rates.max()):g} Hz"
            )
        return p

    def step(self, rates: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """Draw the spikes of one step, shape ``rates.shape``."""
        p = self.probabilities(rates)
        gen = self._generator(p, generator)
        return (self._rand(p, gen) < p).to(self._out_dtype(rates))

    def iter(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Iterator[Tensor]:
        p = self.probabilities(x)
        gen = self._generator(p, generator)
        dtype = self._out_dtype(x)
        for _ in range(self.num_steps):
            yield (self._rand(p, gen) < p).to(dtype)

    def extra_repr(self) -> str:
        return f"num_steps={self.num_steps}, dt={self.dt}"


class PoissonEncoder(Encoder):
    r"""Interval-based Poisson encoder of PySNN 0.1: ``PoissonEncoder(duration, dt)``.

    Called with rates in Hz of shape ``(B, ...)`` it returns spikes of shape ``[T, B, ...]`` with
    ``T = duration / dt``.  Each cell runs a continuous-time Poisson process: inter-spike
    intervals are drawn from an exponential distribution with mean ``1000 / r`` ms, and a step
    holds a spike when at least one event of the process falls into it, so

    .. math:: P(\text{spike in a step}) = 1 - e^{-r \, dt / 1000}

    (close to ``r dt / 1000`` for small rates; unlike a per-step Bernoulli draw it accepts any
    rate).  Cells with rate 0 never spike.  Fixes of the 0.1 version: any batch and feature
    shape, zero rates accepted, ``duration`` and ``dt`` checked with a rounding tolerance instead
    of a float modulo, reproducible with a generator, and streamable with :meth:`iter`.

    Parameters
    ----------
    duration : float
        Length of the spike train in ms.
    dt : float
        Timestep in ms.
    generator : torch.Generator, optional
        Random generator (on the device of the inputs).
    dtype : torch.dtype, optional
        Dtype of the spikes.
    """

    def __init__(
        self,
        duration: Number,
        dt: Number = 1.0,
        generator: Optional[torch.Generator] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(num_steps_from_duration(duration, dt), generator, dtype)
        self.duration = float(duration)
        self.dt = check_dt(dt)

    def _intervals(
        self, rates_khz: Tensor, active: Tensor, gen: Optional[torch.Generator]
    ) -> Tensor:
        # exponential intervals in ms; inf for silent cells
        u = torch.rand(
            rates_khz.shape, generator=gen, device=rates_khz.device, dtype=rates_khz.dtype
        )
        safe = torch.where(active, rates_khz, torch.ones_like(rates_khz))
        interval = -torch.log1p(-u) / safe
        return torch.where(active, interval, torch.full_like(interval, math.inf))

    def iter(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Iterator[Tensor]:
        rates = _check_rates(x)
        gen = self._generator(rates, generator)
        rates_khz = rates / 1000.0  # events per ms
        active = rates_khz > 0
        dtype = self._out_dtype(x)
        next_event = self._intervals(rates_khz, active, gen)
        for step in range(self.num_steps):
            end = (step + 1) * self.dt
            spikes = next_event < end
            pending = spikes
            # several events may fall into one step: advance each cell past the step end
            while bool(pending.any()):
                next_event = torch.where(
                    pending, next_event + self._intervals(rates_khz, active, gen), next_event
                )
                pending = next_event < end
            yield spikes.to(dtype)

    def extra_repr(self) -> str:
        return f"duration={self.duration}, dt={self.dt}, num_steps={self.num_steps}"


class BernoulliEncoder(Encoder):
    r"""Independent Bernoulli spikes: each cell spikes in each step with probability ``x``.

    Inputs are probabilities in ``[0, 1]`` of any shape.

    Parameters
    ----------
    num_steps : int
        Number of timesteps ``T``.
    generator : torch.Generator, optional
        Random generator (on the device of the inputs).
    dtype : torch.dtype, optional
        Dtype of the spikes.
    """

    def iter(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Iterator[Tensor]:
        p = _check_input(x)
        if bool(((p < 0) | (p > 1)).any()):
            raise ValueError("x holds spike probabilities and must lie in [0, 1]")
        gen = self._generator(p, generator)
        dtype = self._out_dtype(x)
        for _ in range(self.num_steps):
            yield (self._rand(p, gen) < p).to(dtype)


class RateEncoder(Encoder):
    """Repeat the input value at every step (a constant input current, "direct encoding").

    Parameters
    ----------
    num_steps : int
        Number of timesteps ``T``.
    dtype : torch.dtype, optional
        Output dtype; by default the input's floating dtype is kept.
    """

    def __init__(self, num_steps: int, dtype: Optional[torch.dtype] = None) -> None:
        super().__init__(num_steps, None, dtype)

    def iter(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Iterator[Tensor]:
        x = _check_input(x)
        if self.dtype is not None:
            x = x.to(self.dtype)
        for _ in range(self.num_steps):
            yield x

    def forward(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        x = _check_input(x)
        if self.dtype is not None:
            x = x.to(self.dtype)
        return x.unsqueeze(0).expand(self.num_steps, *x.shape).clone()


class _SpikeTimeEncoder(Encoder):
    """Encoders that give each cell at most one spike, at the step ``spike_times(x)``."""

    def spike_times(self, x: Tensor) -> Tensor:
        """Step of each cell's spike (int64, shape of ``x``), -1 for no spike."""
        raise NotImplementedError

    def iter(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Iterator[Tensor]:
        times = self.spike_times(x)
        dtype = self._out_dtype(x)
        for step in range(self.num_steps):
            yield (times == step).to(dtype)


class LatencyEncoder(_SpikeTimeEncoder):
    r"""Time-to-first-spike code: every cell spikes at most once, larger values earlier.

    Inputs are intensities in ``[0, 1]``.  The spike step of intensity ``x`` is

    - ``"linear"``: :math:`t = \mathrm{round}((1 - x)(T - 1))`, for ``x > threshold``;
    - ``"log"``: :math:`t = \mathrm{round}\big((T - 1)\,\ln x / \ln \theta\big)`, for
      ``x >= threshold`` (:math:`\theta`, which must lie in ``(0, 1)``), spreading the low
      intensities over more steps.

    In both modes ``x = 1`` fires at step 0 and cells at or below the threshold never fire.

    Parameters
    ----------
    num_steps : int
        Number of timesteps ``T``.
    mode : {"linear", "log"}
        Mapping from intensity to spike time.
    threshold : float, optional
        Smallest intensity that fires (default 0 for ``"linear"``, 0.01 for ``"log"``).
    dtype : torch.dtype, optional
        Dtype of the spikes.
    """

    def __init__(
        self,
        num_steps: int,
        mode: str = "linear",
        threshold: Optional[float] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(num_steps, None, dtype)
        self.mode = check_choice("mode", mode, ("linear", "log"))
        if threshold is None:
            threshold = 0.0 if mode == "linear" else 0.01
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise TypeError(f"threshold must be a number, got {type(threshold).__name__}")
        low_ok = threshold > 0 if mode == "log" else threshold >= 0
        if not (low_ok and threshold < 1):
            raise ValueError(
                f"threshold must lie in {'(0, 1)' if mode == 'log' else '[0, 1)'} for mode "
                f"{mode!r}, got {threshold}"
            )
        self.threshold = float(threshold)

    def spike_times(self, x: Tensor) -> Tensor:
        """Spike step of every cell (int64, shape ``x.shape``); ``-1`` for cells that never fire."""
        x = _check_input(x)
        if bool(((x < 0) | (x > 1)).any()):
            raise ValueError("x holds intensities and must lie in [0, 1]")
        last = self.num_steps - 1
        if self.mode == "linear":
            fires = x > self.threshold
            t = torch.round((1.0 - x) * last)
        else:
            fires = x >= self.threshold
            t = torch.round(
                last * torch.log(x.clamp_min(self.threshold)) / math.log(self.threshold)
            )
        t = t.clamp(0, last).to(torch.int64)
        return torch.where(fires, t, torch.full_like(t, -1))

    def extra_repr(self) -> str:
        return f"num_steps={self.num_steps}, mode={self.mode!r}, threshold={self.threshold}"


class RankOrderEncoder(_SpikeTimeEncoder):
    r"""Rank-order code (Thorpe): cells fire once, in decreasing order of intensity.

    Within each sample (everything but the first dimension of ``x``; a 1-d input is one
    sample) the ``n`` cells with ``x > threshold`` are ranked by decreasing value (ties broken
    by position) and the cell of rank ``k = 0 .. n-1`` fires at step
    :math:`\lfloor k \, T / n \rfloor`.  With ``n <= T`` every cell fires in its own step;
    otherwise consecutive ranks share steps but the order is kept.

    Parameters
    ----------
    num_steps : int
        Number of timesteps ``T``.
    threshold : float
        Cells at or below it never fire (default 0).
    dtype : torch.dtype, optional
        Dtype of the spikes.
    """

    def __init__(
        self, num_steps: int, threshold: float = 0.0, dtype: Optional[torch.dtype] = None
    ) -> None:
        super().__init__(num_steps, None, dtype)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise TypeError(f"threshold must be a number, got {type(threshold).__name__}")
        self.threshold = float(threshold)

    def spike_times(self, x: Tensor) -> Tensor:
        """Spike step of every cell (int64, shape ``x.shape``); ``-1`` for cells that never fire."""
        x = _check_input(x)
        if x.dim() == 0:
            raise ValueError("x must have at least one dimension")
        flat = x.reshape(1, -1) if x.dim() == 1 else x.reshape(x.shape[0], -1)
        fires = flat > self.threshold
        key = torch.where(fires, flat, torch.full_like(flat, -math.inf))
        order = torch.sort(key, dim=1, descending=True, stable=True).indices
        rank = torch.empty_like(order)
        ar = torch.arange(flat.shape[1], device=x.device).expand_as(order)
        rank.scatter_(1, order, ar)
        n = fires.sum(dim=1, keepdim=True).clamp_min(1)
        t = torch.div(rank * self.num_steps, n, rounding_mode="floor")
        t = torch.where(fires, t, torch.full_like(t, -1))
        return t.reshape(x.shape)

    def extra_repr(self) -> str:
        return f"num_steps={self.num_steps}, threshold={self.threshold}"
