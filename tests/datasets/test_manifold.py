"""The random-manifold task of Zenke & Vogels (2021): the generator's definition, determinism, spike counts."""

import math

import pytest
import torch

from pysnn.datasets import RandomManifold, random_manifold_task


def test_manifold_is_the_documented_sum_of_sines():
    gen = torch.Generator().manual_seed(3)
    manifold = RandomManifold(2, 2, alpha=2.0, generator=gen, precision=0.1)
    assert manifold.frequencies == 4  # ceil(0.1 ** -0.5)
    assert torch.allclose(manifold.spectrum, torch.tensor([1 / 2, 1 / 5, 1 / 10, 1 / 17]).double())
    assert torch.all(manifold.params[:, :, 0, 0] == 0)  # no constant offset
    x = torch.tensor([[0.1, 0.7], [0.35, 0.2], [0.9, 0.95]], dtype=torch.float64)
    expected = torch.ones(3, 2, dtype=torch.float64)
    for s in range(3):
        for n in range(2):
            for d in range(2):
                a, b, c = manifold.params[n, d]
                total = sum(
                    float(a[k])
                    / ((k + 1) ** 2 + 1)
                    * math.sin(2 * math.pi * (k * x[s, d] * b[k] + c[k]))
                    for k in range(4)
                )
                expected[s, n] *= total
    assert torch.allclose(manifold(x), expected, rtol=0, atol=1e-12)
    assert RandomManifold(3, 1, alpha=1.0).frequencies == 1000  # ceil(1e-3 ** -1), the cap


def test_same_seed_same_data_another_seed_other_data():
    kwargs = dict(classes=3, inputs=6, samples_per_class=40)
    spikes, labels = random_manifold_task(seed=5, **kwargs)
    again, labels_again = random_manifold_task(seed=5, **kwargs)
    assert torch.equal(spikes, again) and torch.equal(labels, labels_again)
    other, _ = random_manifold_task(seed=6, **kwargs)
    assert not torch.equal(spikes, other)
    assert spikes.shape == (100, 120, 6) and labels.shape == (120,)
    assert torch.bincount(labels).tolist() == [40, 40, 40]


@pytest.mark.parametrize("per_input", [1, 2])
def test_every_input_fires_exactly_its_spikes_in_the_window(per_input):
    spikes, _ = random_manifold_task(
        classes=2,
        inputs=5,
        samples_per_class=30,
        spikes_per_input=per_input,
        steps=60,
        spike_steps=40,
    )
    assert torch.all(spikes.sum(0) == per_input)
    assert spikes[40:].sum() == 0 and spikes.min() >= 0


def test_times_fill_the_window_within_each_class_and_classes_differ():
    spikes, labels = random_manifold_task(classes=4, inputs=8, samples_per_class=100, shuffle=False)
    assert torch.equal(labels, torch.arange(4).repeat_interleave(100))
    times = spikes.argmax(0).double()  # [samples, inputs]: the one spike of each input
    means = []
    for k in range(4):
        t = times[labels == k]
        # rescaled over the class's samples: every input's earliest spike at 0, latest at 49
        assert torch.all(t.amin(0) == 0) and torch.all(t.amax(0) == 49)
        means.append(t.mean(0))
    # the classes are different manifolds: their mean firing-time patterns differ
    for i in range(4):
        for j in range(i):
            assert (means[i] - means[j]).abs().mean() > 2.0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"classes": 0}, "classes"),
        ({"inputs": 0}, "inputs"),
        ({"samples_per_class": 1.5}, "samples_per_class"),
        ({"manifold_dim": 0}, "manifold_dim"),
        ({"spikes_per_input": 0}, "spikes_per_input"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"steps": 10, "spike_steps": 20}, "spike_steps"),
        ({"seed": 1.0}, "seed"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        random_manifold_task(**kwargs)


def test_bad_dtype_and_coordinates():
    with pytest.raises(TypeError, match="dtype"):
        random_manifold_task(classes=1, inputs=1, samples_per_class=1, dtype=torch.int64)
    with pytest.raises(ValueError, match="precision"):
        RandomManifold(2, 1, precision=1.0)
    with pytest.raises(ValueError, match=r"x must be a tensor \[samples, 2\]"):
        RandomManifold(2, 2)(torch.rand(4, 3))
