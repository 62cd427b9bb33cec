"""Tests of synaptic delays (scalar and per synapse) in pysnn.connection.

The reference keeps the whole input history and evaluates

    I_i(t) = sum_j W_ij s_j(t - d_ij)        (s_j(t) = 0 for t < 0)

with explicit loops over synapses (Linear) or one ``F.conv2d`` per delay value
(Conv2d), independently of the ring buffers of the library.
"""

import copy
import itertools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from pysnn.connection import Conv2d, Linear, MaxPool2d, Recurrent
from pysnn.network import SNNNetwork
from pysnn.neuron import DecayFactor, Input, LIFNeuron


def _spike_train(steps, *shape, p=0.3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, *shape, generator=g) < p).to(dtype)


def _ref_linear(history, weight, delays, t):
    """sum_j W_ij s_j(t - d_ij) with loops over synapses; history: list of (B, ..., in)."""
    out_f, in_f = weight.shape
    lead = history[0].shape[:-1]
    out = torch.zeros(*lead, out_f, dtype=weight.dtype)
    for i in range(out_f):
        for j in range(in_f):
            d = int(delays[i, j])
            if t - d >= 0:
                out[..., i] += weight[i, j] * history[t - d][..., j]
    return out


def _ref_conv(history, conn, delays, t):
    """sum over delay values k of conv2d(s(t - k), W * [d == k])."""
    out = None
    for k in range(int(delays.max()) + 1):
        if t - k < 0:
            continue
        w_k = conn.weight * (delays == k).to(conn.weight.dtype)
        part = F.conv2d(
            history[t - k], w_k, None, conn.stride, conn.padding, conn.dilation, conn.groups
        )
        out = part if out is None else out + part
    return out


# ---------------------------------------------------------------------------
# Scalar delays
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("delay", [1, 2, 5])
def test_scalar_delay_spike_and_trace_arrive_after_d_steps(device, delay):
    conn = Linear(3, 3, delay=delay).to(device)
    with torch.no_grad():
        conn.weight.copy_(torch.eye(3))
    steps = 12
    spikes = torch.zeros(steps, 1, 3, device=device)
    spikes[2, 0, 1] = 1.0
    spikes[6, 0, 0] = 1.0
    traces = torch.rand(steps, 1, 3, device=device)
    for t in range(steps):
        out, trace = conn(spikes[t], traces[t])
        expected = spikes[t - delay] if t >= delay else torch.zeros(1, 3, device=device)
        assert torch.equal(out, expected), t
        assert torch.equal(conn.pre_spikes, expected)
        if t >= delay:
            assert torch.equal(trace, traces[t - delay])
        else:
            assert torch.equal(trace, torch.zeros(1, 3, device=device))
        assert torch.equal(conn.pre_trace, trace)


def test_overlapping_spikes_are_never_merged():
    # PySNN 0.1: delay 3, inputs at t=0 and t=1 gave one output at t=7
    conn = Linear(1, 1, delay=3)
    with torch.no_grad():
        conn.weight.fill_(1.0)
    arrivals = []
    for t in range(12):
        x = torch.tensor([[1.0 if t in (0, 1) else 0.0]])
        out, _ = conn(x)
        if out.item() != 0:
            arrivals.append((t, out.item()))
    assert arrivals == [(3, 1.0), (4, 1.0)]


def test_every_step_spiking_with_delay():
    conn = Linear(1, 1, delay=4)
    with torch.no_grad():
        conn.weight.fill_(2.0)
    outs = [conn(torch.ones(1, 1))[0].item() for _ in range(10)]
    assert outs == [0.0] * 4 + [2.0] * 6


@pytest.mark.parametrize("delay", [0, 1, 3])
def test_scalar_delay_random_against_reference(delay):
    conn = Linear(6, 4, delay=delay).double()
    spikes = _spike_train(15, 2, 1, 6, seed=delay)
    history = []
    delays = torch.full((4, 6), delay)
    for t in range(15):
        history.append(spikes[t])
        out, _ = conn(spikes[t])
        torch.testing.assert_close(out, _ref_linear(history, conn.weight, delays, t))


def test_scalar_delay_adds_no_per_synapse_memory():
    conn = Linear(5, 7, delay=3)
    conn(torch.zeros(2, 5), torch.zeros(2, 5))
    assert conn.spike_history.shape == (4, 2, 5)
    assert conn.trace_history.shape == (4, 2, 5)
    conn.reset_state()
    conn(torch.zeros(2, 1, 5), torch.zeros(2, 1, 5))
    assert conn.spike_history.shape == (4, 2, 1, 5)
    assert conn.delay_line.stack_cache is None
    buffers = dict(conn.named_buffers())
    assert set(buffers) == {
        "delay_line.spike_history",
        "delay_line.trace_history",
        "delay_line.delay_steps",
    }
    assert buffers["delay_line.delay_steps"].shape == ()
    assert sum(b.numel() for b in buffers.values()) == 2 * 4 * 2 * 5 + 1

    conv = Conv2d(2, 8, 3, delay=2)
    conv(torch.zeros(3, 2, 6, 6))
    assert conv.spike_history.shape == (3, 3, 2, 6, 6)
    assert conv.delay_line.stack_cache is None

    undelayed = Linear(5, 7)
    undelayed(torch.zeros(2, 5), torch.zeros(2, 5))
    assert undelayed.spike_history.numel() == 0 and undelayed.trace_history.numel() == 0


def test_delay_in_ms_with_dt():
    conn = Linear(2, 2, dt=0.5, delay=1.5)
    assert conn.max_delay == 3 and conn.history_length == 4
    with torch.no_grad():
        conn.weight.copy_(torch.eye(2))
    outs = [conn(torch.tensor([[1.0, 0.0]]) if t == 0 else torch.zeros(1, 2))[0] for t in range(6)]
    assert [t for t, o in enumerate(outs) if o.sum() > 0] == [3]

    per = Linear(2, 2, dt=0.5, delay=torch.tensor([[0.5, 1.0], [0.0, 2.5]]))
    assert per.per_synapse_delay
    assert per.delay_steps.tolist() == [[1, 2], [0, 5]]
    with pytest.raises(ValueError, match="delay"):
        Linear(2, 2, dt=0.5, delay=0.75)
    # float rounding: 0.3 ms is 3 steps of 0.1 ms although 0.3 % 0.1 != 0
    assert Linear(2, 2, dt=0.1, delay=0.3).max_delay == 3


def test_reset_state_clears_spikes_in_flight():
    for delay in (3, torch.tensor([[1, 3], [2, 0]])):
        conn = Linear(2, 2, delay=delay)
        with torch.no_grad():
            conn.weight.fill_(1.0)
        conn(torch.ones(4, 2), torch.ones(4, 2))
        conn(torch.ones(4, 2), torch.ones(4, 2))
        conn.reset_state()
        assert conn.is_fresh
        for _ in range(6):
            out, _ = conn(torch.zeros(4, 2), torch.zeros(4, 2))
            assert torch.equal(out, torch.zeros(4, 2))


def test_batch_size_changes_after_reset_with_delay():
    conn = Linear(3, 2, delay=2)
    conn(torch.ones(4, 3))
    with pytest.raises(ValueError, match="batch size"):
        conn(torch.ones(5, 3))
    conn.reset_state()
    conn(torch.ones(5, 3))
    assert conn.spike_history.shape == (3, 5, 3)


# ---------------------------------------------------------------------------
# Per-synapse delays
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3,), (2, 1), (2, 3)])
def test_linear_per_synapse_delays_against_reference(device, shape):
    g = torch.Generator().manual_seed(sum(shape))
    delays = torch.randint(0, 5, (4, 6), generator=g)
    conn = Linear(6, 4, delay=delays).double().to(device)
    spikes = _spike_train(16, *shape, 6, seed=3)
    history = []
    for t in range(16):
        history.append(spikes[t])
        out, trace = conn(spikes[t].to(device), torch.rand(*shape, 6, dtype=torch.float64))
        assert trace is None  # the trace differs per synapse; ask for trace_per_synapse
        assert out.shape == (*shape, 4)
        ref = _ref_linear(history, conn.weight.cpu(), delays, t)
        torch.testing.assert_close(out.cpu(), ref)


@pytest.mark.parametrize("event_driven", [True, False])
@pytest.mark.parametrize("cls", [Linear, Recurrent])
def test_per_synapse_delays_event_driven_against_reference(cls, event_driven):
    """The gather of active (delay, input) rows gives the loop reference's input."""
    g = torch.Generator().manual_seed(21)
    delays = torch.randint(0, 6, (7, 7), generator=g)
    if cls is Linear:
        conn = Linear(7, 7, delay=delays, event_driven=event_driven).double()
    else:
        conn = Recurrent(7, delay=delays, event_driven=event_driven).double()
    weight = conn.weight.clone()
    if cls is Recurrent:
        weight.fill_diagonal_(0.0)
    spikes = _spike_train(20, 3, 7, p=0.15, seed=5)
    spikes[4:8] = 0.0  # steps without input: the gather must handle no active row
    history = []
    for t in range(20):
        history.append(spikes[t])
        out, _ = conn(spikes[t])
        torch.testing.assert_close(out, _ref_linear(history, weight, delays, t))


def test_per_synapse_delays_auto_mode_gathers_active_rows_when_sparse(monkeypatch):
    delays = torch.randint(0, 16, (1000, 784), generator=torch.Generator().manual_seed(0))
    conn = Linear(784, 1000, delay=delays)  # 16 x 784 x 1000 stacked weights: auto mode
    gathered = []
    real = torch.Tensor.index_select

    def spy(self, dim, index):
        if self.shape == (16 * 784, 1000):
            gathered.append(index.numel())
        return real(self, dim, index)

    monkeypatch.setattr(torch.Tensor, "index_select", spy)
    spikes = _spike_train(30, 1, 784, p=0.02, seed=1, dtype=torch.float32)
    dense = Linear(784, 1000, delay=delays, event_driven=False)
    with torch.no_grad():
        dense.weight.copy_(conn.weight)
    for t in range(30):
        out, _ = conn(spikes[t])
        torch.testing.assert_close(out, dense(spikes[t])[0], rtol=1e-5, atol=1e-5)
    # about 2 % of the (delay, input) pairs are active: only their rows are read
    assert gathered and max(gathered) < 0.05 * 16 * 784


def test_per_synapse_trace_is_delayed_trace():
    delays = torch.tensor([[0, 2, 4], [3, 1, 0]])
    conn = Linear(3, 2, delay=delays, trace_per_synapse=True).double()
    spikes = _spike_train(10, 2, 3, seed=1)
    traces = torch.rand(10, 2, 3, dtype=torch.float64)
    for t in range(10):
        _, syn = conn(spikes[t], traces[t])
        assert syn.shape == (2, 2, 3)
        for b, i, j in itertools.product(range(2), range(2), range(3)):
            d = int(delays[i, j])
            expected = traces[t - d][b, j] if t >= d else 0.0
            assert syn[b, i, j] == expected


def test_scalar_delay_trace_per_synapse():
    conn = Linear(3, 2, delay=2, trace_per_synapse=True)
    traces = torch.rand(6, 1, 1, 3)
    for t in range(6):
        _, syn = conn(torch.zeros(1, 1, 3), traces[t])
        assert syn.shape == (1, 1, 2, 3)
        expected = traces[t - 2] if t >= 2 else torch.zeros(1, 1, 3)
        assert torch.equal(syn, expected.unsqueeze(-2).expand(1, 1, 2, 3))


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    n_in=st.integers(1, 4),
    n_out=st.integers(1, 3),
    batch=st.integers(1, 2),
    steps=st.integers(1, 14),
)
def test_every_spike_arrives_exactly_once_after_its_delay(data, n_in, n_out, batch, steps):
    delays = torch.tensor(
        data.draw(
            st.lists(
                st.lists(st.integers(0, 6), min_size=n_in, max_size=n_in),
                min_size=n_out,
                max_size=n_out,
            )
        )
    )
    train = data.draw(
        st.lists(
            st.lists(
                st.lists(st.booleans(), min_size=n_in, max_size=n_in),
                min_size=batch,
                max_size=batch,
            ),
            min_size=steps,
            max_size=steps,
        )
    )
    spikes = torch.tensor(train, dtype=torch.float64)  # (T, B, in)
    weights = torch.tensor(
        data.draw(
            st.lists(
                st.floats(-2.0, 2.0, allow_nan=False, width=32),
                min_size=n_in * n_out,
                max_size=n_in * n_out,
            )
        ),
        dtype=torch.float64,
    ).view(n_out, n_in)

    # 1) one-hot code per synapse: W_ij = 2**j makes every delivery visible in the output
    coded = Linear(n_in, n_out, delay=delays).double()
    with torch.no_grad():
        coded.weight.copy_(2.0 ** torch.arange(n_in, dtype=torch.float64).expand(n_out, n_in))
    arrivals = {(i, j): [] for i in range(n_out) for j in range(n_in)}
    for t in range(steps):
        out, _ = coded(spikes[t])
        for b, i in itertools.product(range(batch), range(n_out)):
            code = int(out[b, i].item())
            assert code == out[b, i].item()
            for j in range(n_in):
                if code >> j & 1:
                    arrivals[(i, j)].append((t, b))
    for i, j in arrivals:
        expected = [
            (t + int(delays[i, j]), b)
            for t in range(steps)
            for b in range(batch)
            if spikes[t, b, j] > 0 and t + int(delays[i, j]) < steps
        ]
        assert sorted(arrivals[(i, j)]) == sorted(expected)

    # 2) random weights against the explicit reference
    conn = Linear(n_in, n_out, delay=delays).double()
    with torch.no_grad():
        conn.weight.copy_(weights)
    history = []
    for t in range(steps):
        history.append(spikes[t])
        out, _ = conn(spikes[t])
        torch.testing.assert_close(out, _ref_linear(history, weights, delays, t))


CONV_DELAY_CASES = [
    # in, out, kernel, stride, padding, dilation, groups, (H, W)
    (2, 3, 3, 1, 0, 1, 1, (6, 6)),
    (2, 4, (2, 3), 2, 1, 1, 2, (7, 6)),
    (4, 2, (3, 2), (1, 2), (1, 0), (2, 1), 2, (8, 7)),
]


@pytest.mark.parametrize("case", CONV_DELAY_CASES)
def test_conv2d_per_synapse_delays_against_reference(device, case):
    cin, cout, k, stride, padding, dilation, groups, hw = case
    conn = Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups)
    g = torch.Generator().manual_seed(cin * cout)
    delays = torch.randint(0, 4, conn.weight.shape, generator=g)
    conn.set_delay(delays)
    conn = conn.double().to(device)
    spikes = _spike_train(10, 2, cin, *hw, seed=4)
    history = []
    for t in range(10):
        history.append(spikes[t])
        out, _ = conn(spikes[t].to(device))
        ref = _ref_conv(history, _CpuConv(conn), delays, t)
        torch.testing.assert_close(out.cpu(), ref)


class _CpuConv:
    """The geometry and weights of a Conv2d, on the CPU."""

    def __init__(self, conn):
        self.weight = conn.weight.detach().cpu()
        self.stride, self.padding = conn.stride, conn.padding
        self.dilation, self.groups = conn.dilation, conn.groups


def test_conv2d_scalar_delay_against_reference():
    conn = Conv2d(2, 3, 3, padding=1, delay=2).double()
    spikes = _spike_train(8, 1, 2, 5, 5, seed=9)
    for t in range(8):
        out, _ = conn(spikes[t])
        if t >= 2:
            ref = F.conv2d(spikes[t - 2], conn.weight, None, 1, 1)
        else:
            ref = torch.zeros_like(out)
        torch.testing.assert_close(out, ref)


def test_conv2d_per_synapse_trace_is_delayed_trace():
    conn = Conv2d(2, 4, (2, 2), stride=1, padding=1, groups=2, trace_per_synapse=True)
    g = torch.Generator().manual_seed(2)
    delays = torch.randint(0, 3, conn.weight.shape, generator=g)
    conn.set_delay(delays)
    traces = torch.rand(6, 1, 2, 3, 3)
    cg = 1
    for t in range(6):
        _, syn = conn(torch.zeros(1, 2, 3, 3), traces[t])
        assert syn.shape == (1, 4, 4, 4, 4)  # (B, O, Ho, Wo, cg * kh * kw)
        for o, y, x in itertools.product(range(4), range(4), range(4)):
            group = o // 2
            for m, (c, ky, kx) in enumerate(itertools.product(range(cg), range(2), range(2))):
                d = int(delays[o, c, ky, kx])
                iy, ix = y - 1 + ky, x - 1 + kx
                inside = 0 <= iy < 3 and 0 <= ix < 3 and t >= d
                expected = traces[t - d][0, group * cg + c, iy, ix] if inside else 0.0
                assert syn[0, o, y, x, m] == expected


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_in_place_weight_edits_are_seen_with_per_synapse_delays(dtype):
    delays = torch.tensor([[0, 1, 2], [2, 1, 0]])
    conn = Linear(3, 2, delay=delays)
    with torch.no_grad():  # seeded: the result must not depend on the tests run before
        conn.weight.uniform_(-1.0, 1.0, generator=torch.Generator().manual_seed(3))
    conn = conn.to(dtype)
    # bfloat16 keeps 8 significant bits: sums of 3 weights in another order differ by
    # up to a few 1e-2 (the default atol of 1e-5 fails for 15 of 200 random weights)
    tol = dict(atol=2e-2, rtol=1.6e-2) if dtype == torch.bfloat16 else {}
    spikes = _spike_train(12, 1, 3, p=0.6, seed=8).to(dtype)
    history = []
    for t in range(12):
        if t == 4:
            with torch.no_grad():
                conn.weight.mul_(-2.0)  # tracked in-place edit
        if t == 7:
            conn.weight.data[0, 1] = 5.0  # edit through .data, invisible to autograd versions
        if t == 9:
            conn.weight.data.clamp_(-0.1, 0.1)
        history.append(spikes[t])
        out, _ = conn(spikes[t])
        torch.testing.assert_close(out, _ref_linear(history, conn.weight, delays, t), **tol)


def test_set_delay_changes_delay_and_resets():
    conn = Linear(2, 2, delay=1)
    with torch.no_grad():
        conn.weight.copy_(torch.eye(2))
    conn(torch.ones(1, 2))
    conn.set_delay(torch.tensor([[2, 0], [0, 3]]))
    assert conn.is_fresh and conn.per_synapse_delay and conn.max_delay == 3
    outs = [conn(torch.ones(1, 2) if t == 0 else torch.zeros(1, 2))[0] for t in range(5)]
    assert [o.tolist() for o in outs] == [
        [[0.0, 0.0]],
        [[0.0, 0.0]],
        [[1.0, 0.0]],
        [[0.0, 1.0]],
        [[0.0, 0.0]],
    ]


# ---------------------------------------------------------------------------
# Recurrent with delays
# ---------------------------------------------------------------------------
def test_recurrent_per_synapse_delays_ignore_diagonal():
    g = torch.Generator().manual_seed(6)
    delays = torch.randint(0, 4, (5, 5), generator=g)
    conn = Recurrent(5, delay=delays).double()
    with torch.no_grad():
        conn.weight.fill_diagonal_(7.0)  # set by hand: must still be ignored
    w_off = conn.weight.clone()
    w_off.fill_diagonal_(0.0)
    spikes = _spike_train(14, 2, 1, 5, p=0.5, seed=2)
    history = []
    for t in range(14):
        history.append(spikes[t])
        out, _ = conn(spikes[t])
        torch.testing.assert_close(out, _ref_linear(history, w_off, delays, t))


def test_recurrent_scalar_delay_with_and_without_self_connections():
    spikes = _spike_train(10, 3, 4, p=0.5, seed=12)
    for zero_diagonal in (True, False):
        conn = Recurrent(4, delay=2, zero_diagonal=zero_diagonal).double()
        with torch.no_grad():
            conn.weight.copy_(torch.arange(1.0, 17.0, dtype=torch.float64).view(4, 4))
        w = conn.weight.clone()
        if zero_diagonal:
            w.fill_diagonal_(0.0)
        history = []
        for t in range(10):
            history.append(spikes[t])
            out, _ = conn(spikes[t])
            torch.testing.assert_close(out, _ref_linear(history, w, torch.full((4, 4), 2), t))


def test_recurrent_lif_loop_with_delay_against_reference():
    """A LIF population exciting itself through a delayed recurrent connection."""
    n, steps, delay = 6, 30, 2
    torch.manual_seed(0)
    rec = Recurrent(n, delay=delay).double()
    with torch.no_grad():
        rec.weight.uniform_(0.0, 0.6)
        rec.weight.fill_diagonal_(0.0)
    lif = LIFNeuron(
        (n,), thresh=1.0, v_rest=0.0, alpha_v=1.0, tau_v=DecayFactor(0.7), integrator="impulse"
    ).double()
    drive = _spike_train(steps, 1, n, p=0.25, seed=5)
    w = rec.weight.clone()
    v = torch.zeros(1, n, dtype=torch.float64)
    out_hist = [torch.zeros(1, n, dtype=torch.float64)]  # spikes before the first step
    for t in range(steps):
        x_rec, _ = rec(lif.spikes)
        spikes, _ = lif([drive[t], x_rec])
        # reference: the recurrent input at t is the spikes of step t - 1 - delay
        src = t - 1 - delay
        rec_in = out_hist[src + 1] @ w.T if src >= 0 else torch.zeros(1, n, dtype=torch.float64)
        v = v * 0.7 + drive[t] + rec_in
        ref_spikes = (v >= 1.0).double()
        v = torch.where(ref_spikes > 0, torch.zeros_like(v), v)
        out_hist.append(ref_spikes)
        assert torch.equal(spikes, ref_spikes), t
    assert sum(float(s.sum()) for s in out_hist) > 5


# ---------------------------------------------------------------------------
# Saving and restoring spikes in flight
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: Linear(5, 4, delay=3),
        lambda: Linear(5, 4, delay=torch.tensor([[0, 1, 2, 3, 4]] * 4)),
        lambda: Conv2d(2, 3, 3, padding=1, delay=torch.arange(54).remainder(4).view(3, 2, 3, 3)),
        lambda: Recurrent(5, delay=2),
    ],
)
def test_state_dict_mid_run_resumes_identically(make):
    torch.manual_seed(0)
    conn = make()
    shape = (2, 2, 5, 5) if isinstance(conn, Conv2d) else (3, 5)
    spikes = _spike_train(12, *shape, p=0.4, seed=1, dtype=torch.float32)
    traces = torch.rand(12, *shape)
    for t in range(5):
        conn(spikes[t], traces[t])
    saved = copy.deepcopy(conn.state_dict())
    fresh = make()  # other random weights, no state
    fresh.load_state_dict(saved)
    assert not fresh.is_fresh
    for t in range(5, 12):
        a, ta = conn(spikes[t], traces[t])
        b, tb = fresh(spikes[t], traces[t])
        assert torch.equal(a, b), t
        assert (ta is None and tb is None) or torch.equal(ta, tb)


def _legacy_state_dict(state):
    """A state dict in the layout of PySNN before the DelayLine (delay state on the connection)."""
    old = {}
    for key, value in state.items():
        if key.startswith("delay_line."):
            name = key[len("delay_line.") :]
            if name == "_extra_state":
                renamed = {"head": "_head", "in_shape": "_in_shape", "_batch": "_batch"}
                value = {"fresh": value["fresh"], **{renamed[k]: value[k] for k in renamed}}
            old[name] = value
        else:
            old[key] = value
    return old


@pytest.mark.parametrize("delay", [3, torch.tensor([[0, 1, 2, 3, 1]] * 4)])
def test_legacy_checkpoint_with_connection_level_delay_keys_loads(delay):
    torch.manual_seed(0)
    conn = Linear(5, 4, delay=delay)
    spikes = _spike_train(10, 3, 5, p=0.4, seed=2, dtype=torch.float32)
    traces = torch.rand(10, 3, 5)
    for t in range(4):
        conn(spikes[t], traces[t])
    legacy = _legacy_state_dict(copy.deepcopy(conn.state_dict()))
    assert {"spike_history", "trace_history", "delay_steps", "_extra_state"} <= set(legacy)
    fresh = Linear(5, 4, delay=0)
    fresh.load_state_dict(legacy)  # strict: every key is used
    assert not fresh.is_fresh and fresh.delay_line.head == conn.delay_line.head
    assert torch.equal(fresh.delay_steps, conn.delay_steps)
    for t in range(4, 10):
        a, ta = conn(spikes[t], traces[t])
        b, tb = fresh(spikes[t], traces[t])
        assert torch.equal(a, b), t
        assert (ta is None and tb is None) or torch.equal(ta, tb)
    pool = MaxPool2d(2)  # pools were connections with an (empty) delay line
    pool.load_state_dict(
        {
            "spike_history": torch.zeros(0),
            "trace_history": torch.zeros(0),
            "delay_steps": torch.zeros((), dtype=torch.int64),
            "_extra_state": {"fresh": True},
        }
    )


@pytest.mark.parametrize(
    "saved_delay,fresh_delay",
    [(3, 0), (0, 2), (torch.tensor([[2, 0, 1]] * 2), 1), (2, torch.tensor([[1, 1, 1]] * 2))],
)
def test_loaded_delay_replaces_constructed_delay(saved_delay, fresh_delay):
    conn = Linear(3, 2, delay=saved_delay)
    spikes = _spike_train(10, 1, 3, p=0.5, seed=3, dtype=torch.float32)
    for t in range(4):
        conn(spikes[t])
    fresh = Linear(3, 2, delay=fresh_delay)
    fresh.load_state_dict(conn.state_dict())
    assert fresh.max_delay == conn.max_delay
    assert fresh.per_synapse_delay == conn.per_synapse_delay
    assert torch.equal(fresh.delay_steps, conn.delay_steps)
    for t in range(4, 10):
        assert torch.equal(conn(spikes[t])[0], fresh(spikes[t])[0])


class _DelayNet(SNNNetwork):
    def __init__(self):
        super().__init__()
        self.input = Input((4, 1, 6), 1.0, 1.0, 0.8)
        self.fc1 = Linear(6, 5, delay=torch.randint(0, 4, (5, 6)))
        self.lif1 = LIFNeuron((4, 1, 5), 0.8, 0.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.8)
        self.rec = Recurrent(5, delay=2)
        self.fc2 = Linear(5, 3, delay=1)
        self.lif2 = LIFNeuron((4, 1, 3), 0.6, 0.0, 1.0, 1.0, 1.0, 0.0, 0.8, 0.8)
        self.add_layer("fc1", self.fc1, self.lif1)
        self.add_layer("rec", self.rec, self.lif1)
        self.add_layer("fc2", self.fc2, self.lif2)
        with torch.no_grad():
            self.fc1.weight.uniform_(0.0, 0.6)
            self.rec.weight.uniform_(-0.3, 0.3)
            self.fc2.weight.uniform_(0.0, 0.8)

    def forward(self, x):
        s, t = self.input(x)
        a, _ = self.fc1(s, t)
        r, _ = self.rec(self.lif1.spikes, self.lif1.trace)
        s, t = self.lif1([a, r])
        a, _ = self.fc2(s, t)
        return self.lif2(a)[0]


def test_network_with_delays_state_dict_resumes_identically():
    torch.manual_seed(1)
    net = _DelayNet()
    x = _spike_train(25, 7, 1, 6, p=0.5, seed=4, dtype=torch.float32)  # batch 7, built with 4
    net.reset_state()
    for t in range(10):
        net(x[t])
    saved = copy.deepcopy(net.state_dict())
    torch.manual_seed(2)
    fresh = _DelayNet()
    fresh.load_state_dict(saved)
    outs_a, outs_b = [], []
    for t in range(10, 25):
        outs_a.append(net(x[t]))
        outs_b.append(fresh(x[t]))
    assert torch.equal(torch.stack(outs_a), torch.stack(outs_b))
    assert torch.stack(outs_a).sum() > 0


# -- delay_steps edited by hand --------------------------------------------------------------
def _history(conn):
    line = conn.delay_line
    return line.spike_history.clone(), line.trace_history.clone(), line.head


def test_scalar_delay_steps_edited_in_place_is_an_error_at_the_next_step_and_reset():
    conn = Linear(3, 2, delay=2)
    x = torch.tensor([[1.0, 0.0, 1.0]])
    conn(x, torch.ones(1, 3))
    before = _history(conn)
    conn.delay_line.delay_steps.fill_(5)  # the ring buffer holds 3 steps
    with pytest.raises(ValueError, match=r"delay_steps is 5 .*max_delay=2.*set_delay"):
        conn(x)
    after = _history(conn)
    assert torch.equal(after[0], before[0]) and after[2] == before[2]
    with pytest.raises(ValueError, match="delay_steps"):
        conn.reset_state()
    conn.delay_line.delay_steps.fill_(1)  # smaller, but the step would still read d=2
    with pytest.raises(ValueError, match="delay_steps is 1"):
        conn(x)
    conn.set_delay(5)  # the supported way: resizes the buffers
    assert conn.history_length == 6
    outs = [conn(x)[0] for _ in range(6)]
    assert [bool(o.any()) for o in outs] == [False] * 5 + [True]


def test_assigned_delay_steps_buffer_is_checked():
    conn = Linear(3, 2, delay=1)
    conn.delay_line.delay_steps = torch.tensor(4)
    with pytest.raises(ValueError, match="delay_steps is 4 .*max_delay=1"):
        conn(torch.zeros(1, 3))
    conn.delay_line.delay_steps = torch.ones(2, 3, dtype=torch.int64)  # scalar -> per synapse
    with pytest.raises(ValueError, match=r"delay_steps must have shape \(\) \(one delay\)"):
        conn.reset_state()
    conn.delay_line.delay_steps = torch.tensor(1.0)
    with pytest.raises(ValueError, match="delay_steps must be an int64 tensor"):
        conn(torch.zeros(1, 3))


@pytest.mark.parametrize("cls", ["linear", "sparse"])
def test_per_synapse_delay_steps_edited_in_place(cls):
    from pysnn.connection import Sparse

    delay = torch.tensor([[0, 3, 1], [2, 0, 0]])
    if cls == "linear":
        conn = Linear(3, 2, delay=delay)
        with torch.no_grad():
            conn.weight.fill_(1.0)
        steps = conn.delay_steps
        cell = (0, 1)
    else:
        conn = Sparse(
            3,
            2,
            torch.tensor([[0, 0, 0, 1], [0, 1, 2, 0]]),
            weight=1.0,
            delay=torch.tensor([0, 3, 1, 2]),
        )
        steps = conn.delay_steps
        cell = (int(torch.nonzero(steps == 3)[0]),)
    x = torch.tensor([[0.0, 1.0, 0.0]])  # input 1 feeds post 0 with delay 3
    conn(x)
    # within [0, max_delay]: accepted, the spike in flight now arrives after 1 step
    steps[cell] = 1
    assert conn(torch.zeros(1, 3))[0][0, 0].item() == 1.0
    steps[cell] = 4  # beyond the ring buffer of max_delay + 1 = 4 steps
    with pytest.raises(ValueError, match=r"delay_steps must lie in \[0, max_delay=3\].*\[0, 4\]"):
        conn(torch.zeros(1, 3))
    steps[cell] = -1
    with pytest.raises(ValueError, match=r"got values in \[-1, 2\]"):
        conn.reset_state()


# -- learnable delays ------------------------------------------------------------------
def test_delay_kernel_linear_and_gaussian():
    from pysnn.functional import delay_kernel

    p = torch.tensor([0.0, 1.25, 3.0], dtype=torch.float64)
    linear = delay_kernel(p, 4)
    assert linear.tolist() == [[1, 0, 0, 0], [0, 0.75, 0.25, 0], [0, 0, 0, 1]]
    gauss = delay_kernel(p, 4, "gaussian", 0.5)
    assert torch.allclose(gauss.sum(-1), torch.ones(3, dtype=torch.float64))
    # exp(-(k - 1.25)^2 / (2 * 0.25)) normalised, at k = 1 and 2
    w = torch.exp(-((torch.arange(4.0, dtype=torch.float64) - 1.25) ** 2) / 0.5)
    assert torch.allclose(gauss[1], w / w.sum())


def _current(shape):
    """A readout whose voltage is this step's input current (v <- 0 v + I)."""
    from pysnn.neuron import LeakyIntegrator

    return LeakyIntegrator(shape, tau_v=DecayFactor(0.0), integrator="impulse")


def _fractional_reference(history, weight, delays, t):
    """sum_j W_ij [(1 - f) s_j(t - n) + f s_j(t - n - 1)], d = n + f: linear interpolation."""
    low = torch.floor(delays)
    frac = delays - low
    out = torch.zeros(*history[0].shape[:-1], weight.shape[0], dtype=weight.dtype)
    for part, shift in ((1 - frac, 0), (frac, 1)):
        steps = (low + shift).clamp(max=delays.max().ceil())
        out += _ref_linear(history, weight * part, steps, t)
    return out


@pytest.mark.parametrize("strategy", ["step", "window"])
def test_learned_delays_read_between_steps_and_are_rounded_in_eval(strategy):
    torch.manual_seed(0)
    x = _spike_train(10, 2, 3, seed=4)
    net = SNNNetwork()
    fc = Linear(3, 2, dt=1.0)
    net.connect(Input((3,)), fc, _current((2,)))
    net.to(torch.float64)
    delays = torch.tensor([[0.0, 1.25, 2.5], [3.0, 0.75, 1.5]], dtype=torch.float64)
    learned = fc.learn_delays(3.0, init=delays.clone())
    assert isinstance(learned, torch.nn.Parameter) and learned.requires_grad
    assert fc.delay_line.delay is learned and any(p is learned for p in net.parameters())
    out = net.run(x, strategy=strategy, warn_silent=False)
    history = list(x)
    expected = torch.stack(
        [_fractional_reference(history, fc.weight, delays, t) for t in range(10)]
    )
    assert torch.allclose(out, expected, atol=1e-12)
    # the gradient of a delay: d/df of the interpolation, summed over steps
    out.sum().backward()
    expected_grad = torch.zeros_like(delays)
    for i, j in itertools.product(range(2), range(3)):
        n = int(torch.floor(delays[i, j]))
        for t in range(10):
            now = x[t - n, :, j].sum() if t - n >= 0 else 0.0
            before = x[t - n - 1, :, j].sum() if t - n - 1 >= 0 and n < 3 else 0.0
            expected_grad[i, j] += fc.weight[i, j].detach() * (before - now)
    assert torch.allclose(learned.grad, expected_grad, atol=1e-12)
    # inference: rounded to whole steps (half to even), the ring buffer's taps
    net.eval()
    with torch.no_grad():
        rounded = net.run(x, warn_silent=False)
    steps = torch.round(delays)
    assert fc.delay_steps.tolist() == steps.long().tolist()
    ref = torch.stack([_ref_linear(history, fc.weight.detach(), steps, t) for t in range(10)])
    assert torch.allclose(rounded, ref, atol=1e-12)
    fc.round_delays()
    assert fc.delay_line.delay is None
    assert not any(p is learned for p in net.parameters())
    net.train()
    with torch.no_grad():
        assert torch.equal(net.run(x, warn_silent=False), rounded)


def test_learned_delays_follow_the_optimizer_and_conv2d_gradients_match_finite_differences():
    torch.manual_seed(1)
    x = _spike_train(8, 1, 1, 4, 4, seed=2)
    net = SNNNetwork()
    conv = Conv2d(1, 2, 3, padding=1, dt=1.0)
    net.connect(Input((1, 4, 4)), conv, _current((2, 4, 4)))
    net.to(torch.float64)
    delay = conv.learn_delays(3.0, init=torch.rand(2, 1, 3, 3, dtype=torch.float64) * 2.8 + 0.1)
    weights = torch.linspace(0, 1, 8, dtype=torch.float64).view(8, 1, 1, 1, 1)

    def loss():
        return (net.run(x, warn_silent=False) * weights).sum()

    (grad,) = torch.autograd.grad(loss(), [delay])
    for flat in range(0, delay.numel(), 4):
        index = torch.unravel_index(torch.tensor(flat), delay.shape)
        values = []
        for sign in (1, -1):
            with torch.no_grad():
                delay[index] += sign * 1e-6
                values.append(float(loss()))
                delay[index] -= sign * 1e-6
        assert abs(float(grad[index]) - (values[0] - values[1]) / 2e-6) < 1e-6
    optimizer = torch.optim.SGD([delay], lr=10.0)
    before = conv.delay_steps.clone()
    loss().backward()
    optimizer.step()
    with torch.no_grad():
        delay.clamp_(0.0, 3.0)
        net.eval()
        net.run(x, warn_silent=False)
    assert torch.equal(conv.delay_steps, torch.round(delay.detach()).long())
    assert not torch.equal(conv.delay_steps, before)


def test_learn_delays_rejects_bad_arguments_and_changes_nothing():
    from pysnn.connection import Sparse

    fc = Linear(3, 2, delay=1.0)
    for kwargs, match in [
        ({"max_delay": 2.0, "init": 3.0}, "init"),
        ({"max_delay": 2.0, "init": torch.zeros(3, 2)}, "init"),
        ({"max_delay": 2.5}, "max_delay"),
        ({"max_delay": 2.0, "interpolation": "cubic"}, "interpolation"),
        ({"max_delay": 2.0, "interpolation": "gaussian", "sigma": 0.0}, "sigma"),
    ]:
        with pytest.raises(ValueError, match=match):
            fc.learn_delays(**kwargs)
        assert fc.delay_line.delay is None and fc.delay_steps.tolist() == 1
    sparse = Sparse(3, 2, torch.tensor([[0, 1], [1, 0]]))
    with pytest.raises(ValueError, match="learnable delays"):
        sparse.learn_delays(2.0)
