r"""First-spike competition among feature maps: winner-take-all and k winners.

Convolutional STDP networks with at most one spike per neuron (Masquelier &
Thorpe 2007; Kheradpisheh et al. 2018; SpykeTorch, cuSNN) let neurons compete
by *when* they fire: the earliest spike wins, and among simultaneous spikes the
higher membrane potential.  Every function here works on feature maps
``(batch, F, H, W)`` (a ``(batch, N)`` population is ``N`` maps of one
position, see :func:`as_feature_maps`) and is batched: each sample competes on
its own.

* :func:`first_spike_key` turns first-spike steps and potentials into one
  ranking key (larger wins);
* :func:`position_wta` keeps, at every position, only the winning map
  (point-wise inhibition across maps);
* :func:`k_winners` picks at most ``k`` winners per sample, at most one per
  map, each inhibiting every map within ``radius`` of its position.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

__all__ = [
    "as_feature_maps",
    "first_spike_key",
    "position_wta",
    "k_winners",
    "inhibition_area",
    "check_radius",
]


def as_feature_maps(x: Tensor, unit_dim: int = -1) -> Tensor:
    """View ``x`` as feature maps ``(batch, F, H, W)``.

    A 4-d tensor whose unit (map) dimension is 1 is returned as it is; any
    other tensor ``(batch, ..., N, ...)`` has its unit dimension ``unit_dim``
    moved to dimension 1 and the remaining dimensions flattened into
    ``H``, with ``W = 1`` (a ``(batch, N)`` population becomes ``N`` maps of
    one position).

    Raises
    ------
    ValueError
        If ``x`` has fewer than 2 dimensions.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"x must be (batch, ...) with a unit dimension, got {tuple(x.shape)}")
    if x.dim() == 4 and unit_dim in (1, -3):
        return x
    units = x.movedim(unit_dim, 1)
    return units.reshape(units.shape[0], units.shape[1], -1, 1)


def first_spike_key(spike_step: Tensor, potential: Tensor) -> Tensor:
    r"""Ranking key of first-spike competition: earlier spike first, then higher potential.

    .. math::
        \kappa = -t\,(\max V - \min V + 1) + V \quad\text{if the neuron fired (} t \ge 0),
        \qquad \kappa = -\infty \text{ otherwise}

    with the max and min over the whole tensor, so that a spike one step
    earlier always outranks any potential difference.

    Parameters
    ----------
    spike_step : Tensor
        First-spike step of each neuron (integer or float), negative for no spike.
    potential : Tensor
        Membrane potential used to break ties (same shape), e.g. the potential
        at the first spike.

    Returns
    -------
    Tensor
        The key, in the dtype of ``potential`` (floating).
    """
    if not isinstance(spike_step, Tensor) or not isinstance(potential, Tensor):
        raise TypeError("spike_step and potential must be tensors")
    if spike_step.shape != potential.shape:
        raise ValueError(
            f"spike_step {tuple(spike_step.shape)} and potential {tuple(potential.shape)} "
            "must have the same shape"
        )
    if not potential.is_floating_point():
        potential = potential.float()
    fired = spike_step >= 0
    span = (potential.max() - potential.min()).clamp(min=0) + 1 if potential.numel() else 1.0
    key = potential - spike_step.to(potential.dtype) * span
    return key.masked_fill(~fired, -torch.inf)


def position_wta(key: Tensor) -> Tensor:
    r"""Point-wise winner-take-all across maps: at each position only the best map stays.

    .. math:: y_{b,f,h,w} = [\kappa_{b,f,h,w} = \max_{f'} \kappa_{b,f',h,w}]\,
              [\kappa_{b,f,h,w} > -\infty]

    ties go to the lowest map index.  ``key`` is ``(batch, F, H, W)`` (e.g.
    from :func:`first_spike_key`; ``-inf`` marks neurons that did not fire).
    Returns a bool mask of the kept neurons.
    """
    _check_maps(key, "key")
    best = key.argmax(dim=1, keepdim=True)
    keep = torch.zeros_like(key, dtype=torch.bool).scatter_(1, best, True)
    return keep & (key > -torch.inf)


def k_winners(key: Tensor, k: int | Tensor, radius: int | None = 0) -> Tensor:
    r"""At most ``k`` winners per sample, one per map, with local lateral inhibition.

    Greedy, as SpykeTorch's ``get_k_winners``: repeat ``k`` times, per sample,
    take the neuron with the largest key among the allowed ones, then forbid
    its whole map and, in every map, the positions within ``radius`` of it
    (Chebyshev distance :math:`\max(|\Delta h|, |\Delta w|) \le r`; ``radius=None``:
    no lateral inhibition, only one winner per map).  Neurons
    with key ``-inf`` (no spike) never win; ties go to the lowest flat index
    ``(f, h, w)``.

    Parameters
    ----------
    key : Tensor
        ``(batch, F, H, W)`` ranking key, larger wins (see :func:`first_spike_key`).
    k : int or Tensor
        Number of winners per sample (``>= 0``), or one number per sample ``(batch,)``.
    radius : int or None
        Inhibition radius in positions (``>= 0``; 0: the winner's own position
        in every map, which for ``N`` maps of one position is a winner-take-all
        among them; ``None``: none).

    Returns
    -------
    Tensor
        Bool mask ``(batch, F, H, W)`` of the winners.

    Raises
    ------
    TypeError, ValueError
        For a key that is not 4-d, a negative ``k`` or ``radius``, or a ``k``
        tensor that does not hold one value per sample.
    """
    _check_maps(key, "key")
    check_radius(radius)
    batch, n_maps, height, width = key.shape
    if isinstance(k, Tensor):
        if k.numel() != batch:
            raise ValueError(f"k must hold one value per sample ({batch}), got {k.numel()}")
        limit = k.reshape(batch).to(device=key.device, dtype=torch.int64)
        rounds = int(limit.max()) if batch else 0
    elif isinstance(k, int) and not isinstance(k, bool):
        limit, rounds = None, k
    else:
        raise TypeError(f"k must be an int or a tensor, got {type(k).__name__}")
    if rounds < 0 or (limit is not None and bool((limit < 0).any())):
        raise ValueError(f"k must be >= 0, got {k}")
    winners = torch.zeros(key.shape, dtype=torch.bool, device=key.device)
    if rounds == 0 or key.numel() == 0:
        return winners
    work = key.detach().clone()
    if not work.is_floating_point():
        work = work.float()
    flat = work.view(batch, -1)
    rows = torch.arange(batch, device=key.device)
    for i in range(rounds):
        value, index = flat.max(dim=1)
        ok = value > -torch.inf
        if limit is not None:
            ok &= limit > i
        if not bool(ok.any()):
            break
        won = torch.zeros_like(flat, dtype=torch.bool)
        won[rows[ok], index[ok]] = True
        won = won.view(batch, n_maps, height, width)
        winners |= won
        # forbid the winner's map and, in every map, its neighbourhood
        maps = won.flatten(2).any(2)  # (B, F)
        blocked = maps[:, :, None, None] | inhibition_area(won, radius)[:, None]
        work.masked_fill_(blocked, -torch.inf)
    return winners


def check_radius(radius: int | None) -> None:
    """Raise unless ``radius`` is ``None`` or an int ``>= 0``."""
    if radius is None:
        return
    if isinstance(radius, bool) or not isinstance(radius, int):
        raise TypeError(f"radius must be an int or None, got {type(radius).__name__}")
    if radius < 0:
        raise ValueError(f"radius must be >= 0 or None, got {radius}")


def inhibition_area(winners: Tensor, radius: int | None) -> Tensor:
    """Positions ``(batch, H, W)`` within ``radius`` of a winner of ``winners`` ``(batch, F, H, W)``.

    All ``False`` for ``radius=None``.
    """
    _check_maps(winners, "winners")
    if radius is None:
        return torch.zeros(
            winners.shape[0], *winners.shape[2:], dtype=torch.bool, device=winners.device
        )
    near = winners.any(1, keepdim=True).to(torch.get_default_dtype())
    if radius > 0:
        near = F.max_pool2d(near, 2 * radius + 1, stride=1, padding=radius)
    return near[:, 0] > 0


def _check_maps(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"{name} must be feature maps (batch, F, H, W), got shape {tuple(x.shape)} "
            "(see as_feature_maps)"
        )
