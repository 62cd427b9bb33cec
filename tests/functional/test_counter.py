"""Counter-based random numbers against the same functions written on Python integers."""

import math

import pytest
import torch

from pysnn.functional import counter as rng

MASK = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def mix(z: int) -> int:
    """SplitMix64's finaliser on Python ints (the published constants)."""
    z &= MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def as_signed(z: int) -> int:
    return z - (1 << 64) if z >= 1 << 63 else z


VALUES = [0, 1, 2, 12345678901234567, (1 << 63) - 1, 1 << 63, (1 << 63) + 5, MASK]


def test_splitmix64_equals_the_python_integer_reference():
    out = rng.splitmix64(torch.tensor([as_signed(v) for v in VALUES]))
    assert [int(o) & MASK for o in out] == [mix(v) for v in VALUES]
    # the first output of SplitMix64 seeded with 0 (the reference sequence)
    assert int(rng.counter_bits(0, 0)) & MASK == 0xE220A8397B1DCDAF


def test_keys_and_counters_follow_their_formulas():
    key, index = 987654321, 42
    expected_key = mix(key ^ mix((index + 1) * GAMMA))
    assert int(rng.derive_key(key, index)) & MASK == expected_key
    counters = torch.arange(5)
    bits = rng.counter_bits(expected_key, counters)
    assert [int(b) & MASK for b in bits] == [mix(expected_key + (c + 1) * GAMMA) for c in range(5)]
    # the same value whichever batch it is drawn in
    assert torch.equal(rng.counter_bits(expected_key, counters[3:]), bits[3:])


def test_conversions_are_exact_integer_arithmetic():
    bits = rng.counter_bits(7, torch.arange(1000))
    raw = [int(b) & MASK for b in bits]
    u = rng.bits_to_uniform(bits)
    assert u.tolist() == [(r >> 11) * 2.0**-53 for r in raw]
    index = rng.bits_to_index(bits, 1000003)
    assert index.tolist() == [((r >> 32) * 1000003) >> 32 for r in raw]
    z = rng.bits_to_normal(bits[:20])
    for value, r in zip(z.tolist(), raw[:20]):
        u1 = ((r >> 32) + 1) * 2.0**-32
        u2 = (r & 0xFFFFFFFF) * 2.0**-32
        assert value == pytest.approx(
            math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2), abs=1e-12
        )


def test_distributions_have_their_moments():
    bits = rng.counter_bits(rng.derive_key(3, 1), torch.arange(200_000))
    u = rng.bits_to_uniform(bits)
    assert abs(float(u.mean()) - 0.5) < 0.003 and float(u.min()) >= 0 and float(u.max()) < 1
    counts = torch.bincount(rng.bits_to_index(bits, 10), minlength=10).double()
    assert float(((counts - 20_000) ** 2 / 20_000).sum()) < 30  # chi2, 9 dof
    z = rng.bits_to_normal(bits)
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.01
    assert float(z.abs().max()) <= rng.NORMAL_BOUND


def test_poisson_by_inversion():
    lam = 1.5
    cdf = torch.tensor(
        [math.exp(-lam) * sum(lam**i / math.factorial(i) for i in range(k + 1)) for k in range(20)],
        dtype=torch.float64,
    )
    u = torch.tensor(
        [0.0, float(cdf[0]) - 1e-12, float(cdf[0]), float(cdf[1]) + 1e-12, 0.999999],
        dtype=torch.float64,
    )
    # n = the number of k with F(k) <= u: 0, 0, 1, 2 and the hand-counted tail
    tail = sum(1 for f in cdf.tolist() if f <= 0.999999)
    assert rng.poisson_from_uniform(u, cdf).tolist() == [0, 0, 1, 2, tail]
    # one law per value (trailing dimension): a rate of 0 always gives 0
    per_value = torch.stack([cdf, torch.ones_like(cdf)], 1)  # (K + 1, 2)
    pair = torch.tensor([[0.7, 0.7], [0.1, 0.99]], dtype=torch.float64)
    expected = [
        [sum(1 for f in cdf.tolist() if f <= 0.7), 0],
        [sum(1 for f in cdf.tolist() if f <= 0.1), 0],
    ]
    assert rng.poisson_from_uniform(pair, per_value).tolist() == expected
    many = rng.poisson_from_uniform(
        rng.bits_to_uniform(rng.counter_bits(5, torch.arange(100_000))), cdf
    )
    assert abs(float(many.double().mean()) - lam) < 0.02
    assert abs(float(many.double().var()) - lam) < 0.04
