r"""The random-manifold spike-timing task of Zenke & Vogels (2021), generated locally.

Zenke, F. & Vogels, T. P. (2021). The remarkable robustness of surrogate
gradient learning for instilling complex function in spiking neural networks.
*Neural Computation* 33(4), 899-925.  Their generator is published as
``randman`` (github.com/fzenke/randman, ``TorchRandman``) and the spiking data
set is built from it as in their reference scripts (``make_tempo_randman``);
this module follows those definitions with its own seeded random stream (the
same distributions, not the same numbers).

**A smooth random manifold** maps intrinsic coordinates
:math:`x \in [0, 1)^D` to :math:`N` embedding coordinates

.. math::
    y_n(x) = \prod_{d=1}^{D} \sum_{k=0}^{F-1} a_{ndk}\, s_k
        \sin\!\big(2\pi (k\, x_d\, b_{ndk} + c_{ndk})\big),\qquad
    s_k = \frac{1}{(k+1)^{\alpha} + 1}

with :math:`a, b, c \sim U[0, 1)` drawn once per manifold, :math:`a_{nd0} = 0`
(no constant offset), and :math:`F = \min(\lceil p^{-1/\alpha} \rceil, F_{max})`
frequencies (precision :math:`p = 10^{-3}`, :math:`F_{max} = 1000`): the larger
the smoothness exponent :math:`\alpha`, the faster the spectrum falls off.

**The spiking data set**: each class :math:`k` is its own set of manifolds,
one per spike of an input neuron (``spikes_per_input``).  A sample draws
:math:`x \sim U[0,1)^D` and evaluates the class's manifolds at :math:`x`; each
embedding coordinate :math:`n` is one input neuron, and its value, rescaled
over the class's samples to :math:`[0, 1)` by
:math:`\hat y = (y - \min y) / (\max y - \min y + 10^{-7})`, is that neuron's
firing time :math:`\lfloor \hat y \cdot S \rfloor` (``spike_steps`` :math:`= S`,
the first part of the ``steps`` of a sample).  Every input neuron therefore
fires exactly ``spikes_per_input`` spikes in every sample, in every class:
only their relative timing tells the classes apart.

The paper's setting (its reference script's defaults): 10 classes, 20 input
neurons, :math:`D = 1`, :math:`\alpha = 1`, one spike per input neuron,
1000 samples per class, 100 steps of 1 ms with the spikes in the first 50.
"""

from __future__ import annotations

import math

import torch

__all__ = ["RandomManifold", "random_manifold_task"]

Tensor = torch.Tensor

#: rescaling guard of the reference code (``standardize``: ``max - min + eps``)
STANDARDIZE_EPS = 1e-7
#: samples x neurons x frequencies evaluated at once (32 MB per float64 intermediate)
_CHUNK = 1 << 22


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def _check_positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


class RandomManifold:
    r"""One smooth random manifold :math:`[0, 1)^D \to \mathbb{R}^N` (see the module docstring).

    Parameters
    ----------
    embedding_dim : int
        :math:`N`, the number of embedding coordinates (input neurons).
    manifold_dim : int
        :math:`D`, the intrinsic dimension.
    alpha : float
        Smoothness exponent :math:`\alpha` of the spectrum :math:`s_k`.
    generator : torch.Generator, optional
        Source of the random coefficients (default: torch's global generator).
    precision : float
        :math:`p`: the spectrum is cut at :math:`\lceil p^{-1/\alpha} \rceil` frequencies.
    max_frequencies : int
        :math:`F_{max}`, the largest number of frequencies.

    Attributes
    ----------
    params : Tensor
        ``[N, D, 3, F]`` float64: :math:`a, b, c` of every coordinate and dimension.
    spectrum : Tensor
        ``[F]`` float64: :math:`s_k`.

    Examples
    --------
    >>> manifold = RandomManifold(20, 1, alpha=1.0, generator=torch.Generator().manual_seed(0))
    >>> manifold(torch.rand(5, 1)).shape
    torch.Size([5, 20])
    """

    def __init__(
        self,
        embedding_dim: int,
        manifold_dim: int,
        alpha: float = 2.0,
        generator: torch.Generator | None = None,
        precision: float = 1e-3,
        max_frequencies: int = 1000,
    ) -> None:
        self.embedding_dim = _check_int("embedding_dim", embedding_dim, 1)
        self.manifold_dim = _check_int("manifold_dim", manifold_dim, 1)
        self.alpha = _check_positive("alpha", alpha)
        precision = _check_positive("precision", precision)
        if precision >= 1:
            raise ValueError(f"precision must lie in (0, 1), got {precision!r}")
        max_frequencies = _check_int("max_frequencies", max_frequencies, 1)
        self.frequencies = int(min(math.ceil(precision ** (-1.0 / self.alpha)), max_frequencies))
        shape = (self.embedding_dim, self.manifold_dim, 3, self.frequencies)
        self.params = torch.rand(shape, generator=generator, dtype=torch.float64)
        self.params[:, :, 0, 0] = 0.0  # no constant offset
        k = torch.arange(self.frequencies, dtype=torch.float64)
        self.spectrum = 1.0 / ((k + 1.0) ** self.alpha + 1.0)

    def __call__(self, x: Tensor) -> Tensor:
        """The embedding ``[S, N]`` (float64) of the intrinsic coordinates ``x`` ``[S, D]``."""
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.manifold_dim:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be a tensor [samples, {self.manifold_dim}], got {got}")
        x = x.to(torch.float64)
        k = torch.arange(self.frequencies, dtype=torch.float64)
        amplitude = self.params[:, :, 0] * self.spectrum  # [N, D, F]
        rate = self.params[:, :, 1] * k  # k * b
        phase = self.params[:, :, 2]
        out = torch.ones(x.shape[0], self.embedding_dim, dtype=torch.float64)
        chunk = max(1, _CHUNK // (self.embedding_dim * self.frequencies))
        for start in range(0, x.shape[0], chunk):
            part = x[start : start + chunk]
            for d in range(self.manifold_dim):
                angle = 2 * math.pi * (part[:, d, None, None] * rate[:, d] + phase[:, d])
                out[start : start + chunk] *= (torch.sin(angle) * amplitude[:, d]).sum(-1)
        return out


def random_manifold_task(
    classes: int = 10,
    inputs: int = 20,
    samples_per_class: int = 1000,
    manifold_dim: int = 1,
    alpha: float = 1.0,
    spikes_per_input: int = 1,
    steps: int = 100,
    spike_steps: int = 50,
    seed: int = 0,
    shuffle: bool = True,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    r"""Generate the spike-timing classification task (see the module docstring).

    Parameters
    ----------
    classes : int
        Number of classes (each its own manifolds).
    inputs : int
        Number of input neurons (the embedding dimension :math:`N`).
    samples_per_class : int
        Samples drawn from each class.
    manifold_dim : int
        Intrinsic dimension :math:`D` of the manifolds.
    alpha : float
        Smoothness exponent :math:`\alpha`.
    spikes_per_input : int
        Spikes of every input neuron in every sample (one manifold per spike).
    steps : int
        Timesteps of a sample (1 ms each in the paper).
    spike_steps : int
        The spikes fall in the first ``spike_steps`` steps (``<= steps``).
    seed : int
        Seed of the generator: the same seed gives the same data set.
    shuffle : bool
        Shuffle the samples (otherwise class after class).
    dtype : torch.dtype
        Floating dtype of the spike tensor.

    Returns
    -------
    spikes : Tensor
        ``[steps, classes * samples_per_class, inputs]``: the number of spikes
        of each input neuron in each step (1, or more where two of a neuron's
        spikes fall in one step); every ``spikes[:, i, n].sum()`` is
        ``spikes_per_input``.
    labels : Tensor
        ``[classes * samples_per_class]`` int64 class of each sample.

    Raises
    ------
    ValueError
        For a count below 1, ``spike_steps > steps``, a non-positive
        ``alpha``; :class:`TypeError` for a non-floating ``dtype``.

    Examples
    --------
    >>> spikes, labels = random_manifold_task(classes=2, inputs=5, samples_per_class=4)
    >>> spikes.shape, labels.tolist().count(0)
    (torch.Size([100, 8, 5]), 4)
    """
    for name, value in (
        ("classes", classes),
        ("inputs", inputs),
        ("samples_per_class", samples_per_class),
        ("manifold_dim", manifold_dim),
        ("spikes_per_input", spikes_per_input),
        ("steps", steps),
        ("spike_steps", spike_steps),
    ):
        _check_int(name, value, 1)
    alpha = _check_positive("alpha", alpha)
    if spike_steps > steps:
        raise ValueError(f"spike_steps must be <= steps ({steps}), got {spike_steps}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch dtype, got {dtype!r}")

    gen = torch.Generator().manual_seed(seed)
    times, labels = [], []
    for k in range(classes):
        x = torch.rand(samples_per_class, manifold_dim, generator=gen, dtype=torch.float64)
        for _ in range(spikes_per_input):
            y = RandomManifold(inputs, manifold_dim, alpha, generator=gen)(x)
            low, high = y.amin(0), y.amax(0)
            unit = (y - low) / (high - low + STANDARDIZE_EPS)  # [0, 1) per input neuron
            times.append(torch.floor(unit * spike_steps).to(torch.int64))
        labels.append(torch.full((samples_per_class,), k, dtype=torch.int64))
    # [classes * samples, spikes_per_input, inputs]: class after class
    spike_times = torch.stack(times).view(classes, spikes_per_input, samples_per_class, inputs)
    spike_times = spike_times.transpose(1, 2).reshape(-1, spikes_per_input, inputs)
    label = torch.cat(labels)
    if shuffle:
        order = torch.randperm(len(label), generator=gen)
        spike_times, label = spike_times[order], label[order]
    total = len(label)
    spikes = torch.zeros(steps, total, inputs, dtype=dtype)
    sample = torch.arange(total).view(-1, 1, 1).expand_as(spike_times)
    neuron = torch.arange(inputs).view(1, 1, -1).expand_as(spike_times)
    ones = torch.ones(spike_times.numel(), dtype=dtype)
    spikes.index_put_(
        (spike_times.reshape(-1), sample.reshape(-1), neuron.reshape(-1)), ones, accumulate=True
    )
    return spikes, label
