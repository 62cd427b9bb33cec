r"""Weight normalisation: keep each neuron's summed incoming weight at a target."""

from __future__ import annotations

from typing import Any, Callable

import torch

from pysnn.learning.base import LearningRule, Reward, check_options, check_reward
from pysnn.learning.options import Hyper
from pysnn.network import Layer, SNNNetwork

Tensor = torch.Tensor

__all__ = ["WeightNormalization", "normalize_weights"]


def normalize_weights(
    weight: Tensor,
    target: float | Tensor,
    mask: Tensor | None = None,
    incoming_sum: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    r"""Scale each postsynaptic neuron's incoming weights so that they sum to ``target``.

    .. math:: w_{ij} \leftarrow w_{ij}\,\frac{T - F_i}{P_i},\quad
        P_i = \sum_{j\,\in\,\text{plastic}} w_{ij},\quad F_i = \sum_{j\,\notin\,\text{plastic}} w_{ij}

    The postsynaptic neuron (output channel for ``Conv2d``) is the first weight
    dimension, unless ``incoming_sum`` is given: a function returning, for every
    weight entry, the sum of its postsynaptic neuron's entries (a
    :class:`~pysnn.connection.Sparse` connection's ``incoming_sum``).  Only
    weights where ``mask`` is True are scaled; neurons whose plastic sum is 0 are
    left unchanged.  Works in place and returns ``weight``.
    """
    if incoming_sum is None:
        dims = tuple(range(1, weight.dim()))

        def incoming_sum(values: Tensor) -> Tensor:
            return values.sum(dims, keepdim=True)

    with torch.no_grad():
        if mask is None:
            plastic = incoming_sum(weight)
            fixed = torch.zeros_like(plastic)
        else:
            plastic = incoming_sum(weight * mask)
            fixed = incoming_sum(weight * ~mask)
        ok = plastic != 0
        scale = torch.where(ok, (target - fixed) / torch.where(ok, plastic, 1.0), 1.0)
        if mask is None:
            weight.mul_(scale)
        else:
            weight.copy_(torch.where(mask, weight * scale, weight))
    return weight


class WeightNormalization(LearningRule):
    r"""Keep each postsynaptic neuron's summed incoming weight at ``target``.

    Every ``interval`` calls of :meth:`step` (e.g. once per timestep, or once
    per sample as in Diehl & Cook 2015, who use a target of 78 for 784 inputs);
    the calls are counted in the buffer ``n_calls``, across samples
    (:meth:`restart` starts over):

    .. math:: w_{ij} \leftarrow w_{ij}\, \frac{T - F_i}{P_i}

    with :math:`P_i` the sum of neuron :math:`i`'s plastic (unmasked) incoming
    weights and :math:`F_i` the sum of its fixed ones (see
    :func:`normalize_weights`).  Combine with any rule by calling both
    ``step()`` methods.  Hard bounds, if given, are applied after the scaling
    (which may then move the sum away from the target); ``soft_bounds`` and
    ``lr`` are not used.  Nothing changes in ``eval()`` mode.

    Parameters
    ----------
    layers
        Layers to normalise, see :class:`~pysnn.learning.LearningRule`.
    target : float
        Target sum :math:`T` of each neuron's incoming weights.
    interval : int
        Normalise on every ``interval``-th call of :meth:`step` (the first
        normalisation happens on call ``interval``).
    mask, w_min, w_max, network
        See :class:`~pysnn.learning.LearningRule`.
    """

    hyperparameters = (
        Hyper("target", 1.0, doc="sum of each unit's incoming weights"),
        Hyper("interval", 1, "count", doc="steps between normalisations"),
    )

    def __init__(
        self,
        layers: Any,
        target: float = 1.0,
        interval: int = 1,
        *,
        w_min: float | None = None,
        w_max: float | None = None,
        mask: Tensor | None = None,
        network: SNNNetwork | None = None,
    ) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f"interval must be a positive int, got {interval!r}")
        super().__init__(
            layers,
            dict(target=target, interval=interval, w_min=w_min, w_max=w_max, mask=mask),
            network=network,
        )
        self.register_buffer("n_calls", torch.zeros((), dtype=torch.int64))
        self._count = 0  # mirror of n_calls (no device sync per step)

    def step(self, reward: Reward | None = None) -> None:
        """Count the call and normalise every ``interval``-th one (nothing in ``eval()``).

        Raises :class:`ValueError` before any change if ``target``, ``w_min``
        or ``w_max`` of a group is NaN or infinite (``reward`` is not used but
        checked like every rule's).
        """
        check_reward(reward)
        self._prepare_step()
        if not self.training:
            return
        self._count += 1
        self._buffers["n_calls"].fill_(self._count)
        with torch.no_grad():
            for layer, group in self._layers():
                if self._count % group["interval"] == 0 and not self._frozen(layer):
                    self._normalize(layer, group)

    def normalize(self, layer: Layer, group: dict | None = None) -> None:
        """Normalise one layer now (:class:`ValueError` first for a non-finite ``target`` or bound)."""
        if group is None:
            group = next(g for lay, g in self._layers() if lay.connection is layer.connection)
        check_options(group, type(self)._hypers)
        self._normalize(layer, group)

    def _normalize(self, layer: Layer, group: dict) -> None:
        weight = layer.connection.weight
        mask = self._mask(layer, group)
        with torch.no_grad():
            incoming_sum = getattr(layer.connection, "incoming_sum", None)
            normalize_weights(weight, group["target"], mask, incoming_sum)
            self.clamp_bounds(layer, group, mask)

    def reset_state(self) -> None:
        """Keep the count of calls: it is training progress, not per-sample state.

        ``net.reset_state()`` between samples therefore does not delay the next
        normalisation; :meth:`restart` starts the count over.
        """
        super().reset_state()

    def restart(self) -> None:
        """Start the count of calls over (the next normalisation is on call ``interval``)."""
        self._buffers["n_calls"].zero_()
        self._count = 0

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        self._count = int(self._buffers["n_calls"])
