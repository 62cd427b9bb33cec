"""Argument checks shared by neurons and connections.

Every check raises a :class:`TypeError` or :class:`ValueError` that names the
argument and what was expected, before any state is changed.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import torch

Tensor = torch.Tensor
Number = Union[float, int]


def as_parameter_tensor(name: str, value: Number | Tensor, dtype: torch.dtype) -> Tensor:
    """Convert a scalar or tensor hyper-parameter to a floating tensor and reject NaN/inf."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Tensor)):
        raise TypeError(f"{name} must be a number or a tensor, got {type(value).__name__}")
    tensor = torch.as_tensor(value, dtype=dtype).detach().clone()
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} must be finite, got {value}")
    return tensor


def check_positive(name: str, tensor: Tensor) -> None:
    """Require every entry of ``tensor`` to be > 0."""
    if not bool((tensor > 0).all()):
        raise ValueError(f"{name} must be > 0, got {tensor.tolist()}")


def check_non_negative(name: str, tensor: Tensor) -> None:
    """Require every entry of ``tensor`` to be >= 0."""
    if not bool((tensor >= 0).all()):
        raise ValueError(f"{name} must be >= 0, got {tensor.tolist()}")


def check_unit_interval(name: str, tensor: Tensor) -> None:
    """Require every entry of ``tensor`` to lie in [0, 1] (a decay factor)."""
    if not bool(((tensor >= 0) & (tensor <= 1)).all()):
        raise ValueError(f"{name} is a decay factor and must lie in [0, 1], got {tensor.tolist()}")


def check_dt(dt: Number | Tensor) -> float:
    """Validate the timestep (ms) and return it as a Python float."""
    if isinstance(dt, Tensor):
        if dt.numel() != 1:
            raise ValueError(f"dt must be a scalar, got a tensor of shape {tuple(dt.shape)}")
        dt = float(dt)
    if isinstance(dt, bool) or not isinstance(dt, (int, float)):
        raise TypeError(f"dt must be a number (ms), got {type(dt).__name__}")
    if math.isnan(dt) or not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a finite number > 0 (ms), got {dt}")
    return float(dt)


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """Require ``value`` to be one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_shape_tuple(name: str, shape: Sequence[int] | int) -> tuple[int, ...]:
    """Normalise a shape argument to a tuple of positive ints."""
    if isinstance(shape, int):
        shape = (shape,)
    if isinstance(shape, torch.Size):
        shape = tuple(shape)
    if not isinstance(shape, (tuple, list)) or not shape:
        raise TypeError(f"{name} must be a non-empty tuple of ints, got {shape!r}")
    out = []
    for dim in shape:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
            raise ValueError(f"{name} must contain positive ints, got {tuple(shape)}")
        out.append(int(dim))
    return tuple(out)


def check_tensor(
    name: str,
    x: object,
    dtype: torch.dtype,
    device: torch.device,
    allow_bool: bool = False,
) -> Tensor:
    """Check the type, dtype and device of an input tensor.

    A boolean tensor is accepted when ``allow_bool`` and converted to ``dtype``.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.device != device:
        raise ValueError(
            f"{name} is on device {x.device} but the module is on {device}; "
            f"move one of them with .to()"
        )
    if x.dtype != dtype:
        if allow_bool and x.dtype == torch.bool:
            return x.to(dtype=dtype)
        expected = f"{dtype} (or torch.bool)" if allow_bool else str(dtype)
        raise TypeError(f"{name} must have dtype {expected}, got {x.dtype}")
    return x
