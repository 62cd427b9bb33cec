"""Use `Tonic <https://tonic.readthedocs.io>`_ event datasets with PySNN (Tonic is optional).

Tonic's samples are ``(events, target)`` pairs whose events are numpy
structured arrays with the fields ``x``, ``y``, ``t``, ``p``; PySNN's event
tools (:func:`~pysnn.datasets.to_frames`, :func:`~pysnn.datasets.denoise`,
:func:`~pysnn.datasets.split_polarity`, the writers) accept them as they are.
:func:`from_tonic` wraps a whole dataset so that its samples come out as
frame tensors ready for :meth:`SNNNetwork.run <pysnn.network.SNNNetwork.run>`:

.. code-block:: python

    import tonic
    from pysnn.datasets import from_tonic

    train = from_tonic(tonic.datasets.NMNIST("data", train=True), n_bins=30)
    frames, label = train[0]          # [30, 2, 34, 34] float tensor, int label
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch.utils.data import Dataset

from pysnn.datasets.transforms import _check_size, to_frames

__all__ = ["TonicFrames", "from_tonic"]


class TonicFrames(Dataset):
    """A Tonic (or any ``(events, target)``) dataset whose events are binned into frames.

    See :func:`from_tonic`.
    """

    def __init__(
        self,
        dataset: Any,
        sensor_size: Sequence[int],
        frame_options: dict[str, Any],
    ) -> None:
        self.dataset = dataset
        self.sensor_size = _check_size(sensor_size)
        self.frame_options = frame_options

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        sample = self.dataset[index]
        if not isinstance(sample, (tuple, list)) or len(sample) != 2:
            raise TypeError(
                f"dataset[{index}] must be an (events, target) pair, got {type(sample).__name__}"
            )
        events, target = sample
        return to_frames(events, self.sensor_size, **self.frame_options), target


def from_tonic(
    dataset: Any,
    n_bins: Optional[int] = None,
    bin_us: Optional[float] = None,
    sensor_size: Optional[Sequence[int]] = None,
    polarity: str = "split",
    dtype: torch.dtype = torch.float32,
    batch_dim: bool = False,
) -> TonicFrames:
    """Wrap a Tonic dataset so that each sample is ``(frames, target)``.

    Tonic is not needed by PySNN: any dataset (with ``len``) of ``(events,
    target)`` pairs whose events are structured arrays with the fields ``x``,
    ``y``, ``t``, ``p`` works.  The events are binned with
    :func:`~pysnn.datasets.to_frames` (no Tonic transform is needed; a Tonic
    ``transform=`` set on the dataset, e.g. a denoising filter, runs first).

    Parameters
    ----------
    dataset
        A Tonic dataset (``tonic.datasets.NMNIST(...)``) or any sequence of
        ``(events, target)``.
    n_bins, bin_us
        Exactly one: the number of time bins per sample, or their width in µs.
    sensor_size : sequence of int, optional
        ``(width, height)`` or ``(width, height, 2)``; default: the dataset's
        ``sensor_size`` attribute (every Tonic dataset has one).
    polarity, dtype, batch_dim
        See :func:`~pysnn.datasets.to_frames`.

    Returns
    -------
    TonicFrames
        A :class:`torch.utils.data.Dataset` of ``(frames [T, C, H, W], target)``
        (``[T, 1, C, H, W]`` with ``batch_dim``).

    Raises
    ------
    TypeError
        If ``dataset`` has no ``len`` or indexing.
    ValueError
        If ``sensor_size`` is not given and the dataset has none, or an
        option is invalid (as for :func:`~pysnn.datasets.to_frames`).
    """
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise TypeError(f"dataset must support len() and indexing, got {type(dataset).__name__}")
    if sensor_size is None:
        sensor_size = getattr(dataset, "sensor_size", None)
        if sensor_size is None:
            raise ValueError("sensor_size: the dataset has no sensor_size attribute; give one")
    if (n_bins is None) == (bin_us is None):
        raise ValueError("give exactly one of n_bins and bin_us")
    if polarity not in ("split", "merge", "signed"):
        raise ValueError(f"polarity must be 'split', 'merge' or 'signed', got {polarity!r}")
    options = dict(n_bins=n_bins, bin_us=bin_us, polarity=polarity, dtype=dtype)
    options["batch_dim"] = batch_dim
    return TonicFrames(dataset, sensor_size, options)
