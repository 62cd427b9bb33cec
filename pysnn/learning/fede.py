r"""FedeSTDP (Paredes-Vallés, Scheper & de Croon 2019)."""

from __future__ import annotations

from typing import Any

import torch

from pysnn.learning.base import LearningRule, Reward
from pysnn.learning.options import Hyper
from pysnn.network import Layer, SNNNetwork

Tensor = torch.Tensor

__all__ = ["FedeSTDP"]


def _normalized_trace(x: Tensor) -> Tensor:
    """Trace divided by its maximum over each receptive field (dim -2); 0 where the max is 0."""
    peak = x.amax(-2, keepdim=True)
    positive = peak > 0
    return torch.where(positive, x / torch.where(positive, peak, torch.ones_like(peak)), 0.0)


class FedeSTDP(LearningRule):
    r"""STDP of Paredes-Vallés, Scheper & de Croon (TPAMI 2019).

    For a postsynaptic neuron :math:`i` that spikes, with
    :math:`\hat x_j = x_j / \max_{k \in RF(i)} x_k` the presynaptic trace
    normalised by the largest trace in its receptive field (0 when all are 0):

    .. math::
        LTP_{ij} &= e^{-(w_{ij} - w_{init})}\,(e^{\hat x_j} - a)\\
        LTD_{ij} &= e^{(w_{ij} - w_{init})}\,(e^{1 - \hat x_j} - a)\\
        \Delta w_{ij} &= \eta\, \frac{1}{n_i} \sum_{b,\,p} s^{post}_{b,p,i}\,
            (LTP_{ij} - LTD_{ij})

    with the sum over batch elements and (``Conv2d``) output positions where
    neuron/channel :math:`i` spiked, and :math:`n_i` the number of those spikes
    (``reduction="mean"``; 1 for ``"sum"``).  The update is gated by postsynaptic
    spikes, always finite (zero traces give :math:`\hat x = 0`), and on ``Conv2d``
    each output position uses its own receptive field (unfolded traces).  The
    weights converge to :math:`w_{init}` plus a function of :math:`\hat x` and
    :math:`a`.

    Parameters
    ----------
    layers
        Layers to train (PySNN 0.1: ``net.layer_state_dict()``), see :class:`~pysnn.learning.LearningRule`.
    lr : float
        Learning rate :math:`\eta`.
    w_init : float
        Weight initialisation value :math:`w_{init}` around which the rule is centred.
    a : float
        Shift :math:`a` of the LTP/LTD balance (:math:`a < 1` per the paper's analysis).
    w_min, w_max, soft_bounds, mask, reduction, network
        See :class:`~pysnn.learning.LearningRule`.  Not supported with per-synapse delays.
    """

    hyperparameters = (
        Hyper("w_init", 0.5, doc="weight around which the rule is centred"),
        Hyper("a", 0.0, doc="shift of the LTP/LTD balance"),
    )

    def __init__(
        self,
        layers: Any,
        lr: float = 1e-3,
        w_init: float = 0.5,
        a: float = 0.0,
        *,
        network: SNNNetwork | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            layers,
            dict(
                lr=lr,
                w_init=w_init,
                a=a,
            ),
            network=network,
            **options,
        )

    def _check_layer(self, layer: Layer, group: dict[str, Any]) -> None:
        super()._check_layer(layer, group)
        if layer.connection.per_synapse_delay:
            raise NotImplementedError("FedeSTDP does not support per-synapse delays")

    def _step_layer(self, layer: Layer, group: dict, state: dict, reward: Reward | None) -> None:
        if self._frozen(layer):
            return
        conn = layer.connection
        s_post = self._post(layer, "spikes")
        if not self._has_change_hooks and not bool(s_post.any()):
            return
        weight = conn.weight
        n = conn.post_sum(s_post)  # spikes per postsynaptic unit, (out, 1, ...)
        exp_x = conn.correlate(s_post, "trace", pre_map=lambda x: torch.exp(_normalized_trace(x)))
        exp_1mx = conn.correlate(
            s_post, "trace", pre_map=lambda x: torch.exp(1.0 - _normalized_trace(x))
        )
        a, centred = group["a"], weight - group["w_init"]
        ltp = torch.exp(-centred) * (exp_x - a * n)
        ltd = torch.exp(centred) * (exp_1mx - a * n)
        norm = n.clamp(min=1.0) if group["reduction"] == "mean" else 1.0
        self.apply_change(layer, group, dw=group["lr"] * (ltp - ltd) / norm)
