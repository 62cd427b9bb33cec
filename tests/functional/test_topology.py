"""The topology functions of pysnn.functional alone: hand-derived values, F.conv2d, loops."""

import itertools

import pytest
import torch
import torch.nn.functional as F

import pysnn.functional as sf
from pysnn.functional.topology import COUNT_FIRST


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _spikes(*shape, p=0.3, seed=0):
    return (torch.rand(*shape, generator=_gen(seed)) < p).double()


def _onehot(delays, length):
    return F.one_hot(delays, length).double()


# ---------------------------------------------------------------------------
# dense
# ---------------------------------------------------------------------------
def test_dense_propagate_by_hand():
    weight = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])  # (out, in)
    spikes = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    expected = torch.tensor([[-1.0, 3.0], [-1.5, 2.0]])
    assert torch.equal(sf.dense_propagate(spikes, weight.t()), expected)
    # extra leading dimensions are kept
    out = sf.dense_propagate(spikes.view(2, 1, 1, 3), weight.t())
    assert torch.equal(out, expected.view(2, 1, 1, 2))


@pytest.mark.parametrize("mode", [True, False, None])
@pytest.mark.parametrize("batch", [1, 5])
def test_event_matmul_equals_matmul_in_every_mode(mode, batch):
    flat = _spikes(batch, 40, p=0.04, seed=batch)
    flat[0, 3] = 0.25  # graded values are weighted
    rows = torch.rand(40, 7, generator=_gen(2))
    out = sf.event_matmul(flat, rows, mode, event_threshold=0.5, min_synapses=0)
    torch.testing.assert_close(out, flat @ rows, rtol=1e-12, atol=1e-12)


def test_event_matmul_sums_active_rows_by_hand():
    rows = torch.tensor([[1.0, 2.0], [10.0, 20.0], [100.0, 200.0]])
    flat = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.5, 0.0]])
    out = sf.event_matmul(flat, rows, True)
    assert torch.equal(out, torch.tensor([[101.0, 202.0], [0.0, 0.0], [5.0, 10.0]]))


@pytest.mark.parametrize("p, gathers", [(0.02, True), (0.5, False)])
def test_event_matmul_auto_lists_the_events_only_when_it_gathers(p, gathers):
    from torch.overrides import TorchFunctionMode

    class Calls(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.names.append(getattr(func, "__name__", ""))
            return func(*args, **(kwargs or {}))

    # an input of COUNT_FIRST entries or more: a count decides first
    flat = _spikes(64, 1024, p=p, seed=3)
    assert flat.numel() >= COUNT_FIRST
    rows = torch.rand(1024, 5, generator=_gen(4))
    with Calls() as calls:
        out = sf.event_matmul(flat, rows, None, event_threshold=0.05, min_synapses=0)
    torch.testing.assert_close(out, flat @ rows, rtol=1e-12, atol=1e-12)
    # above the threshold the count decides for the matmul: nonzero, which costs a
    # large part of the matmul, is not called
    assert ("nonzero" in calls.names) == gathers
    assert ("embedding_bag" in calls.names) == gathers
    # a small input is listed at once (one kernel fewer where gathering is likely)
    small = _spikes(4, 200, p=p, seed=3)
    with Calls() as calls:
        out = sf.event_matmul(small, rows[:200], None, event_threshold=0.05, min_synapses=0)
    torch.testing.assert_close(out, small @ rows[:200], rtol=1e-12, atol=1e-12)
    assert "count_nonzero" not in calls.names
    assert "nonzero" in calls.names


def test_dense_propagate_delayed_equals_loop():
    n_out, n_in, length, batch = 3, 4, 3, 2
    weight = torch.rand(n_out, n_in, generator=_gen(1))
    delays = torch.randint(0, length, (n_out, n_in), generator=_gen(2))
    history = _spikes(length, batch, n_in, p=0.5, seed=3)  # entry k: k steps ago
    stacked = sf.dense_stack_weight(weight, _onehot(delays, length))
    assert stacked.shape == (length * n_in, n_out)
    out = sf.dense_propagate_delayed(history, stacked)
    expected = torch.zeros(batch, n_out)
    for b, i, j in itertools.product(range(batch), range(n_out), range(n_in)):
        expected[b, i] += weight[i, j] * history[delays[i, j], b, j]
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    event = sf.dense_propagate_delayed(history, stacked, True)
    torch.testing.assert_close(event, expected, rtol=1e-12, atol=1e-12)


def test_dense_correlate_by_hand_and_per_batch():
    post = torch.tensor([[1.0, 0.0], [2.0, 1.0]])  # (B, out)
    pre = torch.tensor([[0.5, 1.0, 0.0], [1.0, 0.0, 3.0]])  # (B, in)
    per_batch = sf.dense_correlate(post, pre, per_batch=True)
    assert torch.equal(per_batch[0], torch.tensor([[0.5, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    assert torch.equal(per_batch[1], torch.tensor([[2.0, 0.0, 6.0], [1.0, 0.0, 3.0]]))
    assert torch.equal(sf.dense_correlate(post, pre), per_batch.sum(0))
    # positions (extra dimensions) are summed; pre_map sees (B, in, P)
    post3, pre3 = post.view(1, 2, 2), pre.view(1, 2, 3)
    torch.testing.assert_close(sf.dense_correlate(post3, pre3), per_batch.sum(0))
    doubled = sf.dense_correlate(post3, pre3, pre_map=lambda x: 2 * x)
    torch.testing.assert_close(doubled, 2 * per_batch.sum(0))
    assert sf.dense_correlate(post3, pre3, True, lambda x: x).shape == (1, 2, 3)


@pytest.mark.parametrize("per_batch", [False, True])
def test_dense_correlate_delayed_equals_loop(per_batch):
    n_out, n_in, length, batch = 2, 3, 4, 2
    delays = torch.randint(0, length, (n_out, n_in), generator=_gen(4))
    history = torch.rand(length, batch, n_in, generator=_gen(5))
    post = torch.rand(batch, n_out, generator=_gen(6))
    got = sf.dense_correlate_delayed(post, history, delays, per_batch)
    expected = torch.zeros(batch, n_out, n_in)
    for b, i, j in itertools.product(range(batch), range(n_out), range(n_in)):
        expected[b, i, j] = post[b, i] * history[delays[i, j], b, j]
    torch.testing.assert_close(got, expected if per_batch else expected.sum(0))


def test_dense_synapse_trace_and_receptive_field_sum():
    trace = torch.tensor([[0.1, 0.2, 0.3]])
    syn = sf.dense_synapse_trace(trace, 2)
    assert torch.equal(syn, torch.tensor([[[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]]]))
    total = sf.dense_receptive_field_sum(trace, 2)
    torch.testing.assert_close(total, torch.tensor([[0.6, 0.6]]))


# ---------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------
CONV_CASES = [
    # in, out, kernel, stride, padding, dilation, groups, (H, W)
    (2, 3, (3, 3), (1, 1), (0, 0), (1, 1), 1, (6, 5)),
    (4, 6, (2, 3), (2, 1), (1, 1), (1, 2), 2, (7, 8)),
]


def _geometry(case):
    _, _, kernel, stride, padding, dilation, groups, _ = case
    return kernel, (stride, padding, dilation, groups)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_propagate_and_output_shape(case):
    c_in, c_out, kernel, stride, padding, dilation, groups, hw = case
    weight = torch.rand(c_out, c_in // groups, *kernel, generator=_gen(1))
    x = _spikes(2, c_in, *hw)
    ref = F.conv2d(x, weight, None, stride, padding, dilation, groups)
    assert torch.equal(sf.conv2d_propagate(x, weight, stride, padding, dilation, groups), ref)
    assert sf.conv2d_output_shape(hw, kernel, stride, padding, dilation) == ref.shape[2:]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_propagate_delayed_equals_sum_of_convolutions(case):
    c_in, c_out, kernel, stride, padding, dilation, groups, hw = case
    length = 3
    weight = torch.rand(c_out, c_in // groups, *kernel, generator=_gen(1))
    delays = torch.randint(0, length, weight.shape, generator=_gen(2))
    history = _spikes(length, 2, c_in, *hw, p=0.5)
    stacked = sf.conv2d_stack_weight(weight, _onehot(delays, length))
    got = sf.conv2d_propagate_delayed(history, stacked, stride, padding, dilation, groups)
    expected = sum(
        F.conv2d(history[k], weight * (delays == k), None, stride, padding, dilation, groups)
        for k in range(length)
    )
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_conv2d_unfold_by_loop():
    case = CONV_CASES[1]
    c_in, c_out, (kh, kw), (sh, sw), (ph, pw), (dh, dw), groups, (height, width) = case
    x = torch.rand(1, c_in, height, width, generator=_gen(3))
    kernel, geometry = _geometry(case)
    patches = sf.conv2d_unfold(x, kernel, *geometry)
    cg = c_in // groups
    h_out, w_out = sf.conv2d_output_shape((height, width), kernel, (sh, sw), (ph, pw), (dh, dw))
    assert patches.shape == (1, groups, cg * kh * kw, h_out, w_out)
    for g, y, xo in itertools.product(range(groups), range(h_out), range(w_out)):
        for m, (c, u, v) in enumerate(itertools.product(range(cg), range(kh), range(kw))):
            iy, ix = y * sh - ph + u * dh, xo * sw - pw + v * dw
            inside = 0 <= iy < height and 0 <= ix < width
            expected = float(x[0, g * cg + c, iy, ix]) if inside else 0.0
            assert float(patches[0, g, m, y, xo]) == expected


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_correlate_equals_weight_gradient(case):
    c_in, c_out, kernel, stride, padding, dilation, groups, hw = case
    weight = torch.rand(c_out, c_in // groups, *kernel, generator=_gen(1), requires_grad=True)
    pre = torch.rand(3, c_in, *hw, generator=_gen(2))
    out = F.conv2d(pre, weight, None, stride, padding, dilation, groups)
    post = torch.rand(out.shape, generator=_gen(3))
    (grad,) = torch.autograd.grad((out * post).sum(), weight)
    kernel, geometry = _geometry(case)
    patches = sf.conv2d_unfold(pre, kernel, *geometry)
    torch.testing.assert_close(sf.conv2d_correlate(post, patches, weight.shape), grad)
    per_batch = sf.conv2d_correlate(post, patches, weight.shape, per_batch=True)
    torch.testing.assert_close(per_batch.sum(0), grad)
    doubled = sf.conv2d_correlate(post, patches, weight.shape, pre_map=lambda p: 2 * p)
    torch.testing.assert_close(doubled, 2 * grad)


@pytest.mark.parametrize("per_batch", [False, True])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_correlate_delayed_selects_each_synapses_delay(case, per_batch):
    c_in, c_out, kernel, stride, padding, dilation, groups, hw = case
    length, batch = 3, 2
    shape = (c_out, c_in // groups, *kernel)
    delays = torch.randint(0, length, shape, generator=_gen(4))
    history = torch.rand(length, batch, c_in, *hw, generator=_gen(5))
    _, geometry = _geometry(case)
    patches = torch.stack([sf.conv2d_unfold(history[k], kernel, *geometry) for k in range(length)])
    h_out, w_out = patches.shape[-2:]
    post = torch.rand(batch, c_out, h_out, w_out, generator=_gen(6))
    got = sf.conv2d_correlate_delayed(post, patches, delays, per_batch)
    expected = sum(
        torch.where(delays == k, sf.conv2d_correlate(post, patches[k], shape, per_batch), 0.0)
        for k in range(length)
    )
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_conv2d_synapse_trace_and_receptive_field_sum_by_loop():
    case = CONV_CASES[1]
    c_in, c_out, kernel, stride, padding, dilation, groups, hw = case
    trace = torch.rand(1, c_in, *hw, generator=_gen(7))
    _, geometry = _geometry(case)
    patches = sf.conv2d_unfold(trace, kernel, *geometry)
    syn = sf.conv2d_synapse_trace(patches, c_out)
    per_group = c_out // groups
    h_out, w_out = patches.shape[-2:]
    assert syn.shape == (1, c_out, h_out, w_out, patches.shape[2])
    for o in range(c_out):
        torch.testing.assert_close(syn[0, o], patches[0, o // per_group].permute(1, 2, 0))
    weight_shape = (c_out, c_in // groups, *kernel)
    total = sf.conv2d_receptive_field_sum(trace, weight_shape, *geometry)
    torch.testing.assert_close(total, syn.sum(-1))


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------
def test_max_pool2d_winner_by_hand():
    spikes = torch.tensor([[[[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]]])
    trace = torch.tensor([[[[0.3, 0.9, 0.2, 0.6], [0.7, 0.1, 0.5, 0.4]]]])
    # window 1: the spiking cells (0.3, 0.7) beat the silent 0.9; window 2: largest trace
    out_s, out_t = sf.max_pool2d_winner(spikes, trace, (2, 2), (2, 2), (0, 0), (1, 1))
    assert torch.equal(out_s, torch.tensor([[[[1.0, 0.0]]]]))
    assert torch.equal(out_t, torch.tensor([[[[0.7, 0.6]]]]))
    out_s, out_t = sf.max_pool2d_winner(spikes, None, (2, 2), (2, 2), (0, 0), (1, 1))
    assert torch.equal(out_s, torch.tensor([[[[1.0, 0.0]]]])) and out_t is None


def test_adaptive_max_pool2d_winner_by_hand():
    spikes = torch.tensor([[[[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]]])
    trace = torch.tensor([[[[0.9, 0.2, 0.1], [0.3, 0.8, 0.4]]]])
    # output (1, 2): columns [0, 2) and [1, 3)
    out_s, out_t = sf.adaptive_max_pool2d_winner(spikes, trace, (1, 2))
    assert torch.equal(out_s, torch.tensor([[[[0.0, 1.0]]]]))
    assert torch.equal(out_t, torch.tensor([[[[0.9, 0.1]]]]))


def test_avg_pool2d_and_window_sum():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out, out_trace = sf.avg_pool2d(x, 2 * x, (2, 2), (2, 2), (0, 0))
    assert torch.equal(out, torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    assert torch.equal(out_trace, 2 * out)
    assert sf.avg_pool2d(x, None, (2, 2), (2, 2), (0, 0))[1] is None
    # padding 1, stride 2: the corner window holds x[0, 0] only
    total = sf.avg_pool2d_window_sum(x, (2, 2), (2, 2), (1, 1))
    assert float(total[0, 0, 0, 0]) == 0.0 and float(total[0, 0, 1, 1]) == 5 + 6 + 9 + 10
