r"""Weight-dependent STDP with an LTP window: the base of first-spike rules, and ShresthaSTDP.

Rules of this family update a synapse when its postsynaptic neuron spikes
(or, for :class:`~pysnn.learning.KheradpishehSTDP`, wins a competition): it is
potentiated if its presynaptic neuron spiked within the LTP window
:math:`0 \le t_{post} - t_{pre} \le \tau_{LTP}` and depressed otherwise,

.. math::
    \Delta w_{ij} = \eta \sum_{b,\,p} g_{b,p,i}\,\big(A_+ f_+(w_{ij})\, e_{b,p,j}
                    - A_- f_-(w_{ij})\,(1 - e_{b,p,j})\big)

with :math:`g` the postsynaptic gate (spikes or winners, 0/1),
:math:`e_j = [\,t - t^{last}_{pre,j} \le \tau_{LTP}\,]` whether the presynaptic
neuron spiked in the window (the spike of this step included) and the sum over
the batch (divided by the batch size for ``reduction="mean"``) and, for
``Conv2d``, over output positions.  It is one call of the connections'
correlation protocol: :math:`\sum g\,e = C(g, e)` and :math:`\sum g = S(g)`
(:meth:`~pysnn.connection.Connection.correlate`,
:meth:`~pysnn.connection.Connection.post_sum`).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from pysnn.learning.base import LearningRule, Reward, run_state
from pysnn.learning.options import Hyper
from pysnn.network import Layer, SNNNetwork

Tensor = torch.Tensor

__all__ = ["LTPWindowRule", "ShresthaSTDP"]


class LTPWindowRule(LearningRule):
    r"""Base of the LTP-window rules (see the module docstring for the update).

    Subclasses give :meth:`ltp_factor` :math:`f_+(w)`, :meth:`ltd_factor`
    :math:`f_-(w)` and, optionally, :meth:`post_gate` (default: the
    postsynaptic spikes).  The rule keeps one buffer per layer, ``since_pre``:
    the time (ms) since the last presynaptic spike that arrived at each input,
    ``inf`` before the first one; call :meth:`step` once per timestep, after
    the network, so that it sees every presynaptic spike.

    Per-synapse delays are not supported.
    """

    state_names: tuple[str, ...] = ("since_pre",)
    hyperparameters = (
        Hyper("a_plus", 1.0, doc="potentiation amplitude"),
        Hyper("a_minus", 1.0, doc="depression amplitude"),
        Hyper("tau_ltp", 1.0, "time", doc="LTP window (ms)"),
    )

    def _check_window(self, tau_ltp: float) -> None:
        if isinstance(tau_ltp, bool) or not isinstance(tau_ltp, (int, float)):
            raise TypeError(f"tau_ltp must be a number (ms), got {type(tau_ltp).__name__}")
        if math.isnan(tau_ltp) or tau_ltp < 0:
            raise ValueError(f"tau_ltp must be >= 0 ms (inf allowed), got {tau_ltp}")

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        self._check_window(group["tau_ltp"])
        for name in ("a_plus", "a_minus"):
            if group[name] < 0:
                raise ValueError(f"{name} must be >= 0 (a magnitude), got {group[name]}")

    def _check_layer(self, layer: Layer, group: dict[str, Any]) -> None:
        super()._check_layer(layer, group)
        if layer.connection.per_synapse_delay:
            raise NotImplementedError(f"{type(self).__name__} does not support per-synapse delays")

    # -- the parts of a subclass -------------------------------------------------------
    def ltp_factor(self, weight: Tensor, group: dict) -> Tensor:
        """:math:`f_+(w)`, the weight dependence of potentiation."""
        raise NotImplementedError

    def ltd_factor(self, weight: Tensor, group: dict) -> Tensor:
        """:math:`f_-(w)`, the weight dependence of depression."""
        raise NotImplementedError

    def post_gate(self, layer: Layer, group: dict, state: dict) -> Tensor:
        """Postsynaptic gate :math:`g` (0/1, shaped like the output): the spikes by default."""
        return self._post(layer, "spikes")

    # -- the shared step -----------------------------------------------------------------
    def _in_window(self, layer: Layer, group: dict, state: dict) -> Tensor:
        """Advance ``since_pre`` by this step's presynaptic spikes; 1 where in the window."""
        conn = layer.connection
        pre = conn.arriving("spikes")
        since = run_state(state, "since_pre", pre.shape, pre, fill=math.inf)
        since = (since + conn.dt).masked_fill_(pre > 0, 0.0)
        state["since_pre"] = since
        return ((since <= group["tau_ltp"]) & torch.isfinite(since)).to(pre.dtype)

    def _step_layer(self, layer: Layer, group: dict, state: dict, reward: Reward | None) -> None:
        if self._frozen(layer):
            return
        in_window = self._in_window(layer, group, state)
        gate = self.post_gate(layer, group, state)
        if not self._has_change_hooks and not bool(gate.any()):
            return
        conn = layer.connection
        weight = conn.weight
        ltp = conn.correlate(gate, in_window)  # sum of g * e
        ltd = conn.post_sum(gate) - ltp  # sum of g * (1 - e)
        scale = self._scale(group, gate.shape[0])
        dw = scale * (
            group["a_plus"] * self.ltp_factor(weight, group) * ltp
            - group["a_minus"] * self.ltd_factor(weight, group) * ltd
        )
        self.apply_change(layer, group, dw=dw)


class ShresthaSTDP(LTPWindowRule):
    r"""Stable STDP of Shrestha, Ahmed, Wang & Qiu (IJCNN 2017).

    At every postsynaptic spike each synapse of the neuron changes by

    .. math::
        \Delta w = \begin{cases}
            +\eta\, A_+\, e^{-w} & 0 \le t_{post} - t_{pre} \le \tau_{LTP}\\
            -\eta\, A_-\, e^{w} & \text{otherwise (no presynaptic spike in the window)}
        \end{cases}

    (the LTP-window update of :class:`LTPWindowRule` with
    :math:`f_+(w) = e^{-w}`, :math:`f_-(w) = e^{w}`).  Potentiation shrinks and
    depression grows exponentially with the weight, so weights stay bounded
    without clipping: a synapse whose presynaptic neuron is in the window with
    probability :math:`p` at the postsynaptic spikes drifts to the fixed point
    :math:`w^* = \tfrac12 \ln\!\big(A_+ p / (A_- (1 - p))\big)`.

    Parameters
    ----------
    layers
        Layers to train, see :class:`~pysnn.learning.LearningRule`.
    lr : float
        Learning rate :math:`\eta`.
    a_plus, a_minus : float
        Potentiation and depression amplitudes :math:`A_\pm \ge 0`.
    tau_ltp : float
        LTP window :math:`\tau_{LTP}` in ms (``inf``: any earlier presynaptic
        spike since the last reset).
    w_min, w_max, soft_bounds, mask, reduction, network
        See :class:`~pysnn.learning.LearningRule` (no bounds are needed).
    """

    def __init__(
        self,
        layers: Any,
        lr: float = 1e-3,
        a_plus: float = 1.0,
        a_minus: float = 1.0,
        *,
        tau_ltp: float = 10.0,
        network: SNNNetwork | None = None,
        **options: Any,
    ) -> None:
        self._check_window(tau_ltp)
        super().__init__(
            layers,
            dict(lr=lr, a_plus=a_plus, a_minus=a_minus, tau_ltp=float(tau_ltp)),
            network=network,
            **options,
        )

    def ltp_factor(self, weight: Tensor, group: dict) -> Tensor:
        return torch.exp(-weight)

    def ltd_factor(self, weight: Tensor, group: dict) -> Tensor:
        return torch.exp(weight)
