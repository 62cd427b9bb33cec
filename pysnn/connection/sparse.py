"""Sparse connectivity: only the existing synapses are stored, propagation is event-driven."""

from __future__ import annotations

from typing import Any, Callable, cast

import torch

from pysnn import functional as sf
from pysnn.connection.base import Connection
from pysnn.connection.procedural import QueuedDelivery, RandomConnectivity
from pysnn.delay import DelayLike
from pysnn.queue import SpikeQueue
from pysnn.validation import check_finite

Tensor = torch.Tensor

__all__ = ["Sparse"]


def _generator(seed: int | torch.Generator | None) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


def _distinct_targets(owner: Tensor, n_targets: int, gen: torch.Generator) -> Tensor:
    """One uniform random target per entry of ``owner``, distinct within each owner."""
    targets = torch.randint(n_targets, owner.shape, generator=gen)
    while True:
        key = owner * n_targets + targets
        order = torch.argsort(key)
        repeated = torch.zeros_like(owner, dtype=torch.bool)
        repeated[order[1:]] = key[order[1:]] == key[order[:-1]]
        n_repeated = int(repeated.sum())
        if n_repeated == 0:
            return targets
        targets[repeated] = torch.randint(n_targets, (n_repeated,), generator=gen)


def coo_indices(
    indices: Any, in_features: int, out_features: int, multapses: bool = False
) -> tuple[Tensor, Tensor]:
    """Validated ``(post, pre)`` int64 index vectors from any accepted ``indices``.

    A repeated ``(post, pre)`` pair is a :class:`ValueError` unless ``multapses``.
    """
    if isinstance(indices, (tuple, list)) and len(indices) == 2:
        post, pre = (torch.as_tensor(i) for i in indices)
    elif isinstance(indices, Tensor) and indices.dim() == 2 and indices.shape[0] == 2:
        post, pre = indices[0], indices[1]
    else:
        raise TypeError(
            "indices must be a (2, S) tensor of (post, pre) indices, a (post, pre) pair, "
            f"or a scipy COO matrix; got {type(indices).__name__}"
        )
    if post.is_floating_point() or pre.is_floating_point() or post.shape != pre.shape:
        raise ValueError("indices must be integer (post, pre) index vectors of one length")
    post, pre = post.to(torch.int64).reshape(-1).cpu(), pre.to(torch.int64).reshape(-1).cpu()
    for name, idx, size in (("post", post, out_features), ("pre", pre, in_features)):
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= size):
            raise ValueError(f"indices: {name} index out of range [0, {size})")
    if not multapses:
        key = torch.sort(pre * out_features + post).values
        if bool((key[1:] == key[:-1]).any()):
            raise ValueError(
                "indices contain the same (post, pre) synapse more than once (pass "
                "multapses=True to allow several synapses between one pair)"
            )
    return post, pre


def in_storage_order(value: Any, order: Tensor, n_syn: int, name: str) -> Any:
    """A per-synapse tensor given in the order of ``indices``, put in storage order."""
    if isinstance(value, Tensor) and value.dim() > 0:
        if tuple(value.shape) != (n_syn,):
            raise ValueError(
                f"{name} per synapse must have shape ({n_syn},), got {tuple(value.shape)}"
            )
        return value.detach().cpu()[order]
    return value


#: how a :class:`Sparse` connection delivers its spikes
DELIVERIES = ("history", "queue")


class Sparse(QueuedDelivery, Connection):
    r"""Sparse connection between ``in_features`` and ``out_features`` neurons.

    Stores only the synapses that exist, sorted by presynaptic neuron (CSR):
    ``pre_index``, ``post_index`` and ``weight`` have one entry per synapse,
    ``pre_ptr[j] .. pre_ptr[j+1]`` are the synapses of presynaptic neuron ``j``.
    Memory is :math:`O(S)` for :math:`S` synapses (weights, two int64 indices, and
    optional per-synapse delays).  Each step costs
    :math:`O(\text{spikes} \times \text{fan-out})`:

    .. math:: I_{b,i} = \sum_{s:\, \text{post}(s) = i} w_s\, s_{b,\text{pre}(s)}(t - d_s)

    (:func:`pysnn.functional.sparse_propagate`).  The result equals a
    :class:`Linear` whose weight matrix is zero where no synapse exists
    (:meth:`to_dense`).  Learning rules change only existing synapses: their
    correlations, masks and bounds are per synapse, shaped like ``weight``.
    Rules that look at a neuron's whole receptive field (:class:`~pysnn.learning.FedeSTDP`
    normalises by its largest presynaptic trace) see the neuron's own
    presynaptic neurons (:func:`pysnn.functional.sparse_correlate_mapped`).

    Build one from indices, or with :meth:`fixed_probability`,
    :meth:`fixed_in_degree` or :meth:`from_dense`.

    Parameters
    ----------
    in_features, out_features : int
        Number of presynaptic and postsynaptic neurons.
    indices : Tensor or (post, pre) pair
        ``(2, S)`` integer tensor of (postsynaptic, presynaptic) indices, as the
        rows and columns of a scipy-style COO matrix of shape ``(out, in)``, or an
        object with ``row`` and ``col`` (a ``scipy.sparse.coo_matrix``, whose
        ``data`` then gives the weights).  Duplicates are an error.
    weight : float or Tensor, optional
        One value for every synapse or a tensor ``(S,)`` in the order of
        ``indices`` (default: ``reset_weights()``); finite (:class:`ValueError`
        for NaN or inf).
    dt : float
        Timestep in ms.
    delay : float or Tensor
        Delay in ms: a number, or ``(S,)`` in the order of ``indices`` (one per synapse).
    trace_per_synapse : bool
        Return the presynaptic trace per synapse, ``(batch, S)``.
    multapses : bool
        Allow several synapses between one (post, pre) pair (default: an error).
    delivery : {"history", "queue"}
        ``"history"`` (default): a :class:`~pysnn.delay.DelayLine` keeps the
        presynaptic spikes and each step sums the synapses that are due
        (learning rules can read what arrived).  ``"queue"``: each spike adds
        its weights to the step its synapses are due in a
        :class:`~pysnn.queue.SpikeQueue` on the postsynaptic side (one scatter
        per synapse whatever the delays, as NEST; no presynaptic history, so
        no learning and no trace; inputs ``(batch, in_features)``).

    Notes
    -----
    **Storage order.**  Synapses are sorted by presynaptic neuron, then by
    postsynaptic neuron; multapses keep the order in which they were given.

    **Graded inputs** are allowed (``graded_input = True``): bool spikes, 0/1
    or any finite value, each active input adding its outgoing weights scaled
    by its value (the cost grows with the number of nonzero inputs, so dense
    rates lose the event-driven advantage but stay exact).  NaN or inf in
    ``spikes`` (or ``trace``) is a :class:`ValueError`.

    Examples
    --------
    >>> conn = Sparse.fixed_probability(3200, 4000, p=0.02, weight=1.62, seed=0)
    >>> current, _ = conn(torch.rand(1, 3200) < 0.01)
    """

    kind = "sparse"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        indices: Any,
        weight: float | Tensor | None = None,
        dt: float = 1.0,
        delay: DelayLike = 0,
        *,
        trace_per_synapse: bool = False,
        multapses: bool = False,
        delivery: str = "history",
    ) -> None:
        if delivery not in DELIVERIES:
            raise ValueError(f"delivery must be one of {DELIVERIES}, got {delivery!r}")
        if delivery == "queue" and trace_per_synapse:
            raise ValueError('Sparse: delivery="queue" returns no trace (trace_per_synapse=False)')
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.in_features, self.out_features = in_features, out_features
        if hasattr(indices, "row") and hasattr(indices, "col"):  # scipy COO
            if weight is None and hasattr(indices, "data"):
                weight = torch.as_tensor(indices.data, dtype=torch.get_default_dtype())
            indices = (indices.row, indices.col)
        if weight is not None:
            if isinstance(weight, bool) or not isinstance(weight, (int, float, Tensor)):
                raise TypeError(
                    f"Sparse: weight must be a number or a tensor, got {type(weight).__name__}"
                )
            check_finite("weight", torch.as_tensor(weight), "Sparse")
        post, pre = coo_indices(indices, in_features, out_features, multapses)
        order = torch.argsort(pre * out_features + post, stable=True)
        n_syn = int(order.numel())
        super().__init__(
            (n_syn,), dt, in_storage_order(delay, order, n_syn, "delay"), trace_per_synapse
        )
        self.register_buffer("pre_index", pre[order])
        self.register_buffer("post_index", post[order])
        counts = torch.bincount(pre, minlength=in_features)
        self.register_buffer("pre_ptr", torch.cat([counts.new_zeros(1), counts.cumsum(0)]))
        self.build_fanout_table()
        # the table is derived from the indices: rebuilt when a checkpoint loads them
        self.register_load_state_dict_post_hook(lambda module, _keys: module.build_fanout_table())
        self.spike_queue: SpikeQueue | None = None
        if delivery == "queue":
            self.spike_queue = SpikeQueue(out_features, self.max_delay + 1, "Sparse")
        if weight is None:
            self.reset_weights()
        else:
            with torch.no_grad():
                self.weight.copy_(in_storage_order(weight, order, n_syn, "weight"))

    # -- builders -------------------------------------------------------------------
    @classmethod
    def fixed_probability(
        cls,
        in_features: int,
        out_features: int,
        p: float,
        seed: int | torch.Generator | None = None,
        allow_self: bool = True,
        **kwargs: Any,
    ) -> Sparse:
        """Each possible synapse exists independently with probability ``p``.

        ``allow_self=False`` removes the synapses ``i -> i`` (a population onto
        itself).  ``kwargs`` go to the constructor (``weight``, ``dt``, ``delay``...).
        Draws per presynaptic neuron a binomial number of distinct targets, so
        no dense ``(out, in)`` matrix is ever built.
        """
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p must lie in [0, 1], got {p}")
        gen = _generator(seed)
        counts = torch.binomial(
            torch.full((in_features,), float(out_features)),
            torch.full((in_features,), float(p)),
            generator=gen,
        ).to(torch.int64)
        pre = torch.repeat_interleave(torch.arange(in_features), counts)
        post = _distinct_targets(pre, out_features, gen)
        if not allow_self:
            keep = pre != post
            pre, post = pre[keep], post[keep]
        return cls(in_features, out_features, (post, pre), **kwargs)

    @classmethod
    def fixed_in_degree(
        cls,
        in_features: int,
        out_features: int,
        in_degree: int,
        seed: int | torch.Generator | None = None,
        **kwargs: Any,
    ) -> Sparse:
        """Every postsynaptic neuron receives exactly ``in_degree`` distinct random inputs."""
        if isinstance(in_degree, bool) or not isinstance(in_degree, int):
            raise TypeError(f"in_degree must be an int, got {type(in_degree).__name__}")
        if not 0 <= in_degree <= in_features:
            raise ValueError(
                f"in_degree must lie in [0, in_features={in_features}], got {in_degree}"
            )
        gen = _generator(seed)
        post = torch.arange(out_features).repeat_interleave(in_degree)
        pre = _distinct_targets(post, in_features, gen)
        return cls(in_features, out_features, (post, pre), **kwargs)

    @classmethod
    def from_connectivity(
        cls,
        connectivity: RandomConnectivity,
        post: Tensor | None = None,
        delivery: str = "queue",
        dtype: torch.dtype | None = None,
    ) -> Sparse:
        """The synapses of a :class:`~pysnn.connection.procedural.RandomConnectivity`, stored.

        The same synapses (targets, weights, delays, in the same order) as
        :class:`~pysnn.connection.ProceduralSparse` regenerates, so both give
        the same spikes.  ``post``: global indices of the postsynaptic neurons
        to keep (one process's share, :mod:`pysnn.parallel`), numbered in that
        order.  ``delivery`` as in the constructor; ``dtype`` of the weights
        (default: torch's default dtype).
        """
        if not isinstance(connectivity, RandomConnectivity):
            raise TypeError(
                f"connectivity must be a RandomConnectivity, got {type(connectivity).__name__}"
            )
        pre, post_local, weight, delay = connectivity.all_synapses(post)
        n_out = connectivity.out_features if post is None else int(torch.as_tensor(post).numel())
        dtype = dtype or torch.get_default_dtype()
        return cls(
            connectivity.in_features,
            n_out,
            (post_local, pre),
            weight=weight.to(dtype),
            dt=connectivity.dt,
            delay=delay.to(torch.float64) * connectivity.dt,
            multapses=True,
            delivery=delivery,
        )

    @classmethod
    def from_dense(cls, weight: Tensor, **kwargs: Any) -> Sparse:
        """The nonzero entries of an ``(out, in)`` weight matrix as synapses."""
        if not isinstance(weight, Tensor) or weight.dim() != 2:
            raise ValueError("weight must be an (out_features, in_features) tensor")
        post, pre = weight.nonzero().unbind(1)
        out_features, in_features = weight.shape
        return cls(in_features, out_features, (post, pre), weight=weight[post, pre], **kwargs)

    def build_fanout_table(self) -> None:
        """(Re)build the padded fan-out table used for propagation.

        :func:`pysnn.functional.fanout_table` of the stored indices, kept as
        non-persistent buffers (moved by ``.to()``, not saved: checkpoints hold
        only the indices).  Call it after editing ``pre_ptr``/``post_index`` by
        hand; loading a state dict calls it.  Without a table (fan-outs too
        uneven) propagation walks the CSR pointers instead.
        """
        table = sf.fanout_table(self.pre_ptr, self.post_index, self.out_features)
        synapse, post = table if table is not None else (None, None)
        self.register_buffer("fanout_synapse", synapse, persistent=False)
        self.register_buffer("fanout_post", post, persistent=False)
        # the receptive-field table of rules with a pre_map, built when first needed
        self.register_buffer("fanin_synapse", None, persistent=False)
        self.register_buffer("fanin_valid", None, persistent=False)

    def _fanin(self) -> tuple[Tensor, Tensor]:
        """Each postsynaptic neuron's incoming synapses (:func:`pysnn.functional.fanin_table`)."""
        if self.fanin_synapse is None:
            synapse, valid = sf.fanin_table(self.post_index, self.out_features)
            self.register_buffer("fanin_synapse", synapse, persistent=False)
            self.register_buffer("fanin_valid", valid, persistent=False)
        return cast(Tensor, self.fanin_synapse), cast(Tensor, self.fanin_valid)

    def to_dense(self) -> Tensor:
        """The ``(out, in)`` weight matrix with zeros where no synapse exists (multapses summed)."""
        dense = self.weight.new_zeros(self.out_features, self.in_features)
        # multapses add up
        dense.index_put_((self.post_index, self.pre_index), self.weight.detach(), accumulate=True)
        return dense

    @property
    def n_synapses(self) -> int:
        """Number of existing synapses."""
        return int(self.weight.numel())

    def extra_repr(self) -> str:
        delay = "per-synapse" if self.per_synapse_delay else str(self.max_delay)
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"synapses={self.n_synapses}, delay={delay}"
        )

    @property
    def fan_in(self) -> float:
        """Mean in-degree (for ``reset_weights("kaiming_uniform")``)."""
        return max(1.0, self.n_synapses / self.out_features)

    # -- delivery through a queue --------------------------------------------------------
    @property
    def delivery(self) -> str:
        """``"history"`` or ``"queue"`` (see the class docstring)."""
        return "history" if self.spike_queue is None else "queue"

    @property
    def learning_obstacle(self) -> str | None:
        """Why a learning rule cannot train this connection (``None``: it can)."""
        if self.spike_queue is None:
            return None
        return (
            'Sparse(delivery="queue") keeps no presynaptic history to correlate; build it '
            'with delivery="history" for plasticity'
        )

    is_fresh = property(
        lambda self: self._line._fresh if self.spike_queue is None else self.spike_queue.is_fresh,
        doc=Connection.is_fresh.__doc__,
    )
    batch_size = property(
        lambda self: (
            self._line.batch_size if self.spike_queue is None else self.spike_queue.batch_size
        ),
        doc="Batch size of the state.",
    )

    def reset_state(self, batch_size: int | None = None) -> None:
        super().reset_state(batch_size)
        if self.spike_queue is not None:
            self.spike_queue.reset_state(batch_size)

    def set_delay(self, delay: DelayLike) -> None:
        super().set_delay(delay)
        queue = self.spike_queue
        if queue is not None and queue.length != self.max_delay + 1:
            like = queue.queue
            self.spike_queue = SpikeQueue(self.out_features, self.max_delay + 1, "Sparse").to(
                dtype=like.dtype, device=like.device
            )

    def forward(self, spikes: Tensor, trace: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Propagate one timestep (see :meth:`Connection.forward <pysnn.connection.Connection.forward>`)."""
        if self.spike_queue is not None:
            return self.queued_forward(spikes, trace)
        return super().forward(spikes, trace)

    def steps_by_loop(self) -> bool:
        return self.spike_queue is not None

    def queued_min_delay(self) -> int:
        return self.min_delay

    def queue_dtype_anchor(self) -> Tensor:
        return self.weight

    def queued_synapses(self, units: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if self.spike_queue is None:
            raise RuntimeError('Sparse: deliver()/take() need delivery="queue"')
        buffers = self._buffers
        table = buffers["fanout_synapse"]
        if table is not None:
            synapses = table[units].reshape(-1)
            post = buffers["fanout_post"][units].reshape(-1)
            width = table.shape[1]
            owner = torch.arange(units.numel(), device=units.device).repeat_interleave(width)
        else:
            synapses, owner = sf.sparse_expand(buffers["pre_ptr"], units)
            post = buffers["post_index"][synapses]
        steps = self._line.delay_steps
        delay = steps[synapses] if steps.dim() else steps
        return owner, post, self._parameters["weight"][synapses], delay

    # -- the connection protocol ------------------------------------------------------
    def check_input_shape(self, shape: torch.Size) -> None:
        if self.spike_queue is not None and len(shape) != 2:
            raise ValueError(
                f'Sparse(delivery="queue"): spikes must have shape (batch, in_features='
                f"{self.in_features}), got {tuple(shape)}"
            )
        if len(shape) < 2 or shape[-1] != self.in_features:
            raise ValueError(
                f"Sparse: spikes must have shape (batch, ..., in_features={self.in_features}), "
                f"got {tuple(shape)}"
            )

    def propagate(self, spikes: Tensor) -> Tensor:
        buffers = self._buffers
        if spikes.requires_grad:  # every synapse: the gradient reaches silent inputs too
            return sf.sparse_propagate_all(
                spikes,
                self._parameters["weight"],
                buffers["pre_index"],
                buffers["post_index"],
                self.out_features,
            )
        if buffers["fanout_synapse"] is not None:
            return sf.sparse_propagate_table(
                spikes,
                self._parameters["weight"],
                buffers["fanout_synapse"],
                buffers["fanout_post"],
                self.out_features,
            )
        return sf.sparse_propagate(
            spikes,
            self._parameters["weight"],
            buffers["pre_ptr"],
            buffers["post_index"],
            self.out_features,
        )

    def propagate_delayed(self, history_by_delay: Tensor) -> Tensor:
        buffers = self._buffers
        if history_by_delay.requires_grad:
            return sf.sparse_propagate_all(
                history_by_delay,
                self._parameters["weight"],
                buffers["pre_index"],
                buffers["post_index"],
                self.out_features,
                self.delay_steps,
            )
        return sf.sparse_propagate_delayed(
            history_by_delay,
            self._parameters["weight"],
            buffers["pre_ptr"],
            buffers["post_index"],
            self.delay_steps,
            self.out_features,
        )

    def correlate_arriving(
        self, post: Tensor, pre: Tensor, per_batch: bool, pre_map: Callable | None
    ) -> Tensor:
        if pre_map is not None:
            synapse, valid = self._fanin()
            return sf.sparse_correlate_mapped(
                post, pre, self.pre_index, synapse, valid, per_batch, pre_map
            )
        return sf.sparse_correlate(post, pre, self.pre_index, self.post_index, per_batch)

    def correlate_history(self, post: Tensor, history: Tensor, per_batch: bool) -> Tensor:
        return sf.sparse_correlate_delayed(
            post, history, self.pre_index, self.post_index, self.delay_steps, per_batch
        )

    def post_sum(self, post: Tensor, per_batch: bool = False) -> Tensor:
        r"""Per synapse, the sum of its postsynaptic quantity: :math:`S_{\text{post}(s)}`."""
        batch = post.shape[0]
        units = post.to(self.weight.dtype).reshape(batch, -1, self.out_features).sum(1)
        per_sample = units.index_select(1, self.post_index)
        return per_sample if per_batch else per_sample.sum(0)

    def incoming_sum(self, values: Tensor) -> Tensor:
        r"""Per synapse, the sum of ``values`` over its postsynaptic neuron's synapses.

        .. math:: T_s = \sum_{s':\, \text{post}(s') = \text{post}(s)} v_{s'}

        (e.g. each neuron's summed incoming weight, for weight normalisation).
        """
        totals = values.new_zeros(self.out_features).index_add_(0, self.post_index, values)
        return totals[self.post_index]

    def synapse_trace(self, trace: Tensor) -> Tensor:
        return trace.index_select(-1, self.pre_index)

    def receptive_field_sum(self, trace: Tensor) -> Tensor:
        flat = trace.reshape(-1, self.in_features)
        out = flat.new_zeros(flat.shape[0], self.out_features)
        out.index_add_(1, self.post_index, flat.index_select(1, self.pre_index))
        return out.view(*trace.shape[:-1], self.out_features)
