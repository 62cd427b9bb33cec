"""Argument checks shared by neurons and connections.

Every check raises a :class:`TypeError` or :class:`ValueError` that names the
argument and what was expected, before any state is changed.
"""

from __future__ import annotations

import math
import os
import sys
from types import FrameType
from typing import Sequence, Union

import torch

from pysnn.fusion import is_compiling

Tensor = torch.Tensor
Number = Union[float, int]


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))


def user_stacklevel() -> int:
    """The ``stacklevel`` for :func:`warnings.warn` that names the user's line.

    Counts the frames from the function calling :func:`warnings.warn` to the
    first one outside PySNN and PyTorch (whose decorators, such as
    ``torch.no_grad``, add frames of their own), so that a warning points at
    the call that caused it.
    """
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        inside = filename.startswith((_PACKAGE_DIR, _TORCH_DIR)) or filename.startswith("<frozen")
        if not inside and "contextlib" not in os.path.basename(filename):
            return level
        frame = frame.f_back
        level += 1
    return 1


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


def mark_valid(*tensors: Tensor) -> None:
    """Mark tensors a population's step has just produced (spikes, trace) as checked.

    A connection fed with them skips :func:`check_spike_values` (one reduction
    and a host sync per call, 5-40 us on CPU).  The mark holds the tensor's
    version counter, so an in-place edit after the step makes the tensor
    unchecked again.  Not applied while :func:`torch.compile` traces, nor to
    tensors made under :func:`torch.inference_mode` (which keep no version).
    """
    if is_compiling():
        return
    for tensor in tensors:
        if not tensor.is_inference():  # inference tensors keep no version counter
            tensor._pysnn_valid = tensor._version


def is_marked_valid(tensor: Tensor) -> bool:
    """Whether ``tensor`` carries :func:`mark_valid`'s mark and was not modified since.

    Always ``False`` while :func:`torch.compile` traces (values are not checked there).
    """
    if is_compiling() or tensor.is_inference():
        return False
    return getattr(tensor, "_pysnn_valid", -1) == tensor._version


def check_spike_values(
    owner: str, spikes: Tensor, trace: Tensor | None, graded: bool, spikes_checked: bool = True
) -> None:
    r"""Reject non-finite (or, unless ``graded``, non-binary) spikes and a non-finite trace.

    One fused reduction per call on the fast path:

    * ``graded``: :math:`\sum_k (s_k + t_k)` (or :math:`\sum_k s_k` without a
      trace) is finite exactly when every :math:`s_k` and :math:`t_k` is
      (:math:`\infty - \infty` is NaN), up to overflow of a sum of huge
      finite values, which the exact re-check on the failure path lets through;
    * binary: :math:`s - s^2` is zero exactly for :math:`s \in \{0, 1\}`
      (NaN for NaN and :math:`\pm\infty`).

    Parameters
    ----------
    owner : str
        Name of the module, used in the messages.
    spikes : Tensor
        Floating spikes, already checked for dtype and device.
    trace : Tensor or None
        Trace of the shape of ``spikes``, or ``None``.
    graded : bool
        Whether any finite value is a valid input (rates) or only 0 and 1.
    spikes_checked : bool
        ``False`` when ``spikes`` came in as bool (nothing to check in them).

    Raises
    ------
    ValueError
        Naming ``spikes`` or ``trace`` and what was expected.  Skipped while
        :func:`torch.compile` traces (a data-dependent check cannot be compiled).
    """
    if is_compiling():
        return
    if spikes.requires_grad or (trace is not None and trace.requires_grad):
        spikes, trace = spikes.detach(), None if trace is None else trace.detach()
    if not graded and spikes_checked and bool(spikes.sub(spikes * spikes).any()):
        if not bool(torch.isfinite(spikes).all()):
            _raise_non_finite(owner, "spikes", spikes)
        bad = spikes[(spikes != 0) & (spikes != 1)][0]
        raise ValueError(
            f"{owner}: spikes must be bool or exactly 0.0/1.0 ({owner} takes spikes, not "
            f"graded values), got the value {float(bad)!r}"
        )
    if trace is not None:
        if graded and spikes_checked:
            total = float(torch.add(spikes, trace).sum())
        else:
            total = float(trace.sum())
    elif graded and spikes_checked:
        total = float(spikes.sum())
    else:
        return
    if math.isfinite(total):
        return
    if graded and spikes_checked and not bool(torch.isfinite(spikes).all()):
        _raise_non_finite(owner, "spikes", spikes)
    if trace is not None and not bool(torch.isfinite(trace).all()):
        _raise_non_finite(owner, "trace", trace)


def _raise_non_finite(owner: str | None, name: str, x: Tensor) -> None:
    count = int((~torch.isfinite(x)).sum())
    prefix = f"{owner}: " if owner else ""
    raise ValueError(
        f"{prefix}{name} must be finite (no NaN or inf), got {count} non-finite "
        f"value(s) in a tensor of shape {tuple(x.shape)}"
    )


def check_finite(name: str, x: Tensor, owner: str | None = None) -> None:
    """Require every entry of the tensor ``x`` to be finite (no NaN or inf)."""
    if not bool(torch.isfinite(x).all()):
        _raise_non_finite(owner, name, x)


def check_tensor(
    name: str,
    x: object,
    dtype: torch.dtype,
    device: torch.device,
    allow_bool: bool = False,
    owner: str | None = None,
) -> Tensor:
    """Check the type, dtype and device of an input tensor.

    Where spikes are expected (``allow_bool``), a boolean tensor and an
    integer tensor of 0/1 values are accepted and converted to ``dtype``.
    ``owner`` (the module's name) starts every message.
    """
    prefix = f"{owner}: " if owner else ""
    if not isinstance(x, Tensor):
        raise TypeError(f"{prefix}{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.device != device:
        raise ValueError(
            f"{prefix}{name} is on device {x.device} but the module is on {device}; "
            f"move one of them with .to()"
        )
    if x.dtype != dtype:
        if allow_bool and x.dtype == torch.bool:
            return x.to(dtype=dtype)
        if allow_bool and not x.is_floating_point() and not x.is_complex():
            if not bool(((x == 0) | (x == 1)).all()):
                raise ValueError(
                    f"{prefix}{name} is an integer tensor: as spikes it must hold 0 and 1 only"
                )
            return x.to(dtype=dtype)
        expected = f"{dtype} (or bool, or integer 0/1 spikes)" if allow_bool else str(dtype)
        raise TypeError(
            f"{prefix}{name} must have dtype {expected}, got {x.dtype}; convert the input "
            f"with .to({dtype}) or the module with .to(dtype)"
        )
    return x
