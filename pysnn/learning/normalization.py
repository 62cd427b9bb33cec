r"""Weight normalisation: keep each neuron's summed incoming weight at a target."""

from __future__ import annotations

from typing import Any

import torch

from pysnn.learning.base import LearningRule, Reward
from pysnn.network import Layer, SNNNetwork

Tensor = torch.Tensor

__all__ = ["WeightNormalization", "normalize_weights"]


def normalize_weights(weight: Tensor, target: float | Tensor, mask: Tensor | None = None) -> Tensor:
    r"""Scale each postsynaptic neuron's incoming weights so that they sum to ``target``.

    .. math:: w_{ij} \leftarrow w_{ij}\,\frac{T - F_i}{P_i},\quad
        P_i = \sum_{j\,\in\,\text{plastic}} w_{ij},\quad F_i = \sum_{j\,\notin\,\text{plastic}} w_{ij}

    The postsynaptic neuron (output channel for ``Conv2d``) is the first weight
    dimension.  Only weights where ``mask`` is True are scaled; rows whose
    plastic sum is 0 are left unchanged.  Works in place and returns ``weight``.
    """
    with torch.no_grad():
        dims = tuple(range(1, weight.dim()))
        if mask is None:
            plastic = weight.sum(dims, keepdim=True)
            fixed = torch.zeros_like(plastic)
        else:
            plastic = (weight * mask).sum(dims, keepdim=True)
            fixed = (weight * ~mask).sum(dims, keepdim=True)
        ok = plastic != 0
        scale = torch.where(ok, (target - fixed) / torch.where(ok, plastic, 1.0), 1.0)
        if mask is None:
            weight.mul_(scale)
        else:
            weight.copy_(torch.where(mask, weight * scale, weight))
    return weight


class WeightNormalization(LearningRule):
    r"""Keep each postsynaptic neuron's summed incoming weight at ``target``.

    Every ``interval`` calls of :meth:`step` (counted in the buffer ``n_calls``) (e.g. once per timestep, or once per
    sample as in Diehl & Cook 2015, who use a target of 78 for 784 inputs):

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
        """Count the call and normalise every ``interval``-th one (nothing in ``eval()``)."""
        if not self.training:
            return
        self._count += 1
        self._buffers["n_calls"].fill_(self._count)
        with torch.no_grad():
            for layer, group in self._layers():
                if self._count % group["interval"] == 0 and not self._frozen(layer):
                    self.normalize(layer, group)

    def normalize(self, layer: Layer, group: dict | None = None) -> None:
        """Normalise one layer now."""
        if group is None:
            group = next(g for lay, g in self._layers() if lay.connection is layer.connection)
        weight = layer.connection.weight
        mask = self._mask(layer, group)
        with torch.no_grad():
            normalize_weights(weight, group["target"], mask)
            self.clamp_bounds(layer, group, mask)

    def reset_state(self) -> None:
        """Restart the count of calls."""
        super().reset_state()
        self._buffers["n_calls"].zero_()
        self._count = 0

    def _load_from_state_dict(  # type: ignore[no-untyped-def]
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        self._count = int(self._buffers["n_calls"])
