r"""Triplet STDP (Pfister & Gerstner 2006)."""

from __future__ import annotations

import math
from typing import Any

import torch

from pysnn.compat import RULE_ALIASES
from pysnn.learning.base import UNSET, LearningRule, ParamGroup, Reward, run_state, take_aliases
from pysnn.learning.options import Hyper
from pysnn.network import Layer, SNNNetwork

Tensor = torch.Tensor

__all__ = ["TripletSTDP"]

_ALIASES = RULE_ALIASES["triplet"]


class _TripletGroup(ParamGroup):
    aliases = _ALIASES


class TripletSTDP(LearningRule):
    r"""Triplet STDP of Pfister & Gerstner (2006), all-to-all interactions.

    Four traces: :math:`r_1` (presynaptic, :math:`\tau_+`) and :math:`o_1`
    (postsynaptic, :math:`\tau_-`) are the neurons' own traces; the rule keeps
    the slow traces :math:`r_2` (presynaptic, :math:`\tau_x`) and :math:`o_2`
    (postsynaptic, :math:`\tau_y`) in its buffers, each jumping by 1 per spike
    and decaying exactly.  At each timestep, with :math:`\epsilon` meaning
    "before this step's spike is added":

    .. math::
        \Delta w_{ij} = \eta\Big( s^{post}_i\, r_{1,j}\,
            \big(A_+ + A_3^+\, o_{2,i}(t-\epsilon)\big)
            - s^{pre}_j\, o_{1,i}\, \big(A_- + A_3^-\, r_{2,j}(t-\epsilon)\big)\Big)

    (:math:`A_\pm` are the pair amplitudes :math:`A_2^\pm` of the paper).  The
    *minimal* model has :math:`A_3^- = 0` (the default).  Times are in ms;
    :math:`\tau_+` and :math:`\tau_-` are the ``tau_t`` of the pre- and
    postsynaptic neurons (use ``update_type="exact"`` and ``alpha_t=1`` for the
    model as published).  With a pair pre :math:`\to` post separated by
    :math:`\Delta > 0` the change is :math:`\eta A_+ e^{-\Delta/\tau_+}`; a
    post-pre-post triplet at :math:`0, t_1, t_2` gives
    :math:`\eta(-A_- e^{-t_1/\tau_-} + e^{-(t_2 - t_1)/\tau_+}(A_+ + A_3^+ e^{-t_2/\tau_y}))`.

    Call :meth:`step` once per timestep (it also advances :math:`r_2, o_2`;
    in ``eval()`` mode neither the weights nor :math:`r_2, o_2` change).
    Delays: one delay per connection is supported (:math:`r_2` follows the
    arriving spikes); not per-synapse delays.

    Parameters
    ----------
    layers
        Layers to train, see :class:`~pysnn.learning.LearningRule`.
    lr : float
        Learning rate :math:`\eta` (multiplies all amplitudes).
    a_plus, a3_plus, a_minus, a3_minus : float
        Pair and triplet amplitudes; ``a_plus`` defaults to 5e-3 and ``a_minus``
        to 7e-3 (``a2_plus``, ``a2_minus``: PySNN 0.1 aliases).
    tau_x, tau_y : float
        Time constants of :math:`r_2` and :math:`o_2` in ms.
    w_min, w_max, soft_bounds, mask, reduction, network
        See :class:`~pysnn.learning.LearningRule`.
    """

    state_names = ("r2", "o2")
    group_class = _TripletGroup

    hyperparameters = (
        Hyper("a_plus", 5e-3, doc="pair potentiation amplitude"),
        Hyper("a3_plus", 6e-3, doc="triplet potentiation amplitude"),
        Hyper("a_minus", 7e-3, doc="pair depression amplitude"),
        Hyper("a3_minus", 0.0, doc="triplet depression amplitude"),
        Hyper("tau_x", 100.0, "positive", doc="slow presynaptic trace (ms)"),
        Hyper("tau_y", 125.0, "positive", doc="slow postsynaptic trace (ms)"),
    )

    def __init__(
        self,
        layers: Any,
        lr: float = 1.0,
        a_plus: float = UNSET,
        a3_plus: float = 6e-3,
        a_minus: float = UNSET,
        a3_minus: float = 0.0,
        tau_x: float = 100.0,
        tau_y: float = 125.0,
        *,
        network: SNNNetwork | None = None,
        **options: Any,
    ) -> None:
        amp = take_aliases(
            type(self).__name__, dict(a_plus=a_plus, a_minus=a_minus), options, _ALIASES
        )
        super().__init__(
            layers,
            dict(
                lr=lr,
                a_plus=5e-3 if amp["a_plus"] is UNSET else amp["a_plus"],
                a3_plus=a3_plus,
                a_minus=7e-3 if amp["a_minus"] is UNSET else amp["a_minus"],
                a3_minus=a3_minus,
                tau_x=tau_x,
                tau_y=tau_y,
            ),
            network=network,
            **options,
        )

    def _check_layer(self, layer: Layer, group: dict[str, Any]) -> None:
        super()._check_layer(layer, group)
        if layer.connection.per_synapse_delay:
            raise NotImplementedError("TripletSTDP does not support per-synapse delays")

    @staticmethod
    def _slow_trace(state: dict, key: str, like: Tensor) -> Tensor:
        return run_state(state, key, like.shape, like)

    def _step_layer(self, layer: Layer, group: dict, state: dict, reward: Reward | None) -> None:
        if self._frozen(layer):
            return
        conn = layer.connection
        dt = float(conn.dt)
        s_pre = conn.arriving("spikes")
        s_post = self._post(layer, "spikes")
        r2 = self._slow_trace(state, "r2", s_pre) * math.exp(-dt / group["tau_x"])
        o2 = self._slow_trace(state, "o2", s_post) * math.exp(-dt / group["tau_y"])
        scale = self._scale(group, s_post.shape[0])
        ltp = conn.correlate(s_post * (group["a_plus"] + group["a3_plus"] * o2), "trace")
        ltd = conn.correlate(
            self._post(layer, "trace"), s_pre * (group["a_minus"] + group["a3_minus"] * r2)
        )
        self.apply_change(layer, group, ltp=ltp * scale, ltd=ltd * scale)
        state["r2"] = r2 + s_pre
        state["o2"] = o2 + s_post
