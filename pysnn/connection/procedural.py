r"""Random connectivity defined by a seed, and connections that regenerate it on every spike.

:class:`RandomConnectivity` describes random synapses between *blocks* of
neurons (populations laid out one after the other, as in NEST's
``Connect(..., {"rule": "fixed_total_number"})`` between each pair of
populations): how many synapses each block receives from each block, and the
distributions of their weights and delays.  Every value is a pure function of
the seed, the presynaptic neuron and the synapse's position in that neuron's
row (:mod:`pysnn.functional.counter`), so the synapses of any presynaptic
neuron can be regenerated at any time, on any device and by any process:

* :class:`ProceduralSparse` regenerates the synapses of each presynaptic
  neuron when it spikes and delivers them through a
  :class:`~pysnn.queue.SpikeQueue`; nothing per synapse is stored (GeNN's
  *procedural connectivity*, Knight & Nowotny 2021, "Larger GPU-accelerated
  brain simulations with procedural connectivity", Nat. Comput. Sci. 1: 136);
* :meth:`Sparse.from_connectivity <pysnn.connection.Sparse.from_connectivity>`
  stores the same synapses; both give the same spikes bit for bit on the CPU
  (the same weights, delays and order of summation).

Row of presynaptic neuron :math:`j` in block :math:`b`: for each postsynaptic
block :math:`a`, :math:`n_{ja}` synapses :math:`k = 0 \ldots n_{ja} - 1` with
key :math:`\kappa = \mathrm{key}(\mathrm{key}(\text{seed}, j), a)` and

.. math::
    \text{post}_k &= o_a + \lfloor r(\kappa, 3k)_{hi}\, N_a / 2^{32} \rfloor\\
    w_k &= \mu^w_{ab} + \sigma^w_{ab}\, z(\kappa, 3k + 1)\\
    d_k &= \lfloor (\mu^d_{ab} + \sigma^d_{ab}\, z(\kappa, 3k + 2)) / \Delta t + 1/2 \rfloor

(:math:`o_a, N_a` offset and size of block :math:`a`, :math:`r` the counter
bits, :math:`z` a normal deviate).  Weights keep the sign of their mean and
delays stay at least ``delay_min``: a draw outside is redrawn from the next
sub-stream (NEST's ``nest.math.redraw``).  Targets are drawn with
replacement: two synapses may join the same pair (multapses) and a
population may connect a neuron to itself, as NEST's ``fixed_total_number``.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple, Sequence, Union

import torch

from pysnn.connection.base import Connection, check_step_inputs
from pysnn.functional import counter as rng
from pysnn.queue import SpikeQueue

Tensor = torch.Tensor
Matrix = Union[float, Sequence[Sequence[float]], Tensor]

__all__ = ["ProceduralSparse", "RandomConnectivity", "Synapses", "QueuedDelivery"]

#: connectivity rules of :class:`RandomConnectivity`
RULES = ("fixed_total_number", "fixed_outdegree")
#: redraws of a weight or delay outside its bounds before it is clamped to the bound
MAX_REDRAWS = 64


class Synapses(NamedTuple):
    """Synapses of a set of presynaptic events, in row order.

    ``owner[s]`` is the position (in the events) of the presynaptic neuron of
    synapse ``s``; ``post`` its (local) target, ``weight`` (float64) and
    ``delay`` (int64 steps).
    """

    owner: Tensor
    post: Tensor
    weight: Tensor
    delay: Tensor


def _matrix(value: Matrix, shape: tuple[int, int], name: str) -> Tensor:
    out = torch.as_tensor(value, dtype=torch.float64)
    if out.dim() == 0:
        out = out.expand(shape)
    if tuple(out.shape) != shape:
        raise ValueError(
            f"{name} must be a number or a (post blocks, pre blocks) = {shape} matrix, "
            f"got shape {tuple(out.shape)}"
        )
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"{name} must be finite")
    return out.clone()


def _sizes(sizes: Sequence[int], name: str) -> Tensor:
    out = torch.as_tensor(sizes, dtype=torch.int64).reshape(-1)
    if out.numel() == 0 or bool((out <= 0).any()) or out.is_floating_point():
        raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {sizes!r}")
    return out


def _split_counts(total: Tensor, n: Tensor, gen: torch.Generator) -> Tensor:
    """A multinomial of ``total`` draws over ``n`` equally likely bins, by binary splitting.

    ``total`` and ``n`` are ``(P,)``; returns ``(P, max(n))`` counts (bins
    beyond ``n`` hold 0).  Each level splits every range in two halves with a
    binomial, so the cost is :math:`O(P \\max n)` without drawing the
    individual synapses.
    """
    width = int(n.max())
    out = torch.zeros(total.numel(), width, dtype=torch.int64)
    stack = [(torch.arange(total.numel()), torch.zeros_like(n), n.clone(), total.clone())]
    while stack:
        rows, start, size, count = stack.pop()
        single = size == 1
        out[rows[single], start[single]] = count[single]
        split = size > 1
        if not bool(split.any()):
            continue
        rows, start, size, count = rows[split], start[split], size[split], count[split]
        left = size // 2
        left_count = torch.binomial(
            count.to(torch.float64), left.to(torch.float64) / size.to(torch.float64), generator=gen
        ).to(torch.int64)
        stack.append((rows, start, left, left_count))
        stack.append((rows, start + left, size - left, count - left_count))
    return out


class RandomConnectivity:
    r"""Random synapses between blocks of neurons, regenerable from the seed (module docstring).

    Parameters
    ----------
    pre_sizes, post_sizes : sequence of int
        Sizes of the presynaptic and postsynaptic blocks (the connection's
        ``in_features`` and ``out_features`` are their sums).
    counts : number or matrix
        ``(post blocks, pre blocks)`` (NEST's target-first order): the total
        number of synapses from block :math:`b` onto block :math:`a`
        (``rule="fixed_total_number"``; each row's count is drawn once from
        the seed and kept, one int per presynaptic neuron and target block),
        or the number of targets in :math:`a` of every neuron of :math:`b`
        (``rule="fixed_outdegree"``).
    rule : {"fixed_total_number", "fixed_outdegree"}
        How ``counts`` is read.
    weight, weight_std : number or matrix
        Mean and standard deviation of the weights (normal; redrawn while the
        sign differs from the mean's).
    delay, delay_std : number or matrix
        Mean and standard deviation of the delays in ms (normal; redrawn
        while below ``delay_min``), rounded to the nearest step.
    delay_min : float, optional
        Smallest delay in ms (default ``dt / 2``, which rounds to one step;
        NEST's bound for the microcircuit).
    dt : float
        Timestep in ms.
    seed : int
        The seed of everything.

    Attributes
    ----------
    in_features, out_features : int
    n_synapses : int
        Total number of synapses.
    max_delay, min_delay : int
        Bounds of the delays in steps (a normal deviate is bounded by
        :data:`~pysnn.functional.counter.NORMAL_BOUND`).

    Examples
    --------
    >>> conn = RandomConnectivity([800, 200], [800, 200], [[6400, 1600], [1600, 400]],
    ...                           weight=[[0.5, -2.0], [0.5, -2.0]], weight_std=0.05,
    ...                           delay=1.5, delay_std=0.5, dt=0.1, seed=1)
    >>> conn.n_synapses
    10000
    """

    def __init__(
        self,
        pre_sizes: Sequence[int],
        post_sizes: Sequence[int],
        counts: Matrix,
        *,
        rule: str = "fixed_total_number",
        weight: Matrix = 1.0,
        weight_std: Matrix = 0.0,
        delay: Matrix = 0.0,
        delay_std: Matrix = 0.0,
        delay_min: float | None = None,
        dt: float = 1.0,
        seed: int = 0,
    ) -> None:
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a positive number of ms, got {dt!r}")
        self.pre_sizes, self.post_sizes = _sizes(pre_sizes, "pre_sizes"), _sizes(
            post_sizes, "post_sizes"
        )
        shape = (self.post_sizes.numel(), self.pre_sizes.numel())
        counts_f = _matrix(counts, shape, "counts")
        if bool((counts_f < 0).any()) or bool((counts_f != counts_f.round()).any()):
            raise ValueError("counts must hold non-negative whole numbers")
        self.rule, self.dt, self.seed = rule, float(dt), seed
        self.counts = counts_f.to(torch.int64)
        self.weight_mean = _matrix(weight, shape, "weight")
        self.weight_std = _matrix(weight_std, shape, "weight_std")
        self.delay_mean = _matrix(delay, shape, "delay")
        self.delay_std = _matrix(delay_std, shape, "delay_std")
        if bool((self.weight_std < 0).any()) or bool((self.delay_std < 0).any()):
            raise ValueError("weight_std and delay_std must be >= 0")
        self.delay_min = 0.5 * self.dt if delay_min is None else float(delay_min)
        if bool((self.delay_mean < 0).any()) or self.delay_min < 0:
            raise ValueError("delays must be >= 0 ms")
        self._check_redraws()
        self.pre_offsets = torch.cat([torch.zeros(1, dtype=torch.int64), self.pre_sizes.cumsum(0)])
        self.post_offsets = torch.cat(
            [torch.zeros(1, dtype=torch.int64), self.post_sizes.cumsum(0)]
        )
        self.in_features = int(self.pre_offsets[-1])
        self.out_features = int(self.post_offsets[-1])
        if max(self.in_features, self.out_features) >= 2**31:
            raise ValueError("blocks of at most 2**31 - 1 neurons in all are supported")
        self.key = int(rng.derive_key(seed, 0))
        #: (in_features, post blocks) synapses per presynaptic neuron and target block
        self.row_counts = self._draw_row_counts()

    # -- construction --------------------------------------------------------------
    def _check_redraws(self) -> None:
        """Refuse bounds that a redraw would (almost) never satisfy."""
        normal = torch.distributions.Normal(0.0, 1.0)
        for name, mean, std, bound in (
            ("weight", self.weight_mean.abs(), self.weight_std, 0.0),
            ("delay", self.delay_mean, self.delay_std, self.delay_min),
        ):
            used = (std > 0) & self.counts_nonzero()
            if not bool(used.any()):
                continue
            z = ((bound - mean) / std.clamp(min=1e-300))[used].to(torch.float32)
            keep = 1.0 - normal.cdf(z)
            if bool((keep < 1e-3).any()):
                raise ValueError(
                    f"{name}: the bound is so far above the mean that fewer than 1 in 1000 "
                    "draws would be kept; choose a mean or bound closer together"
                )

    def counts_nonzero(self) -> Tensor:
        """``(post blocks, pre blocks)``: which block pairs have synapses."""
        return self.counts > 0

    def _draw_row_counts(self) -> Tensor | None:
        if self.rule == "fixed_outdegree":
            return None
        gen = torch.Generator().manual_seed(self.seed)
        n_post_blocks, n_pre_blocks = self.counts.shape
        out = torch.zeros(self.in_features, n_post_blocks, dtype=torch.int32)
        for b in range(n_pre_blocks):
            lo, hi = int(self.pre_offsets[b]), int(self.pre_offsets[b + 1])
            split = _split_counts(
                self.counts[:, b], torch.full((n_post_blocks,), hi - lo, dtype=torch.int64), gen
            )
            out[lo:hi] = split.t().to(torch.int32)
        return out

    # -- what it holds ---------------------------------------------------------------
    @property
    def n_synapses(self) -> int:
        if self.rule == "fixed_total_number":
            return int(self.counts.sum())
        return int((self.counts * self.pre_sizes.unsqueeze(0)).sum())

    def _delay_steps(self, ms: Tensor) -> Tensor:
        return torch.floor(ms / self.dt + 0.5).to(torch.int64)

    @functools.cached_property
    def max_delay(self) -> int:
        """The largest delay in steps any synapse can have (computed once: the object is fixed)."""
        used = self.counts_nonzero()
        if not bool(used.any()):
            return 0
        top = self.delay_mean + rng.NORMAL_BOUND * self.delay_std
        return int(self._delay_steps(top[used]).max())

    @functools.cached_property
    def min_delay(self) -> int:
        """The smallest delay in steps any synapse can have (read at every delivery)."""
        used = self.counts_nonzero()
        if not bool(used.any()):
            return 0
        low = torch.where(
            self.delay_std > 0,
            torch.clamp(self.delay_mean - rng.NORMAL_BOUND * self.delay_std, min=self.delay_min),
            self.delay_mean,
        )
        return int(self._delay_steps(low[used]).min())

    def __repr__(self) -> str:
        return (
            f"RandomConnectivity({len(self.pre_sizes)} -> {len(self.post_sizes)} blocks, "
            f"{self.in_features} -> {self.out_features} neurons, {self.n_synapses:,} synapses, "
            f"rule={self.rule!r}, delays {self.min_delay}..{self.max_delay} steps, seed={self.seed})"
        )

    def post_map(self, post: Tensor | None) -> Tensor | None:
        """``(out_features,)`` global target -> position in ``post`` (-1 elsewhere); ``None`` for all."""
        if post is None:
            return None
        post = torch.as_tensor(post, dtype=torch.int64).reshape(-1)
        if post.numel() and (int(post.min()) < 0 or int(post.max()) >= self.out_features):
            raise ValueError(f"post indices must lie in [0, {self.out_features})")
        out = torch.full((self.out_features,), -1, dtype=torch.int64)
        out[post] = torch.arange(post.numel())
        if int((out >= 0).sum()) != post.numel():
            raise ValueError("post indices must be distinct")
        return out

    # -- generation ----------------------------------------------------------------
    def synapses(
        self, units: Tensor, post_map: Tensor | None = None, tables: dict[str, Tensor] | None = None
    ) -> Synapses:
        """The synapses of presynaptic neurons ``units`` (int64, any order), in row order.

        ``post_map`` (:meth:`post_map`) keeps the synapses onto one process's
        neurons and numbers them locally; weights and delays are generated for
        the kept synapses only.  ``tables`` holds this object's tensors on
        another device (:meth:`tables`; default: these, on the CPU).
        """
        t = self.tables() if tables is None else tables
        device = units.device
        n_blocks = t["post_sizes"].numel()
        block = torch.searchsorted(t["pre_offsets"][1:], units, right=True)
        if self.rule == "fixed_total_number":
            per_block = t["row_counts"][units].to(torch.int64)  # (E, A)
        else:
            per_block = t["counts"][:, block].t()
        seg_len = per_block.reshape(-1)
        seg_unit = torch.arange(units.numel(), device=device).repeat_interleave(n_blocks)
        seg_block = torch.arange(n_blocks, device=device).repeat(units.numel())
        seg_key = rng.derive_key(rng.derive_key(self.key, units[seg_unit]), seg_block)
        segment = torch.repeat_interleave(torch.arange(seg_len.numel(), device=device), seg_len)
        first = seg_len.cumsum(0) - seg_len
        k = torch.arange(segment.numel(), device=device) - first[segment]
        key = seg_key[segment]
        to_block = seg_block[segment]
        post = t["post_offsets"][to_block] + rng.bits_to_index(
            rng.counter_bits(key, 3 * k), t["post_sizes"][to_block]
        )
        if post_map is not None:
            local = post_map[post]
            keep = local >= 0
            segment, k, key, to_block, post = (
                segment[keep],
                k[keep],
                key[keep],
                to_block[keep],
                local[keep],
            )
        from_block = block[seg_unit[segment]]
        weight = self._draw(
            key,
            3 * k + 1,
            t["weight_mean"][to_block, from_block],
            t["weight_std"][to_block, from_block],
            "weight",
        )
        delay = self._draw(
            key,
            3 * k + 2,
            t["delay_mean"][to_block, from_block],
            t["delay_std"][to_block, from_block],
            "delay",
        )
        return Synapses(seg_unit[segment], post, weight, self._delay_steps(delay))

    def _draw(self, key: Tensor, counter: Tensor, mean: Tensor, std: Tensor, kind: str) -> Tensor:
        """Normal draws with redraws outside the bounds (weights: sign; delays: ``delay_min``)."""
        random = std > 0
        value = mean.clone()
        if not bool(random.any()):
            return value
        value = mean + std * rng.bits_to_normal(rng.counter_bits(key, counter))
        if kind == "weight":
            bad = random & (value * torch.sign(mean) < 0)
        else:
            bad = random & (value < self.delay_min)
        attempt = 0
        while bool(bad.any()):
            attempt += 1
            index = bad.nonzero().squeeze(1)
            if attempt > MAX_REDRAWS:  # practically never (checked at construction)
                bound = (
                    torch.zeros_like(value)
                    if kind == "weight"
                    else torch.full_like(value, self.delay_min)
                )
                value[index] = bound[index]
                break
            redraw_key = rng.derive_key(key[index], attempt)
            value[index] = mean[index] + std[index] * rng.bits_to_normal(
                rng.counter_bits(redraw_key, counter[index])
            )
            if kind == "weight":
                still = value[index] * torch.sign(mean[index]) < 0
            else:
                still = value[index] < self.delay_min
            bad = torch.zeros_like(bad)
            bad[index[still]] = True
        return value

    def tables(self, device: torch.device | str | None = None) -> dict[str, Tensor]:
        """The tensors :meth:`synapses` reads, on ``device`` (default: the CPU)."""
        names = (
            "pre_offsets",
            "post_offsets",
            "post_sizes",
            "counts",
            "weight_mean",
            "weight_std",
            "delay_mean",
            "delay_std",
        )
        out = {name: getattr(self, name).to(device) for name in names}
        if self.row_counts is not None:
            out["row_counts"] = self.row_counts.to(device)
        return out

    def all_synapses(
        self, post: Tensor | None = None, chunk: int = 1 << 22
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Every synapse (onto ``post`` only, numbered locally, when given), in row order.

        Returns ``(pre, post, weight, delay)`` (int64, int64, float64, int64
        steps), generated in chunks of presynaptic neurons of about ``chunk``
        synapses each (the memory of the result plus one chunk).
        """
        post_map = self.post_map(post)
        tables = self.tables()
        if self.row_counts is not None:
            per_unit = self.row_counts.sum(1, dtype=torch.int64)
        else:
            block = torch.searchsorted(
                self.pre_offsets[1:], torch.arange(self.in_features), right=True
            )
            per_unit = self.counts[:, block].sum(0)
        cumulative = per_unit.cumsum(0)
        parts, start = [], 0
        while start < self.in_features:
            before = int(cumulative[start - 1]) if start else 0
            stop = int(torch.searchsorted(cumulative, before + chunk, right=True))
            stop = min(max(stop, start + 1), self.in_features)
            units = torch.arange(start, stop)
            syn = self.synapses(units, post_map, tables)
            parts.append((units[syn.owner], syn.post, syn.weight, syn.delay))
            start = stop
        return tuple(torch.cat(p) for p in zip(*parts))  # type: ignore[return-value]


class QueuedDelivery:
    """Delivery through a :class:`~pysnn.queue.SpikeQueue` (mixed into connections).

    A connection that delivers through a queue implements
    ``queued_synapses(units) -> (owner, post, weight, delay)`` for the
    active presynaptic neurons and keeps its queue in ``spike_queue``.
    :meth:`deliver` and :meth:`take` split its step, so that spikes can be
    delivered late (:mod:`pysnn.parallel` delivers those of a whole interval
    at once).
    """

    spike_queue: SpikeQueue | None
    in_features: int

    def deliver(self, spikes: Tensor, lag: int = 0) -> None:
        r"""Add the synaptic input of ``spikes`` ``(batch, in_features)`` to the queue.

        ``lag``: how many steps later than the step they were emitted for
        (:math:`\ell` of :mod:`pysnn.queue`); every delay must be at least
        ``lag`` (:class:`ValueError` otherwise).
        """
        if self.spike_queue is None:
            raise RuntimeError(f'{type(self).__name__}: deliver() needs delivery="queue"')
        if lag > self.queued_min_delay():
            raise ValueError(
                f"{type(self).__name__}: spikes delivered {lag} steps late need every delay "
                f">= {lag} steps, the shortest is {self.queued_min_delay()}"
            )
        queue = self.spike_queue
        queue.start(int(spikes.shape[0]))
        sample, unit = spikes.nonzero().unbind(1)
        if unit.numel() == 0:
            return
        owner, post, weight, delay = self.queued_synapses(unit)
        values = spikes[sample, unit].to(queue.queue.dtype)
        queue.add(delay - lag, sample[owner], post, weight.to(values.dtype) * values[owner])

    def take(self, batch: int | None = None) -> Tensor:
        """The postsynaptic input of the current step ``(batch, out)``; advances the queue."""
        queue = self.spike_queue
        if queue is None:
            raise RuntimeError(f'{type(self).__name__}: take() needs delivery="queue"')
        queue.start(int(batch) if batch is not None else (queue.batch_size or 1))
        return queue.take()

    def queued_forward(self, spikes: Tensor, trace: Tensor | None) -> tuple[Tensor, None]:
        """One step: check the input, deliver its spikes, take the current step's input."""
        spikes, _ = check_step_inputs(self, spikes, trace, self.queue_dtype_anchor())
        self.deliver(spikes.reshape(spikes.shape[0], -1))
        return self.take(int(spikes.shape[0])), None

    def queued_min_delay(self) -> int:
        raise NotImplementedError

    def queue_dtype_anchor(self) -> Tensor:
        raise NotImplementedError

    def queued_synapses(self, units: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        raise NotImplementedError


class ProceduralSparse(QueuedDelivery, Connection):
    r"""Sparse synapses regenerated from their seed at every spike, never stored.

    When presynaptic neuron :math:`j` spikes, its row of synapses (targets,
    weights, delays) is regenerated from :class:`RandomConnectivity`
    (counter-based random numbers, :mod:`pysnn.functional.counter`) and
    delivered into a :class:`~pysnn.queue.SpikeQueue`:

    .. math:: I_{b,i}(t) = \sum_{s:\, \text{post}(s) = i} w_s\, x_{b,\text{pre}(s)}(t - d_s)

    as the stored :meth:`Sparse.from_connectivity
    <pysnn.connection.Sparse.from_connectivity>` computes (bit for bit on the
    CPU; on CUDA the scatter's order of summation is not fixed).  Memory:
    the row counts (one int32 per presynaptic neuron and target block), the
    queue (:math:`(d_{max} + 1) \cdot B \cdot N_{out}` values) and the
    state, independent of the number of synapses; time: a few random draws
    per delivered synapse instead of a read.

    The synapses are fixed: **no plasticity** (a learning rule refuses the
    layer; use the stored :meth:`Sparse.from_connectivity` with
    ``delivery="history"`` for plastic synapses).  No trace is returned.

    Parameters
    ----------
    connectivity : RandomConnectivity
        The synapses.
    post : Tensor, optional
        Global indices of the postsynaptic neurons this connection feeds (one
        process's share in a model-parallel run, :mod:`pysnn.parallel`);
        default all.  Synapses onto other neurons are skipped, the output has
        ``len(post)`` neurons in that order.

    Examples
    --------
    >>> conn = RandomConnectivity([100], [50], 2000, weight=0.5, delay=1.0, dt=0.5, seed=3)
    >>> proc = ProceduralSparse(conn)
    >>> x, _ = proc(torch.rand(1, 100) < 0.1)   # input due now; the rest is queued
    """

    kind = "procedural"

    def __init__(self, connectivity: RandomConnectivity, post: Tensor | None = None) -> None:
        if not isinstance(connectivity, RandomConnectivity):
            raise TypeError(
                f"connectivity must be a RandomConnectivity, got {type(connectivity).__name__}"
            )
        post_map = connectivity.post_map(post)
        self.in_features = connectivity.in_features
        self.out_features = connectivity.out_features if post is None else int(post_map.ge(0).sum())
        super().__init__((0,), connectivity.dt, 0)
        self.connectivity = connectivity
        tables = connectivity.tables()
        self._table_names = tuple(tables)
        for name, tensor in tables.items():
            self.register_buffer(name, tensor, persistent=False)
        self.register_buffer("post_map", post_map, persistent=False)
        self.spike_queue = SpikeQueue(
            self.out_features, connectivity.max_delay + 1, type(self).__name__
        )

    @property
    def learning_obstacle(self) -> str:
        """Why a learning rule cannot train this connection."""
        return (
            "ProceduralSparse regenerates its synapses at every spike and stores none, so "
            "they cannot learn; build stored synapses with Sparse.from_connectivity(..., "
            'delivery="history") for plasticity'
        )

    @property
    def n_synapses(self) -> int:
        """Number of synapses of the connectivity (onto every target, not only ``post``)."""
        return self.connectivity.n_synapses

    @property
    def min_delay(self) -> int:
        return self.connectivity.min_delay

    @property
    def max_delay(self) -> int:
        return self.connectivity.max_delay

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"synapses={self.n_synapses} (procedural), delays "
            f"{self.connectivity.min_delay}..{self.connectivity.max_delay} steps"
        )

    # -- state: the queue --------------------------------------------------------------
    is_fresh = property(lambda self: self.spike_queue.is_fresh)
    batch_size = property(lambda self: self.spike_queue.batch_size)

    def reset_state(self, batch_size: int | None = None) -> None:
        self.spike_queue.reset_state(batch_size)
        self.pre_spikes = self.pre_trace = None

    # -- the protocol --------------------------------------------------------------------
    def check_input_shape(self, shape: torch.Size) -> None:
        if len(shape) != 2 or shape[-1] != self.in_features:
            raise ValueError(
                f"ProceduralSparse: spikes must have shape (batch, in_features={self.in_features}), "
                f"got {tuple(shape)}"
            )

    def forward(self, spikes: Tensor, trace: Tensor | None = None) -> tuple[Tensor, None]:
        """Deliver this step's spikes (into the future steps they are due) and return the input due now."""
        return self.queued_forward(spikes, trace)

    def propagate(self, spikes: Tensor) -> Tensor:
        raise NotImplementedError("ProceduralSparse delivers through its queue: call it per step")

    def queued_min_delay(self) -> int:
        return self.connectivity.min_delay

    def queue_dtype_anchor(self) -> Tensor:
        return self.weight

    def queued_synapses(self, units: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        buffers = self._buffers
        tables = {name: buffers[name] for name in self._table_names}
        return self.connectivity.synapses(units, self._buffers["post_map"], tables)

    def _check_dt_change(self, dt: float) -> None:
        raise ValueError(
            "ProceduralSparse: the delays are drawn for the connectivity's dt; build a new "
            "RandomConnectivity for another timestep"
        )

    def _dt_changed(self, old: float) -> None:  # pragma: no cover - refused above
        pass
