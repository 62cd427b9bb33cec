r"""The timestep of a module: one ``dt`` (ms), and everything derived from it re-derived on change.

A module whose behaviour depends on the timestep (every population, synapse
model and connection) mixes in :class:`Clocked`.  ``dt`` is read from the
module, and setting it -- ``module.dt = 0.5``, or for a whole network
``net.dt = 0.5`` (:attr:`Simulator.dt <pysnn.simulation.Simulator.dt>`) --
first checks that the module can take the new step, then re-derives what was
computed from the old one: per-step decay factors, refractory periods in
steps, delays in steps.  What a user gives in ms (time constants, refractory
periods, delays) keeps its value in ms.
"""

from __future__ import annotations

from typing import Any

from pysnn.validation import check_dt

__all__ = ["Clocked"]


class Clocked:
    """Mixin of modules with a timestep ``dt`` in ms (see the module docstring).

    Subclasses set the initial value with :meth:`_init_dt` and implement
    :meth:`_check_dt_change` (raise :class:`ValueError` for a step the module
    cannot take) and :meth:`_dt_changed` (re-derive).
    """

    def _init_dt(self, dt: Any) -> float:
        """Set the initial timestep (validated), without re-deriving anything."""
        value = check_dt(dt)
        self.__dict__["_dt"] = value
        return value

    @property
    def dt(self) -> float:
        """The timestep in ms; setting it re-derives every cached factor and step count."""
        return self.__dict__["_dt"]

    @dt.setter
    def dt(self, value: float) -> None:
        self.set_dt(value)

    def check_dt(self, dt: Any) -> float:
        """Validate ``dt`` for this module (nothing changes); returns it as a float.

        Raises
        ------
        ValueError
            If ``dt`` is not a positive finite number, or the module cannot
            take it (e.g. a refractory period or delay that is not a whole
            number of the new steps).
        """
        value = check_dt(dt)
        self._check_dt_change(value)
        return value

    def set_dt(self, dt: Any) -> None:
        """Set the timestep to ``dt`` ms after :meth:`check_dt`, then re-derive."""
        value = self.check_dt(dt)
        old = self.__dict__["_dt"]
        if value == old:
            return
        self.__dict__["_dt"] = value
        self._dt_changed(old)

    def _check_dt_change(self, dt: float) -> None:
        """Hook: raise :class:`ValueError` when the module cannot take timestep ``dt``."""

    def _dt_changed(self, old: float) -> None:
        """Hook: re-derive what depends on the timestep (it was ``old`` ms)."""
