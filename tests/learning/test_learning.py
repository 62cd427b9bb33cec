"""Tests of pysnn.learning and of the connections' correlation operations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from pysnn import functional as sf
from pysnn.connection import Conv2d, Linear, Recurrent
from pysnn.learning import (
    MSTDP,
    MSTDPET,
    STDP,
    FedeSTDP,
    Hebbian,
    KheradpishehSTDP,
    Oja,
    ShresthaSTDP,
    TripletSTDP,
    WeightNormalization,
    normalize_weights,
)
from pysnn.network import SNNNetwork
from pysnn.neuron import AdaptiveLIFNeuron, Input

DT = 1.0


class Forced(SNNNetwork):
    """pre Input -> connection -> post Input: both spike trains are imposed."""

    def __init__(self, conn, pre_shape, post_shape, tau_pre=20.0, tau_post=20.0, mode="additive"):
        super().__init__()
        self.pre = Input(pre_shape, DT, 1.0, tau_pre, "exact", trace_mode=mode)
        self.conn = conn
        self.post = Input(post_shape, DT, 1.0, tau_post, "exact", trace_mode=mode)
        self.add_layer("conn", self.conn, self.post)

    def forward(self, pre_spikes, post_spikes):
        s, t = self.pre(pre_spikes)
        self.conn(s, t)
        return self.post(post_spikes)


def linear_net(n_in=1, n_out=1, delay=0, w=0.5, dtype=torch.float64, **kw):
    conn = Linear(n_in, n_out, dt=DT, delay=delay)
    with torch.no_grad():
        conn.weight.fill_(w)
    return Forced(conn, (n_in,), (n_out,), **kw).to(dtype)


def run_trains(net, rule, pre, post, update=False, reward=None):
    """pre (T, B, ...) and post (T, B, ...) spike trains; step the rule each step."""
    for t in range(pre.shape[0]):
        net(pre[t], post[t])
        if update:
            rule.update_state()
        rule.step(reward) if reward is not None else rule.step()


def trains(steps, batch, shape, times, dtype=torch.float64):
    """Spike train with spikes at the given {time: [flat indices]}."""
    out = torch.zeros(steps, batch, *shape, dtype=dtype)
    for t, idx in times.items():
        out[t].view(batch, -1)[:, idx] = 1.0
    return out


# ---------------------------------------------------------------------------
# Correlation operations
# ---------------------------------------------------------------------------
def test_correlate_linear_matches_outer_products():
    torch.manual_seed(0)
    conn = Linear(5, 3).double()
    s = (torch.rand(4, 2, 5) < 0.5).double()
    x = torch.rand(4, 2, 5, dtype=torch.float64)
    conn(s, x)
    y = torch.rand(4, 2, 3, dtype=torch.float64)
    ref = torch.einsum("bpi,bpj->bij", y, x)
    torch.testing.assert_close(conn.correlate(y, "trace"), ref.sum(0))
    torch.testing.assert_close(conn.correlate(y, "trace", per_batch=True), ref)
    torch.testing.assert_close(conn.correlate(y, "spikes"), torch.einsum("bpi,bpj->ij", y, s))
    mapped = conn.correlate(y, "trace", pre_map=lambda v: 2 * v)
    torch.testing.assert_close(mapped, 2 * ref.sum(0))
    torch.testing.assert_close(conn.post_sum(y), y.sum((0, 1)).unsqueeze(-1))
    rows = torch.tensor([0, 2])
    torch.testing.assert_close(conn.correlate_rows(y, "trace", rows), ref.sum(0)[rows])
    torch.testing.assert_close(conn.correlate_cols(y, "trace", rows), ref.sum(0)[:, rows])


@pytest.mark.parametrize("kind", ["linear", "linear delayed", "conv"])
def test_accumulate_correlations_sums_the_terms(kind):
    """One call adds alpha_k * correlate(post_k, pre_k) for every term (Linear: one addmm_)."""
    torch.manual_seed(4)
    if kind == "conv":
        conn = Conv2d(2, 3, 3).double()
        s = (torch.rand(2, 2, 6, 6) < 0.4).double()
    else:
        delay = torch.randint(0, 3, (3, 5)).double() if kind == "linear delayed" else 0
        conn = Linear(5, 3, delay=delay).double()
        s = (torch.rand(2, 5) < 0.5).double()
    out, _ = conn(s, torch.rand_like(s))
    y1, y2 = torch.rand_like(out), torch.rand_like(out)
    terms = [(y1, "trace", 0.3), (y2, "spikes", -1.7)]
    ref = conn.weight + 0.3 * conn.correlate(y1, "trace") - 1.7 * conn.correlate(y2, "spikes")
    target = conn.weight.detach().clone()
    assert conn.accumulate_correlations(target, terms) is target
    torch.testing.assert_close(target, ref, rtol=0, atol=1e-12)
    single = conn.weight.detach().clone()
    conn.accumulate_correlations(single, terms[:1])
    torch.testing.assert_close(single, conn.weight + 0.3 * conn.correlate(y1, "trace"))


@pytest.mark.parametrize("groups,stride,padding", [(1, 1, 0), (2, 2, 1)])
def test_correlate_conv_matches_weight_gradient(groups, stride, padding):
    torch.manual_seed(1)
    conn = Conv2d(4, 6, 3, stride=stride, padding=padding, groups=groups).double()
    x = torch.rand(3, 4, 7, 7, dtype=torch.float64)
    out, _ = conn((x > 0.5).double(), x)
    y = torch.rand_like(out)
    ref = torch.nn.grad.conv2d_weight(x, conn.weight.shape, y, stride, padding, 1, groups)
    torch.testing.assert_close(conn.correlate(y, "trace"), ref)
    per_batch = conn.correlate(y, "trace", per_batch=True)
    for b in range(3):
        ref_b = torch.nn.grad.conv2d_weight(
            x[b : b + 1], conn.weight.shape, y[b : b + 1], stride, padding, 1, groups
        )
        torch.testing.assert_close(per_batch[b], ref_b)
    torch.testing.assert_close(conn.post_sum(y).flatten(), y.sum((0, 2, 3)))


def test_correlate_per_synapse_delay_linear():
    torch.manual_seed(2)
    delays = torch.randint(0, 4, (3, 5)).double()
    conn = Linear(5, 3, delay=delays).double()
    for _ in range(6):
        x = torch.rand(2, 5, dtype=torch.float64)
        conn((x > 0.5).double(), x)
    seen = sf.delay_read_per_synapse(conn.trace_history, conn.delay_line.head, conn.delay_steps)
    y = torch.rand(2, 3, dtype=torch.float64)
    ref = y.unsqueeze(-1) * seen  # (B, out, in)
    torch.testing.assert_close(conn.correlate(y, "trace"), ref.sum(0))
    torch.testing.assert_close(conn.correlate(y, "trace", per_batch=True), ref)


def test_correlate_per_synapse_delay_conv():
    torch.manual_seed(3)
    conn = Conv2d(2, 2, 2).double()
    conn.set_delay(torch.randint(0, 3, conn.weight.shape).double())
    hist = []
    for _ in range(4):
        x = torch.rand(2, 2, 4, 4, dtype=torch.float64)
        out, _ = conn((x > 0.5).double(), x)
        hist.append(x)
    y = torch.rand_like(out)
    ref = torch.zeros_like(conn.weight)
    for k in range(3):
        g = torch.nn.grad.conv2d_weight(hist[-1 - k], conn.weight.shape, y)
        ref += torch.where(conn.delay_steps == k, g, 0.0)
    torch.testing.assert_close(conn.correlate(y, "trace"), ref)
    torch.testing.assert_close(conn.correlate(y, "trace", per_batch=True).sum(0), ref)


# ---------------------------------------------------------------------------
# Pair STDP
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("delta", [1, 7, 20])
def test_stdp_pair_potentiation_and_depression(delta):
    lr, a_plus, a_minus, tau_pre, tau_post = 0.01, 1.3, 0.7, 17.0, 33.0
    for pre_t, post_t, expected in (
        (2, 2 + delta, lr * a_plus * math.exp(-delta / tau_pre)),
        (2 + delta, 2, -lr * a_minus * math.exp(-delta / tau_post)),
    ):
        net = linear_net(tau_pre=tau_pre, tau_post=tau_post)
        rule = STDP(net.layers, lr=lr, a_plus=a_plus, a_minus=a_minus)
        steps = 2 + delta + 3
        run_trains(
            net, rule, trains(steps, 1, (1,), {pre_t: [0]}), trains(steps, 1, (1,), {post_t: [0]})
        )
        assert abs(net.conn.weight.item() - 0.5 - expected) < 1e-6


def test_stdp_window_matches_analytic_curve():
    deltas = list(range(-50, 51))
    n, start = len(deltas), 55
    lr, a_plus, a_minus, tau_plus, tau_minus = 1.0, 1.0, 0.8, 20.0, 30.0
    net = linear_net(n, n, w=0.0, tau_pre=tau_plus, tau_post=tau_minus)
    rule = STDP(net, lr=lr, a_plus=a_plus, a_minus=a_minus)
    steps = start + 52
    pre = torch.zeros(steps, 1, n, dtype=torch.float64)
    post = torch.zeros(steps, 1, n, dtype=torch.float64)
    for j, d in enumerate(deltas):
        pre[start, 0, j] = 1.0
        post[start + d, 0, j] = 1.0
    run_trains(net, rule, pre, post)
    got = torch.diagonal(net.conn.weight)
    d = torch.tensor(deltas, dtype=torch.float64)
    ref = torch.where(
        d > 0,
        a_plus * torch.exp(-d / tau_plus),
        -a_minus * torch.exp(d / tau_minus),
    )
    ref[d == 0] = a_plus - a_minus
    torch.testing.assert_close(got, lr * ref, atol=1e-9, rtol=0)


def test_stdp_nearest_spike_vs_all_to_all():
    tau = 10.0
    pre = trains(12, 1, (1,), {0: [0], 5: [0]})
    post = trains(12, 1, (1,), {10: [0]})
    results = {}
    for mode in ("additive", "saturating"):
        net = linear_net(w=0.0, tau_pre=tau, tau_post=tau, mode=mode)
        rule = STDP(net.layers, lr=1.0, a_plus=1.0, a_minus=0.0)
        run_trains(net, rule, pre, post)
        results[mode] = net.conn.weight.item()
    assert results["additive"] == pytest.approx(math.exp(-1.0) + math.exp(-0.5), abs=1e-9)
    assert results["saturating"] == pytest.approx(math.exp(-0.5), abs=1e-9)


def test_stdp_soft_bounds_scale_with_weight():
    net = linear_net(w=0.25)
    rule = STDP(net.layers, lr=0.1, a_plus=1.0, a_minus=1.0, w_min=0.0, w_max=1.0, soft_bounds=True)
    run_trains(net, rule, trains(4, 1, (1,), {0: [0]}), trains(4, 1, (1,), {1: [0]}))
    expected = 0.25 + 0.1 * math.exp(-1 / 20) * (1.0 - 0.25)
    assert net.conn.weight.item() == pytest.approx(expected, abs=1e-12)


def test_scalar_delay_pairs_with_arriving_spikes():
    tau = 20.0
    net = linear_net(delay=3, tau_pre=tau, tau_post=tau)
    rule = STDP(net.layers, lr=1.0, a_plus=1.0, a_minus=0.0)
    run_trains(net, rule, trains(8, 1, (1,), {0: [0]}), trains(8, 1, (1,), {5: [0]}))
    # pre spike at 0 arrives at 3; post at 5 -> delta 2
    assert net.conn.weight.item() - 0.5 == pytest.approx(math.exp(-2 / tau), abs=1e-9)
    # post at 0, pre at 0 arriving at 3 -> depression with delta 3
    net = linear_net(delay=3, tau_pre=tau, tau_post=tau)
    rule = STDP(net.layers, lr=1.0, a_plus=0.0, a_minus=1.0)
    run_trains(net, rule, trains(8, 1, (1,), {0: [0]}), trains(8, 1, (1,), {0: [0]}))
    assert net.conn.weight.item() - 0.5 == pytest.approx(-math.exp(-3 / tau), abs=1e-9)


def test_per_synapse_delay_pairs_each_synapse():
    tau = 20.0
    delays = torch.tensor([[0.0, 1.0, 4.0], [2.0, 3.0, 0.0]])
    net = linear_net(3, 2, delay=delays, tau_pre=tau, tau_post=tau)
    rule = STDP(net.layers, lr=1.0, a_plus=1.0, a_minus=0.0)
    run_trains(net, rule, trains(9, 1, (3,), {0: [0, 1, 2]}), trains(9, 1, (2,), {6: [0, 1]}))
    expected = torch.exp(-(6 - delays.double()) / tau)
    torch.testing.assert_close(net.conn.weight - 0.5, expected, atol=1e-9, rtol=0)


def test_recurrent_diagonal_never_learns():
    torch.manual_seed(4)
    conn = Recurrent(4)
    net = Forced(conn, (4,), (4,)).double()
    rule = STDP(net.layers, lr=0.1)
    pre = (torch.rand(30, 2, 4) < 0.4).double()
    run_trains(net, rule, pre, pre)
    assert torch.all(torch.diagonal(conn.weight) == 0)
    assert not torch.equal(conn.weight, torch.zeros(4, 4, dtype=torch.float64))


# ---------------------------------------------------------------------------
# Event-driven path
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("soft,masked", [(False, False), (False, True), (True, True)])
def test_event_and_dense_paths_agree(soft, masked):
    torch.manual_seed(5)
    n_in, n_out, batch, steps = 40, 30, 3, 60
    pre = (torch.rand(steps, batch, n_in) < 0.03).double()
    post = (torch.rand(steps, batch, n_out) < 0.03).double()
    mask = (torch.rand(n_out, n_in) < 0.8) if masked else None
    weights, paths = {}, {}
    for mode in (False, True, None):
        net = linear_net(n_in, n_out)
        torch.manual_seed(6)
        with torch.no_grad():
            net.conn.weight.uniform_(0.0, 1.0)
        rule = STDP(
            net.layers,
            lr=0.05,
            a_plus=1.0,
            a_minus=1.2,
            w_min=0.0,
            w_max=1.0,
            soft_bounds=soft,
            mask=mask,
            event_driven=mode,
            event_min_synapses=0,
            event_threshold=0.1,
        )
        used = set()
        for t in range(steps):
            net(pre[t], post[t])
            rule.step()
            used.add(rule.last_path["conn"])
        weights[mode], paths[mode] = net.conn.weight.clone(), used
    assert "event" in paths[True] and "event" not in paths[False]
    assert "event" in paths[None]
    torch.testing.assert_close(weights[True], weights[False], atol=1e-12, rtol=0)
    torch.testing.assert_close(weights[None], weights[False], atol=1e-12, rtol=0)


@pytest.mark.parametrize("delay", [0, 2])
def test_spike_scatter_update_equals_dense_with_counts_positions_and_rule_traces(delay):
    """The event path scatters each (sample, neuron) spike; it equals the dense update.

    Spike counts (a list of inputs summed), an extra leading position dimension
    (``(B, P, in)``), a delay and rule-owned nearest-spike traces.
    """
    g = torch.Generator().manual_seed(9)
    n_in, n_out, batch, positions, steps = 12, 9, 3, 2, 40
    pre_a = (torch.rand(steps, batch, positions, n_in, generator=g) < 0.1).double()
    pre_b = (torch.rand(steps, batch, positions, n_in, generator=g) < 0.05).double()
    post = (torch.rand(steps, batch, positions, n_out, generator=g) < 0.1).double()
    weights, paths = {}, {}
    for mode in (False, True):
        net = Forced(Linear(n_in, n_out, dt=DT, delay=delay), (positions, n_in), (positions, n_out))
        net = net.double()
        with torch.no_grad():
            net.conn.weight.copy_(
                torch.rand(n_out, n_in, generator=torch.Generator().manual_seed(2))
            )
        rule = STDP(
            net.layers,
            lr=0.05,
            a_plus=1.0,
            a_minus=1.3,
            w_min=0.0,
            w_max=1.0,
            tau_plus=15.0,
            tau_minus=25.0,
            pairing="nearest",
            event_driven=mode,
        )
        used = set()
        for t in range(steps):
            net([pre_a[t], pre_b[t]], post[t])  # a list of inputs: spike counts
            rule.step()
            used.add(rule.last_path["conn"])
        weights[mode], paths[mode] = net.conn.weight.clone(), used
    assert "event" in paths[True] and paths[False] == {"dense"}
    assert not torch.equal(
        weights[False], torch.rand(n_out, n_in, generator=torch.Generator().manual_seed(2)).double()
    )
    torch.testing.assert_close(weights[True], weights[False], atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------
# Triplet STDP
# ---------------------------------------------------------------------------
TRIPLET = dict(a2_plus=0.005, a3_plus=0.0062, a2_minus=0.007, a3_minus=0.0023, tau_x=101.0)


def triplet_run(pre_times, post_times, tau_plus=16.8, tau_minus=33.7, tau_y=125.0):
    net = linear_net(w=0.0, tau_pre=tau_plus, tau_post=tau_minus)
    rule = TripletSTDP(net.layers, lr=1.0, tau_y=tau_y, **TRIPLET)
    steps = max(pre_times + post_times) + 2
    run_trains(
        net,
        rule,
        trains(steps, 1, (1,), {t: [0] for t in pre_times}),
        trains(steps, 1, (1,), {t: [0] for t in post_times}),
    )
    return net.conn.weight.item()


def test_triplet_pair_closed_form():
    tp, tm = 16.8, 33.7
    assert triplet_run([3], [13]) == pytest.approx(
        TRIPLET["a2_plus"] * math.exp(-10 / tp), abs=1e-9
    )
    assert triplet_run([13], [3]) == pytest.approx(
        -TRIPLET["a2_minus"] * math.exp(-10 / tm), abs=1e-9
    )


def test_triplet_closed_form_for_triplets():
    tp, tm, ty, tx = 16.8, 33.7, 125.0, TRIPLET["tau_x"]
    a2p, a3p, a2m, a3m = (TRIPLET[k] for k in ("a2_plus", "a3_plus", "a2_minus", "a3_minus"))
    # post (0) - pre (t1) - post (t2)
    t1, t2 = 6, 15
    expected = -a2m * math.exp(-t1 / tm) + math.exp(-(t2 - t1) / tp) * (
        a2p + a3p * math.exp(-t2 / ty)
    )
    assert triplet_run([t1], [0, t2]) == pytest.approx(expected, abs=1e-9)
    # pre (0) - post (t1) - pre (t2)
    expected = a2p * math.exp(-t1 / tp) - math.exp(-(t2 - t1) / tm) * (
        a2m + a3m * math.exp(-t2 / tx)
    )
    assert triplet_run([0, t2], [t1]) == pytest.approx(expected, abs=1e-9)


# ---------------------------------------------------------------------------
# Reward-modulated STDP
# ---------------------------------------------------------------------------
def test_mstdpet_matches_step_by_step_reference_per_batch():
    torch.manual_seed(7)
    n_in, n_out, batch, steps = 4, 3, 3, 25
    a_pre, a_post, lr, decay = 1.1, 0.9, 0.05, 0.8
    net = linear_net(n_in, n_out)
    w0 = net.conn.weight.clone()
    rule = MSTDPET(net.layer_state_dict(), a_pre, a_post, lr, decay)
    pre = (torch.rand(steps, batch, n_in) < 0.3).double()
    post = (torch.rand(steps, batch, n_out) < 0.3).double()
    rewards = torch.randn(steps, batch, dtype=torch.float64)
    lam_pre, lam_post = math.exp(-1 / 20), math.exp(-1 / 20)
    x_pre = torch.zeros(batch, n_in, dtype=torch.float64)
    x_post = torch.zeros(batch, n_out, dtype=torch.float64)
    e = torch.zeros(batch, n_out, n_in, dtype=torch.float64)
    w = w0.clone()
    for t in range(steps):
        x_pre = x_pre * lam_pre + pre[t]
        x_post = x_post * lam_post + post[t]
        for b in range(batch):
            e[b] = decay * e[b] + a_pre * torch.outer(post[t, b], x_pre[b])
            e[b] -= a_post * torch.outer(x_post[b], pre[t, b])
        w = w + lr * sum(rewards[t, b] * e[b] for b in range(batch)) / batch
        net(pre[t], post[t])
        rule.update_state()
        rule.step(rewards[t])
        torch.testing.assert_close(rule.eligibility("conn"), e)
        torch.testing.assert_close(net.conn.weight, w)


def test_mstdp_per_batch_reward_reference():
    torch.manual_seed(8)
    net = linear_net(4, 3)
    w0 = net.conn.weight.clone()
    rule = MSTDP(net.layers, a_pre=1.0, a_post=0.5, lr=0.1, reduction="sum")
    pre = (torch.rand(10, 2, 4) < 0.4).double()
    post = (torch.rand(10, 2, 3) < 0.4).double()
    reward = torch.tensor([1.0, -2.0], dtype=torch.float64)
    lam = math.exp(-1 / 20)
    x_pre, x_post, w = torch.zeros(2, 4).double(), torch.zeros(2, 3).double(), w0.clone()
    for t in range(10):
        x_pre, x_post = x_pre * lam + pre[t], x_post * lam + post[t]
        for b in range(2):
            zeta = torch.outer(post[t, b], x_pre[b]) - 0.5 * torch.outer(x_post[b], pre[t, b])
            w = w + 0.1 * reward[b] * zeta
        net(pre[t], post[t])
        rule.step(reward)
    torch.testing.assert_close(net.conn.weight, w)
    with pytest.raises(ValueError):
        rule.step(torch.ones(5))


# ---------------------------------------------------------------------------
# FedeSTDP
# ---------------------------------------------------------------------------
def test_fede_stdp_finite_with_zero_traces_and_gated_by_post():
    net = linear_net(3, 2, w=0.5)
    rule = FedeSTDP(net.layer_state_dict(), 0.1, 0.5, 0.2)  # original positional form
    zeros = torch.zeros(1, 3, dtype=torch.float64)
    net(zeros, torch.zeros(1, 2, dtype=torch.float64))
    rule.step()
    assert torch.all(net.conn.weight == 0.5)  # no post spike -> no change
    net(zeros, torch.tensor([[1.0, 0.0]], dtype=torch.float64))
    rule.step()
    w = net.conn.weight
    assert torch.isfinite(w).all()
    # zero traces -> x_hat = 0: LTP = (1 - a), LTD = (e - a) at w = w_init
    expected = 0.5 + 0.1 * ((1 - 0.2) - (math.e - 0.2))
    torch.testing.assert_close(w[0], torch.full((3,), expected, dtype=torch.float64))
    torch.testing.assert_close(w[1], torch.full((3,), 0.5, dtype=torch.float64))


def test_fede_stdp_conv_uses_receptive_field_max():
    torch.manual_seed(9)
    conn = Conv2d(2, 3, 2, stride=1)
    net = Forced(conn, (2, 4, 4), (3, 3, 3)).double()
    with torch.no_grad():
        conn.weight.uniform_(0.3, 0.7)
    w0 = conn.weight.clone()
    lr, w_init, a = 0.1, 0.5, 0.1
    rule = FedeSTDP(net.layers, lr, w_init, a)
    pre = (torch.rand(2, 2, 2, 4, 4) < 0.3).double()
    post = torch.zeros(2, 2, 3, 3, 3, dtype=torch.float64)
    post[1, 0, 1, 0, 2] = 1.0
    post[1, 1, 1, 2, 2] = 1.0
    post[1, 1, 0, 0, 0] = 1.0
    net(pre[0], post[0])
    rule.step()
    net(pre[1], post[1])
    rule.step()
    trace = net.pre.trace  # (B, C, H, W)
    ref = w0.clone()
    for o in range(3):
        terms = []
        for b, oo, i, j in post[1].nonzero().tolist():
            if oo != o:
                continue
            patch = trace[b, :, i : i + 2, j : j + 2]
            peak = patch.max()
            xh = patch / peak if peak > 0 else torch.zeros_like(patch)
            c = w0[o] - w_init
            terms.append(
                torch.exp(-c) * (torch.exp(xh) - a) - torch.exp(c) * (torch.exp(1 - xh) - a)
            )
        if terms:
            ref[o] = w0[o] + lr * sum(terms) / len(terms)
    torch.testing.assert_close(conn.weight, ref)


# ---------------------------------------------------------------------------
# Hebbian, Oja, normalisation
# ---------------------------------------------------------------------------
def test_hebbian_and_oja_reference():
    torch.manual_seed(10)
    for cls in (Hebbian, Oja):
        net = linear_net(4, 3)
        w0 = net.conn.weight.clone()
        rule = cls(net.layers, lr=0.1)
        pre = (torch.rand(2, 4) < 0.5).double()
        post = (torch.rand(2, 3) < 0.5).double()
        net(pre, post)
        rule.step()
        x, y = net.pre.trace, net.post.trace
        dw = y.t() @ x
        if cls is Oja:
            dw = dw - (y * y).sum(0).unsqueeze(-1) * w0
        torch.testing.assert_close(net.conn.weight, w0 + 0.1 * dw / 2)


def test_weight_normalization_interval_and_mask():
    torch.manual_seed(11)
    net = linear_net(6, 4)
    with torch.no_grad():
        net.conn.weight.uniform_(0.1, 1.0)
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[:, 0] = False
    fixed = net.conn.weight[:, 0].clone()
    norm = WeightNormalization(net.layers, target=2.0, interval=3, mask=mask)
    before = net.conn.weight.clone()
    norm.step()
    norm.step()
    assert torch.equal(net.conn.weight, before)
    norm.step()
    torch.testing.assert_close(net.conn.weight.sum(1), torch.full((4,), 2.0).double())
    assert torch.equal(net.conn.weight[:, 0], fixed)
    w = torch.rand(3, 2, 2, 2)
    normalize_weights(w, 5.0)
    torch.testing.assert_close(w.sum((1, 2, 3)), torch.full((3,), 5.0))


# ---------------------------------------------------------------------------
# Masks, bounds, eval, dtype, equivalences, constructors
# ---------------------------------------------------------------------------
def test_masks_and_bounds_hold_over_10000_random_steps():
    torch.manual_seed(12)
    net = linear_net(5, 4, dtype=torch.float32)
    with torch.no_grad():
        net.conn.weight.uniform_(-0.5, 0.5)
    mask = torch.rand(4, 5) < 0.6
    frozen = net.conn.weight[~mask].clone()
    rule = STDP(net.layers, lr=0.05, a_plus=1.0, a_minus=1.1, w_min=-0.5, w_max=0.5, mask=mask)
    pre = torch.rand(10_000, 2, 5) < 0.2
    post = torch.rand(10_000, 2, 4) < 0.2
    w = net.conn.weight
    for t in range(10_000):
        net(pre[t], post[t])
        rule.step()
        if t % 500 == 0:
            assert w.min() >= -0.5 and w.max() <= 0.5
            assert torch.equal(w[~mask], frozen)
    assert w.min() >= -0.5 and w.max() <= 0.5
    assert torch.equal(w[~mask], frozen)
    assert not torch.equal(w[mask], torch.zeros_like(w[mask]))


RULES = {
    "stdp": lambda L, **kw: STDP(L, lr=0.2, **kw),
    "stdp_event": lambda L, **kw: STDP(L, lr=0.2, event_driven=True, **kw),
    "triplet": lambda L, **kw: TripletSTDP(L, lr=20.0, **kw),
    "mstdp": lambda L, **kw: MSTDP(L, lr=0.2, **kw),
    "mstdpet": lambda L, **kw: MSTDPET(L, lr=0.2, **kw),
    "fede": lambda L, **kw: FedeSTDP(L, lr=0.2, **kw),
    "hebbian": lambda L, **kw: Hebbian(L, lr=0.2, **kw),
    "oja": lambda L, **kw: Oja(L, lr=0.2, **kw),
    "shrestha": lambda L, **kw: ShresthaSTDP(L, lr=0.2, **kw),
    "kheradpisheh": lambda L, **kw: KheradpishehSTDP(L, lr=20.0, k=2, potential=None, **kw),
}


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(sorted(RULES)),
    soft=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_masks_and_bounds_every_rule(name, soft, seed):
    gen = torch.Generator().manual_seed(seed)
    net = linear_net(4, 3)
    with torch.no_grad():
        net.conn.weight.copy_(torch.rand(3, 4, generator=gen, dtype=torch.float64))
    mask = torch.rand(3, 4, generator=gen) < 0.5
    frozen = net.conn.weight[~mask].clone()
    rule = RULES[name](net.layers, w_min=0.0, w_max=1.0, soft_bounds=soft, mask=mask)
    for _ in range(40):
        net(
            (torch.rand(2, 4, generator=gen) < 0.3).double(),
            (torch.rand(2, 3, generator=gen) < 0.3).double(),
        )
        rule.update_state()
        rule.step(torch.randn(2, generator=gen))
        w = net.conn.weight
        assert torch.isfinite(w).all()
        assert w.min() >= 0.0 and w.max() <= 1.0
        assert torch.equal(w[~mask], frozen)


@pytest.mark.parametrize("name", sorted(RULES))
def test_eval_freezes_weights(name):
    torch.manual_seed(13)
    net = linear_net(4, 3)
    rule = RULES[name](net.layers)
    net.eval()
    w0 = net.conn.weight.clone()
    for _ in range(20):
        net((torch.rand(2, 4) < 0.5).double(), (torch.rand(2, 3) < 0.5).double())
        rule.update_state()
        rule.step(torch.ones(2))
    assert torch.equal(net.conn.weight, w0)
    net.train()
    for _ in range(5):
        net(torch.ones(2, 4).double(), torch.ones(2, 3).double())
        rule.update_state()
        rule.step(torch.ones(2))
    assert not torch.equal(net.conn.weight, w0)


@pytest.mark.parametrize("name", ["stdp", "triplet", "mstdpet", "fede", "oja", "shrestha"])
def test_linear_and_1x1_conv_give_same_weights(name):
    torch.manual_seed(14)
    c_in, c_out, h, w, batch, steps = 3, 4, 2, 3, 2, 15
    lin = Linear(c_in, c_out)
    conv = Conv2d(c_in, c_out, 1)
    with torch.no_grad():
        lin.weight.uniform_(0.2, 0.8)
        conv.weight.copy_(lin.weight.view(c_out, c_in, 1, 1))
    net_l = Forced(lin, (h * w, c_in), (h * w, c_out)).double()
    net_c = Forced(conv, (c_in, h, w), (c_out, h, w)).double()
    rule_l, rule_c = RULES[name](net_l.layers), RULES[name](net_c.layers)
    pre = (torch.rand(steps, batch, c_in, h, w) < 0.4).double()
    post = (torch.rand(steps, batch, c_out, h, w) < 0.4).double()
    for t in range(steps):
        net_l(pre[t].flatten(2).transpose(1, 2), post[t].flatten(2).transpose(1, 2))
        net_c(pre[t], post[t])
        for rule in (rule_l, rule_c):
            rule.update_state()
            rule.step(torch.tensor([1.0, -0.5]))
    torch.testing.assert_close(conv.weight.view(c_out, c_in), lin.weight)
    assert not torch.allclose(lin.weight, torch.full_like(lin.weight, 0.5))


def test_rule_follows_network_double():
    net = linear_net(3, 2, dtype=torch.float32)
    rule = STDP(net.layers, lr=0.1, a_minus=0.5)
    net.double()
    assert net.conn.weight.dtype == torch.float64
    w0 = net.conn.weight.clone()
    net(torch.ones(1, 3, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64))
    rule.step()
    assert not torch.equal(net.conn.weight, w0)
    assert rule.layers[0].connection.weight is net.conn.weight


def test_parameter_groups_and_constructor_forms():
    class Two(SNNNetwork):
        def __init__(self):
            super().__init__()
            self.pre = Input((3,), DT, 1.0, 20.0, "exact")
            self.a, self.b = Linear(3, 2), Linear(3, 2)
            self.post_a = Input((2,), DT, 1.0, 20.0, "exact")
            self.post_b = Input((2,), DT, 1.0, 20.0, "exact")
            self.add_layer("a", self.a, self.post_a)
            self.add_layer("b", self.b, self.post_b)

        def forward(self, pre, post):
            s, t = self.pre(pre)
            self.a(s, t)
            self.b(s, t)
            self.post_a(post)
            return self.post_b(post)

    net = Two().double()
    with torch.no_grad():
        net.a.weight.zero_()
        net.b.weight.zero_()
    rule = STDP([{"layers": ["a"]}, {"layers": ["b"], "lr": 0.3}], network=net, lr=0.1)
    assert rule.param_groups[1]["lr"] == 0.3 and rule.param_groups[0]["lr"] == 0.1
    net(torch.ones(1, 3).double(), torch.ones(1, 2).double())
    rule.step()
    torch.testing.assert_close(net.b.weight, 3 * net.a.weight)
    # every accepted form finds the same layers
    forms = [
        net,
        net.layers,
        net.layer_state_dict(),
        list(net.layers.values()),
        net.layers["a"],
    ]
    assert [lay.name for lay in STDP(forms[0]).layers] == ["a", "b"]
    for form in forms[1:4]:
        assert [lay.name for lay in STDP(form).layers] == ["a", "b"]
    assert [lay.name for lay in STDP(forms[4]).layers] == ["a"]
    assert [lay.name for lay in STDP(["b"], network=net).layers] == ["b"]
    masks = {"b": torch.zeros(2, 3, dtype=torch.bool)}
    rule = STDP(net, lr=1.0, mask=masks)
    wa, wb = net.a.weight.clone(), net.b.weight.clone()
    net(torch.ones(1, 3).double(), torch.zeros(1, 2).double())
    rule.step()
    assert torch.equal(net.b.weight, wb) and not torch.equal(net.a.weight, wa)
    rule = MSTDPET(net.layer_state_dict(), 1.0, 1.0, 0.01, 0.9)
    assert rule.param_groups[0]["e_trace_decay"] == 0.9
    rule = FedeSTDP(net.layer_state_dict(), 0.01, 0.5, 0.1)
    assert rule.param_groups[0]["w_init"] == 0.5
    with pytest.raises(ValueError):
        STDP(net, soft_bounds=True)
    with pytest.raises(ValueError):
        STDP(net, mask=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError):
        STDP([{"layers": ["a"], "bogus": 1}], network=net)
    with pytest.raises(ValueError):
        STDP([{"layers": ["a"]}, {"layers": ["a"]}], network=net)


def test_adaptive_threshold_with_stdp():
    torch.manual_seed(15)

    class Net(SNNNetwork):
        def __init__(self):
            super().__init__()
            self.inp = Input((20,), DT, 1.0, 20.0, "exact")
            self.fc = Linear(20, 5)
            self.lif = AdaptiveLIFNeuron(
                (5,), 1.0, 0.0, 1.0, 1.0, DT, 0.0, 10.0, 20.0, 0.2, 50.0, "exact"
            )
            self.add_layer("fc", self.fc, self.lif)

        def forward(self, x):
            s, t = self.inp(x)
            out, _ = self.fc(s, t)
            return self.lif(out)

    net = Net()
    with torch.no_grad():
        net.fc.weight.uniform_(0.2, 0.6)
    rule = STDP(net.layers, lr=0.01, w_min=0.0, w_max=1.0)
    norm = WeightNormalization(net.layers, target=4.0, interval=10)
    x = torch.rand(100, 4, 20) < 0.2
    w0 = net.fc.weight.clone()
    for t in range(100):
        net(x[t])
        rule.step()
        norm.step()
    assert (net.lif.thresh_adaptive > 1.0).any()
    assert not torch.equal(net.fc.weight, w0)
    torch.testing.assert_close(net.fc.weight.sum(1), torch.full((5,), 4.0), atol=0.5, rtol=0)
    net.eval()
    theta, w1 = net.lif.thresh_adaptive.clone(), net.fc.weight.clone()
    for t in range(30):
        net(x[t])
        rule.step()
        norm.step()
    assert torch.equal(net.lif.thresh_adaptive, theta)
    assert torch.equal(net.fc.weight, w1)


def test_errors():
    net = linear_net(3, 2)
    rule = MSTDP(net.layers)
    net(torch.ones(1, 3).double(), torch.ones(1, 2).double())
    with pytest.raises(TypeError):
        rule.step()
    with pytest.raises(ValueError):
        STDP(net.layers, reduction="max")
    conn = Linear(3, 2).double()
    conn(torch.ones(1, 3).double())  # no trace passed
    with pytest.raises(RuntimeError):
        conn.correlate(torch.ones(1, 2).double(), "trace")
    assert F is not None


def test_collections_skip_pooling_layers():
    from pysnn.connection import MaxPool2d

    class PoolNet(SNNNetwork):
        def __init__(self):
            super().__init__()
            self.inp = Input((1, 4, 4), DT, 1.0, 20.0, "exact")
            self.conv = Conv2d(1, 2, 3, padding=1)
            self.lif = Input((2, 4, 4), DT, 1.0, 20.0, "exact")
            self.pool = MaxPool2d(2)
            self.out = Input((2, 2, 2), DT, 1.0, 20.0, "exact")
            self.add_layer("conv", self.conv, self.lif)
            self.add_layer("pool", self.pool, self.out)

    net = PoolNet()
    for form in (net, net.layers, net.layer_state_dict()):
        assert [lay.name for lay in MSTDPET(form).layers] == ["conv"]
    with pytest.raises(TypeError):
        STDP(["pool"], network=net)


def test_custom_rule_on_base_class():
    from pysnn.learning import LearningRule
    from pysnn.learning.options import Hyper

    class PreGated(LearningRule):
        hyperparameters = (Hyper("gain", 2.0, doc="factor of the change"),)

        def __init__(self, layers, lr=1e-3, gain=2.0, **options):
            super().__init__(layers, dict(lr=lr, gain=gain, **options))

        def _step_layer(self, layer, group, state, reward):
            if self._frozen(layer):
                return
            post = self._post(layer, "trace")
            dw = layer.connection.correlate(post, "spikes") * group["gain"]
            self._apply(layer, group, dw=dw * self._scale(group, post.shape[0]))

    net = linear_net(2, 2, w=0.0)
    rule = PreGated(net.layers, lr=0.5, w_max=0.6)
    net(torch.tensor([[1.0, 0.0]]).double(), torch.tensor([[1.0, 1.0]]).double())
    rule.step()
    torch.testing.assert_close(
        net.conn.weight, torch.tensor([[0.6, 0.0], [0.6, 0.0]], dtype=torch.float64)
    )


def test_auto_path_choice():
    net = linear_net(200, 150)
    pre = torch.zeros(1, 200, dtype=torch.float64)
    pre[0, 3] = 1.0
    post = torch.zeros(1, 150, dtype=torch.float64)
    post[0, 2] = 1.0  # 0.6 % of the neurons active: below event_threshold
    small = STDP(net.layers, lr=0.1)  # below event_min_synapses: dense
    eager = STDP(net.layers, lr=0.1, event_min_synapses=0)
    net(pre, post)
    small.step()
    eager.step()
    assert small.last_path["conn"] == "dense" and eager.last_path["conn"] == "event"
    net(torch.ones(1, 200).double(), torch.ones(1, 150).double())
    eager.step()
    assert eager.last_path["conn"] == "dense"  # too many active neurons
    net(torch.zeros(1, 200).double(), torch.zeros(1, 150).double())
    eager.step()
    assert eager.last_path["conn"] == "none"


def test_a_rule_option_written_from_the_docs_is_checked_everywhere():
    """A new STDP variant declares its option once: NaN is refused when built, set and stepped."""
    from pysnn.learning.options import Hyper

    class GatedSTDP(STDP):  # an STDP variant with one more hyper-parameter
        """STDP whose change is multiplied by a gate."""

        hyperparameters = (Hyper("gate", 1.0, "non_negative", doc="factor of every change"),)

        def _step_layer(self, layer, group, state, reward):
            before = layer.connection.weight.clone()
            super()._step_layer(layer, group, state, reward)
            with torch.no_grad():
                weight = layer.connection.weight
                weight.copy_(before + group["gate"] * (weight - before))

    net = linear_net(2, 2, w=0.5)
    with pytest.raises(ValueError, match="gate must be finite"):
        GatedSTDP(net.layers, gate=float("nan"))
    with pytest.raises(ValueError, match="gate must be >= 0"):
        GatedSTDP(net.layers, gate=-1.0)
    with pytest.raises(TypeError, match="unknown options.*gatee"):
        GatedSTDP(net.layers, gatee=1.0)
    rule = GatedSTDP(net.layers, lr=0.5, gate=0.5)
    assert "gate=0.5" in repr(rule) and "``gate``" in GatedSTDP.__doc__  # the docs' table
    with pytest.raises(ValueError, match="gate must be finite"):
        rule.param_groups[0]["gate"] = float("inf")
    rule.param_groups[0]["gate"] = torch.tensor(0.5)
    rule.param_groups[0]["gate"].fill_(float("nan"))  # edited in place: caught at the step
    before = net.layer1_connection.weight.clone() if hasattr(net, "layer1_connection") else None
    net(torch.tensor([[1.0, 0.0]]).double(), torch.tensor([[1.0, 1.0]]).double())
    weights = [layer.connection.weight.clone() for layer in rule.layers]
    with pytest.raises(ValueError, match="gate must be finite"):
        rule.step()
    assert all(torch.equal(w, layer.connection.weight) for w, layer in zip(weights, rule.layers))
    rule.param_groups[0]["gate"] = 0.0  # no change at all
    rule.step()
    assert all(torch.equal(w, layer.connection.weight) for w, layer in zip(weights, rule.layers))
    del before
