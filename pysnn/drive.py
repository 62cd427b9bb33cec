r"""External drive that every process can regenerate: Poisson counts from counter-based random numbers.

:class:`PoissonDrive` gives each neuron an independent Poisson number of
input spikes per step (NEST's ``poisson_generator`` connected to every neuron
of a population).  The count of neuron :math:`i` (its global index), batch
element :math:`b` and step :math:`t` is a pure function of the seed,
:math:`i`, :math:`b` and :math:`t` (:mod:`pysnn.functional.counter`), so a
population split over processes (:mod:`pysnn.parallel`) gets the same drive
as on one process, and a run resumed from a checkpoint the same drive as an
uninterrupted one: the only state is the step counter.
"""

from __future__ import annotations

import math

import torch

from pysnn.clock import Clocked
from pysnn.functional import counter as rng
from pysnn.state import StatefulModule

Tensor = torch.Tensor

__all__ = ["PoissonDrive"]

#: the count of a step is cut where the Poisson tail falls below this probability
TAIL = 1e-15


class PoissonDrive(Clocked, StatefulModule):
    r"""Independent Poisson counts per neuron and step, reproducible under any partition.

    .. math:: n_{b,i}(t) \sim \mathrm{Poisson}(\lambda_i),\qquad
              \lambda_i = r_i\, \Delta t / 1000

    drawn by inversion (:func:`~pysnn.functional.counter.poisson_from_uniform`)
    of :math:`u = U(\mathrm{key}(\mathrm{key}(\text{seed}, i), b), t)`.

    Parameters
    ----------
    rates : float or Tensor
        Rate of each neuron in Hz (one value, or one per neuron).
    n : int
        Number of neurons.
    dt : float
        Timestep in ms.
    seed : int
        Seed of the drive.
    index : Tensor, optional
        Global index of each neuron (default ``0 .. n-1``): a process that
        holds part of a population passes its neurons' indices.

    Attributes
    ----------
    step : int
        Steps since the last reset (the counter of the next draw).

    Examples
    --------
    >>> drive = PoissonDrive(torch.full((4,), 12800.0), 4, dt=0.1, seed=1)
    >>> counts = drive(2)          # (batch 2, 4 neurons), mean 1.28 each
    """

    _extra_state_attrs = ("step",)

    def __init__(
        self,
        rates: float | Tensor,
        n: int,
        dt: float = 1.0,
        seed: int = 0,
        index: Tensor | None = None,
    ) -> None:
        super().__init__()
        self._init_dt(dt)
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ValueError(f"n must be a positive int, got {n!r}")
        rates = torch.as_tensor(rates, dtype=torch.float64).expand(n).clone()
        if not bool(torch.isfinite(rates).all()) or bool((rates < 0).any()):
            raise ValueError("rates must be finite and >= 0 Hz")
        index = torch.arange(n) if index is None else torch.as_tensor(index, dtype=torch.int64)
        if tuple(index.shape) != (n,):
            raise ValueError(f"index must have shape ({n},), got {tuple(index.shape)}")
        self.n, self.seed, self.step = n, int(seed), 0
        self.register_buffer("rates", rates)
        self.register_buffer("keys", rng.derive_key(rng.derive_key(int(seed), 1), index))
        self.register_buffer("anchor", torch.zeros(()))  # the output dtype and device
        self._build_cdf()

    def _build_cdf(self) -> None:
        """Cumulative Poisson probabilities per neuron, ``(K + 1, n)``, float64."""
        lam = self.rates.double() * self.dt / 1000.0
        top = float(lam.max()) if lam.numel() else 0.0
        k_max = 1
        while k_max < 1000:  # the smallest K whose tail is below TAIL for the largest rate
            tail = 1.0 - sum(math.exp(-top) * top**k / math.factorial(k) for k in range(k_max + 1))
            if tail < TAIL:
                break
            k_max += 1
        k = torch.arange(k_max + 1, dtype=torch.float64, device=lam.device)
        log_pmf = k * torch.log(lam.unsqueeze(1).clamp(min=1e-300)) - lam.unsqueeze(1)
        log_pmf = log_pmf - torch.lgamma(k + 1.0)
        pmf = torch.where(lam.unsqueeze(1) > 0, log_pmf.exp(), (k == 0).to(lam.dtype))
        self.register_buffer("cdf", pmf.cumsum(1).t().contiguous(), persistent=False)

    def _dt_changed(self, old: float) -> None:
        self._build_cdf()

    def extra_repr(self) -> str:
        return f"n={self.n}, seed={self.seed}, rates {float(self.rates.min()):g}..{float(self.rates.max()):g} Hz"

    def _init_state(self, batch_size: int) -> None:
        self.step = 0

    @property
    def batch_size(self) -> int | None:
        return None

    def forward(self, batch: int = 1) -> Tensor:
        """The counts of this step ``(batch, n)`` (in the module's dtype); advances the step."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive int, got {batch!r}")
        self._fresh = False
        keys = self.__dict__.get("_batch_keys")
        base = self._buffers["keys"]
        if keys is None or keys.shape[0] != batch or keys.device != base.device:
            sample = torch.arange(batch, device=base.device).unsqueeze(1)
            keys = self.__dict__["_batch_keys"] = rng.derive_key(base.unsqueeze(0), sample)
        u = rng.bits_to_uniform(rng.counter_bits(keys, self.step))
        counts = rng.poisson_from_uniform(u, self._buffers["cdf"])
        self.step += 1
        anchor = self._buffers["anchor"]
        return counts.to(anchor.dtype)
