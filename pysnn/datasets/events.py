"""Event-camera files: N-MNIST / N-Caltech101 ``.bin`` and Prophesee ``.dat`` (N-CARS).

Events are numpy structured arrays of dtype :data:`EVENT_DTYPE` with the fields

- ``x``, ``y`` (uint16): pixel column and row,
- ``t`` (int64): timestamp in µs,
- ``p`` (uint8): polarity, 1 = ON (brightness increase), 0 = OFF.

All readers and writers are vectorised with numpy (no loop over events).

Every function that takes events also accepts other structured arrays with the
fields ``x``, ``y``, ``t``, ``p`` (in any order, other fields ignored), such as
the samples of `Tonic <https://tonic.readthedocs.io>`_ datasets: integer
coordinates and timestamps of any integer dtype, and a polarity of any integer
or bool dtype, read as ON where ``p > 0`` and OFF otherwise (so 0/1, bool and
-1/1 polarities all work).  :func:`as_events` converts such an array to
:data:`EVENT_DTYPE`.

**N-MNIST / N-Caltech101 ``.bin``** (Orchard et al. 2015): 5 bytes per event, byte 0 = x,
byte 1 = y, then 24 bits big-endian whose top bit is the polarity and whose 23 low bits are the
timestamp in µs.  Timestamps wrap every 2**23 µs (8.39 s); a wrap is stored as a special event
with ``y == 240``, which the reader turns into an offset of 2**23 µs for all later events (and
drops), and which the writer emits for recordings longer than 2**23 µs.

**Prophesee ``.dat``** (N-CARS, ATIS "Event2D"): header lines starting with ``%``, then one byte
event type and one byte event size (8), then per event a little-endian uint32 timestamp (µs)
and a uint32 holding x (bits 0-13), y (bits 14-27) and polarity (bits 28-31) for ``% Version 2``
files; version 1 files use x = bits 0-8, y = bits 9-16, polarity = bit 17.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
from torch.utils.data import Dataset

__all__ = [
    "EVENT_DTYPE",
    "make_events",
    "as_events",
    "read_nmnist_bin",
    "write_nmnist_bin",
    "read_prophesee_dat",
    "write_prophesee_dat",
    "EventFolder",
    "NMNIST",
    "NCaltech101",
    "NCARS",
]

PathLike = Union[str, "os.PathLike[str]"]

#: dtype of an event array
EVENT_DTYPE = np.dtype([("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", "u1")])

_BIN_WRAP = 1 << 23
_BIN_OVERFLOW_Y = 240


def make_events(x, y, t, p) -> np.ndarray:
    """Build an event array from four equally long sequences (x, y, t in µs, polarity 0/1)."""
    arrays = [np.asarray(v) for v in (x, y, t, p)]
    n = arrays[0].shape[0] if arrays[0].ndim else 0
    for name, arr in zip("xytp", arrays):
        if arr.ndim != 1 or arr.shape[0] != n:
            raise ValueError(f"{name} must be 1-d with the length of x ({n}), got {arr.shape}")
        if arr.size and (arr.min() < 0):
            raise ValueError(f"{name} must be >= 0")
    if n and arrays[3].max() > 1:
        raise ValueError("p must hold polarities 0 (OFF) or 1 (ON)")
    events = np.empty(n, dtype=EVENT_DTYPE)
    for name, arr in zip("xytp", arrays):
        events[name] = arr
    return events


def _check_events(events: np.ndarray, name: str = "events") -> np.ndarray:
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise TypeError(f"{name} must be a structured numpy array with fields x, y, t, p")
    missing = [f for f in "xytp" if f not in events.dtype.names]
    if missing:
        raise ValueError(f"{name} lacks the fields {missing}")
    if events.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {events.shape}")
    for field in "xyt":
        if not np.issubdtype(events.dtype[field], np.integer):
            raise TypeError(
                f"{name}: field {field!r} must have an integer dtype, got {events.dtype[field]}"
            )
    kind = events.dtype["p"]
    if not (np.issubdtype(kind, np.integer) or np.issubdtype(kind, np.bool_)):
        raise TypeError(f"{name}: field 'p' must have an integer or bool dtype, got {kind}")
    return events


def _polarity(events: np.ndarray) -> np.ndarray:
    """Polarities as int64 0 (OFF, ``p <= 0``) / 1 (ON, ``p > 0``), for any integer or bool p."""
    return (events["p"] > 0).astype(np.int64)


def as_events(events: np.ndarray) -> np.ndarray:
    """Convert a structured event array (e.g. a Tonic sample) to :data:`EVENT_DTYPE`.

    Parameters
    ----------
    events : numpy.ndarray
        Structured array with the integer fields ``x``, ``y``, ``t`` (µs) and an
        integer or bool polarity ``p`` (ON where ``p > 0``); other fields are dropped.

    Returns
    -------
    numpy.ndarray
        A new array of :data:`EVENT_DTYPE` (``p`` is 0 or 1).

    Raises
    ------
    TypeError
        If ``events`` is not a structured array with integer fields x, y, t, p.
    ValueError
        If a field is missing, or ``x``, ``y`` or ``t`` is negative or ``x``,
        ``y`` exceed 65535.
    """
    events = _check_events(events)
    out = np.empty(events.shape[0], dtype=EVENT_DTYPE)
    for field in "xyt":
        values = events[field]
        if values.size and (values.min() < 0 or (field != "t" and values.max() > 65535)):
            raise ValueError(
                f"events: field {field!r} must lie in the range of {EVENT_DTYPE[field]}"
            )
        out[field] = values
    out["p"] = _polarity(events)
    return out


def _read_bytes(source: Union[PathLike, bytes]) -> tuple[bytes, str]:
    """The content of ``source`` and its name for error messages."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    with open(source, "rb") as fh:
        return fh.read(), os.fspath(source)


_BIN_FORMAT = "an N-MNIST .bin file (5 bytes per event)"
_DAT_FORMAT = "a Prophesee .dat file ('%' header lines, then 2 bytes and 8 bytes per event)"


def _looks_like_dat_header(raw: bytes) -> bool:
    """True when ``raw`` starts with a printable ``%`` text line, as a Prophesee header does."""
    end = raw.find(b"\n", 0, 512)
    line = raw[: end if end >= 0 else min(len(raw), 512)].rstrip(b"\r")
    return len(line) >= 4 and line[:1] == b"%" and all(32 <= c < 127 for c in line)


def _bad_file(name: str, expected: str, offset: int, problem: str) -> ValueError:
    return ValueError(f"{name}: not {expected}: {problem} at byte offset {offset}")


def read_nmnist_bin(source: Union[PathLike, bytes]) -> np.ndarray:
    """Read an N-MNIST / N-Caltech101 ``.bin`` recording.

    Parameters
    ----------
    source : path or bytes
        The file, or its content.

    Returns
    -------
    numpy.ndarray
        Events of dtype :data:`EVENT_DTYPE` in file order, timestamps unwrapped.

    Raises
    ------
    ValueError
        Naming the file, the format and the byte offset: for a Prophesee
        ``.dat`` file (a ``%`` text header) and for a truncated last event.
    """
    raw, name = _read_bytes(source)
    if _looks_like_dat_header(raw):
        raise _bad_file(
            name,
            _BIN_FORMAT,
            0,
            "it starts with a '%' text header, as a Prophesee .dat file does "
            "(read it with read_prophesee_dat)",
        )
    if len(raw) % 5:
        last = len(raw) - len(raw) % 5
        raise _bad_file(
            name,
            _BIN_FORMAT,
            last,
            f"the file of {len(raw)} bytes ends with a truncated event ({len(raw) % 5} of 5 "
            "bytes)",
        )
    b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 5).astype(np.int64)
    x, y = b[:, 0], b[:, 1]
    p = b[:, 2] >> 7
    t = ((b[:, 2] & 0x7F) << 16) | (b[:, 3] << 8) | b[:, 4]
    overflow = y == _BIN_OVERFLOW_Y
    if overflow.any():
        t = t + np.cumsum(overflow) * _BIN_WRAP
        keep = ~overflow
        x, y, t, p = x[keep], y[keep], t[keep], p[keep]
    return make_events(x, y, t, p)


def write_nmnist_bin(path: PathLike, events: np.ndarray) -> None:
    """Write events to an N-MNIST ``.bin`` file (inverse of :func:`read_nmnist_bin`).

    Events must be sorted by time with ``0 <= x, y < 256``, ``y != 240`` (reserved for the
    overflow marker) and ``t >= 0``; timestamps of 2**23 µs or more are stored with overflow
    markers.
    """
    events = _check_events(events)
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    t = events["t"].astype(np.int64)
    p = _polarity(events)
    if events.size:
        if x.max() > 255 or y.max() > 255 or x.min() < 0 or y.min() < 0:
            raise ValueError("x and y must lie in 0..255 for the .bin format")
        if np.any(y == _BIN_OVERFLOW_Y):
            raise ValueError("y == 240 is reserved for timestamp-overflow markers in .bin files")
        if t.min() < 0 or np.any(np.diff(t) < 0):
            raise ValueError("timestamps must be >= 0 and sorted to be written to a .bin file")
        if p.max() > 1:
            raise ValueError("p must hold polarities 0 or 1")
    wraps = t // _BIN_WRAP
    n_markers = np.diff(np.concatenate(([0], wraps)))  # markers to insert before each event
    total = len(t) + int(n_markers.sum())
    out = np.zeros((total, 5), dtype=np.uint8)
    # position of each event after the markers inserted before it
    pos = np.arange(len(t)) + np.cumsum(n_markers)
    marker = np.ones(total, dtype=bool)
    marker[pos] = False
    out[marker, 1] = _BIN_OVERFLOW_Y
    low = t % _BIN_WRAP
    out[pos, 0] = x
    out[pos, 1] = y
    out[pos, 2] = (p << 7) | (low >> 16)
    out[pos, 3] = (low >> 8) & 0xFF
    out[pos, 4] = low & 0xFF
    with open(path, "wb") as fh:
        fh.write(out.tobytes())


def read_prophesee_dat(source: Union[PathLike, bytes]) -> np.ndarray:
    """Read a Prophesee / ATIS ``.dat`` event file (the N-CARS format).

    Parameters
    ----------
    source : path or bytes
        The file, or its content.

    Returns
    -------
    numpy.ndarray
        Events of dtype :data:`EVENT_DTYPE` in file order.

    Raises
    ------
    ValueError
        Naming the file, the format and the byte offset: for a file without
        the ``%`` header (such as an N-MNIST ``.bin`` file), a header line
        without its newline, a header without the event type/size bytes, an
        event size other than 8 and a truncated last event.  A header followed
        by the type/size bytes and no event is an empty recording.
    """
    raw, name = _read_bytes(source)
    if raw[:1] != b"%":
        raise _bad_file(
            name,
            _DAT_FORMAT,
            0,
            f"no '%' header line (first byte {raw[:1]!r}; an N-MNIST .bin file? read it with "
            "read_nmnist_bin)",
        )
    pos = 0
    version = 1
    while pos < len(raw) and raw[pos : pos + 1] == b"%":
        end = raw.find(b"\n", pos)
        if end < 0:
            raise _bad_file(name, _DAT_FORMAT, pos, "a header line without its newline")
        line = raw[pos:end].decode("latin-1").strip("% \r")
        if line.lower().startswith("version"):
            try:
                version = int(line.split()[1])
            except (IndexError, ValueError):
                pass
        pos = end + 1
    if len(raw) - pos < 2:
        raise _bad_file(
            name,
            _DAT_FORMAT,
            pos,
            f"the header ends without the event type and size bytes ({len(raw) - pos} of 2 "
            "bytes)",
        )
    ev_size = raw[pos + 1]
    if ev_size != 8:
        raise _bad_file(name, _DAT_FORMAT, pos + 1, f"event size {ev_size} (expected 8)")
    pos += 2
    if (len(raw) - pos) % 8:
        last = len(raw) - (len(raw) - pos) % 8
        raise _bad_file(
            name,
            _DAT_FORMAT,
            last,
            f"the file of {len(raw)} bytes ends with a truncated event "
            f"({(len(raw) - pos) % 8} of 8 bytes)",
        )
    body = np.frombuffer(raw, dtype="<u4", offset=pos).reshape(-1, 2)
    t = body[:, 0].astype(np.int64)
    data = body[:, 1].astype(np.int64)
    if version >= 2:
        x, y, p = data & 0x3FFF, (data >> 14) & 0x3FFF, (data >> 28) & 0xF
    else:
        x, y, p = data & 0x1FF, (data >> 9) & 0xFF, (data >> 17) & 0x1
    return make_events(x, y, t, np.minimum(p, 1))


def write_prophesee_dat(path: PathLike, events: np.ndarray, version: int = 2) -> None:
    """Write events to a Prophesee ``.dat`` file (inverse of :func:`read_prophesee_dat`)."""
    events = _check_events(events)
    if version not in (1, 2):
        raise ValueError(f"version must be 1 or 2, got {version}")
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    t = events["t"].astype(np.int64)
    p = _polarity(events)
    xmax, ymax = (0x3FFF, 0x3FFF) if version == 2 else (0x1FF, 0xFF)
    if events.size and (x.max() > xmax or y.max() > ymax or t.min() < 0 or t.max() >= 1 << 32):
        raise ValueError(
            f"events do not fit the version-{version} .dat format (x <= {xmax}, y <= {ymax}, "
            f"0 <= t < 2**32 µs)"
        )
    if version == 2:
        data = x | (y << 14) | (p << 28)
    else:
        data = x | (y << 9) | (p << 17)
    body = np.empty((len(t), 2), dtype="<u4")
    body[:, 0] = t
    body[:, 1] = data
    header = (
        "% Data file containing Event2D events.\n" f"% Version {version}\n" "% Written by pysnn\n"
    ).encode("ascii")
    with open(path, "wb") as fh:
        fh.write(header + bytes([0, 8]) + body.tobytes())


class EventFolder(Dataset):
    """Event recordings in class folders: ``root/<class>/<recording>``.

    Parameters
    ----------
    root : str or path-like
        Folder with one subfolder per class (sorted names give the labels 0, 1, ...).
    reader : callable
        Reads one file, e.g. :func:`read_nmnist_bin`.
    extensions : sequence of str
        File name endings to take, e.g. ``(".bin",)``.
    transform : callable, optional
        Applied to the event array (e.g. ``lambda ev: to_frames(ev, (34, 34), 10)``).
    target_transform : callable, optional
        Applied to the int label.
    """

    def __init__(
        self,
        root: PathLike,
        reader: Callable[[PathLike], np.ndarray],
        extensions: Sequence[str],
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"event dataset folder {self.root} does not exist")
        self.reader = reader
        self.transform = transform
        self.target_transform = target_transform
        self.classes = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        exts = tuple(e.lower() for e in extensions)
        self.samples: list[tuple[Path, int]] = []
        for label, name in enumerate(self.classes):
            for f in sorted((self.root / name).iterdir()):
                if f.is_file() and f.name.lower().endswith(exts):
                    self.samples.append((f, label))
        if not self.samples:
            raise FileNotFoundError(f"no {exts} files in the class folders of {self.root}")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        """Return ``(events, label)`` (both transformed when transforms are given)."""
        path, label = self.samples[index]
        events = self.reader(path)
        if self.transform is not None:
            events = self.transform(events)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return events, label


class NMNIST(EventFolder):
    """N-MNIST (Orchard et al. 2015) in its released layout: ``root/Train/<digit>/*.bin`` and
    ``root/Test/<digit>/*.bin`` (the sensor is 34 x 34)."""

    sensor_size = (34, 34)

    def __init__(
        self,
        root: PathLike,
        train: bool = True,
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
    ) -> None:
        root = Path(root)
        split = _find_split(root, "train" if train else "test")
        super().__init__(split, read_nmnist_bin, (".bin",), transform, target_transform)


class NCaltech101(EventFolder):
    """N-Caltech101 (Orchard et al. 2015): ``root/<category>/*.bin`` (sensor up to 240 x 180)."""

    sensor_size = (240, 180)

    def __init__(
        self,
        root: PathLike,
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
    ) -> None:
        super().__init__(root, read_nmnist_bin, (".bin",), transform, target_transform)


class NCARS(EventFolder):
    """N-CARS (Sironi et al. 2018): ``root/train|test/{background,cars}/*.dat`` (sensor 120 x 100,
    samples of 100 ms; label 1 = car)."""

    sensor_size = (120, 100)

    def __init__(
        self,
        root: PathLike,
        train: bool = True,
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
    ) -> None:
        root = Path(root)
        split = _find_split(root, "train" if train else "test")
        super().__init__(split, read_prophesee_dat, (".dat",), transform, target_transform)


def _find_split(root: Path, split: str) -> Path:
    for name in (split, split.capitalize(), split.upper()):
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(f"no {split!r} folder (any capitalisation) under {root}")
