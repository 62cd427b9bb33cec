r"""KheradpishehSTDP: simplified STDP with first-spike competition (Kheradpisheh et al. 2018)."""

from __future__ import annotations

import math
from typing import Any

import torch

from pysnn.competition import as_feature_maps, check_radius, inhibition_area, k_winners
from pysnn.learning.base import run_state
from pysnn.learning.options import Hyper
from pysnn.learning.shrestha import LTPWindowRule
from pysnn.network import Layer, SNNNetwork

Tensor = torch.Tensor

__all__ = ["KheradpishehSTDP"]


class KheradpishehSTDP(LTPWindowRule):
    r"""Simplified STDP of Kheradpisheh, Ganjtabesh, Thorpe & Masquelier (Neural Networks 2018).

    Only the *winners* of a first-spike competition learn.  For a winner
    :math:`i` (at its position, with its receptive field) every synapse changes by

    .. math::
        \Delta w_{ij} = \begin{cases}
            +\eta\, a^+\, w_{ij}(1 - w_{ij}) & t_j \le t_i
                \text{ (presynaptic spike before or with the postsynaptic one)}\\
            -\eta\, a^-\, w_{ij}(1 - w_{ij}) & \text{otherwise (later or no presynaptic spike)}
        \end{cases}

    The paper's :math:`a^- = -0.003` is ``-a_minus`` here (``a_minus`` is a
    magnitude, as in every rule of the library); its defaults are
    :math:`a^+ = 0.004`, :math:`a^- = -0.003`, :math:`\eta = 1`.  The factor
    :math:`w(1-w)` keeps weights in :math:`[0, 1]` (soft bound) and is the
    same for both terms: this is :class:`~pysnn.learning.LTPWindowRule` with
    an infinite window and :math:`f_\pm(w) = w(1-w)`.

    **Competition** (per sample, kept until :meth:`reset_state`, i.e. for one
    image): at each step, among the postsynaptic neurons that spike, the ones
    with the largest potential (``potential`` attribute of the neuron, read
    right after the step) win, greedily as :func:`pysnn.competition.k_winners`,
    with

    * at most one winner per feature map (output channel) per sample,
    * at most ``k`` winners per sample over the whole presentation,
    * local lateral inhibition: a winner forbids every map within ``radius``
      positions of it (also in later steps).

    Earlier spikes win over later ones because the state carries over: maps and
    positions taken in earlier steps are blocked.  Use neurons with
    ``fire_once=True`` (at most one spike per neuron, and the potential kept at
    the spike, which ranks simultaneous spikes) and call :meth:`step` after
    every timestep; ``net.reset_state()`` between images also resets the
    competition.  For ``Linear`` layers every output neuron is its own map.

    Parameters
    ----------
    layers
        Layers to train, see :class:`~pysnn.learning.LearningRule`.
    lr : float
        Learning rate :math:`\eta` multiplying both amplitudes (default 1).
    a_plus, a_minus : float
        :math:`a^+` and :math:`|a^-|` (defaults 0.004 and 0.003).
    k : int
        Winners per sample and presentation (default 1).
    radius : int or None
        Lateral inhibition radius in positions (default 0: a winner inhibits
        its own position in every map; for ``Linear`` layers, whose neurons
        share one position, that is a winner-take-all); ``None``: no lateral
        inhibition (``k`` winners, one per map).
    potential : str or None
        Attribute of the neuron ranking simultaneous spikes (default
        ``"v_cell"``); ``None``: ties go to the lowest index.
    w_min, w_max, soft_bounds, mask, reduction, network
        See :class:`~pysnn.learning.LearningRule`.

    Attributes
    ----------
    last_winners : dict
        Layer name -> bool mask of the winners of the last step (output-shaped).
    """

    state_names = ("since_pre", "blocked_maps", "inhibited", "n_winners")

    hyperparameters = (
        Hyper("k", 1, "any", doc="winners per sample (int >= 1)"),
        Hyper("radius", 0, "any", doc="lateral inhibition radius"),
        Hyper("potential", None, "any", doc="state variable ranking the winners"),
    )

    def __init__(
        self,
        layers: Any,
        lr: float = 1.0,
        a_plus: float = 0.004,
        a_minus: float = 0.003,
        *,
        k: int = 1,
        radius: int | None = 0,
        potential: str | None = "v_cell",
        network: SNNNetwork | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            layers,
            dict(
                lr=lr,
                a_plus=a_plus,
                a_minus=a_minus,
                tau_ltp=math.inf,
                k=k,
                radius=radius,
                potential=potential,
            ),
            network=network,
            **options,
        )
        self.last_winners: dict[str, Tensor] = {}

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        k, potential = group["k"], group["potential"]
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"k must be an int, got {type(k).__name__}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        check_radius(group["radius"])
        if potential is not None and not isinstance(potential, str):
            raise TypeError(
                f"potential must be a neuron attribute name or None, got {type(potential).__name__}"
            )

    def _check_layer(self, layer: Layer, group: dict[str, Any]) -> None:
        super()._check_layer(layer, group)
        name = group["potential"]
        if name is not None and not isinstance(getattr(layer.neuron, name, None), torch.Tensor):
            raise TypeError(
                f"layer {layer.name!r}: the neuron has no tensor .{name} (potential={name!r})"
            )

    def ltp_factor(self, weight: Tensor, group: dict) -> Tensor:
        return weight * (1.0 - weight)

    ltd_factor = ltp_factor

    def post_gate(self, layer: Layer, group: dict, state: dict) -> Tensor:
        """The winners of this step (0/1, output-shaped); updates the competition state."""
        spikes = self._post(layer, "spikes")
        unit_dim = layer.connection.unit_dim
        maps = as_feature_maps(spikes, unit_dim)  # (B, F, H, W)
        batch, n_maps = maps.shape[:2]
        specs = {
            "blocked_maps": ((batch, n_maps), torch.bool),
            "inhibited": ((batch, *maps.shape[2:]), torch.bool),
            "n_winners": ((batch,), torch.int64),
        }
        if any(tuple(state[name].shape) != shape for name, (shape, _) in specs.items()):
            for name in specs:  # a new run or batch size: the three restart together
                state[name] = state[name][:0]
        # (buffers loaded from a checkpoint into a fresh rule come back in the weight's dtype)
        blocked, inhibited, count = (
            (
                run_state(state, name, shape, maps, dtype=dtype)
                if state[name].numel() == 0
                else state[name].to(dtype)
            )
            for name, (shape, dtype) in specs.items()
        )
        allowed = (maps > 0) & ~blocked[:, :, None, None] & ~inhibited[:, None]
        if group["potential"] is None:
            key = torch.zeros_like(maps)
        else:
            key = as_feature_maps(self._post(layer, group["potential"]), unit_dim)
        key = key.masked_fill(~allowed, -torch.inf)
        winners = k_winners(key, (group["k"] - count).clamp(min=0), group["radius"])
        # a winner blocks its map and inhibits every map around its position
        blocked = blocked | winners.flatten(2).any(2)
        state["blocked_maps"] = blocked
        state["inhibited"] = inhibited | inhibition_area(winners, group["radius"])
        state["n_winners"] = count + winners.flatten(1).sum(1)
        gate = winners.to(maps.dtype)
        if maps.shape != spikes.shape:
            gate = gate.reshape(spikes.movedim(unit_dim, 1).shape).movedim(1, unit_dim)
        self.last_winners[layer.name] = gate > 0
        return gate
