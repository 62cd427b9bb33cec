r"""Difference-of-Gaussians (DoG) on/off filters: the retina of time-to-first-spike networks.

A DoG filter approximates the centre-surround receptive fields of retinal
ganglion cells: on-centre cells respond to a bright spot on a dark surround,
off-centre cells to the reverse.  Convolutional STDP networks (Masquelier &
Thorpe 2007, Kheradpisheh et al. 2018) filter an image with a small bank of
them and turn the (thresholded) contrasts into spike latencies: the stronger
the contrast, the earlier the spike (:class:`pysnn.encoding.RankOrderEncoder`
bins the ranked values into ``T`` steps, :class:`pysnn.encoding.LatencyEncoder`
maps values linearly).

.. code-block:: python

    dog = DoGFilter(size=7, sigmas=[(1.0, 2.0), (2.0, 1.0)], threshold=50.0)
    contrast = dog(images * 255)                 # (B, 2, H, W), >= 0
    spikes = RankOrderEncoder(15)(contrast)      # (15, B, 2, H, W), one spike per cell at most
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor

__all__ = ["dog_kernel", "local_normalization", "DoGFilter"]


def _check_int(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def dog_kernel(
    size: int, sigma_center: float, sigma_surround: float, dtype: torch.dtype | None = None
) -> Tensor:
    r"""A ``size`` x ``size`` difference-of-Gaussians kernel, zero-mean, peak magnitude 1.

    With :math:`r^2 = x^2 + y^2` measured from the centre pixel (in pixels),

    .. math::
        g(r) = \frac{1}{2\pi\sigma_c^2} e^{-r^2/2\sigma_c^2}
             - \frac{1}{2\pi\sigma_s^2} e^{-r^2/2\sigma_s^2},\qquad
        k = \frac{g - \bar g}{\max |g - \bar g|}

    :math:`\sigma_c < \sigma_s` gives an on-centre kernel (positive centre),
    :math:`\sigma_c > \sigma_s` an off-centre one.  The mean is subtracted so
    that a uniform image gives no response.

    Raises
    ------
    TypeError, ValueError
        For a ``size`` that is not a positive odd int or a sigma that is not a
        positive finite number, or equal sigmas.
    """
    _check_int("size", size, 1)
    if size % 2 == 0:
        raise ValueError(f"size must be odd (a centre pixel), got {size}")
    for name, value in (("sigma_center", sigma_center), ("sigma_surround", sigma_surround)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number (pixels), got {type(value).__name__}")
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number (pixels), got {value}")
    if sigma_center == sigma_surround:
        raise ValueError(f"sigma_center and sigma_surround must differ, both are {sigma_center}")
    dtype = dtype or torch.get_default_dtype()
    half = size // 2
    axis = torch.arange(-half, half + 1, dtype=torch.float64)
    r2 = axis[:, None] ** 2 + axis[None, :] ** 2

    def gauss(sigma: float) -> Tensor:
        return torch.exp(-r2 / (2 * sigma**2)) / (2 * math.pi * sigma**2)

    g = gauss(float(sigma_center)) - gauss(float(sigma_surround))
    g = g - g.mean()
    return (g / g.abs().max()).to(dtype)


def local_normalization(x: Tensor, radius: int, eps: float = 1e-12) -> Tensor:
    r"""Divide each value by the mean over its ``(2r+1)^2`` neighbourhood in all channels.

    .. math:: y_{b,c,h,w} = \frac{x_{b,c,h,w}}{\frac{1}{C (2r+1)^2}
              \sum_{c'} \sum_{|h'-h| \le r,\, |w'-w| \le r} x_{b,c',h',w'}}

    (zero padding; 0 where the mean is at most ``eps``).  ``x`` is ``(B, C, H, W)``.
    """
    _check_int("radius", radius, 0)
    if not isinstance(x, Tensor) or x.dim() != 4:
        raise ValueError(f"x must be a tensor (B, C, H, W), got {getattr(x, 'shape', x)}")
    size = 2 * radius + 1
    summed = x.sum(1, keepdim=True)
    mean = F.avg_pool2d(summed, size, stride=1, padding=radius, count_include_pad=True)
    mean = mean / x.shape[1]
    positive = mean > eps
    return torch.where(positive, x / torch.where(positive, mean, torch.ones_like(mean)), 0.0)


class DoGFilter(nn.Module):
    r"""A bank of DoG filters (one output channel each), thresholded: the contrast image.

    .. math:: y_{b,k,h,w} = z\,[z \ge \theta],\qquad z = (k_k \star x_b)_{h,w}

    with :math:`k_k` the kernels of :func:`dog_kernel`, a "same" convolution
    (zero padding ``size // 2``) of a one-channel image :math:`x`, and values
    below ``threshold`` set to 0 (negative responses belong to the opposite
    polarity's channel).  Optionally followed by :func:`local_normalization`.

    Parameters
    ----------
    size : int
        Kernel size in pixels (odd; default 7).
    sigmas : sequence of pairs of float
        The pair ``sigma_center, sigma_surround`` of each kernel in pixels
        (default: ``(1, 2)`` and ``(2, 1)``, one on-centre and one off-centre channel).
    threshold : float
        :math:`\theta`, in the unit of the image times the kernel (default 0).
    normalization_radius : int or None
        Radius of :func:`local_normalization` (default ``None``: none).

    Notes
    -----
    Input ``(B, H, W)`` or ``(B, 1, H, W)``; output ``(B, K, H, W)``, non-negative.
    """

    def __init__(
        self,
        size: int = 7,
        sigmas: Sequence[tuple[float, float]] = ((1.0, 2.0), (2.0, 1.0)),
        threshold: float = 0.0,
        normalization_radius: int | None = None,
    ) -> None:
        super().__init__()
        if isinstance(sigmas, (str, bytes)) or not isinstance(sigmas, Sequence) or not sigmas:
            raise TypeError("sigmas must be a non-empty sequence of (sigma_center, sigma_surround)")
        kernels = []
        for pair in sigmas:
            if not isinstance(pair, Sequence) or len(pair) != 2:
                raise TypeError(f"each entry of sigmas must be a pair of numbers, got {pair!r}")
            kernels.append(dog_kernel(size, pair[0], pair[1]))
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise TypeError(f"threshold must be a number, got {type(threshold).__name__}")
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be finite, got {threshold}")
        if normalization_radius is not None:
            _check_int("normalization_radius", normalization_radius, 0)
        self.size = size
        self.sigmas = tuple((float(a), float(b)) for a, b in sigmas)
        self.threshold = float(threshold)
        self.normalization_radius = normalization_radius
        self.register_buffer("kernels", torch.stack(kernels)[:, None])  # (K, 1, s, s)

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, sigmas={self.sigmas}, threshold={self.threshold}, "
            f"normalization_radius={self.normalization_radius}"
        )

    def forward(self, x: Tensor) -> Tensor:
        """Filter images ``(B, H, W)`` or ``(B, 1, H, W)`` into ``(B, K, H, W)`` contrasts."""
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError("x must be a floating-point tensor of images")
        if x.dim() == 3:
            x = x[:, None]
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"x must be (B, H, W) or (B, 1, H, W), got {tuple(x.shape)}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("x must be finite (no NaN or inf)")
        z = F.conv2d(x, self.kernels.to(x.dtype), padding=self.size // 2)
        y = torch.where(z >= self.threshold, z, torch.zeros_like(z))
        if self.normalization_radius is not None:
            y = local_normalization(y, self.normalization_radius)
        return y
