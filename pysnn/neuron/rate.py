r"""Rate populations: graded values instead of spikes, for rate-based rules.

A :class:`RatePopulation` is a population of linear rate units: its output is
its input, a graded value per unit (a rate or an intensity), and its trace
is that same value,

.. math:: y = I,\qquad x = y,

so that the correlation-based rules that read traces -- :class:`~pysnn.learning.Hebbian`
(:math:`\Delta w = \eta\, y\, x`) and :class:`~pysnn.learning.Oja`
(:math:`\Delta w = \eta\, y (x - y w)`) -- work on rates: as the input
population it passes the given values on; as the postsynaptic population it
outputs the weighted sum of its inputs, :math:`y = W x` (a linear rate neuron).
Connections take graded values (their ``graded_input``).
"""

from __future__ import annotations

from typing import ClassVar, Sequence, cast

import torch

from pysnn.neuron.parameters import Option, Param, StateVar
from pysnn.neuron.population import Population
from pysnn.neuron.validation import InputLike
from pysnn.validation import check_finite, mark_valid

Tensor = torch.Tensor

__all__ = ["RatePopulation"]


class RatePopulation(Population):
    """Linear rate units: the output and the trace are the (summed) input.

    Parameters
    ----------
    cells_shape : tuple of int
        Per-sample shape of the population.
    dt : float
        Timestep in ms (the units have no dynamics; it is the network's clock).

    Examples
    --------
    >>> import torch
    >>> from pysnn.connection import Linear
    >>> from pysnn.learning import Oja
    >>> from pysnn.network import SNNNetwork
    >>> net = SNNNetwork()
    >>> inputs, unit = RatePopulation((4,)), RatePopulation((1,))
    >>> layer = net.connect(inputs, Linear(4, 1), unit)
    >>> oja = Oja(net.layers, lr=0.01)
    >>> y = net(torch.rand(8, 4))                 # y = W x, shape (8, 1)
    >>> oja.step()
    """

    params: ClassVar[tuple[Param, ...]] = ()
    state_vars: ClassVar[tuple[StateVar, ...]] = (StateVar("spikes"), StateVar("trace"))
    options: ClassVar[tuple[Option, ...]] = ()
    fixed_integrator: ClassVar[str | None] = "exact"

    @property
    def _anchor(self) -> Tensor:
        return cast(Tensor, self._buffers["spikes"])

    def _init_state(self, batch_size: int) -> None:
        like = self._buffers.get("spikes")
        dtype = torch.get_default_dtype() if like is None else like.dtype
        device = None if like is None else like.device
        shape = (batch_size, *self._features)
        for name in self._state_names:
            self._register_state(name, torch.zeros(shape, dtype=dtype, device=device))

    def forward(self, x: InputLike) -> tuple[Tensor, Tensor]:
        """Take this step's values (a tensor, or a list summed): ``(values, values)``.

        Raises :class:`ValueError` for NaN or infinity (before any state change).
        """
        values = self._prepare_input(x)
        check_finite("x", values, type(self).__name__)
        state = self._buffers
        state["spikes"] = state["trace"] = values
        mark_valid(values)
        return values, values

    def advance_window(
        self, x: Tensor, record: Sequence[str] = ()
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """:meth:`forward_steps` with the stacked ``record`` values (``spikes``/``trace``)."""
        window = self._prepare_window(x)
        check_finite("x", window, type(self).__name__)
        state = self._buffers
        state["spikes"] = state["trace"] = window[-1].clone()
        mark_valid(window)
        return window, window, {name: window for name in record}
