"""Plots of spiking simulations (matplotlib is optional and imported on first use).

Every function takes tensors or arrays (on any device), an optional matplotlib ``ax`` to draw
into, and returns ``(fig, ax)``.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

__all__ = ["raster", "voltage_traces", "weight_grid", "assignment_map", "accuracy_curve"]


def _plt():
    try:
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "pysnn.plot needs matplotlib: `pip install matplotlib` (or pip install pysnn[plot])"
        ) from exc
    return plt


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x)


def _fig_ax(ax, figsize=None):
    plt = _plt()
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    return fig, ax


def raster(
    spikes, dt: float = 1.0, sample: int = 0, ax=None, title: Optional[str] = None, **kwargs
):
    """Raster plot of spikes ``[T, N]``, ``[T, B, ...]`` (sample ``sample`` shown) or ``[T, ...]``.

    Cells are flattened; the x axis is time in ms (``dt`` per step).
    """
    s = _np(spikes)
    if s.ndim < 2:
        raise ValueError(f"spikes must be [T, ...] with at least 2 dimensions, got {s.shape}")
    if s.ndim >= 3:
        s = s[:, sample]
    s = s.reshape(s.shape[0], -1)
    fig, ax = _fig_ax(ax)
    t, n = np.nonzero(s)
    ax.scatter(t * dt, n, s=kwargs.pop("s", 2), c=kwargs.pop("c", "k"), marker="|", **kwargs)
    ax.set_xlim(0, s.shape[0] * dt)
    ax.set_ylim(-0.5, s.shape[1] - 0.5)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("neuron")
    if title:
        ax.set_title(title)
    return fig, ax


def voltage_traces(
    v,
    dt: float = 1.0,
    neurons: Optional[Sequence[int]] = None,
    sample: int = 0,
    threshold: Optional[float] = None,
    ax=None,
    title: Optional[str] = None,
):
    """Membrane voltages ``[T, N]`` or ``[T, B, ...]`` over time; ``neurons`` picks cells."""
    vv = _np(v)
    if vv.ndim < 2:
        raise ValueError(f"v must be [T, ...] with at least 2 dimensions, got {vv.shape}")
    if vv.ndim >= 3:
        vv = vv[:, sample]
    vv = vv.reshape(vv.shape[0], -1)
    idx = list(range(min(vv.shape[1], 10))) if neurons is None else list(neurons)
    fig, ax = _fig_ax(ax)
    time = np.arange(vv.shape[0]) * dt
    for i in idx:
        ax.plot(time, vv[:, i], label=f"neuron {i}", lw=1)
    if threshold is not None:
        ax.axhline(threshold, color="r", ls="--", lw=1, label="threshold")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("voltage")
    if len(idx) <= 10:
        ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig, ax


def _tile(w: np.ndarray, image_shape: Sequence[int], n_cols: Optional[int]) -> np.ndarray:
    h, wd = int(image_shape[0]), int(image_shape[1])
    n = w.shape[0]
    cols = n_cols or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = np.full((rows * (h + 1) - 1, cols * (wd + 1) - 1), np.nan)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * (h + 1) : r * (h + 1) + h, c * (wd + 1) : c * (wd + 1) + wd] = w[i].reshape(h, wd)
    return grid


def weight_grid(
    weights,
    image_shape: Sequence[int] = (28, 28),
    n_cols: Optional[int] = None,
    ax=None,
    cmap: str = "hot_r",
    title: Optional[str] = None,
):
    """Receptive fields: each row of ``weights [N_out, N_in]`` (``N_in = H * W``) as an image.

    Conv kernels ``[C_out, 1, kH, kW]`` are accepted too (``image_shape`` is then taken from them).
    """
    w = _np(weights)
    if w.ndim == 4:
        image_shape = w.shape[2:]
        w = w[:, 0]
    w = w.reshape(w.shape[0], -1)
    if w.shape[1] != int(image_shape[0]) * int(image_shape[1]):
        raise ValueError(f"weights rows have {w.shape[1]} entries, not {tuple(image_shape)}")
    grid = _tile(w, image_shape, n_cols)
    fig, ax = _fig_ax(ax, figsize=(6, 6))
    im = ax.imshow(grid, cmap=cmap, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return fig, ax


def assignment_map(
    assignments,
    n_classes: int = 10,
    n_cols: Optional[int] = None,
    ax=None,
    title: Optional[str] = None,
):
    """Class assigned to each neuron (``-1`` = none), drawn as a coloured grid of neurons."""
    a = _np(assignments).astype(np.int64).ravel()
    cols = n_cols or int(math.ceil(math.sqrt(a.size)))
    rows = int(math.ceil(a.size / cols))
    grid = np.full(rows * cols, np.nan)
    grid[: a.size] = np.where(a >= 0, a, np.nan)
    plt = _plt()
    fig, ax = _fig_ax(ax)
    cmap = plt.get_cmap("tab10" if n_classes <= 10 else "tab20", n_classes)
    im = ax.imshow(grid.reshape(rows, cols), cmap=cmap, vmin=-0.5, vmax=n_classes - 0.5)
    fig.colorbar(im, ax=ax, ticks=range(n_classes), fraction=0.046)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or "neuron assignments")
    return fig, ax


def accuracy_curve(
    accuracies,
    steps=None,
    labels: Optional[Sequence[str]] = None,
    ax=None,
    xlabel: str = "samples",
    title: Optional[str] = None,
):
    """Accuracy (in %, or fractions <= 1 shown as %) over training; several curves allowed.

    ``accuracies`` is a sequence of values or a dict ``{label: values}``.
    """
    if isinstance(accuracies, dict):
        labels = list(accuracies)
        curves = [np.asarray(_np(v), dtype=float) for v in accuracies.values()]
    else:
        arr = np.asarray(_np(accuracies), dtype=float)
        curves = [arr] if arr.ndim == 1 else list(arr)
    fig, ax = _fig_ax(ax)
    for i, c in enumerate(curves):
        vals = c * 100 if c.size and np.nanmax(c) <= 1.0 else c
        x = np.arange(len(vals)) if steps is None else _np(steps)
        ax.plot(x, vals, marker="o", ms=3, label=labels[i] if labels else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    if labels:
        ax.legend()
    if title:
        ax.set_title(title)
    return fig, ax
