"""Transforms of event streams (arrays of :data:`~pysnn.datasets.events.EVENT_DTYPE`).

- :func:`to_frames`: bin events in time into a ``[T, C, H, W]`` torch tensor of counts;
- :func:`split_polarity`: the ON and OFF events apart;
- :func:`denoise`: drop events without a neighbouring event shortly before (a background
  activity filter);
- :func:`crop` and :func:`time_window`: spatial and temporal cropping;
- :func:`image_to_events`: an N-MNIST-like recording of a static image, simulated with the
  three saccades of the N-MNIST recording set-up.

The transforms accept any structured array with the fields ``x``, ``y``, ``t``, ``p``, also
`Tonic <https://tonic.readthedocs.io>`_'s samples (polarity ON where ``p > 0``), and the
filtering ones return events of the input's dtype.  Everything is vectorised with numpy; sensor sizes are given as ``(width, height)`` like the
event coordinates ``(x, y)``, and frames are laid out ``(..., H, W)`` = ``(..., y, x)``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from pysnn.datasets.events import EVENT_DTYPE, _check_events, _polarity, make_events

__all__ = [
    "to_frames",
    "split_polarity",
    "denoise",
    "crop",
    "time_window",
    "image_to_events",
]


def _check_size(sensor_size: Sequence[int]) -> tuple[int, int]:
    # Tonic states sensors as (width, height, polarities): the third entry is ignored
    if isinstance(sensor_size, np.ndarray):
        sensor_size = tuple(sensor_size.tolist())
    if (
        not isinstance(sensor_size, (tuple, list))
        or len(sensor_size) not in (2, 3)
        or any(
            isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0
            for v in sensor_size
        )
    ):
        raise ValueError(
            "sensor_size must be (width, height) or Tonic's (width, height, polarities) "
            f"of positive ints, got {sensor_size!r}"
        )
    return int(sensor_size[0]), int(sensor_size[1])


def to_frames(
    events: np.ndarray,
    sensor_size: Sequence[int],
    n_bins: Optional[int] = None,
    bin_us: Optional[float] = None,
    t_start: Optional[int] = None,
    t_end: Optional[int] = None,
    polarity: str = "split",
    dtype: torch.dtype = torch.float32,
    device: Optional[torch.device] = None,
    batch_dim: bool = False,
) -> torch.Tensor:
    """Count events in time bins and pixels.

    Axis order: ``sensor_size`` is given as ``(width, height)``, the order in
    which event cameras and Tonic state a sensor (x runs along the width), and
    the frames come out as ``[T, C, H, W]``, PyTorch's image layout with time
    first, so that ``frames[t]`` is one step's input to a ``Conv2d``.
    ``batch_dim=True`` adds a batch axis of 1, ``[T, 1, C, H, W]``, ready for
    :meth:`SNNNetwork.run <pysnn.network.SNNNetwork.run>`.

    Parameters
    ----------
    events : numpy.ndarray
        Events (x, y, t in µs, p).
    sensor_size : (int, int)
        ``(width, height)`` (or Tonic's ``(width, height, 2)``); events outside are dropped.
    n_bins : int, optional
        Number of equal time bins between ``t_start`` and ``t_end``.
    bin_us : float, optional
        Bin width in µs instead of ``n_bins`` (``T = ceil((t_end - t_start) / bin_us)``).
    t_start, t_end : int, optional
        Time span in µs (default: first event, last event + 1).
    polarity : {"split", "merge", "signed"}
        ``"split"``: 2 channels, OFF (channel 0) and ON (channel 1); ``"merge"``: 1 channel of
        all events; ``"signed"``: 1 channel of ON minus OFF counts.
    dtype, device
        Of the returned tensor.
    batch_dim : bool
        Return ``[T, 1, C, H, W]`` (one sample) instead of ``[T, C, H, W]``.

    Returns
    -------
    torch.Tensor
        Shape ``[T, C, H, W]`` (``[T, 1, C, H, W]`` with ``batch_dim``), ``C = 2``
        for ``"split"`` and 1 otherwise.
    """
    events = _check_events(events)
    width, height = _check_size(sensor_size)
    if not isinstance(batch_dim, bool):
        raise TypeError(f"batch_dim must be a bool, got {type(batch_dim).__name__}")
    if polarity not in ("split", "merge", "signed"):
        raise ValueError(f"polarity must be 'split', 'merge' or 'signed', got {polarity!r}")
    if (n_bins is None) == (bin_us is None):
        raise ValueError("give exactly one of n_bins and bin_us")
    t = events["t"].astype(np.int64)
    if t_start is None:
        t_start = int(t.min()) if t.size else 0
    if t_end is None:
        t_end = int(t.max()) + 1 if t.size else t_start + 1
    if t_end <= t_start:
        raise ValueError(f"t_end ({t_end}) must be > t_start ({t_start})")
    span = t_end - t_start
    if n_bins is not None:
        if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
            raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")
        n = int(n_bins)
        idx_t = (t - t_start) * n // span
    else:
        if not bin_us > 0:
            raise ValueError(f"bin_us must be > 0, got {bin_us}")
        n = int(np.ceil(span / bin_us))
        idx_t = np.floor((t - t_start) / bin_us).astype(np.int64)
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    p = _polarity(events)
    keep = (t >= t_start) & (t < t_end) & (x >= 0) & (y >= 0) & (x < width) & (y < height)
    keep &= idx_t < n
    x, y, p, idx_t = x[keep], y[keep], p[keep], idx_t[keep]
    channels = 2 if polarity == "split" else 1
    c = p if polarity == "split" else np.zeros_like(p)
    flat = ((idx_t * channels + c) * height + y) * width + x
    size = n * channels * height * width
    if polarity == "signed":
        counts = np.bincount(flat, weights=np.where(p > 0, 1.0, -1.0), minlength=size)
    else:
        counts = np.bincount(flat, minlength=size)
    frames = torch.from_numpy(counts.reshape(n, channels, height, width))
    if batch_dim:
        frames = frames.unsqueeze(1)
    return frames.to(dtype=dtype, device=device)


def split_polarity(events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(off_events, on_events)``."""
    events = _check_events(events)
    on = events["p"] > 0
    return events[~on], events[on]


def crop(
    events: np.ndarray,
    x0: int,
    y0: int,
    width: int,
    height: int,
    shift: bool = True,
) -> np.ndarray:
    """Keep the events with ``x0 <= x < x0 + width`` and ``y0 <= y < y0 + height``.

    With ``shift`` the coordinates are made relative to ``(x0, y0)``.
    """
    events = _check_events(events)
    for name, v in (("x0", x0), ("y0", y0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be an int >= 0, got {v!r}")
    _check_size((width, height))
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    keep = (x >= x0) & (x < x0 + width) & (y >= y0) & (y < y0 + height)
    out = events[keep].copy()
    if shift:
        out["x"] -= x0
        out["y"] -= y0
    return out


def time_window(events: np.ndarray, t_start: int, t_end: int, shift: bool = False) -> np.ndarray:
    """Keep the events with ``t_start <= t < t_end`` (µs); with ``shift`` times start at 0."""
    events = _check_events(events)
    if t_end <= t_start:
        raise ValueError(f"t_end ({t_end}) must be > t_start ({t_start})")
    keep = (events["t"] >= t_start) & (events["t"] < t_end)
    out = events[keep].copy()
    if shift:
        out["t"] -= t_start
    return out


def denoise(events: np.ndarray, time_window_us: float, causal: bool = True) -> np.ndarray:
    """Background-activity filter: drop events with no neighbour close in time.

    An event at ``(x, y, t)`` is kept when another event occurred at one of its 8 neighbouring
    pixels with a timestamp in ``[t - time_window_us, t]`` (with ``causal=False`` also
    ``[t, t + time_window_us]``).  Events at the same pixel do not count: hot pixels firing on
    their own are removed.

    Returns
    -------
    numpy.ndarray
        The kept events, in their original order.
    """
    events = _check_events(events)
    if not time_window_us >= 0:
        raise ValueError(f"time_window_us must be >= 0, got {time_window_us}")
    if events.size == 0:
        return events.copy()
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    t = events["t"].astype(np.int64)
    t0 = t - t.min()
    span = int(t0.max()) + 1
    width = int(x.max()) + 3  # padded so that x - 1 and x + 1 stay distinct pixels
    pixel = (y + 1) * width + (x + 1)
    key = pixel * span + t0
    sorted_key = np.sort(key)
    kept = np.zeros(len(t), dtype=bool)
    window = int(np.floor(time_window_us))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dx == 0 and dy == 0:
                continue
            base = (pixel + dy * width + dx) * span
            # latest neighbour event with time <= t
            i = np.searchsorted(sorted_key, base + t0, side="right") - 1
            valid = i >= 0
            k = sorted_key[np.clip(i, 0, None)]
            kept |= valid & (k >= base) & (base + t0 - k <= window)
            if not causal:
                j = np.searchsorted(sorted_key, base + t0, side="left")
                valid = j < len(sorted_key)
                k = sorted_key[np.clip(j, None, len(sorted_key) - 1)]
                kept |= valid & (k < base + span) & (k - base - t0 <= window)
    return events[kept].copy()


def _shift_image(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Bilinear shift of a 2-d image by (dx, dy) pixels, zero outside."""
    h, w = img.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    sx, sy = xs - dx, ys - dy
    x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
    fx, fy = sx - x0, sy - y0
    padded = np.pad(img, 1)

    def at(yy, xx):
        return padded[np.clip(yy + 1, 0, h + 1), np.clip(xx + 1, 0, w + 1)]

    return (
        at(y0, x0) * (1 - fx) * (1 - fy)
        + at(y0, x0 + 1) * fx * (1 - fy)
        + at(y0 + 1, x0) * (1 - fx) * fy
        + at(y0 + 1, x0 + 1) * fx * fy
    )


def image_to_events(
    image,
    sensor_size: Sequence[int] = (34, 34),
    seed: Optional[int] = 0,
    saccade_us: int = 100_000,
    amplitude: float = 3.0,
    threshold: float = 0.6,
    threshold_sigma: float = 0.1,
    step_us: int = 1_000,
    eps: float = 0.02,
) -> np.ndarray:
    r"""Simulate an N-MNIST-like recording of a static image (three saccades).

    N-MNIST was recorded by moving an ATIS camera in front of a still MNIST digit along three
    saccades that trace a triangle (about 100 ms each).  Here the image, centred on a
    ``sensor_size`` canvas and scaled to ``[0, 1]``, is shifted along the triangle
    ``(0, 0) -> (A, A) -> (2A, 0) -> (0, 0)`` in pixels (``A = amplitude``), sampled every
    ``step_us``, with bilinear interpolation.  Each pixel is a DVS pixel: it keeps a reference
    log intensity :math:`L_{ref}` and when :math:`|L - L_{ref}| \geq C` it emits
    :math:`\lfloor |L - L_{ref}| / C \rfloor` events of polarity ON (increase) or OFF and moves
    :math:`L_{ref}` by as many thresholds; :math:`L = \ln(I + \epsilon)`.  The per-pixel
    threshold :math:`C` is drawn once from :math:`\mathcal{N}(\text{threshold},
    \text{threshold\_sigma}^2)` and events get a uniform random time within their sampling
    step, so the output is random but deterministic for a given ``seed``.

    Parameters
    ----------
    image : array-like or torch.Tensor
        2-d image ``(H, W)``; uint8 (0..255) or floats in [0, 1].
    sensor_size : (int, int)
        ``(width, height)`` of the simulated sensor (N-MNIST: 34 x 34).
    seed : int, optional
        Seed of the random threshold mismatch and timing jitter.
    saccade_us : int
        Duration of one saccade in µs.
    amplitude : float
        Saccade amplitude in pixels.
    threshold, threshold_sigma : float
        Contrast threshold (log units) and its pixel-to-pixel standard deviation.  The
        defaults give about 4,500 events per MNIST digit (real N-MNIST samples hold about
        4,000-5,000).
    step_us : int
        Sampling step of the motion in µs.
    eps : float
        Offset of the log intensity (dark level).

    Returns
    -------
    numpy.ndarray
        Events of dtype :data:`EVENT_DTYPE`, sorted by time, ``t`` in ``[0, 3 * saccade_us)``.
    """
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[0] == 1:
        img = img[0]
    if img.ndim != 2:
        raise ValueError(f"image must be 2-d (H, W), got shape {img.shape}")
    img = img.astype(np.float64)
    if np.asarray(image).dtype == np.uint8 or img.max() > 1.0:
        img = img / 255.0
    if img.min() < 0 or img.max() > 1:
        raise ValueError("image must hold intensities in [0, 1] (floats) or 0..255 (uint8)")
    width, height = _check_size(sensor_size)
    h, w = img.shape
    if h > height or w > width:
        raise ValueError(f"image of shape {img.shape} does not fit the sensor {sensor_size}")
    if not threshold > 0 or threshold_sigma < 0 or not amplitude >= 0 or eps <= 0:
        raise ValueError("threshold and eps must be > 0, threshold_sigma and amplitude >= 0")
    if step_us < 1 or saccade_us < step_us:
        raise ValueError("need 1 <= step_us <= saccade_us")
    rng = np.random.default_rng(seed)
    canvas = np.zeros((height, width))
    oy, ox = (height - h) // 2, (width - w) // 2
    canvas[oy : oy + h, ox : ox + w] = img
    # centre the motion on the sensor: the triangle spans [0, 2A] x [0, A]
    canvas = _shift_image(canvas, -amplitude, -amplitude / 2)
    c = np.maximum(rng.normal(threshold, threshold_sigma, size=canvas.shape), threshold * 0.1)
    vertices = np.array([[0.0, 0.0], [amplitude, amplitude], [2 * amplitude, 0.0], [0.0, 0.0]])
    steps = saccade_us // step_us
    l_ref = np.log(canvas + eps)
    xs, ys, ts, ps = [], [], [], []
    yy, xx = np.mgrid[0:height, 0:width]
    for s in range(3):
        for k in range(1, steps + 1):
            frac = k / steps
            dx, dy = vertices[s] + frac * (vertices[s + 1] - vertices[s])
            level = np.log(_shift_image(canvas, dx, dy) + eps)
            diff = level - l_ref
            n = np.floor(np.abs(diff) / c).astype(np.int64)
            if not n.any():
                continue
            l_ref = l_ref + np.sign(diff) * n * c
            mask = n > 0
            counts = n[mask]
            t_step = (s * steps + k - 1) * step_us
            xs.append(np.repeat(xx[mask], counts))
            ys.append(np.repeat(yy[mask], counts))
            ps.append(np.repeat((diff[mask] > 0).astype(np.int64), counts))
            ts.append(t_step + rng.integers(0, step_us, size=int(counts.sum())))
    if not xs:
        return np.empty(0, dtype=EVENT_DTYPE)
    events = make_events(
        np.concatenate(xs), np.concatenate(ys), np.concatenate(ts), np.concatenate(ps)
    )
    return events[np.argsort(events["t"], kind="stable")]
