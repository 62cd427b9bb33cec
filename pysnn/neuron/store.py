"""Parameter buffers with float64 masters and cached per-step factors.

Mixed into :class:`~pysnn.neuron.population.Population`.  Each declared
:class:`~pysnn.neuron.parameters.Param` is a buffer in the module's dtype plus a
float64 master copy, from which the buffer is rebuilt when the dtype changes
(full precision through ``.double()``) and from which the per-step factors
:math:`e^{-\\Delta t/\tau}` are computed and rounded once.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, ClassVar, Sequence

import torch
from torch import nn

from pysnn import functional as sf
from pysnn.fusion import is_compiling
from pysnn.neuron.parameters import Param, parameter_tensor
from pysnn.validation import user_stacklevel

Tensor = torch.Tensor

__all__ = ["ParameterStore", "broadcasts_to", "check_euler_stability"]


def broadcasts_to(shape: Sequence[int], features: Sequence[int]) -> bool:
    """True when ``shape`` broadcasts to ``features`` without expanding it."""
    try:
        return torch.broadcast_shapes(tuple(shape), tuple(features)) == torch.Size(features)
    except RuntimeError:
        return False


def check_euler_stability(owner: str, name: str, tau: Tensor, dt: float) -> None:
    r"""Forward Euler of :math:`\tau \dot y = -y` multiplies :math:`y` by :math:`1 - \Delta t/\tau`.

    Raises a :class:`ValueError` when :math:`\Delta t/\tau > 2` (the solution
    grows without bound) and warns (:class:`RuntimeWarning`) when
    :math:`1 < \Delta t/\tau \le 2` (it oscillates around the steady state).
    """
    ratio = float((dt / tau).max())
    if ratio > 2:
        raise ValueError(
            f"{owner}: forward Euler is unstable with dt/{name} = {ratio:g} (dt = {dt} ms, "
            f"{name} = {float(tau.min()):g} ms); it needs dt/{name} <= 2, and <= 1 to decay "
            f"without oscillating; use integrator='exact' or a smaller dt"
        )
    if ratio > 1:
        warnings.warn(
            f"{owner}: forward Euler oscillates with dt/{name} = {ratio:g} (stable but "
            f"non-monotone for 1 < dt/{name} <= 2); use integrator='exact' or a smaller dt",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )


class ParameterStore:
    """Declared parameters as buffers, their masters and their cached factors.

    The host module provides ``params``, ``dt``, ``cells_shape``,
    ``_features``, ``_buffers`` and ``register_buffer``.
    """

    params: ClassVar[tuple[Param, ...]] = ()
    _param_names: ClassVar[frozenset[str]] = frozenset()
    _features: tuple[int, ...]
    _alternative_features: tuple[int, ...] | None

    def _register_parameters(self, values: dict[str, Any]) -> None:
        """Validate and register every declared parameter from the constructor's ``values``.

        A time constant given as a :class:`~pysnn.neuron.parameters.DecayFactor`
        keeps that factor for the step while unchanged (see :meth:`decay`).
        """
        self._masters: dict[str, Tensor] = {}
        self._given_factors: dict[str, Tensor] = {}
        self._factor_cache: dict[tuple[str, Callable], tuple[Tensor, int, Tensor]] = {}
        dtype = torch.get_default_dtype()
        for param in self.params:
            value = values[param.name]
            if value is None and isinstance(param.default, str):
                value = self._masters[param.default]  # defaults to an earlier parameter
            master, factor = parameter_tensor(param, value, self.dt)
            self._masters[param.name] = master
            if factor is not None:
                self._given_factors[param.name] = factor
            self.register_buffer(param.name, master.to(dtype))
            self._adopt_parameter_shape(master.shape)
        for name, tau in self._euler_time_constants(self._masters).items():
            check_euler_stability(type(self).__name__, name, tau, self.dt)

    def set_parameter(self, name: str, value: float | Tensor) -> None:
        """Set parameter ``name`` to a number or one value per neuron (also ``neuron.name = value``).

        Checked like the constructor's argument, before anything changes:
        finite (a time constant may be ``inf``, no decay), in the parameter's
        range, broadcasting to the per-sample shape without expanding it.
        Time constants are in ms (or a
        :class:`~pysnn.neuron.parameters.DecayFactor`).  The value becomes the new full-precision master; derived
        buffers (``refrac_steps``) follow.  The state is kept.

        Parameters
        ----------
        name : str
            A declared parameter (``type(neuron).params``).
        value : float or Tensor
            The new value.

        Raises
        ------
        ValueError
            For an unknown name, a NaN or infinite value, a value out of range
            or a shape that does not broadcast to the population.
        TypeError
            If ``value`` is not a number or a tensor.
        """
        param = next((p for p in self.params if p.name == name), None)
        if param is None:
            raise ValueError(
                f"{type(self).__name__}: name must be one of the parameters "
                f"{[p.name for p in self.params]}, got {name!r}"
            )
        master, _ = parameter_tensor(param, value, self.dt)
        master = master.cpu()
        if not broadcasts_to(master.shape, self._features):
            raise ValueError(
                f"{type(self).__name__}: {name} must broadcast to the per-sample shape "
                f"{self._features} without expanding it, got shape {tuple(master.shape)}"
            )
        for tau_name, tau in self._euler_time_constants({**self._masters, name: master}).items():
            if name in tau_name.split("/"):
                check_euler_stability(type(self).__name__, tau_name, tau, self.dt)
        derived = self._derived_buffers(name, master, self.dt)
        # every check passed: commit
        anchor = self._buffers[self.params[0].name]
        value = master.to(device=anchor.device, dtype=anchor.dtype)
        trainable = self._parameters.get(name)
        if trainable is not None:  # the same nn.Parameter (optimizers hold it) takes the value
            trainable.data = value
        else:
            self._buffers[name] = value
        self._masters[name] = master
        self._given_factors.pop(name, None)
        self._buffers.update(derived)
        self._factor_cache.clear()
        self._parameter_set(name)

    def make_trainable(self, *names: str, per_neuron: bool = False) -> Any:
        """Make the parameters ``names`` trainable by gradient descent (``nn.Parameter`` s).

        Each becomes a :class:`torch.nn.Parameter` (``requires_grad=True``),
        listed by ``module.parameters()`` for any :mod:`torch.optim` optimizer,
        and still read by the step under its name (``neuron.tau_v``): with
        gradients enabled, :meth:`SNNNetwork.run <pysnn.network.SNNNetwork.run>`
        is differentiable with respect to it.  A time constant stays in ms (its
        decay factor is computed from it at every step while autograd records).
        The optimizer may move a value out of its range (a time constant
        at or below 0): clamp it after ``optimizer.step()`` if it can.

        Parameters
        ----------
        *names : str
            Declared parameters (``type(neuron).params``), e.g. ``"tau_v"``, ``"thresh"``.
        per_neuron : bool
            Expand a shared (scalar) value to one value per neuron first.

        Returns
        -------
        The module itself, for chaining.

        Raises
        ------
        ValueError
            For a name that is not a declared floating-point parameter; nothing
            changes then.
        """
        for name in names:
            if name not in type(self)._param_names:
                raise ValueError(
                    f"{type(self).__name__}.make_trainable: names must be parameters "
                    f"{[p.name for p in self.params]}, got {name!r}"
                )
            if not self._buffers[name].is_floating_point():
                raise ValueError(f"{type(self).__name__}.make_trainable: {name} is not a float")
        for name in names:
            current = self._parameters.get(name)
            value = self._buffers[name].detach()
            if per_neuron and tuple(value.shape) != tuple(self._features):
                value = value.expand(self._features)
                self._masters[name] = self._masters[name].expand(self._features).clone()
            if current is not None and current.shape == value.shape:
                continue
            param = nn.Parameter(value.clone())
            # one tensor, two names: a parameter for optimizers, the buffer the step reads
            self._parameters[name] = param
            self._buffers[name] = param
        self._factor_cache.clear()
        return self

    @property
    def trainable_names(self) -> tuple[str, ...]:
        """The parameters made trainable by :meth:`make_trainable`."""
        return tuple(name for name in self._parameters if name in type(self)._param_names)

    def _euler_time_constants(self, masters: dict[str, Tensor]) -> dict[str, Tensor]:
        """Time constants (ms) integrated with forward Euler, by name, for the stability check.

        Those of the ``"time"`` parameters under ``integrator="euler"``; models
        that always integrate some variable with Euler add theirs (AdEx:
        :math:`C/g_L` and :math:`\tau_w`).
        """
        if getattr(self, "integrator", None) != "euler":
            return {}
        return {p.name: masters[p.name] for p in self.params if p.constraint == "time"}

    def _derived_buffers(self, name: str, master: Tensor, dt: float) -> dict[str, Tensor]:
        """Buffers computed from parameter ``name`` (value ``master``) at timestep ``dt``; may raise."""
        return {}

    def _check_dt_change(self, dt: float) -> None:
        """A new timestep must suit every derived buffer and the Euler stability limit."""
        for name, master in self._masters.items():
            self._derived_buffers(name, master, dt)
        for name, tau in self._euler_time_constants(self._masters).items():
            check_euler_stability(type(self).__name__, name, tau, dt)

    def _dt_changed(self, old: float) -> None:
        """Re-derive the per-step factors and derived buffers; time constants stay in ms.

        A :class:`~pysnn.neuron.parameters.DecayFactor` was the factor of the
        old step: from now on the factor comes from the time constant in ms
        it stood for.
        """
        self._given_factors.clear()
        self._factor_cache.clear()
        for name, master in self._masters.items():
            self._buffers.update(self._derived_buffers(name, master, self.dt))
            self._parameter_set(name)

    def _parameter_set(self, name: str) -> None:
        """Hook after parameter ``name`` was set (e.g. to refresh a flag)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self)._param_names:
            self.set_parameter(name, value)
        else:
            super().__setattr__(name, value)

    def _adopt_parameter_shape(self, shape: torch.Size) -> None:
        # Two readings of the shape (see Population.alternative_features): a
        # parameter that fits only the other one decides for it.
        other = self._alternative_features
        if (
            other is not None
            and not broadcasts_to(shape, self._features)
            and broadcasts_to(shape, other)
        ):
            self._features, self._alternative_features = other, None

    def _check_param_shapes(self, features: tuple[int, ...]) -> None:
        for param in self.params:
            shape = tuple(self._buffers[param.name].shape)
            if not broadcasts_to(shape, features):
                raise ValueError(
                    f"{type(self).__name__}: parameter {param.name} has shape {shape}, which does "
                    f"not broadcast to the neuron shape {features} without expanding it"
                )

    def decay(self, name: str) -> Tensor:
        r"""Per-step decay factor :math:`e^{-\Delta t/\tau}` of time constant ``name``, cached.

        A :class:`~pysnn.neuron.parameters.DecayFactor` given at construction is
        returned as given while the parameter and ``dt`` are unchanged.  The cache follows in-place edits,
        ``.to()`` and ``.double()`` of the buffer.
        """
        return self.factor(name, sf.decay_factor)

    def gain(self, name: str) -> Tensor:
        r""":math:`1 - e^{-\Delta t/\tau}` of time constant ``name`` (exact integration), cached."""
        return self.factor(name, sf.exact_gain)

    def factor(self, name: str, fn: Callable[[Tensor, float, Tensor], Tensor]) -> Tensor:
        r"""``fn(tau, dt, like)`` for time constant ``name``, cached until the parameter changes.

        Computed from the float64 master and rounded once to the module's
        dtype (from the parameter itself after an in-place edit, and inside a
        fused step, where it is one more op of the compiled kernel).  ``fn``
        is e.g. :func:`pysnn.functional.decay_factor`.
        """
        tau = self._buffers[name]
        if tau.requires_grad and torch.is_grad_enabled():
            # a trainable time constant: computed from it on every call, so that the
            # factor is part of the graph (a cached one would belong to an old graph)
            return fn(tau, self.dt, tau)
        if is_compiling():
            # a cache keyed on data pointers would only make the compiler recompile
            return fn(tau, self.dt, tau)
        key = (name, fn)
        hit = self._factor_cache.get(key)
        # the cache holds the parameter tensor itself: a replaced buffer (.to(),
        # load_state_dict) is another object, an in-place edit bumps its version
        if hit is not None and hit[0] is tau and hit[1] == tau._version:
            return hit[2]
        value = self._compute_factor(name, fn, tau)
        self._factor_cache[key] = (tau, tau._version, value)
        return value

    def _compute_factor(self, name: str, fn: Callable[..., Tensor], tau: Tensor) -> Tensor:
        if not self._unedited(name, tau):
            return fn(tau, self.dt, tau)
        given = self._given_factors.get(name)
        if given is not None and fn in (sf.decay_factor, sf.exact_gain):
            # the DecayFactor as given, rounded once
            lam = given.to(device=tau.device)
            return (lam if fn is sf.decay_factor else 1 - lam).to(tau.dtype)
        return fn(self._masters[name].to(device=tau.device), self.dt, tau)

    def _unedited(self, name: str, buffer: Tensor) -> bool:
        master = self._masters.get(name)
        if master is None or master.shape != buffer.shape:
            return False
        return bool(torch.equal(master.to(device=buffer.device, dtype=buffer.dtype), buffer))

    def _apply(self, fn, recurse=True):
        before = {p.name: self._buffers[p.name] for p in self.params}
        unedited = {name: self._unedited(name, buf) for name, buf in before.items()}
        out = super()._apply(fn, recurse)
        parameters = self._parameters
        for name, old in before.items():
            new = self._buffers[name]
            trainable = parameters.get(name)
            if trainable is not None:
                self._buffers[name] = new = trainable  # the step reads the parameter itself
            if new.dtype != old.dtype and new.is_floating_point() and unedited[name]:
                # full precision: rebuild from the float64 master, not from the rounded value
                value = self._masters[name].to(device=new.device, dtype=new.dtype)
                if trainable is not None:
                    trainable.data = value
                else:
                    self._buffers[name] = value
            elif not unedited[name]:
                self._adopt_as_master(name, new)
        self._factor_cache.clear()
        return out

    def _adopt_as_master(self, name: str, value: Tensor) -> None:
        """Take an edited or loaded parameter value as the new full-precision master."""
        self._masters[name] = value.detach().to(device="cpu", dtype=torch.float64)
        self._given_factors.pop(name, None)

    def _sync_masters(self) -> None:
        """After ``load_state_dict``: adopt every loaded parameter that differs from its master."""
        for param in self.params:
            if not self._unedited(param.name, self._buffers[param.name]):
                self._adopt_as_master(param.name, self._buffers[param.name])
        self._factor_cache.clear()

    def extra_repr(self) -> str:
        parts = [f"{self._features}", f"dt={self.dt}"]
        if self.fixed_integrator is None:
            parts.append(f"integrator={self.integrator!r}")
        for param in self.params:
            value = self._buffers[param.name]
            text = f"{value.item():g}" if value.numel() == 1 else f"<{tuple(value.shape)}>"
            parts.append(f"{param.name}={text}")
        return ", ".join(parts)
