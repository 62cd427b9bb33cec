"""pysnn.functional.accumulate_products_: E <- decay * E + sum_k alpha_k Y_k X_k, in place."""

import pytest
import torch

from pysnn.functional import accumulate_products_, contract_batch, per_batch_zeros
from pysnn.fusion import fusion_available


def _terms(batched):
    gen = torch.Generator().manual_seed(0)
    lead = (3,) if batched else ()
    ys = [torch.randn(*lead, 4, r, generator=gen, dtype=torch.float64) for r in (2, 5)]
    xs = [torch.randn(*lead, r, 6, generator=gen, dtype=torch.float64) for r in (2, 5)]
    target = torch.randn(*lead, 4, 6, generator=gen, dtype=torch.float64)
    return target, ys, xs


@pytest.mark.parametrize("batched", [False, True])
def test_accumulate_products_equals_its_formula_in_place(batched):
    target, ys, xs = _terms(batched)
    expected = 0.9 * target + 0.5 * ys[0] @ xs[0] - 2.0 * ys[1] @ xs[1]
    pointer = target.data_ptr()
    out = accumulate_products_(target, ys, xs, [0.5, -2.0], decay=0.9)
    assert out is target and target.data_ptr() == pointer
    torch.testing.assert_close(target, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_accumulate_products_compiled_updates_the_same_tensor(backend):
    """Inside torch.compile the operator is one in-place kernel: same values, same storage."""
    if backend == "inductor" and not fusion_available():
        pytest.skip("torch.compile is not supported here")
    target, ys, xs = _terms(batched=True)
    eager = target.clone()
    accumulate_products_(eager, ys, xs, [0.5, -2.0], decay=0.9)

    @torch.compile(backend=backend, fullgraph=True)
    def step(e, ys, xs):
        accumulate_products_(e, ys, xs, [0.5, -2.0], decay=0.9)
        return e.sum()

    pointer = target.data_ptr()
    total = step(target, ys, xs)
    assert target.data_ptr() == pointer
    torch.testing.assert_close(target, eager, rtol=0, atol=1e-12)
    torch.testing.assert_close(total, eager.sum(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("batched", [False, True])
def test_accumulate_products_into_a_transposed_target(batched):
    """A target stored transposed (input-major, as Linear's weight) is updated in its storage."""
    target, ys, xs = _terms(batched)
    stored = target.transpose(-1, -2).contiguous().transpose(-1, -2)  # same values, transposed
    expected = 0.9 * target + 0.5 * ys[0] @ xs[0] - 2.0 * ys[1] @ xs[1]
    accumulate_products_(stored, ys, xs, [0.5, -2.0], decay=0.9)
    assert stored.transpose(-1, -2).is_contiguous()
    torch.testing.assert_close(stored, expected, rtol=0, atol=1e-12)


def test_contract_batch_sums_the_samples_in_the_weights_layout():
    gen = torch.Generator().manual_seed(3)
    per_batch = torch.rand(4, 6, 5, generator=gen, dtype=torch.float64).transpose(1, 2)  # (4, 5, 6)
    c = torch.rand(4, generator=gen, dtype=torch.float64)
    out = contract_batch(c, per_batch)
    expected = sum(c[b] * per_batch[b] for b in range(4))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-14)
    assert out.stride() == per_batch[0].stride()  # input-major like a Linear weight


def test_per_batch_zeros_gives_every_sample_the_weights_layout():
    weight = torch.rand(6, 5).t()  # (5, 6), input-major like a Linear weight
    e = per_batch_zeros(weight, 3)
    assert e.shape == (3, 5, 6) and e[1].stride() == weight.stride()
    assert not e.any()
