r"""An event-camera simulator and moving stimuli (textures, edges) in 8 directions.

:func:`intensity_to_events` turns a sequence of intensity frames into DVS
events as ESIM (Rebecq et al. 2018) and v2e (Hu et al. 2021) do: every pixel
keeps a reference log intensity :math:`L_{ref}` (its value at the pixel's last
event) and emits an event of polarity :math:`\pm 1` each time

.. math:: |\log(I + \epsilon) - L_{ref}| \ge C,

moving :math:`L_{ref}` by :math:`\pm C` per event.  Between two frames the log
intensity is interpolated linearly in time, so a change of
:math:`\Delta L` gives :math:`\lfloor |\Delta L| / C \rfloor` events at the
times the interpolated :math:`L` crosses the levels :math:`L_{ref} \pm kC`.

:func:`moving_texture` and :func:`moving_edge` render a periodic random texture
or a straight edge translating with sub-pixel shifts (bilinear interpolation)
in a direction :math:`\theta` at a speed :math:`v` (pixels/ms);
:func:`moving_events` converts one stimulus to events.  The events have the
library's format (:data:`~pysnn.datasets.events.EVENT_DTYPE`: ``x``, ``y``,
``t`` in µs, ``p`` = 1 for ON, 0 for OFF); :func:`~pysnn.datasets.to_frames`
bins them into ``[T, 2, H, W]`` frames.

Directions: :math:`\theta = 0` is motion to the right (+x), :math:`90°` upwards
(-y, rows count downwards), the velocity in pixel coordinates is
:math:`(v_x, v_y) = v\,(\cos\theta, -\sin\theta)`.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from pysnn.datasets.events import EVENT_DTYPE

__all__ = [
    "intensity_to_events",
    "random_texture",
    "moving_texture",
    "moving_edge",
    "moving_events",
    "direction_velocity",
]


def _positive(name: str, value: float, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        what = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {what}, got {value}")
    return value


def _size(size: Sequence[int] | int) -> tuple[int, int]:
    """``(height, width)`` from an int or a pair; ValueError naming ``size``."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size)
        or min(size) < 1
    ):
        raise ValueError(f"size must be a positive int or (height, width) of ints, got {size!r}")
    return int(size[0]), int(size[1])


def direction_velocity(direction_deg: float, speed: float) -> tuple[float, float]:
    r"""Velocity ``(v_x, v_y)`` in pixels/ms of motion at ``direction_deg`` and ``speed``.

    .. math:: (v_x, v_y) = v\,(\cos\theta, -\sin\theta)

    (:math:`\theta = 90°` is upwards: image rows count downwards).
    """
    theta = math.radians(float(direction_deg))
    return speed * math.cos(theta), -speed * math.sin(theta)


def intensity_to_events(
    frames: np.ndarray,
    times_us: np.ndarray,
    threshold: float = 0.2,
    *,
    threshold_off: Optional[float] = None,
    refractory_us: float = 0.0,
    eps: float = 1e-3,
) -> np.ndarray:
    r"""Events of a pixel array seeing the intensity ``frames`` (ESIM/v2e contrast model).

    Each pixel starts with :math:`L_{ref} = \log(I_0 + \epsilon)`.  Between
    frames :math:`k-1` and :math:`k` the log intensity moves linearly from
    :math:`L_{k-1}` to :math:`L_k`; each crossing of :math:`L_{ref} + C_{on}`
    (:math:`L_{ref} - C_{off}`) emits an ON (OFF) event at the interpolated time

    .. math:: t = t_{k-1} + (t_k - t_{k-1})\,
              \frac{L_{ref} \pm C - L_{k-1}}{L_k - L_{k-1}}

    (rounded to the µs) and moves :math:`L_{ref}` to the crossed level.  So a
    monotonic change :math:`\Delta L` emits :math:`\lfloor \Delta L / C \rfloor`
    events.  With a refractory period :math:`t_r` a pixel emits no event
    within :math:`t_r` of its previous one: the crossings it misses do not move
    :math:`L_{ref}`, so the change stays pending (as in v2e): a level that
    :math:`L` had already passed at frame :math:`k-1` fires at :math:`t_{k-1}`
    once the pixel is out of its refractory period.

    Parameters
    ----------
    frames : numpy.ndarray
        ``(T, H, W)`` intensities :math:`I \ge 0` (linear, not log), ``T >= 2``.
    times_us : numpy.ndarray
        ``(T,)`` frame times in µs, strictly increasing.
    threshold : float
        Contrast threshold :math:`C_{on}` (log units, > 0), and :math:`C_{off}`
        unless ``threshold_off`` is given.
    threshold_off : float, optional
        :math:`C_{off}` (> 0).
    refractory_us : float
        Refractory period :math:`t_r` in µs (>= 0).
    eps : float
        :math:`\epsilon \ge 0` added before the log (must keep :math:`I + \epsilon > 0`).

    Returns
    -------
    numpy.ndarray
        Events of dtype :data:`~pysnn.datasets.events.EVENT_DTYPE` sorted by
        time (ties: by pixel, row-major), ``p`` = 1 (ON) or 0 (OFF).
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 3 or frames.shape[0] < 2:
        raise ValueError(f"frames must have shape (T >= 2, H, W), got {frames.shape}")
    if not np.isfinite(frames).all() or (frames < 0).any():
        raise ValueError("frames must hold finite intensities >= 0")
    times = np.asarray(times_us, dtype=np.float64)
    if times.shape != (frames.shape[0],):
        raise ValueError(
            f"times_us must have shape ({frames.shape[0]},) (one time per frame), got {times.shape}"
        )
    if not np.isfinite(times).all() or (np.diff(times) <= 0).any():
        raise ValueError("times_us must be finite and strictly increasing")
    c_on = _positive("threshold", threshold)
    c_off = c_on if threshold_off is None else _positive("threshold_off", threshold_off)
    refractory = _positive("refractory_us", refractory_us, allow_zero=True)
    eps = _positive("eps", eps, allow_zero=True)
    if (frames + eps <= 0).any():
        raise ValueError("eps must keep frames + eps > 0 (log of zero intensity); use eps > 0")
    logs = np.log(frames.reshape(frames.shape[0], -1) + eps)
    width = frames.shape[2]
    ref = logs[0].copy()
    last = np.full(ref.shape, -np.inf)
    chunks: list[tuple[np.ndarray, ...]] = []
    for k in range(1, logs.shape[0]):
        prev, cur = logs[k - 1], logs[k]
        t0, span = times[k - 1], times[k] - times[k - 1]
        slope = cur - prev
        for sign, c in ((1.0, c_on), (-1.0, c_off)):
            delta = sign * (cur - ref)
            # 1e-9: a change of exactly n C (up to rounding) gives n events
            count = np.floor(delta / c + 1e-9).astype(np.int64)
            count[count < 0] = 0
            pixels = np.flatnonzero(count)
            if pixels.size == 0:
                continue
            n = count[pixels]
            owner = np.repeat(pixels, n)
            level = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + 1  # 1..n per pixel
            crossing = ref[owner] + sign * c * level
            # fraction of the interval where L crosses the level; a level already passed
            # at t_{k-1} (pending after a refractory period) fires at t_{k-1}
            rise = slope[owner]
            safe = np.where(rise == 0, 1.0, rise)
            frac = np.where(rise == 0, 0.0, (crossing - prev[owner]) / safe)
            t = t0 + span * np.clip(frac, 0.0, 1.0)
            if refractory > 0:
                keep = _refractory_keep(owner, t, last, refractory)
                owner, t = owner[keep], t[keep]
                ref += sign * c * np.bincount(owner, minlength=ref.size)
            else:
                ref[pixels] += sign * c * n
            if owner.size:
                np.maximum.at(last, owner, t)
                chunks.append((owner, t, np.full(owner.size, sign > 0)))
    if not chunks:
        return np.empty(0, dtype=EVENT_DTYPE)
    owner = np.concatenate([c[0] for c in chunks])
    t = np.rint(np.concatenate([c[1] for c in chunks])).astype(np.int64)
    on = np.concatenate([c[2] for c in chunks])
    order = np.lexsort((owner, t))
    events = np.empty(owner.size, dtype=EVENT_DTYPE)
    events["x"] = (owner % width)[order]
    events["y"] = (owner // width)[order]
    events["t"] = t[order]
    events["p"] = on[order]
    return events


def _refractory_keep(owner: np.ndarray, t: np.ndarray, last: np.ndarray, tr: float) -> np.ndarray:
    """Which crossings (grouped by pixel, increasing in time) a refractory pixel emits."""
    keep = np.zeros(owner.size, dtype=bool)
    bounds = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1], True])
    for start, stop in zip(bounds[:-1], bounds[1:]):  # few crossings per pixel and frame
        previous = last[owner[start]]
        for i in range(start, stop):
            if t[i] >= previous + tr:
                keep[i] = True
                previous = t[i]
    return keep


def random_texture(
    size: Sequence[int] | int = 64,
    scale: float = 3.0,
    contrast: float = 0.8,
    seed: Optional[int] = None,
) -> np.ndarray:
    r"""A periodic random texture (low-pass filtered white noise) in ``(0, 1]``.

    White noise filtered in the Fourier domain by a Gaussian of standard
    deviation ``scale`` pixels, rescaled to
    :math:`[\tfrac{1 - c}{2}, \tfrac{1 + c}{2}]` with :math:`c` = ``contrast``
    (periodic, so it tiles seamlessly when translated).  Returns ``(H, W)``.
    """
    height, width = _size(size)
    scale = _positive("scale", scale)
    contrast = _positive("contrast", contrast)
    if contrast > 1:
        raise ValueError(f"contrast must be in (0, 1], got {contrast}")
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((height, width))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    gain = np.exp(-2 * (math.pi * scale) ** 2 * (fx**2 + fy**2))
    smooth = np.real(np.fft.ifft2(np.fft.fft2(noise) * gain))
    low, high = smooth.min(), smooth.max()
    unit = (smooth - low) / (high - low) if high > low else np.zeros_like(smooth)
    return (1 - contrast) / 2 + contrast * unit


def _check_motion(direction_deg: float, speed: float, duration_ms: float, dt_ms: float):
    if isinstance(direction_deg, bool) or not isinstance(
        direction_deg, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"direction_deg must be a number, got {type(direction_deg).__name__}")
    speed = _positive("speed", speed)
    duration_ms = _positive("duration_ms", duration_ms)
    dt_ms = _positive("dt_ms", dt_ms)
    steps = int(round(duration_ms / dt_ms))
    if steps < 1:
        raise ValueError(f"duration_ms ({duration_ms}) must span at least one dt_ms ({dt_ms})")
    return speed, np.arange(steps + 1) * dt_ms


def moving_texture(
    texture: np.ndarray,
    direction_deg: float,
    speed: float,
    size: Sequence[int] | int = 32,
    duration_ms: float = 100.0,
    dt_ms: float = 1.0,
    offset: Sequence[float] = (0.0, 0.0),
) -> np.ndarray:
    r"""Frames ``(T + 1, H, W)`` of a periodic texture translating at a constant velocity.

    .. math:: I(x, y, t) = P(x - v_x t + o_x,\; y - v_y t + o_y)

    sampled bilinearly (sub-pixel shifts) with wrap-around, at
    :math:`t = 0, \Delta t, \dots, T \Delta t` (``T = duration_ms / dt_ms``).
    """
    texture = np.asarray(texture, dtype=np.float64)
    if texture.ndim != 2 or not np.isfinite(texture).all():
        raise ValueError(f"texture must be a finite (H, W) array, got shape {texture.shape}")
    height, width = _size(size)
    speed, t = _check_motion(direction_deg, speed, duration_ms, dt_ms)
    vx, vy = direction_velocity(direction_deg, speed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    px = xs[None] - vx * t[:, None, None] + float(offset[0])
    py = ys[None] - vy * t[:, None, None] + float(offset[1])
    return _bilinear_wrap(texture, px, py)


def _bilinear_wrap(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = image.shape
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = x0.astype(np.int64) % w, y0.astype(np.int64) % h
    x1, y1 = (x0 + 1) % w, (y0 + 1) % h
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def moving_edge(
    direction_deg: float,
    speed: float,
    size: Sequence[int] | int = 32,
    duration_ms: float = 100.0,
    dt_ms: float = 1.0,
    low: float = 0.2,
    high: float = 1.0,
    start: Optional[float] = None,
) -> np.ndarray:
    r"""Frames ``(T + 1, H, W)`` of a straight edge, perpendicular to its motion, sweeping across.

    With :math:`n = (\cos\theta, -\sin\theta)` and :math:`s = n \cdot (p - p_c)`
    the signed distance of pixel :math:`p` from the centre :math:`p_c` along
    the motion, the edge is at :math:`s = s_0 + v t`; pixels behind it
    (:math:`s < s_0 + vt`) are bright (``high``), those ahead dark (``low``),
    with a one-pixel linear ramp (anti-aliased, sub-pixel position).  ``start``
    :math:`s_0` defaults to minus half the sensor diagonal (the edge enters
    from outside).  A dark-to-bright sweep: mostly ON events.
    """
    height, width = _size(size)
    speed, t = _check_motion(direction_deg, speed, duration_ms, dt_ms)
    low, high = _positive("low", low), _positive("high", high)
    theta = math.radians(float(direction_deg))
    nx, ny = math.cos(theta), -math.sin(theta)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    s = (xs - (width - 1) / 2) * nx + (ys - (height - 1) / 2) * ny
    s0 = -0.5 * math.hypot(height, width) if start is None else float(start)
    front = s0 + speed * t
    behind = np.clip(front[:, None, None] - s[None] + 0.5, 0.0, 1.0)
    return low + (high - low) * behind


def moving_events(
    frames: np.ndarray,
    dt_ms: float = 1.0,
    threshold: float = 0.15,
    refractory_us: float = 0.0,
    t0_us: int = 0,
) -> np.ndarray:
    """Events of frames rendered every ``dt_ms`` (:func:`intensity_to_events`, times from ``t0_us``)."""
    dt_ms = _positive("dt_ms", dt_ms)
    times = t0_us + np.arange(np.asarray(frames).shape[0]) * dt_ms * 1000.0
    return intensity_to_events(frames, times, threshold, refractory_us=refractory_us)
