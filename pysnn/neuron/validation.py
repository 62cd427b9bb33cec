"""Input checks of populations: every check runs before any state changes."""

from __future__ import annotations

from typing import Sequence, Union

import torch

from pysnn.validation import check_tensor

Tensor = torch.Tensor
InputLike = Union[Tensor, Sequence[Tensor]]

__all__ = ["InputChecks"]


class InputChecks:
    """Validation, list summing and shape/batch adoption of a population's input.

    Mixed into :class:`~pysnn.neuron.population.Population`, which provides
    ``_features``, ``_alternative_features``, ``_anchor``, ``_fresh``,
    ``_check_param_shapes`` and ``ensure_state``.
    """

    def _resolve_features(self, shape: torch.Size, name: str) -> tuple[int, ...]:
        """The per-sample shape of an input ``(batch, *features)``.

        A shape translated from PySNN 0.1 may have two readings (with or
        without a leading batch entry, see :mod:`pysnn.compat`); the first
        input decides.
        """
        dims = tuple(shape)
        readings = [self._features]
        if self._alternative_features is not None:
            readings.append(self._alternative_features)
        for features in readings:
            if len(dims) == len(features) + 1 and dims[1:] == tuple(features):
                return tuple(features)
        expected = " or ".join(f"(batch, *{f})" for f in readings)
        raise ValueError(
            f"{type(self).__name__}: {name} must have shape {expected}, got {tuple(shape)}"
        )

    def _prepare_input(self, x: InputLike, name: str = "x", allow_bool: bool = False) -> Tensor:
        """Validate and sum the input, adopt its batch size; returns the summed input."""
        total, features = self._sum_input(x, name, allow_bool)
        self._adopt_input(total, features)
        return total

    def _prepare_window(self, x: object, name: str = "x", allow_bool: bool = False) -> Tensor:
        """Validate a window ``[T, batch, ...]`` of per-step inputs once; adopt its batch size.

        Returns the window in the module's dtype.  Every step of a window
        shares the dtype, device and shape, so checking the window as a whole
        equals checking each step.
        """
        anchor = self._anchor
        window = check_tensor(name, x, anchor.dtype, anchor.device, allow_bool, type(self).__name__)
        if window.dim() < 2 or window.shape[0] == 0:
            raise ValueError(
                f"{type(self).__name__}: {name} must have shape [T, batch, ...] with T >= 1, "
                f"got {tuple(window.shape)}"
            )
        first, features = self._sum_input(window[0], f"{name}[t]")
        self._adopt_input(first, features)
        return window

    def _sum_input(
        self, x: InputLike, name: str = "x", allow_bool: bool = False
    ) -> tuple[Tensor, tuple[int, ...]]:
        """Validate and sum the input without touching the state.

        Returns the summed input and its per-sample shape.
        """
        anchor = self._anchor
        if isinstance(x, (list, tuple)):
            if len(x) == 0:
                raise ValueError(f"{type(self).__name__}: {name} is an empty list")
            parts = [
                check_tensor(
                    f"{name}[{i}]", xi, anchor.dtype, anchor.device, allow_bool, type(self).__name__
                )
                for i, xi in enumerate(x)
            ]
            for i, part in enumerate(parts[1:], start=1):
                if part.shape != parts[0].shape:
                    raise ValueError(
                        f"{type(self).__name__}: all inputs in {name} must have the same shape; "
                        f"{name}[0] is {tuple(parts[0].shape)}, {name}[{i}] is {tuple(part.shape)}"
                    )
            total = parts[0]
            for part in parts[1:]:
                total = total + part
        else:
            total = check_tensor(
                name, x, anchor.dtype, anchor.device, allow_bool, type(self).__name__
            )
        features = self._resolve_features(total.shape, name)
        if features != self._features:
            if not self._fresh:
                raise ValueError(
                    f"{type(self).__name__}: {name} has per-sample shape {features} but the "
                    f"running simulation uses {self._features}; call reset_state() first"
                )
            self._check_param_shapes(features)
        return total, features

    def _check_like_input(self, name: str, value: object, total: Tensor) -> Tensor:
        """Check an extra per-step input (e.g. a presynaptic trace) against the summed input."""
        anchor = self._anchor
        value = check_tensor(name, value, anchor.dtype, anchor.device, owner=type(self).__name__)
        if value.shape != total.shape:
            raise ValueError(
                f"{type(self).__name__}: {name} must have shape {tuple(total.shape)}, "
                f"got {tuple(value.shape)}"
            )
        return value

    def _adopt_input(self, total: Tensor, features: tuple[int, ...]) -> None:
        """Adopt the per-sample shape and batch size of a validated input (see ``ensure_state``)."""
        self.ensure_state(int(total.shape[0]), features)
