r"""Rate-based rules: Hebbian and Oja."""

from __future__ import annotations

from typing import Any

import torch

from pysnn.learning.base import LearningRule, Reward
from pysnn.learning.options import Hyper
from pysnn.network import Layer, SNNNetwork

Tensor = torch.Tensor

__all__ = ["Hebbian", "Oja"]


class Hebbian(LearningRule):
    r"""Plain Hebbian rule on traces (rates) or spikes.

    .. math:: \Delta w_{ij} = \eta\, y_i\, x_j

    with :math:`y` the postsynaptic and :math:`x` the (arriving) presynaptic
    quantity chosen by ``post``/``pre`` (``"trace"``: a low-pass rate estimate;
    ``"spikes"``), summed over batch and positions (divided by the batch size
    for ``reduction="mean"``).  Unbounded growth unless bounds, normalisation
    (:class:`WeightNormalization`) or :class:`Oja` are used.

    Parameters
    ----------
    layers
        Layers to train, see :class:`~pysnn.learning.LearningRule`.
    lr : float
        Learning rate :math:`\eta`.
    pre, post : {"trace", "spikes"}
        Quantities correlated.
    w_min, w_max, soft_bounds, mask, reduction, network
        See :class:`~pysnn.learning.LearningRule`.
    """

    hyperparameters = (
        Hyper("pre", "trace", "choice", ("trace", "spikes"), doc="presynaptic quantity"),
        Hyper("post", "trace", "choice", ("trace", "spikes"), doc="postsynaptic quantity"),
    )

    def __init__(
        self,
        layers: Any,
        lr: float = 1e-3,
        *,
        pre: str = "trace",
        post: str = "trace",
        network: SNNNetwork | None = None,
        **options: Any,
    ) -> None:
        for name, value in (("pre", pre), ("post", post)):
            if value not in ("trace", "spikes"):
                raise ValueError(f'{name} must be "trace" or "spikes", got {value!r}')
        super().__init__(
            layers,
            dict(
                lr=lr,
                pre=pre,
                post=post,
            ),
            network=network,
            **options,
        )

    def _post_quantity(self, layer: Layer, group: dict) -> Tensor:
        return self._post(layer, "spikes" if group["post"] == "spikes" else "trace")

    def _step_layer(self, layer: Layer, group: dict, state: dict, reward: Reward | None) -> None:
        if self._frozen(layer):
            return
        y = self._post_quantity(layer, group)
        dw = layer.connection.correlate(y, group["pre"]) * self._scale(group, y.shape[0])
        self.apply_change(layer, group, dw=dw)


class Oja(Hebbian):
    r"""Oja's rule: Hebbian learning with a decay that normalises each neuron's weights.

    .. math:: \Delta w_{ij} = \eta\, \left(y_i\, x_j - y_i^2\, w_{ij}\right)

    summed over batch and positions (divided by the batch size for
    ``reduction="mean"``); :math:`y` and :math:`x` as in :class:`Hebbian`
    (traces by default).  The squared norm of each neuron's weight vector tends
    to 1.  Parameters as in :class:`Hebbian`.
    """

    def _step_layer(self, layer: Layer, group: dict, state: dict, reward: Reward | None) -> None:
        if self._frozen(layer):
            return
        conn = layer.connection
        y = self._post_quantity(layer, group)
        dw = conn.correlate(y, group["pre"]) - conn.post_sum(y * y) * conn.weight
        self.apply_change(layer, group, dw=dw * self._scale(group, y.shape[0]))
