r"""The spike queue of a connection: input accumulated on the postsynaptic side, ahead of time.

A :class:`~pysnn.delay.DelayLine` keeps the *presynaptic* spikes of the last
:math:`L` steps and every step sums, over all synapses, the spikes that are
due; with one delay per synapse that reads the history :math:`L` times.  A
:class:`SpikeQueue` does the reverse (the ring buffers of NEST, Brian2's
spike queue): when a spike is delivered, each of its synapses adds its weight
to the postsynaptic input of the step it is due,

.. math:: Q[(h + d_s - \ell) \bmod L,\; b,\; \text{post}(s)] \mathrel{+}= w_s\, x_{b,\text{pre}(s)},

where :math:`h` is the slot of the current step, :math:`d_s` the synapse's
delay in steps and :math:`\ell` how many steps late the spike is delivered (0
when a connection delivers the spikes it is called with).  Each step
:meth:`SpikeQueue.take` returns slot :math:`h` and clears it:

.. math:: I_{b,i}(t) = \sum_{s:\, \text{post}(s) = i} w_s\, x_{b,\text{pre}(s)}(t - d_s).

The cost is one scatter per delivered synapse, whatever the delays; memory is
:math:`L \cdot B \cdot (N_{out} + 1)` values (the extra column is a bin for
padded entries).  Delivering late (:math:`\ell > 0`) is what lets processes
exchange spikes once per interval of :math:`D` steps when every delay is at
least :math:`D - 1` (:mod:`pysnn.parallel`).

**Atomic steps.**  A delivery writes many slots in place.  Inside a network
step the queue keeps a journal (the values it overwrote and the slot it
cleared) so that a step that raises is undone exactly; small queues are
copied whole instead.
"""

from __future__ import annotations

from typing import Any

import torch

from pysnn.state import StatefulModule

Tensor = torch.Tensor

__all__ = ["SpikeQueue"]


class SpikeQueue(StatefulModule):
    r"""Postsynaptic input of the next :math:`L` steps, ``(L, batch, n_out + 1)``.

    Parameters
    ----------
    n_out : int
        Number of postsynaptic neurons.
    length : int
        :math:`L = d_{max} + 1`: the largest delay in steps plus one.
    owner : str
        Name of the owning connection, used in error messages.

    Attributes
    ----------
    queue : Tensor
        ``(L, batch, n_out + 1)``; slot ``head`` is the current step, the last
        column is the bin of padded entries.
    head : int
        Slot of the current step.
    """

    _state_names = ("queue",)
    _extra_state_attrs = ("head",)
    _inplace_state = ("queue",)
    #: queues up to this many values are copied whole before a network step; larger
    #: ones keep a journal of what the step overwrites
    SNAPSHOT_WHOLE_NUMEL = 1 << 16

    def __init__(self, n_out: int, length: int, owner: str = "connection") -> None:
        super().__init__()
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"{owner}: the queue length must be a positive int, got {length!r}")
        self.n_out, self.length, self.owner = int(n_out), int(length), owner
        self.head = 0
        self._journal: list[tuple[Any, ...]] | None = None
        self.register_buffer("queue", torch.zeros(length, 0, self.n_out + 1))

    def extra_repr(self) -> str:
        return f"n_out={self.n_out}, length={self.length}"

    @property
    def batch_size(self) -> int | None:
        """Batch size of the queue (its second dimension), ``None`` before allocation."""
        queue = self._buffers["queue"]
        return int(queue.shape[1]) if queue.shape[1] else None

    @property
    def _owner_name(self) -> str:  # type: ignore[override]
        return self.owner

    def _init_state(self, batch_size: int) -> None:
        like = self._buffers["queue"]
        self._buffers["queue"] = torch.zeros(
            self.length, batch_size, self.n_out + 1, dtype=like.dtype, device=like.device
        )
        self.head = 0
        self._journal = None

    def start(self, batch: int) -> None:
        """Adopt the batch size (fresh state) or check it (see :meth:`ensure_state`)."""
        self.ensure_state(batch)

    # -- one step ------------------------------------------------------------------
    def add(self, ahead: Tensor, sample: Tensor, post: Tensor, values: Tensor) -> None:
        r"""Add ``values`` to the input of ``post`` in batch ``sample``, ``ahead`` steps from now.

        .. math:: Q[(h + a) \bmod L, b, i] \mathrel{+}= v

        ``ahead`` must lie in ``[0, L)`` (a padded entry aimed at the bin
        column ``n_out`` may have any ``ahead``).  All arguments are 1-D of one
        length (``sample`` and ``ahead`` may be broadcast); the additions
        happen in their order.
        """
        queue = self._buffers["queue"]
        length, batch, width = queue.shape
        slot = (ahead + self.head) % length
        flat_index = (slot * batch + sample) * width + post
        flat = queue.view(-1)
        journal = self._journal
        if journal is not None:
            journal.append(("add", flat_index, flat.index_select(0, flat_index)))
        flat.index_add_(0, flat_index, values.to(queue.dtype))

    def take(self) -> Tensor:
        """The input of the current step ``(batch, n_out)``; clears its slot and advances."""
        queue = self._buffers["queue"]
        head = self.head
        out = queue[head].clone()
        queue[head].zero_()
        if self._journal is not None:
            self._journal.append(("take", head, out))
        self.head = (head + 1) % queue.shape[0]
        return out[:, : self.n_out]

    # -- atomic steps --------------------------------------------------------------------
    def _step_snapshot(self, steps: int = 1) -> Any:
        queue = self._buffers["queue"]
        if queue.numel() == 0:
            return None
        if queue.numel() <= self.SNAPSHOT_WHOLE_NUMEL:
            self._journal = None
            return super()._step_snapshot()
        journal: list[tuple[Any, ...]] = []
        self._journal = journal
        return journal

    def _step_restore(self, saved: Any) -> None:
        self._journal = None
        if isinstance(saved, dict):
            super()._step_restore(saved)
            return
        queue = self._buffers["queue"].clone()  # may be an inference tensor
        flat = queue.view(-1)
        for entry in reversed(saved):
            if entry[0] == "add":
                flat.index_copy_(0, entry[1], entry[2])
            else:
                queue[entry[1]] = entry[2]
        self._buffers["queue"] = queue

    def _step_commit(self, saved: Any) -> None:
        """The step succeeded: stop journaling."""
        self._journal = None
