r"""Data-parallel simulation and learning on :mod:`torch.distributed`.

Every process (rank) simulates its own shard of the batch with a full copy of
the network.  :func:`data_parallel` makes the learning collective: each weight
change of a learning rule and each increment of an adaptive threshold is
summed over the ranks (one ``all_reduce`` per trained layer and step) before it
is applied, so the copies stay identical and ``N`` ranks with ``B`` samples
each learn exactly what one process learns from the ``N * B`` samples (up to
the order of floating-point summation).

.. code-block:: python

    import torch.distributed as dist
    from pysnn import distributed

    dist.init_process_group("gloo")          # "nccl" on GPUs; torchrun sets the rest
    dp = distributed.data_parallel(net, [stdp])
    for x in batches:                        # the same global batches on every rank
        x = dp.shard(x)                      # this rank's part of the batch
        net.reset_state()
        for t in range(T):
            net(x[:, t])
            stdp.step()

Only the data is split (data parallelism): every rank holds the whole network,
so a network too large for one device is not supported.  See
:doc:`/distributed` for launching with ``torchrun`` and SLURM and for
checkpointing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist

from pysnn.learning.base import LearningRule
from pysnn.network import Layer, SNNNetwork
from pysnn.neuron.adaptive import AdaptiveLIFNeuron

Tensor = torch.Tensor

__all__ = ["DataParallel", "data_parallel", "shard"]


def _check_initialized() -> None:
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "torch.distributed is not initialised: call "
            "torch.distributed.init_process_group(...) first (torchrun sets MASTER_ADDR, "
            "MASTER_PORT, RANK and WORLD_SIZE; use backend 'gloo' on CPU, 'nccl' on GPU)"
        )


def shard(batch: Tensor, rank: int, world_size: int, dim: int = 0) -> Tensor:
    """This rank's contiguous part of ``batch`` along ``dim`` (``torch.tensor_split``).

    The first ``batch.shape[dim] % world_size`` ranks get one sample more;
    concatenating the shards of ranks ``0 .. world_size - 1`` gives ``batch``.

    Parameters
    ----------
    batch : Tensor
        The global batch, the same on every rank.
    rank, world_size : int
        This process's rank and the number of processes.
    dim : int
        The batch dimension.

    Raises
    ------
    TypeError
        If ``batch`` is not a tensor.
    ValueError
        If ``world_size < 1`` or ``rank`` is not in ``[0, world_size)``.
    """
    if not isinstance(batch, Tensor):
        raise TypeError(f"batch must be a tensor, got {type(batch).__name__}")
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be an int in [0, {world_size}), got {rank!r}")
    return torch.tensor_split(batch, world_size, dim=dim)[rank]


class DataParallel:
    """The hooks installed by :func:`data_parallel` (returned by it).

    Attributes
    ----------
    network : SNNNetwork
        The network whose copies are kept in sync.
    rules : list of LearningRule
        The rules whose weight changes are summed over the ranks.
    neurons : list of AdaptiveLIFNeuron
        The neurons whose threshold increments are summed over the ranks.
    group : ProcessGroup or None
        The process group (``None``: the default group).
    """

    def __init__(self, network: SNNNetwork, rules: list[LearningRule], group: Any) -> None:
        self.network = network
        self.rules = rules
        self.group = group
        self.neurons = [m for m in network.modules() if isinstance(m, AdaptiveLIFNeuron)]
        self._handles = [rule.register_change_hook(self._reduce_change) for rule in rules]
        for neuron in self.neurons:
            if neuron.__dict__.get("batch_rate_hook") is not None:
                raise ValueError("a neuron of the network already has a batch_rate_hook")
            neuron.batch_rate_hook = self._reduce_rate

    # -- ranks ---------------------------------------------------------------------
    @property
    def rank(self) -> int:
        """This process's rank in :attr:`group`."""
        return dist.get_rank(self.group)

    @property
    def world_size(self) -> int:
        """The number of processes in :attr:`group`."""
        return dist.get_world_size(self.group)

    def shard(self, batch: Tensor, dim: int = 0) -> Tensor:
        """This rank's part of the global ``batch``, see :func:`shard`."""
        return shard(batch, self.rank, self.world_size, dim)

    def all_sum(self, value: Tensor | float) -> Tensor:
        """The sum of ``value`` over the ranks (a new tensor; e.g. a global sample count).

        The result lies on ``value``'s device (the CPU for a number); with NCCL,
        which reduces CUDA tensors only, CPU values travel through the current
        CUDA device.
        """
        out = torch.as_tensor(value).clone()
        home = out.device
        if out.device.type != "cuda" and dist.get_backend(self.group) == "nccl":
            out = out.to(torch.device("cuda", torch.cuda.current_device()))
        dist.all_reduce(out, group=self.group)
        return out.to(home)

    def broadcast_weights(self, src: int = 0) -> None:
        """Copy the parameters and the adaptive thresholds of rank ``src`` to every rank.

        Call once before training when the ranks initialised the weights
        differently (e.g. with different seeds).
        """
        with torch.no_grad():
            tensors = list(self.network.parameters())
            tensors += [n.thresh_adaptive for n in self.neurons]
            for tensor in tensors:
                dist.broadcast(tensor.data, src, group=self.group)

    def remove(self) -> None:
        """Remove the hooks: learning is local to each process again."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for neuron in self.neurons:
            neuron.__dict__.pop("batch_rate_hook", None)
        self.neurons = []

    # -- the hooks -----------------------------------------------------------------
    def _reduce_change(
        self,
        rule: LearningRule,
        layer: Layer,
        group: dict,
        ltp: Tensor | None,
        ltd: Tensor | None,
        dw: Tensor | None,
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """Sum ``ltp``, ``ltd`` and ``dw`` over the ranks (re-weighted for ``"mean"``)."""
        _check_mean(rule, group)
        parts = [t for t in (ltp, ltd, dw) if isinstance(t, Tensor)]
        if not parts:
            return ltp, ltd, dw
        mean = group["reduction"] == "mean"
        flat = [p.reshape(-1) for p in parts]
        like = flat[0]
        if mean:
            # the rule divided by its local batch: undo, sum, divide by the global batch
            batch = float(layer.neuron.spikes.shape[0])
            flat = [f * batch for f in flat]
            flat.append(like.new_full((1,), batch))
        buffer = torch.cat([f.to(like.dtype) for f in flat])
        dist.all_reduce(buffer, group=self.group)
        if mean:
            buffer = buffer[:-1] / buffer[-1]
        out, start = [], 0
        for part in parts:
            out.append(buffer[start : start + part.numel()].view(part.shape).to(part.dtype))
            start += part.numel()
        values = iter(out)
        ltp, ltd, dw = (next(values) if isinstance(t, Tensor) else t for t in (ltp, ltd, dw))
        return ltp, ltd, dw

    def _reduce_rate(self, neuron: AdaptiveLIFNeuron, spikes: Tensor) -> Tensor:
        """Sum (``"sum"``) or average (``"mean"``) the spikes over every rank's batch."""
        total = spikes.sum(0)
        if neuron.thresh_reduction == "sum":
            dist.all_reduce(total, group=self.group)
            return total
        buffer = torch.cat([total.reshape(-1), total.new_full((1,), float(spikes.shape[0]))])
        dist.all_reduce(buffer, group=self.group)
        return (buffer[:-1] / buffer[-1]).view(total.shape)


def _check_mean(rule: LearningRule, group: dict) -> None:
    # FedeSTDP's "mean" divides by the number of postsynaptic spikes (a nonlinear
    # function of the batch), which a sum of per-rank changes cannot reproduce
    if group["reduction"] == "mean" and type(rule).__name__ == "FedeSTDP":
        raise ValueError(
            'FedeSTDP with reduction="mean" cannot be data-parallel (it normalises by '
            'the number of spikes); use reduction="sum"'
        )


def data_parallel(
    network: SNNNetwork,
    rules: LearningRule | Iterable[LearningRule] | None = None,
    group: Any = None,
) -> DataParallel:
    """Make learning data-parallel over the processes of ``group``.

    Installs a hook on every rule (:meth:`~pysnn.learning.LearningRule.register_change_hook`)
    that sums its weight changes over the ranks before they are applied, and
    on every :class:`~pysnn.neuron.AdaptiveLIFNeuron` of ``network``
    (``batch_rate_hook``) that sums the threshold increments.  With
    ``reduction="mean"`` (rules) or ``thresh_reduction="mean"`` (neurons) the
    per-rank sums are divided by the global number of samples, so the result
    is the mean over the global batch.  :class:`~pysnn.learning.WeightNormalization`
    only depends on the weights, which are identical on every rank, and needs
    no communication.

    Every rank must run the same number of steps (one ``all_reduce`` per
    trained layer, rule step and adaptive neuron step) and start from the same
    weights (see :meth:`DataParallel.broadcast_weights`).

    Parameters
    ----------
    network : SNNNetwork
        The network, the same on every rank.
    rules : LearningRule or iterable of LearningRule, optional
        The rules to synchronise (default: every rule attached to ``network``).
    group : ProcessGroup, optional
        The process group (default: the default group).

    Returns
    -------
    DataParallel
        The installed hooks; :meth:`DataParallel.remove` removes them.

    Raises
    ------
    RuntimeError
        If :mod:`torch.distributed` is not initialised.
    TypeError
        If ``network`` is not an :class:`~pysnn.network.SNNNetwork` or a rule
        is not a :class:`~pysnn.learning.LearningRule`.
    ValueError
        If a rule's reduction cannot be made data-parallel (``FedeSTDP`` with
        ``reduction="mean"``) or a rule is given twice.
    """
    _check_initialized()
    if not isinstance(network, SNNNetwork):
        raise TypeError(f"network must be an SNNNetwork, got {type(network).__name__}")
    if rules is None:
        rules = [r for r in network._rules if isinstance(r, LearningRule)]
    elif isinstance(rules, LearningRule):
        rules = [rules]
    elif isinstance(rules, Iterable):
        rules = list(rules)
    else:
        raise TypeError(f"rules must be a LearningRule or an iterable of them, got {rules!r}")
    for rule in rules:
        if not isinstance(rule, LearningRule):
            raise TypeError(f"rules must hold LearningRule objects, got {type(rule).__name__}")
        for param_group in rule.param_groups:
            _check_mean(rule, param_group)
    if len({id(r) for r in rules}) != len(rules):
        raise ValueError("rules: a rule is given more than once")
    return DataParallel(network, rules, group)
