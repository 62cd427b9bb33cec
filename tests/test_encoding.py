"""Tests of pysnn.encoding: statistics, shapes, determinism, streaming, latency ordering."""

import math

import pytest
import torch

from pysnn.encoding import (
    BernoulliEncoder,
    LatencyEncoder,
    PoissonEncoder,
    PoissonRateEncoder,
    RankOrderEncoder,
    RateEncoder,
    num_steps_from_duration,
)


def _gen(device, seed=0):
    return torch.Generator(device=device).manual_seed(seed)


def test_num_steps_from_duration_tolerates_rounding():
    assert num_steps_from_duration(0.3, 0.1) == 3
    assert num_steps_from_duration(350, 1.0) == 350
    with pytest.raises(ValueError, match="multiple of dt"):
        num_steps_from_duration(1.05, 0.1)
    with pytest.raises(ValueError, match="duration"):
        num_steps_from_duration(0, 1.0)
    with pytest.raises(ValueError, match="dt"):
        num_steps_from_duration(10, -1.0)


def test_poisson_encoder_shape_and_rate(device):
    enc = PoissonEncoder(duration=500, dt=1.0)
    rates = torch.tensor([0.0, 20.0, 100.0, 2000.0], device=device).repeat(8, 1)
    spikes = enc(rates, generator=_gen(device))
    assert spikes.shape == (500, 8, 4)
    assert spikes.device.type == device.type
    # interval-based: P(spike in a step) = 1 - exp(-r dt / 1000), any rate allowed
    p_emp = spikes.mean(dim=(0, 1)).cpu()
    p_exp = 1 - torch.exp(-torch.tensor([0.0, 20.0, 100.0, 2000.0]) / 1000)
    n = 500 * 8
    tol = 4 * torch.sqrt(p_exp * (1 - p_exp) / n) + 1e-6
    assert torch.all((p_emp - p_exp).abs() <= tol), (p_emp, p_exp)
    assert spikes[:, :, 0].sum() == 0


def test_poisson_encoder_compat_signature_and_nd_input():
    enc = PoissonEncoder(10, 0.5)
    assert enc.num_steps == 20
    out = enc(torch.full((2, 1, 3, 3), 50.0))
    assert out.shape == (20, 2, 1, 3, 3)
    with pytest.raises(ValueError, match="rates"):
        enc(torch.tensor([-1.0]))
    with pytest.raises(TypeError, match="rates"):
        enc([1.0, 2.0])


def test_poisson_rate_encoder_statistics(device):
    enc = PoissonRateEncoder(num_steps=400, dt=0.5)
    rates = torch.full((16, 50), 80.0, device=device)
    spikes = enc(rates, generator=_gen(device, 1))
    assert spikes.shape == (400, 16, 50)
    p = 80.0 * 0.5 / 1000
    n = spikes.numel()
    assert abs(spikes.float().mean().item() - p) < 4 * math.sqrt(p * (1 - p) / n)
    # mean rate in Hz
    rate = spikes.float().sum(0).mean().item() / (400 * 0.5 / 1000)
    assert abs(rate - 80.0) < 2.0


def test_poisson_rate_encoder_rejects_p_above_one():
    enc = PoissonRateEncoder(10, dt=1.0)
    with pytest.raises(ValueError, match="1000/dt"):
        enc(torch.tensor([1500.0]))
    assert enc.step(torch.tensor([1000.0])).item() == 1.0


def test_bernoulli_statistics_and_validation(device):
    enc = BernoulliEncoder(200, dtype=torch.bool)
    probs = torch.linspace(0, 1, 11, device=device).repeat(50, 1)
    spikes = enc(probs, generator=_gen(device, 2))
    assert spikes.dtype == torch.bool and spikes.shape == (200, 50, 11)
    emp = spikes.float().mean(dim=(0, 1)).cpu()
    assert torch.allclose(emp, torch.linspace(0, 1, 11), atol=0.02)
    with pytest.raises(ValueError, match="probabilities"):
        enc(torch.tensor([1.5]))


@pytest.mark.parametrize(
    "make, x",
    [
        (lambda: PoissonEncoder(50, 1.0), torch.rand(3, 7) * 300),
        (lambda: PoissonRateEncoder(50, 1.0), torch.rand(3, 7) * 300),
        (lambda: BernoulliEncoder(50), torch.rand(3, 7)),
        (lambda: RateEncoder(50), torch.rand(3, 7)),
        (lambda: LatencyEncoder(50), torch.rand(3, 7)),
        (lambda: LatencyEncoder(50, "log"), torch.rand(3, 7)),
        (lambda: RankOrderEncoder(50), torch.rand(3, 7)),
    ],
)
def test_streaming_equals_materialised_and_deterministic(make, x):
    enc = make()
    full = enc(x, generator=torch.Generator().manual_seed(5))
    again = enc(x, generator=torch.Generator().manual_seed(5))
    streamed = torch.stack(list(enc.iter(x, generator=torch.Generator().manual_seed(5))))
    assert full.shape == (50, 3, 7)
    assert torch.equal(full, again)
    assert torch.equal(full, streamed)


def test_generator_at_construction_is_used():
    a = PoissonRateEncoder(20, 1.0, generator=torch.Generator().manual_seed(3))
    b = PoissonRateEncoder(20, 1.0, generator=torch.Generator().manual_seed(3))
    x = torch.full((4, 10), 200.0)
    assert torch.equal(a(x), b(x))


def test_generator_device_mismatch_is_reported():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    enc = BernoulliEncoder(3)
    with pytest.raises(ValueError, match="generator"):
        enc(torch.rand(2, device="cuda"), generator=torch.Generator())


def test_rate_encoder_repeats_value():
    x = torch.rand(2, 3)
    out = RateEncoder(4)(x)
    assert out.shape == (4, 2, 3)
    assert torch.equal(out, x.expand(4, 2, 3))


def test_latency_ordering_linear_and_log():
    x = torch.tensor([[1.0, 0.75, 0.5, 0.25, 0.0]])
    for mode in ("linear", "log"):
        enc = LatencyEncoder(20, mode=mode)
        spikes = enc(x)
        assert spikes.sum(0).tolist() == [[1, 1, 1, 1, 0]]  # at most one spike, none for 0
        times = enc.spike_times(x)[0, :4].tolist()
        assert times[0] == 0
        assert times == sorted(times) and len(set(times)) == 4
    assert LatencyEncoder(11).spike_times(torch.tensor([0.5])).item() == 5
    with pytest.raises(ValueError, match="threshold"):
        LatencyEncoder(10, "log", threshold=0.0)
    with pytest.raises(ValueError, match="intensities"):
        LatencyEncoder(10)(torch.tensor([2.0]))


def test_rank_order():
    x = torch.tensor([[0.2, 0.9, 0.0, 0.5], [1.0, 1.0, 0.3, 0.0]])
    enc = RankOrderEncoder(4)
    times = enc.spike_times(x)
    assert times.tolist() == [[2, 0, -1, 1], [0, 1, 2, -1]]
    spikes = enc(x)
    assert spikes.shape == (4, 2, 4)
    assert spikes.sum(0).tolist() == [[1, 1, 0, 1], [1, 1, 1, 0]]
    # more cells than steps: order kept, steps shared
    t = RankOrderEncoder(2).spike_times(torch.tensor([0.4, 0.3, 0.2, 0.1]))
    assert t.tolist() == [0, 0, 1, 1]


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_steps"):
        BernoulliEncoder(0)
    with pytest.raises(TypeError, match="num_steps"):
        BernoulliEncoder(2.5)
    with pytest.raises(TypeError, match="generator"):
        BernoulliEncoder(2, generator=3)
    with pytest.raises(ValueError, match="mode"):
        LatencyEncoder(5, mode="exp")


@pytest.mark.parametrize(
    "encoder,name",
    [
        (PoissonEncoder(10, 1.0), "rates"),
        (PoissonRateEncoder(5, 1.0), "rates"),
        (BernoulliEncoder(5), "x"),
        (RateEncoder(5), "x"),
        (LatencyEncoder(5), "x"),
        (RankOrderEncoder(5), "x"),
    ],
)
def test_meta_device_input_is_a_clear_error(encoder, name):
    x = torch.rand(3, device="meta")
    with pytest.raises(ValueError, match=rf"^{name} is on device meta, which holds no values"):
        encoder(x)
