"""Tests of pysnn.connection without delays: Linear, Recurrent, Conv2d and the pools.

Every result is compared with an independent reference written here: ``x @ W.T``,
``torch.nn.functional`` convolutions/poolings, or explicit Python loops.
"""

import copy
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from pysnn.connection import (
    AdaptiveMaxPool2d,
    AvgPool2d,
    Connection,
    Conv2d,
    Linear,
    MaxPool2d,
    Recurrent,
    Sparse,
)
from pysnn.neuron import LIFNeuron


def _spikes(*shape, p=0.4, generator=None, device="cpu", dtype=torch.float32):
    return (torch.rand(*shape, generator=generator) < p).to(dtype=dtype, device=device)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _state_snapshot(module):
    """Everything that defines a connection's state: buffers, weights and ring-buffer head."""
    snap = {k: v.clone() for k, v in module.state_dict().items() if isinstance(v, torch.Tensor)}
    line = module.delay_line
    return snap, line.head, module.is_fresh, line.in_shape, module.batch_size


def _assert_same_state(module, snapshot):
    tensors, head, fresh, in_shape, batch = snapshot
    now = {k: v for k, v in module.state_dict().items() if isinstance(v, torch.Tensor)}
    assert now.keys() == tensors.keys()
    for key, value in tensors.items():
        assert torch.equal(now[key], value), key
    line = module.delay_line
    assert (line.head, module.is_fresh, line.in_shape, module.batch_size) == (
        head,
        fresh,
        in_shape,
        batch,
    )


# ---------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 7), (5, 1, 7), (3, 2, 4, 7)])
def test_linear_equals_matmul(device, shape):
    conn = Linear(7, 4).to(device)
    torch.manual_seed(1)
    for _ in range(3):
        x = _spikes(*shape, device=device)
        out, trace = conn(x)
        assert out.shape == (*shape[:-1], 4)
        assert trace is None
        torch.testing.assert_close(out, x @ conn.weight.T)


def test_linear_real_valued_input_and_weights_by_hand():
    conn = Linear(3, 2)
    with torch.no_grad():
        conn.weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]))
    out, _ = conn(torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]))
    assert torch.equal(out, torch.tensor([[-1.0, 3.0], [-1.5, 2.0]]))


def test_linear_pysnn01_positional_arguments():
    # Linear(in_features, out_features, batch_size, dt, delay): batch_size is ignored
    conn = Linear(6, 3, 8, 0.5, 1.0)
    assert conn.dt == 0.5
    assert conn.max_delay == 2
    out, _ = conn(torch.zeros(2, 1, 6))  # a batch of 2 although batch_size=8
    assert out.shape == (2, 1, 3)


def test_linear_trace_passthrough(device):
    conn = Linear(5, 3).to(device)
    x = _spikes(4, 1, 5, device=device)
    trace = torch.rand(4, 1, 5, device=device)
    out, out_trace = conn(x, trace)
    assert torch.equal(out_trace, trace)
    torch.testing.assert_close(out, x @ conn.weight.T)
    assert torch.equal(conn.pre_spikes, x)
    assert torch.equal(conn.pre_trace, trace)


@pytest.mark.parametrize("shape", [(4, 5), (4, 1, 5)])
def test_linear_trace_per_synapse(shape):
    conn = Linear(5, 3, trace_per_synapse=True)
    x = _spikes(*shape)
    trace = torch.rand(*shape)
    _, syn = conn(x, trace)
    assert syn.shape == (*shape[:-1], 3, 5)
    for idx in itertools.product(*[range(n) for n in shape[:-1]]):
        for i in range(3):
            for j in range(5):
                assert syn[(*idx, i, j)] == trace[(*idx, j)]


def test_linear_bool_input_equals_float():
    conn = Linear(6, 4)
    x = torch.rand(3, 6) < 0.5
    out_bool, _ = conn(x)
    conn.reset_state()
    out_float, _ = conn(x.float())
    assert out_bool.dtype == torch.float32
    assert torch.equal(out_bool, out_float)


def test_linear_double():
    conn = Linear(6, 4).double()
    assert conn.weight.dtype == torch.float64
    x = _spikes(3, 6, dtype=torch.float64)
    out, trace = conn(x, torch.rand(3, 6, dtype=torch.float64))
    assert out.dtype == torch.float64 and trace.dtype == torch.float64
    torch.testing.assert_close(out, x @ conn.weight.T)
    with pytest.raises(TypeError, match="spikes"):
        conn(torch.zeros(3, 6))  # float32 into a float64 connection


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_linear_and_lif(dtype):
    torch.manual_seed(0)
    conn = Linear(16, 8)
    with torch.no_grad():
        conn.weight.uniform_(0.0, 0.5)
    conn = conn.to(dtype)
    lif = LIFNeuron((8,), thresh=1.0, v_rest=0.0, alpha_v=1.0, tau_v=0.8).to(dtype)
    total = 0.0
    for _ in range(20):
        x = _spikes(4, 16, dtype=dtype)
        inp, _ = conn(x)
        assert inp.dtype == dtype and inp.shape == (4, 8)
        ref = x.float() @ conn.weight.float().T
        torch.testing.assert_close(inp.float(), ref, atol=0.05, rtol=0.02)
        spikes, trace = lif(inp)
        assert spikes.dtype == dtype and trace.dtype == dtype
        assert set(spikes.unique().tolist()) <= {0.0, 1.0}
        assert torch.isfinite(lif.v_cell.float()).all()
        total += float(spikes.float().sum())
    assert total > 0  # the input is strong enough to make the LIF fire


# ---------------------------------------------------------------------------
# Recurrent
# ---------------------------------------------------------------------------
def test_recurrent_zero_diagonal_ignores_hand_set_diagonal():
    conn = Recurrent(5)
    assert torch.all(torch.diagonal(conn.weight) == 0)
    with torch.no_grad():
        conn.weight.fill_diagonal_(10.0)
    w_off = conn.weight.clone()
    w_off.fill_diagonal_(0.0)
    x = _spikes(3, 1, 5, p=0.6)
    out, _ = conn(x)
    torch.testing.assert_close(out, x @ w_off.T)
    # one spiking neuron: it receives nothing from itself
    conn.reset_state()
    one = torch.zeros(1, 5)
    one[0, 2] = 1.0
    out, _ = conn(one)
    assert out[0, 2] == 0
    torch.testing.assert_close(out[0], w_off[:, 2])
    mask = conn.plastic_mask
    assert mask.dtype == torch.bool
    assert not mask.diagonal().any()
    assert mask.sum() == 5 * 4


def test_recurrent_reset_weights_keeps_zero_diagonal():
    conn = Recurrent(4)
    conn.reset_weights("constant", 2.0)
    expected = torch.full((4, 4), 2.0)
    expected.fill_diagonal_(0.0)
    assert torch.equal(conn.weight, expected)


def test_recurrent_with_self_connections():
    conn = Recurrent(4, zero_diagonal=False)
    with torch.no_grad():
        conn.weight.copy_(torch.arange(16.0).view(4, 4))
    assert conn.plastic_mask.all()
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    out, _ = conn(x)
    # out_i = W_i0 + W_i2, self-connection included
    assert torch.equal(out, torch.tensor([[2.0, 10.0, 18.0, 26.0]]))


# ---------------------------------------------------------------------------
# Conv2d
# ---------------------------------------------------------------------------
CONV_CASES = [
    # in, out, kernel, stride, padding, dilation, groups, (H, W)
    (2, 3, 3, 1, 0, 1, 1, (8, 8)),
    (3, 4, (3, 2), 2, 1, 1, 1, (9, 7)),
    (4, 6, (2, 3), (2, 1), (1, 2), (2, 1), 2, (10, 9)),
    (2, 4, 3, 1, 2, 2, 2, (7, 8)),
    (4, 8, (1, 3), 3, 0, 1, 4, (6, 11)),
    (6, 3, (3, 3), (1, 2), (0, 1), (1, 2), 3, (8, 9)),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_equals_f_conv2d(device, case):
    cin, cout, k, stride, padding, dilation, groups, hw = case
    conn = Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups)
    conn = conn.to(device)
    g = _gen(3)
    for spikes in (True, False):
        x = _spikes(2, cin, *hw, generator=g) if spikes else torch.randn(2, cin, *hw, generator=g)
        x = x.to(device)
        out, _ = conn(x)
        ref = F.conv2d(x, conn.weight, None, stride, padding, dilation, groups)
        assert out.shape == ref.shape
        assert out.shape[2:] == conn.output_shape(hw)
        torch.testing.assert_close(out, ref)


def test_conv2d_by_hand():
    conn = Conv2d(1, 1, 2)
    with torch.no_grad():
        conn.weight.copy_(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 1] = 1.0
    out, _ = conn(x)
    # the spike at (1, 1) is under kernel tap (ky, kx) of output (1 - ky, 1 - kx)
    assert torch.equal(out[0, 0], torch.tensor([[4.0, 3.0], [2.0, 1.0]]))


def test_conv2d_pysnn01_positional_arguments():
    # Conv2d(in, out, kernel, im_dims, batch_size, dt, delay, stride, padding, dilation)
    conn = Conv2d(2, 3, 3, (8, 8), 16, 1.0, 0, 1, 1, 1)
    x = _spikes(4, 2, 8, 8)
    out, _ = conn(x)
    torch.testing.assert_close(out, F.conv2d(x, conn.weight, None, 1, 1, 1))


def test_conv2d_im_dims_checked_only_when_given():
    conn = Conv2d(2, 3, 3, im_dims=(8, 8))
    conn(torch.zeros(1, 2, 8, 8))
    conn.reset_state()
    with pytest.raises(ValueError, match=r"8, 8"):
        conn(torch.zeros(1, 2, 8, 9))
    free = Conv2d(2, 3, 3)
    assert free(torch.zeros(1, 2, 5, 9))[0].shape == (1, 3, 3, 7)
    free.reset_state()
    assert free(torch.zeros(3, 2, 12, 6))[0].shape == (3, 3, 10, 4)


def test_conv2d_bool_input():
    conn = Conv2d(2, 3, 3, padding=1)
    x = torch.rand(2, 2, 6, 6) < 0.5
    out, _ = conn(x)
    torch.testing.assert_close(out, F.conv2d(x.float(), conn.weight, None, 1, 1))


@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[2], CONV_CASES[3]])
def test_conv2d_trace_per_synapse_matches_windows(case):
    cin, cout, k, stride, padding, dilation, groups, hw = case
    conn = Conv2d(
        cin,
        cout,
        k,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        trace_per_synapse=True,
    )
    trace = torch.rand(2, cin, *hw)
    out, syn = conn(_spikes(2, cin, *hw), trace)
    kh, kw = conn.kernel_size
    sh, sw = conn.stride
    ph, pw = conn.padding
    dh, dw = conn.dilation
    cg = cin // groups
    assert syn.shape == (2, cout, out.shape[2], out.shape[3], cg * kh * kw)
    height, width = hw
    for b, o, y, x in itertools.product(
        range(2), range(cout), range(out.shape[2]), range(out.shape[3])
    ):
        group = o // (cout // groups)
        m = 0
        for c in range(cg):
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = y * sh - ph + ky * dh, x * sw - pw + kx * dw
                    inside = 0 <= iy < height and 0 <= ix < width
                    expected = trace[b, group * cg + c, iy, ix] if inside else 0.0
                    assert syn[b, o, y, x, m] == expected
                    m += 1


# ---------------------------------------------------------------------------
# receptive_field_sum
# ---------------------------------------------------------------------------
def test_linear_receptive_field_sum():
    conn = Linear(5, 3)
    trace = torch.rand(4, 1, 5)
    total = conn.receptive_field_sum(trace)
    assert total.shape == (4, 1, 3)
    for b in range(4):
        for i in range(3):
            assert math.isclose(
                float(total[b, 0, i]), sum(float(v) for v in trace[b, 0]), rel_tol=1e-6
            )


@pytest.mark.parametrize("case", [CONV_CASES[0], CONV_CASES[2], CONV_CASES[3]])
def test_conv2d_receptive_field_sum(case):
    cin, cout, k, stride, padding, dilation, groups, hw = case
    conn = Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups)
    trace = torch.rand(2, cin, *hw, dtype=torch.float64)
    total = conn.double().receptive_field_sum(trace)
    kh, kw = conn.kernel_size
    cg = cin // groups
    assert total.shape[:2] == (2, cout)
    for b, o, y, x in itertools.product(
        range(2), range(cout), range(total.shape[2]), range(total.shape[3])
    ):
        group = o // (cout // groups)
        expected = 0.0
        for c, ky, kx in itertools.product(range(cg), range(kh), range(kw)):
            iy = y * conn.stride[0] - conn.padding[0] + ky * conn.dilation[0]
            ix = x * conn.stride[1] - conn.padding[1] + kx * conn.dilation[1]
            if 0 <= iy < hw[0] and 0 <= ix < hw[1]:
                expected += float(trace[b, group * cg + c, iy, ix])
        assert math.isclose(float(total[b, o, y, x]), expected, rel_tol=1e-12, abs_tol=1e-12)


# ---------------------------------------------------------------------------
# Pools
# ---------------------------------------------------------------------------
def _winner(cells):
    """Brute-force winner of a window: list of (spike, trace) -> (spike, trace)."""
    spiking = [c for c in cells if c[0] > 0]
    pool = spiking if spiking else cells
    return max(pool, key=lambda c: c[1])


def _brute_max_pool(spikes, trace, kernel, stride, padding, dilation, out_hw):
    batch, chans, height, width = spikes.shape
    out_s = torch.zeros(batch, chans, *out_hw, dtype=spikes.dtype)
    out_t = torch.zeros(batch, chans, *out_hw, dtype=trace.dtype)
    for b, c, y, x in itertools.product(range(batch), range(chans), *map(range, out_hw)):
        cells = []
        for ky, kx in itertools.product(range(kernel[0]), range(kernel[1])):
            iy = y * stride[0] - padding[0] + ky * dilation[0]
            ix = x * stride[1] - padding[1] + kx * dilation[1]
            if 0 <= iy < height and 0 <= ix < width:
                cells.append((float(spikes[b, c, iy, ix]), float(trace[b, c, iy, ix])))
        out_s[b, c, y, x], out_t[b, c, y, x] = _winner(cells)
    return out_s, out_t


POOL_CASES = [
    # kernel, stride, padding, dilation, ceil_mode, (H, W)
    ((2, 2), None, (0, 0), (1, 1), False, (6, 6)),
    ((3, 3), (2, 2), (1, 1), (1, 1), False, (7, 8)),
    ((2, 3), (1, 2), (0, 1), (2, 1), False, (7, 9)),
    ((3, 2), (2, 2), (0, 0), (1, 1), True, (8, 7)),
]


@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool_winner_brute_force(case):
    kernel, stride, padding, dilation, ceil_mode, hw = case
    pool = MaxPool2d(kernel, stride, padding, dilation, ceil_mode)
    g = _gen(7)
    for p in (0.05, 0.3, 0.8):
        spikes = _spikes(2, 3, *hw, p=p, generator=g)
        trace = torch.rand(2, 3, *hw, generator=g) * 3.0 - 1.0  # also negative traces
        out_s, out_t = pool(spikes, trace)
        ref_spikes = F.max_pool2d(spikes, kernel, stride, padding, dilation, ceil_mode)
        assert torch.equal(out_s, ref_spikes)
        brute_s, brute_t = _brute_max_pool(
            spikes,
            trace,
            kernel,
            stride or kernel,
            padding,
            dilation,
            tuple(out_s.shape[2:]),
        )
        assert torch.equal(out_s, brute_s)
        assert torch.equal(out_t, brute_t)


def test_max_pool_winner_by_hand():
    pool = MaxPool2d(2)
    spikes = torch.tensor([[[[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]]])
    trace = torch.tensor([[[[0.3, 0.9, 0.2, 0.6], [0.7, 0.1, 0.5, 0.4]]]])
    out_s, out_t = pool(spikes, trace)
    # window 1: two spiking cells (0.3, 0.7) beat the silent 0.9 -> 0.7
    # window 2: no spike -> largest trace 0.6
    assert torch.equal(out_s, torch.tensor([[[[1.0, 0.0]]]]))
    assert torch.equal(out_t, torch.tensor([[[[0.7, 0.6]]]]))


def test_max_pool_without_trace_and_bool_input():
    pool = MaxPool2d(2)
    spikes = torch.rand(2, 3, 6, 6) < 0.2
    out_s, out_t = pool(spikes)
    assert out_t is None
    assert torch.equal(out_s, F.max_pool2d(spikes.float(), 2))
    # bool spikes with a float64 trace follow the trace's dtype
    trace = torch.rand(2, 3, 6, 6, dtype=torch.float64)
    out_s, out_t = pool(spikes, trace)
    assert out_s.dtype == torch.float64 and out_t.dtype == torch.float64
    brute_s, brute_t = _brute_max_pool(
        spikes.double(), trace, (2, 2), (2, 2), (0, 0), (1, 1), (3, 3)
    )
    assert torch.equal(out_s, brute_s) and torch.equal(out_t, brute_t)


def _adaptive_bounds(size, out):
    return [(math.floor(i * size / out), math.ceil((i + 1) * size / out)) for i in range(out)]


@pytest.mark.parametrize("hw,out_hw", [((6, 6), (3, 3)), ((7, 10), (3, 4)), ((5, 5), (5, 2))])
def test_adaptive_max_pool_brute_force(hw, out_hw):
    pool = AdaptiveMaxPool2d(out_hw)
    g = _gen(11)
    spikes = _spikes(2, 2, *hw, p=0.25, generator=g)
    trace = torch.rand(2, 2, *hw, generator=g)
    out_s, out_t = pool(spikes, trace)
    assert torch.equal(out_s, F.adaptive_max_pool2d(spikes, out_hw))
    rows, cols = _adaptive_bounds(hw[0], out_hw[0]), _adaptive_bounds(hw[1], out_hw[1])
    for b, c, y, x in itertools.product(range(2), range(2), *map(range, out_hw)):
        cells = [
            (float(spikes[b, c, iy, ix]), float(trace[b, c, iy, ix]))
            for iy in range(*rows[y])
            for ix in range(*cols[x])
        ]
        spike, tr = _winner(cells)
        assert out_s[b, c, y, x] == spike
        assert out_t[b, c, y, x] == tr


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=2),
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), count_include_pad=False),
        dict(kernel_size=3, stride=2, ceil_mode=True),
    ],
)
def test_avg_pool_equals_f_avg_pool2d(kwargs):
    pool = AvgPool2d(**kwargs)
    spikes = _spikes(2, 3, 7, 8)
    trace = torch.rand(2, 3, 7, 8)
    out_s, out_t = pool(spikes, trace)
    torch.testing.assert_close(out_s, F.avg_pool2d(spikes, **kwargs))
    torch.testing.assert_close(out_t, F.avg_pool2d(trace, **kwargs))
    assert pool(spikes)[1] is None


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=2),
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
        dict(kernel_size=(2, 3), stride=2, ceil_mode=True),
    ],
)
def test_avg_pool_receptive_field_sum_brute_force(kwargs):
    pool = AvgPool2d(**kwargs)
    trace = torch.rand(2, 2, 7, 8, dtype=torch.float64)
    total = pool.receptive_field_sum(trace)
    kh, kw = pool.kernel_size
    (sh, sw), (ph, pw) = pool.stride, pool.padding
    assert total.shape == F.avg_pool2d(trace, **kwargs).shape
    for b, c, y, x in itertools.product(range(2), range(2), *map(range, total.shape[2:])):
        expected = sum(
            float(trace[b, c, y * sh - ph + ky, x * sw - pw + kx])
            for ky in range(kh)
            for kx in range(kw)
            if 0 <= y * sh - ph + ky < 7 and 0 <= x * sw - pw + kx < 8
        )
        assert math.isclose(float(total[b, c, y, x]), expected, rel_tol=1e-12)


def test_max_pools_have_no_receptive_field_sum():
    for pool in (MaxPool2d(2), AdaptiveMaxPool2d(2)):
        with pytest.raises(TypeError):
            pool.receptive_field_sum(torch.rand(1, 1, 4, 4))


def test_pools_follow_input_dtype():
    for pool in (MaxPool2d(2), AdaptiveMaxPool2d(2), AvgPool2d(2)):
        x = _spikes(1, 2, 4, 4, dtype=torch.float64)
        out_s, out_t = pool(x, torch.rand(1, 2, 4, 4, dtype=torch.float64))
        assert out_s.dtype == torch.float64 and out_t.dtype == torch.float64
        with pytest.raises(ValueError, match="spikes"):
            pool(torch.zeros(2, 4, 4, dtype=torch.float64))


# ---------------------------------------------------------------------------
# Validation: the right error, naming the argument, before any state change
# ---------------------------------------------------------------------------
def _running_delayed_linear():
    torch.manual_seed(5)
    conn = Linear(4, 3, delay=2)
    for _ in range(3):
        conn(_spikes(2, 4), torch.rand(2, 4))
    return conn


@pytest.mark.parametrize(
    "spikes,trace,error,match",
    [
        (torch.zeros(2, 5), None, ValueError, "in_features=4"),
        (torch.zeros(2, 4, dtype=torch.float64), None, TypeError, "spikes.*dtype"),
        (torch.full((2, 4), 3, dtype=torch.int64), None, ValueError, "spikes is an integer"),
        ([[0.0] * 4] * 2, None, TypeError, "spikes.*torch.Tensor"),
        (torch.zeros(2, 4), torch.zeros(2, 1, 4), ValueError, "trace.*shape"),
        (torch.zeros(2, 4), torch.zeros(2, 4, dtype=torch.float64), TypeError, "trace.*dtype"),
        (torch.zeros(2, 4), "trace", TypeError, "trace.*torch.Tensor"),
        (torch.zeros(3, 4), None, ValueError, "batch size"),
        (torch.zeros(2, 1, 4), None, ValueError, "per-sample shape"),
        (torch.tensor([[0.0, 1.0, math.nan, 0.0]] * 2), None, ValueError, "spikes must be finite"),
        (torch.full((2, 4), math.inf), None, ValueError, "spikes must be finite"),
        (torch.full((2, 4), -math.inf), torch.zeros(2, 4), ValueError, "spikes must be finite"),
        (torch.zeros(2, 4), torch.full((2, 4), math.nan), ValueError, "trace must be finite"),
        (torch.ones(2, 4), torch.tensor([[0.0, 0, 0, math.inf]] * 2), ValueError, "trace"),
        (torch.ones(2, 4, dtype=torch.bool), torch.full((2, 4), math.nan), ValueError, "trace"),
    ],
)
def test_linear_bad_inputs_leave_state_untouched(spikes, trace, error, match):
    conn = _running_delayed_linear()
    twin = _running_delayed_linear()
    snapshot = _state_snapshot(conn)
    with pytest.raises(error, match=match):
        conn(spikes, trace)
    _assert_same_state(conn, snapshot)
    # and the simulation goes on exactly as if the bad call never happened
    for _ in range(3):
        x, tr = _spikes(2, 4), torch.rand(2, 4)
        a, ta = conn(x, tr)
        b, tb = twin(x, tr)
        assert torch.equal(a, b) and torch.equal(ta, tb)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(in_features=0, out_features=3), ValueError, "in_features"),
        (dict(in_features=-2, out_features=3), ValueError, "in_features"),
        (dict(in_features=4, out_features=0), ValueError, "out_features"),
        (dict(in_features=2.0, out_features=3), ValueError, "in_features"),
        (dict(in_features=4, out_features=3, delay=-1), ValueError, "delay"),
        (dict(in_features=4, out_features=3, delay=float("nan")), ValueError, "delay"),
        (dict(in_features=4, out_features=3, delay=float("inf")), ValueError, "delay"),
        (dict(in_features=4, out_features=3, delay=1.5), ValueError, "delay"),
        (dict(in_features=4, out_features=3, delay="1"), TypeError, "delay"),
        (dict(in_features=4, out_features=3, delay=torch.zeros(4, 3)), ValueError, "delay"),
        (dict(in_features=4, out_features=3, delay=torch.zeros(3)), ValueError, "delay"),
        (dict(in_features=4, out_features=3, dt=0.0), ValueError, "dt"),
    ],
)
def test_linear_bad_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        Linear(**kwargs)


def test_bad_per_synapse_delay_values():
    with pytest.raises(ValueError, match="delay"):
        Linear(3, 2, delay=torch.tensor([[0.0, 1.0, -1.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="delay"):
        Linear(3, 2, delay=torch.tensor([[0.0, 1.5, 1.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="delay"):
        Linear(3, 2, delay=torch.tensor([[0.0, float("nan"), 1.0], [0.0, 0.0, 0.0]]))


def test_set_delay_error_keeps_state():
    conn = _running_delayed_linear()
    snapshot = _state_snapshot(conn)
    for bad in (-1.0, 0.5, torch.zeros(4, 3)):
        with pytest.raises(ValueError, match="delay"):
            conn.set_delay(bad)
    assert conn.max_delay == 2
    _assert_same_state(conn, snapshot)


def test_conv2d_bad_inputs():
    with pytest.raises(ValueError, match="in_channels"):
        Conv2d(0, 3, 3)
    with pytest.raises(ValueError, match="groups"):
        Conv2d(3, 4, 3, groups=2)
    with pytest.raises(TypeError, match="kernel_size"):
        Conv2d(2, 4, (3, 3, 3))
    with pytest.raises(ValueError, match="delay"):
        Conv2d(2, 4, 3, delay=torch.zeros(4, 2, 3))
    conn = Conv2d(2, 4, 3, delay=1)
    conn(torch.zeros(1, 2, 5, 5))
    snapshot = _state_snapshot(conn)
    with pytest.raises(ValueError, match="in_channels=2"):
        conn(torch.zeros(1, 3, 5, 5))
    with pytest.raises(ValueError, match="in_channels=2"):
        conn(torch.zeros(2, 5, 5))
    with pytest.raises(TypeError, match="spikes"):
        conn(torch.zeros(1, 2, 5, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="trace"):
        conn(torch.zeros(1, 2, 5, 5), torch.zeros(1, 2, 5, 4))
    _assert_same_state(conn, snapshot)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_device_mismatch():
    conn = Linear(4, 3).cuda()
    with pytest.raises(ValueError, match="spikes.*device"):
        conn(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="trace.*device"):
        conn(torch.zeros(2, 4, device="cuda"), torch.zeros(2, 4))
    assert conn.is_fresh


# ---------------------------------------------------------------------------
# Event-driven propagation
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 300), (5, 300), (3, 2, 300)])
def test_linear_event_driven_equals_dense(shape):
    gen = torch.Generator().manual_seed(3)
    spikes = (torch.rand(*shape, generator=gen) < 0.03).double()
    spikes[..., 7] = 0.5  # graded input values are weighted, not just counted
    event = Linear(300, 40, event_driven=True).double()
    dense = Linear(300, 40, event_driven=False).double()
    with torch.no_grad():
        dense.weight.copy_(event.weight)
    x_event, _ = event(spikes)
    x_dense, _ = dense(spikes)
    assert x_event.shape == shape[:-1] + (40,)
    torch.testing.assert_close(x_event, spikes @ dense.weight.T, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(x_event, x_dense, rtol=1e-12, atol=1e-12)


def test_linear_event_driven_no_active_input_gives_zeros():
    conn = Linear(50, 7, event_driven=True)
    out, _ = conn(torch.zeros(2, 50))
    assert torch.equal(out, torch.zeros(2, 7))


def test_linear_auto_mode_picks_event_path_only_when_sparse_and_large(monkeypatch):
    calls = []
    real = torch.Tensor.index_select

    def spy(self, dim, index):
        calls.append(dim)
        return real(self, dim, index)

    monkeypatch.setattr(torch.Tensor, "index_select", spy)
    big = Linear(784, 700)  # 548,800 weights >= EVENT_MIN_SYNAPSES
    sparse = torch.zeros(1, 784)
    sparse[0, :10] = 1.0
    out, _ = big(sparse)
    assert calls, "sparse input on a large layer should use the event path"
    torch.testing.assert_close(out, sparse @ big.weight.T)
    calls.clear()
    big(torch.ones(1, 784))  # dense input: matmul
    assert not calls
    small = Linear(10, 5)  # too small for the event path
    small(torch.zeros(1, 10))
    assert not calls


def test_linear_auto_mode_sums_each_samples_active_rows_in_a_batch(monkeypatch):
    """In a batch, each sample's own active inputs are summed (one embedding_bag)."""
    import torch.nn.functional as F

    bags = []
    real = F.embedding_bag

    def spy(index, weight, offsets, *args, **kwargs):
        bags.append((index.numel(), offsets.tolist()))
        return real(index, weight, offsets, *args, **kwargs)

    monkeypatch.setattr(F, "embedding_bag", spy)
    big = Linear(784, 700).double()
    gen = torch.Generator().manual_seed(4)
    spikes = (torch.rand(32, 784, generator=gen) < 0.02).double()
    spikes[5] = 0.0  # a sample without input gets zeros
    spikes[6, 3] = 0.25  # graded values are weighted
    out, _ = big(spikes)
    torch.testing.assert_close(out, spikes @ big.weight.T, rtol=1e-12, atol=1e-12)
    assert len(bags) == 1
    n_events, offsets = bags[0]
    assert n_events == int(torch.count_nonzero(spikes))  # no union over the batch
    assert offsets == (spikes != 0).sum(1).cumsum(0).sub((spikes != 0).sum(1)).tolist()
    bags.clear()
    big(torch.rand(32, 784, generator=gen).double())  # dense input: matmul
    assert not bags


def test_linear_event_driven_argument_checks():
    with pytest.raises(TypeError, match="event_driven"):
        Linear(3, 2, event_driven="yes")
    with pytest.raises(ValueError, match="event_threshold"):
        Linear(3, 2, event_threshold=1.5)


# ---------------------------------------------------------------------------
# The protocol: a new connection type implements a few hooks
# ---------------------------------------------------------------------------
class _OneToOne(Connection):
    """Neuron j drives neuron j with weight w_j: three hooks and a kind."""

    kind = "one-to-one"

    def __init__(self, features, dt=1.0, delay=0):
        super().__init__((features,), dt, delay)
        self.reset_weights("uniform", a=0.5, b=1.5)

    def check_input_shape(self, shape):
        if shape[-1] != self.weight.shape[0]:
            raise ValueError(f"spikes must end with {self.weight.shape[0]}, got {tuple(shape)}")

    def propagate(self, spikes):
        return spikes * self.weight

    def correlate_arriving(self, post, pre, per_batch, pre_map):
        product = post * pre
        return product if per_batch else product.sum(0)


def test_new_connection_type_gets_delays_multistep_and_learning_api():
    conn = _OneToOne(3, delay=2).double()
    spikes = _spikes(6, 2, 3, generator=_gen(3), dtype=torch.float64)
    traces = torch.rand(6, 2, 3, generator=_gen(4), dtype=torch.float64)
    twin = copy.deepcopy(conn)
    outs = [conn(spikes[t], traces[t]) for t in range(6)]
    for t, (out, trace) in enumerate(outs):
        arrived = spikes[t - 2] if t >= 2 else torch.zeros(2, 3, dtype=torch.float64)
        torch.testing.assert_close(out, arrived * conn.weight)
        if t >= 2:
            assert torch.equal(trace, traces[t - 2])
    post = torch.rand(2, 3, generator=_gen(5), dtype=torch.float64)
    torch.testing.assert_close(conn.correlate(post, "trace"), (post * traces[3]).sum(0))
    torch.testing.assert_close(conn.post_sum(post), post.sum(0))
    x, _ = twin.forward_steps(spikes, traces)
    torch.testing.assert_close(x, torch.stack([o[0] for o in outs]))
    # declared capabilities: refused when built, not at the first step
    assert not type(conn).capabilities.per_synapse_delay
    with pytest.raises(ValueError, match="does not support per-synapse delays"):
        _OneToOne(3, delay=torch.tensor([0.0, 1.0, 2.0]))


# -- input values: graded or binary per family, never NaN/inf ----------------------------
GRADED = torch.tensor([[0.5, 2.0, -1.0, 0.0]])


def _families():
    """One small module of each family, with an input of the shape it takes."""
    sparse_indices = torch.tensor([[0, 1, 1], [0, 2, 3]])
    return [
        (Linear(4, 2), (1, 4), True),
        (Recurrent(4), (1, 4), True),
        (Sparse(4, 2, sparse_indices), (1, 4), True),
        (Conv2d(1, 2, 2), (1, 1, 2, 2), True),
        (AvgPool2d(2), (1, 1, 2, 2), True),
        (MaxPool2d(2), (1, 1, 2, 2), False),
        (AdaptiveMaxPool2d(1), (1, 1, 2, 2), False),
    ]


def test_linear_graded_input_is_the_weighted_sum():
    conn = Linear(4, 2)
    with torch.no_grad():
        conn.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [-1.0, 0.0, 1.0, 0.5]]))
    out, _ = conn(GRADED)
    # 0.5*1 + 2*2 - 1*3 + 0*4 = 1.5;  -0.5 + 0 - 1 + 0 = -1.5
    assert torch.equal(out, torch.tensor([[1.5, -1.5]]))


def test_sparse_graded_input_is_the_weighted_sum():
    conn = Sparse(4, 2, torch.tensor([[0, 1, 1], [0, 2, 3]]), weight=torch.tensor([1.0, 2.0, 4.0]))
    out, _ = conn(GRADED)
    # post 0 <- pre 0 (w 1): 0.5;  post 1 <- pre 2 (w 2), pre 3 (w 4): -2 + 0
    assert torch.equal(out, torch.tensor([[0.5, -2.0]]))


def test_avg_pool_of_rates_is_their_mean():
    out, _ = AvgPool2d(2)(GRADED.view(1, 1, 2, 2))
    assert torch.equal(out, torch.tensor([[[[0.375]]]]))  # (0.5 + 2 - 1 + 0) / 4


@pytest.mark.parametrize("index", range(7))
def test_graded_inputs_accepted_only_where_documented(index):
    module, shape, graded = _families()[index]
    name = type(module).__name__
    module(torch.zeros(shape))  # a running state that must survive the bad calls
    before = {k: v.clone() for k, v in module.state_dict().items() if isinstance(v, torch.Tensor)}
    pre = module.pre_spikes.clone()
    values = GRADED.abs().view(shape)  # 0.5 and 2.0 are graded, not spikes
    if graded:
        module(values)
        assert "Graded inputs" in type(module).__doc__
    else:
        with pytest.raises(ValueError, match=rf"{name}: spikes must be bool or exactly 0.0/1.0"):
            module(values)
        assert torch.equal(module.pre_spikes, pre)
    for bad in (math.nan, math.inf, -math.inf):
        spikes = torch.zeros(shape)
        spikes.view(-1)[1] = bad
        with pytest.raises(ValueError, match=rf"{name}: spikes must be finite"):
            module(spikes)
    if not graded:
        after = module.state_dict()
        assert all(torch.equal(after[k], v) for k, v in before.items())
    # bool spikes and exact 0/1 floats are accepted by every family
    module(torch.ones(shape, dtype=torch.bool))
    module(torch.ones(shape))


def test_multistep_window_with_a_late_nan_raises_before_any_state_change():
    conn = _running_delayed_linear()
    snapshot = _state_snapshot(conn)
    window = _spikes(5, 2, 4)
    window[3, 1, 2] = math.nan
    with pytest.raises(ValueError, match="spikes must be finite"):
        conn.forward_steps(window)
    trace = torch.rand(5, 2, 4)
    trace[4, 0, 0] = math.inf
    with pytest.raises(ValueError, match="trace must be finite"):
        conn.forward_steps(_spikes(5, 2, 4), trace)
    _assert_same_state(conn, snapshot)


def test_huge_finite_values_are_not_mistaken_for_inf():
    # the fused check's sum overflows (3e38 * 2 > float32 max); the exact re-check lets it pass
    conn = Linear(2, 1)
    with torch.no_grad():
        conn.weight.zero_()
    out, trace = conn(torch.tensor([[3e38, 3e38]]), torch.tensor([[3e38, 3e38]]))
    assert torch.equal(out, torch.zeros(1, 1)) and torch.equal(trace, torch.full((1, 2), 3e38))


def test_non_finite_weights_are_rejected_at_construction():
    indices = torch.tensor([[0, 1], [1, 0]])
    for bad in (math.nan, math.inf, torch.tensor([1.0, -math.inf])):
        with pytest.raises(ValueError, match="Sparse: weight must be finite"):
            Sparse(2, 2, indices, weight=bad)
    with pytest.raises(ValueError, match="weight must be finite"):
        Sparse.from_dense(torch.tensor([[0.0, math.nan], [1.0, 0.0]]))
    with pytest.raises(TypeError, match="weight must be a number or a tensor"):
        Sparse(2, 2, indices, weight="1")
    conn = Linear(3, 2)
    weight = conn.weight.clone()
    for kwargs in (dict(gain=math.nan), dict(a=-math.inf), dict(b=math.nan)):
        with pytest.raises(ValueError, match=f"{next(iter(kwargs))} must be finite"):
            conn.reset_weights("uniform", **kwargs)
    assert torch.equal(conn.weight, weight)


# -- smaller silent cases -----------------------------------------------------------------
def test_legacy_positional_batch_size_must_be_an_int():
    with pytest.raises(TypeError, match=r"batch_size .*got 2.0 \(float\)"):
        Linear(6, 4, 2.0)
    with pytest.raises(TypeError, match="batch_size"):
        Conv2d(2, 4, 3, (8, 8), 1.0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        Linear(6, 4, 0)
    conn = Linear(6, 4, 8, 0.5, 1.0)  # PySNN 0.1: batch_size=8 (ignored), dt, delay
    assert (conn.dt, conn.max_delay) == (0.5, 2)
    assert Conv2d(2, 4, 3, (8, 8), 4, 0.5, 1.0).max_delay == 2


def test_conv2d_kernel_larger_than_the_padded_input():
    with pytest.raises(ValueError, match=r"kernel_size \(5, 5\).*padded input height 3 \+ 2 \* 0"):
        Conv2d(1, 1, 5)(torch.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match="im_dims"):
        Conv2d(1, 1, 3, im_dims=(4, 2))
    with pytest.raises(ValueError, match="dilation"):
        Conv2d(1, 1, 3, dilation=2)(torch.zeros(1, 1, 4, 4))  # spans 5 pixels
    conn = Conv2d(1, 1, 5, padding=1)  # 3 + 2 * 1 = 5: one output pixel
    with torch.no_grad():
        conn.weight.fill_(1.0)
    assert torch.equal(conn(torch.ones(1, 1, 3, 3))[0], torch.full((1, 1, 1, 1), 9.0))
    for kwargs, name in ((dict(stride=0), "stride"), (dict(padding=-1), "padding")):
        with pytest.raises(ValueError, match=name):
            Conv2d(1, 1, 3, **kwargs)
    with pytest.raises(ValueError, match="kernel_size must be positive"):
        Conv2d(1, 1, 0)


def test_pool_geometry_checks():
    with pytest.raises(ValueError, match="kernel_size must be positive, got 0"):
        AvgPool2d(0)
    with pytest.raises(ValueError, match="stride must be positive"):
        MaxPool2d(2, stride=(1, 0))
    with pytest.raises(ValueError, match="padding must be at most half"):
        AvgPool2d(2, padding=2)
    with pytest.raises(ValueError, match="dilation must be positive"):
        MaxPool2d(2, dilation=0)
    with pytest.raises(ValueError, match="output_size must be positive"):
        AdaptiveMaxPool2d((0, 2))
    pool = MaxPool2d(3)
    with pytest.raises(ValueError, match=r"MaxPool2d: kernel_size \(3, 3\) spans 3 pixels"):
        pool(torch.zeros(1, 1, 2, 2))
    assert pool.is_fresh
    assert MaxPool2d(3, padding=1)(torch.ones(1, 1, 1, 1))[0].item() == 1.0


def test_population_outputs_skip_the_value_check_until_edited_in_place():
    """A population's own spikes and trace are trusted; an in-place edit makes them checked again."""
    from pysnn.neuron import Input
    from pysnn.validation import is_marked_valid

    inp = Input((4,), dt=1.0, alpha_t=1.0, tau_t=10.0, integrator="exact")
    conn = Linear(4, 3)
    spikes, trace = inp(torch.tensor([[1.0, 0.0, 1.0, 0.0]]))
    assert is_marked_valid(spikes) and is_marked_valid(trace)
    out, _ = conn(spikes, trace)
    torch.testing.assert_close(out, spikes @ conn.weight.t())
    spikes.mul_(float("nan"))  # no longer what the population produced
    assert not is_marked_valid(spikes)
    with pytest.raises(ValueError, match="spikes must be finite"):
        conn(spikes, trace)
    trace.fill_(float("nan"))
    with pytest.raises(ValueError, match="trace must be finite"):
        conn(torch.ones(1, 4), trace)
