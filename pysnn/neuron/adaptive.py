"""LIF neuron with an adaptive threshold (homeostasis as in Diehl & Cook 2015)."""

from __future__ import annotations

from typing import Any, Callable, ClassVar, cast

import torch

from pysnn import functional as sf
from pysnn.neuron.lif import LIFNeuron
from pysnn.neuron.parameters import Option, Param, StateVar

Tensor = torch.Tensor

__all__ = ["AdaptiveLIFNeuron"]


class AdaptiveLIFNeuron(LIFNeuron):
    r"""LIF neuron whose threshold grows with each spike and relaxes to its base.

    .. math::
        \text{exact, impulse:}\quad & \theta \leftarrow \theta_0 + (\theta - \theta_0)
            e^{-\Delta t/\tau_\theta} + \alpha_\theta \bar s\\
        \text{euler:}\quad & \theta \leftarrow \theta + \tfrac{\Delta t}{\tau_\theta}
            (-(\theta - \theta_0) + \alpha_\theta \bar s)

    :math:`\theta_0` is ``thresh`` (also readable as ``thresh_center``),
    :math:`\bar s` the spikes averaged over the batch (``thresh_reduction="mean"``)
    or summed over it (``"sum"``: every sample's spike raises the threshold by
    :math:`\alpha_\theta`, as if the samples had been shown one after another).
    Names: ``thresh`` is the base :math:`\theta_0` (a parameter), and the
    threshold the voltage is compared with, :math:`\theta`, is the state
    ``thresh_adaptive``; :meth:`threshold` returns it (for every neuron model,
    :meth:`threshold` is the threshold in use).
    The adaptive threshold ``thresh_adaptive`` is homeostatic state shared by
    the batch: :meth:`reset_state` keeps it (as in Diehl & Cook 2015),
    :meth:`reset_thresh` restores :math:`\theta_0`, and it only adapts in
    training mode (frozen after ``.eval()``).  Under ``integrator="euler"`` a
    spike's increment is :math:`\alpha_\theta \Delta t/\tau_\theta` (the spike
    drives the ODE), not :math:`\alpha_\theta`: use ``"exact"`` or
    ``"impulse"`` for Diehl & Cook's per-spike jumps.

    Parameters
    ----------
    alpha_thresh : float or Tensor
        Threshold increment per spike.
    tau_thresh : float or Tensor
        Threshold time constant in ms (default 1000).
    thresh_reduction : {"mean", "sum"}
        How the spikes of a batch are combined into :math:`\bar s`.

    Notes
    -----
    See :class:`LIFNeuron` for the other parameters.
    """

    params: ClassVar[tuple[Param, ...]] = LIFNeuron.params + (
        Param("alpha_thresh", 0.05, doc="threshold increment per spike"),
        Param("tau_thresh", 1000.0, "time", doc="threshold time constant (ms)"),
    )
    state_vars: ClassVar[tuple[StateVar, ...]] = LIFNeuron.state_vars + (
        StateVar("thresh_adaptive", "thresh", shared=True),
    )
    options: ClassVar[tuple[Option, ...]] = LIFNeuron.options + (
        Option("thresh_reduction", "mean", ("mean", "sum")),
    )

    @property
    def thresh_center(self) -> Tensor:
        r"""Base threshold :math:`\theta_0` (the ``thresh`` argument)."""
        return cast(Tensor, self._buffers["thresh"])

    def reset_thresh(self) -> None:
        r"""Set the adaptive threshold back to its base :math:`\theta_0`."""
        self.reset_shared_state()

    threshold_name = "thresh_adaptive"

    #: ``hook(neuron, spikes) -> rate``, if set on an instance, replaces the batch
    #: reduction of the spikes (``(B, *cells)`` -> ``cells``) in the threshold update:
    #: :func:`pysnn.distributed.data_parallel` combines the spikes of every rank with it
    batch_rate_hook: Callable[[Any, Tensor], Tensor] | None = None

    def on_spike(self, new: dict[str, Tensor], spikes: Tensor) -> None:
        if not self.training:
            return
        state = self._buffers
        hook = self.__dict__.get("batch_rate_hook")
        if hook is not None:  # e.g. summed over the ranks of a data-parallel run
            rate = hook(self, spikes)
        else:
            rate = spikes.sum(0) if self.thresh_reduction == "sum" else spikes.mean(0)
        args = (state["thresh_adaptive"], state["thresh"], rate, state["alpha_thresh"])
        if self.integrator == "euler":
            adapted = sf.euler_thresh_update(*args, state["tau_thresh"], self.dt)
        else:
            adapted = sf.linear_thresh_update(*args, self.decay("tau_thresh"))
        new["thresh_adaptive"] = adapted
