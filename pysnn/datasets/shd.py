r"""The Spiking Heidelberg Digits (SHD) HDF5 files as binned spike tensors.

Cramer, B., Stradmann, Y., Schemmel, J. & Zenke, F. (2022). The Heidelberg
spiking data sets for the systematic evaluation of spiking neural networks.
*IEEE Transactions on Neural Networks and Learning Systems* 33(7), 2744-2757.

SHD holds spoken digits 0-9 in English and German (20 classes) converted into
spikes of 700 channels by a cochlea model: ``shd_train.h5`` (8156 samples) and
``shd_test.h5`` (2264 samples).  PySNN does not download them: get
``shd_train.h5.gz`` and ``shd_test.h5.gz`` from https://zenkelab.org/datasets/
(mirror https://compneuro.net/datasets/), unpack them with ``gunzip`` and give
the path of the ``.h5`` file.

**File layout** (the data sets' page, https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/,
and the readers of Tonic, ``tonic.datasets.SHD``, and of the SpyTorch
tutorials)::

    spikes/times   one variable-length float array per sample: spike times (s)
    spikes/units   one variable-length integer array per sample: channel (0..699)
    labels         the class of each sample (0..19)
    extra/keys     the class names, one per label
    extra/speaker  the speaker of each sample
    extra/meta_info/{gender, age, body_height}   per speaker (not read here)

**Binning.**  A spike at time :math:`t` (converted to ms) of channel :math:`u`
lands in step :math:`\lfloor t / \Delta t \rfloor` and in channel
:math:`\lfloor u / g \rfloor` for channels grouped by ``channel_group``
:math:`= g` (700 / 5 = 140 channels with :math:`g = 5` and
:math:`\Delta t` = 10 ms, as Hammouamri et al. 2023 do).  An entry is the
number of spikes in its bin (the spikes of a channel group add up).  With
``max_time`` :math:`T_{max}` (ms), every sample has
:math:`\lceil T_{max} / \Delta t \rceil` steps and spikes at :math:`t \ge T_{max}`
are dropped; without it a sample lasts until the step of its last spike, and
:meth:`SHD.collate` / :meth:`SHD.batches` pad a batch with empty steps at the
end to its longest sample.  Spikes before 0 (none in SHD) are dropped too;
:attr:`SHD.dropped` counts the dropped spikes.  The times are binned as
stored: SHD's float times are not exact decimals (0.031 s stored as float32
is 30.9999995 ms, step 30 at :math:`\Delta t` = 1 ms).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["SHD", "SHD_CHANNELS", "write_shd"]

PathLike = Union[str, "os.PathLike[str]"]
Tensor = torch.Tensor

#: input channels of the SHD cochlea model
SHD_CHANNELS = 700

_WHERE = (
    "download shd_train.h5.gz / shd_test.h5.gz from https://zenkelab.org/datasets/ "
    "(mirror https://compneuro.net/datasets/) and gunzip them; PySNN does not download data"
)
_KEYS = ("spikes/times", "spikes/units", "labels")


def _h5py() -> Any:
    try:
        import h5py  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError(
            "reading SHD files needs h5py, an optional dependency of PySNN: "
            "pip install h5py (or pip install pysnn[data])"
        ) from exc
    return h5py


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a positive number (ms), got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number (ms), got {value!r}")
    return float(value)


class SHD(Dataset):
    r"""The samples of one SHD file as ``(spikes [T, channels], label)``.

    Parameters
    ----------
    path : str or path-like
        An SHD ``.h5`` file (``shd_train.h5`` or ``shd_test.h5``) or any file
        in its layout (:func:`write_shd`).
    dt : float
        Width of a time bin in ms.
    max_time : float, optional
        Length of every sample in ms (:math:`\lceil` ``max_time / dt``
        :math:`\rceil` steps); spikes at ``max_time`` or later are dropped.
        Default: each sample lasts until the step of its last spike.
    channel_group : int
        Sum the spikes of ``channel_group`` neighbouring channels into one
        (700 channels become :math:`\lceil 700 / g \rceil`; 5 gives 140).
    channels : int
        Channels in the file (700 for SHD).
    dtype : torch.dtype
        Floating dtype of the spike tensors.

    Attributes
    ----------
    labels : Tensor
        ``[samples]`` int64 label of every sample.
    speakers : Tensor or None
        ``[samples]`` int64 speaker of every sample (``extra/speaker``), if the file has them.
    classes : list of str or None
        Class names (``extra/keys``), if the file has them.
    dropped : int
        Spikes dropped so far by ``max_time`` (over every sample read).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (the message says where to get SHD).
    ImportError
        If h5py is not installed (``pip install h5py``).
    ValueError
        For a bad argument (named) or a file without the SHD layout.

    Examples
    --------
    .. code-block:: python

        train = SHD("data/shd_train.h5", dt=10.0, channel_group=5)   # 140 channels
        spikes, label = train[0]                                       # [T, 140], int
        for x, y in train.batches(256, shuffle=True):                  # x: [T, 256, 140]
            out = net.run(x)
    """

    def __init__(
        self,
        path: PathLike,
        dt: float = 10.0,
        max_time: Optional[float] = None,
        channel_group: int = 1,
        channels: int = SHD_CHANNELS,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.dt = _positive("dt", dt)
        self.max_time = None if max_time is None else _positive("max_time", max_time)
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be an int >= 1, got {channels!r}")
        if (
            isinstance(channel_group, bool)
            or not isinstance(channel_group, int)
            or not 1 <= channel_group <= channels
        ):
            raise ValueError(
                f"channel_group must be an int in [1, channels={channels}], got {channel_group!r}"
            )
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch dtype, got {dtype!r}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no SHD file at {self.path}: {_WHERE}")
        h5py = _h5py()
        self.channels = channels
        self.channel_group = channel_group
        self.out_channels = -(-channels // channel_group)
        self.dtype = dtype
        self.dropped = 0
        self._file: Any = None
        with h5py.File(self.path, "r") as f:
            missing = [key for key in _KEYS if key not in f]
            if missing:
                raise ValueError(f"{self.path} is not an SHD file: it has no {', '.join(missing)}")
            self.labels = torch.as_tensor(np.asarray(f["labels"][()], dtype=np.int64))
            sizes = {len(f["spikes/times"]), len(f["spikes/units"]), len(self.labels)}
            if len(sizes) != 1:
                raise ValueError(
                    f"{self.path}: spikes/times, spikes/units and labels differ in length "
                    f"({len(f['spikes/times'])}, {len(f['spikes/units'])}, {len(self.labels)})"
                )
            speaker = f.get("extra/speaker")
            self.speakers = (
                None if speaker is None else torch.as_tensor(np.asarray(speaker, dtype=np.int64))
            )
            keys = f.get("extra/keys")
            self.classes = None if keys is None else [_text(k) for k in keys[()]]

    @property
    def steps(self) -> Optional[int]:
        """Steps of every sample with ``max_time`` (``None``: each sample its own)."""
        if self.max_time is None:
            return None
        return max(1, math.ceil(self.max_time / self.dt - 1e-9))

    def __len__(self) -> int:
        return len(self.labels)

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers open their own file
        state = self.__dict__.copy()
        state["_file"] = None
        return state

    def _spikes(self) -> tuple[Any, Any]:
        if self._file is None:
            self._file = _h5py().File(self.path, "r")
        return self._file["spikes/times"], self._file["spikes/units"]

    def close(self) -> None:
        """Close the HDF5 file (it reopens on the next read)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} samples")
        return int(index) % n

    def _read(self, indices: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The ``(times, units)`` arrays of ``indices`` (one sorted HDF5 read)."""
        times, units = self._spikes()
        order = np.argsort(indices, kind="stable")
        picked = np.asarray(indices, dtype=np.int64)[order]
        unique, inverse = np.unique(picked, return_inverse=True)
        t_all, u_all = times[unique], units[unique]
        out: list[Any] = [None] * len(indices)
        for position, k in zip(order, inverse):
            out[position] = (t_all[k], u_all[k])
        return out

    def _bin(self, samples: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, list[int]]:
        """Bin samples: ``(flat index into [B, T, C], per-sample steps)`` with ``T`` the longest."""
        columns, lengths = [], []
        for t, u in samples:
            t_ms = np.asarray(t, dtype=np.float64) * 1000.0
            u = np.asarray(u, dtype=np.int64)
            if t_ms.shape != u.shape or t_ms.ndim != 1:
                raise ValueError(f"{self.path}: a sample's times and units differ in shape")
            if u.size and (u.min() < 0 or u.max() >= self.channels):
                raise ValueError(
                    f"{self.path}: a spike's unit lies outside [0, {self.channels}) "
                    f"(got {u.min()}..{u.max()}); set channels="
                )
            if self.max_time is not None:
                keep = (t_ms >= 0) & (t_ms < self.max_time)
                self.dropped += int(keep.size - keep.sum())
                t_ms, u = t_ms[keep], u[keep]
                steps = self.steps
            else:
                keep = t_ms >= 0
                self.dropped += int(keep.size - keep.sum())
                t_ms, u = t_ms[keep], u[keep]
                steps = int(np.floor(t_ms.max() / self.dt)) + 1 if t_ms.size else 1
            step = np.minimum(np.floor(t_ms / self.dt).astype(np.int64), steps - 1)
            columns.append((step, u // self.channel_group))
            lengths.append(int(steps))
        longest = max(lengths)
        flat = [
            (b * longest + step) * self.out_channels + channel
            for b, (step, channel) in enumerate(columns)
        ]
        return np.concatenate(flat) if flat else np.zeros(0, np.int64), lengths

    def _dense(self, flat: np.ndarray, batch: int, steps: int) -> Tensor:
        counts = np.bincount(flat, minlength=batch * steps * self.out_channels)
        return torch.from_numpy(counts).to(self.dtype).view(batch, steps, self.out_channels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        """``(spikes [T, channels], label)`` of sample ``index``."""
        i = self._index(index)
        flat, (steps,) = self._bin(self._read([i]))
        return self._dense(flat, 1, steps)[0], int(self.labels[i])

    @staticmethod
    def collate(batch: Sequence[tuple[Tensor, int]]) -> tuple[Tensor, Tensor]:
        """A :class:`~torch.utils.data.DataLoader` ``collate_fn``: ``(spikes [T, B, C], labels [B])``.

        Samples of different lengths are padded with empty steps at the end.
        """
        if not batch:
            raise ValueError("batch must hold at least one sample")
        longest = max(x.shape[0] for x, _ in batch)
        out = batch[0][0].new_zeros(longest, len(batch), batch[0][0].shape[1])
        for b, (x, _) in enumerate(batch):
            out[: x.shape[0], b] = x
        return out, torch.tensor([int(label) for _, label in batch], dtype=torch.int64)

    def batch(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        """The samples ``indices`` as ``(spikes [T, B, C], labels [B])``, time first.

        One HDF5 read and one ``bincount`` for the whole batch; ``T`` is
        ``max_time / dt`` or the longest sample's (shorter ones padded with
        empty steps at the end).
        """
        picked = [self._index(i) for i in indices]
        if not picked:
            raise ValueError("indices must hold at least one sample")
        flat, lengths = self._bin(self._read(picked))
        steps = max(lengths)
        dense = self._dense(flat, len(picked), steps).transpose(0, 1)
        return dense, self.labels[picked]

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        generator: Optional[torch.Generator] = None,
        drop_last: bool = False,
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Iterate over the file in batches ``(spikes [T, B, C], labels [B])`` (see :meth:`batch`).

        Parameters
        ----------
        batch_size : int
            Samples per batch (the last one may be smaller unless ``drop_last``).
        shuffle : bool
            A new random order (from ``generator``) at every call.
        generator : torch.Generator, optional
            Source of the order when shuffling.
        drop_last : bool
            Skip a last, smaller batch.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            pick = order[start : start + batch_size]
            if drop_last and len(pick) < batch_size:
                return
            yield self.batch(pick.tolist())


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def write_shd(
    path: PathLike,
    times: Sequence[Any],
    units: Sequence[Any],
    labels: Sequence[int],
    speakers: Optional[Sequence[int]] = None,
    keys: Optional[Sequence[str]] = None,
) -> None:
    """Write spikes in the SHD file layout (for tests and generated data; see the module docstring).

    Parameters
    ----------
    path : str or path-like
        The ``.h5`` file to write (overwritten).
    times : sequence of array-like
        Spike times in seconds, one array per sample (stored as float32).
    units : sequence of array-like
        Channels of the spikes, one array per sample, same lengths (uint16).
    labels : sequence of int
        Label of each sample (uint8).
    speakers : sequence of int, optional
        Speaker of each sample (``extra/speaker``).
    keys : sequence of str, optional
        Class names (``extra/keys``).

    Raises
    ------
    ValueError
        If the lengths differ, a sample's times and units differ in length, or
        a unit or label is out of its dtype's range.
    """
    h5py = _h5py()
    n = len(labels)
    if len(times) != n or len(units) != n:
        raise ValueError(
            f"times, units and labels must have one entry per sample, got lengths "
            f"{len(times)}, {len(units)}, {n}"
        )
    if speakers is not None and len(speakers) != n:
        raise ValueError(f"speakers must have {n} entries, got {len(speakers)}")
    t_arrays = [np.asarray(t, dtype=np.float32).reshape(-1) for t in times]
    u_arrays = [np.asarray(u).reshape(-1) for u in units]
    for k, (t, u) in enumerate(zip(t_arrays, u_arrays)):
        if t.shape != u.shape:
            raise ValueError(f"sample {k}: {t.size} times but {u.size} units")
        if u.size and (u.min() < 0 or u.max() > np.iinfo(np.uint16).max):
            raise ValueError(f"units: sample {k} has a unit outside the uint16 range")
    label = np.asarray(labels, dtype=np.int64)
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError("labels must lie in 0..255 (uint8)")
    with h5py.File(path, "w") as f:
        spikes = f.create_group("spikes")
        times_ds = spikes.create_dataset("times", (n,), dtype=h5py.vlen_dtype(np.float32))
        units_ds = spikes.create_dataset("units", (n,), dtype=h5py.vlen_dtype(np.uint16))
        for k in range(n):
            times_ds[k] = t_arrays[k]
            units_ds[k] = u_arrays[k].astype(np.uint16)
        f.create_dataset("labels", data=label.astype(np.uint8))
        extra = f.create_group("extra")
        if speakers is not None:
            extra.create_dataset("speaker", data=np.asarray(speakers, dtype=np.uint16))
        if keys is not None:
            extra.create_dataset("keys", data=[str(k).encode("utf-8") for k in keys])
