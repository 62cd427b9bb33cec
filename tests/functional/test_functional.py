"""Tests of :mod:`pysnn.functional` against values derived by hand.

Every expected value below is either written out (with the arithmetic in a
comment) or recomputed with a plain loop over the equations of DESIGN.md; no
expected value comes from :mod:`pysnn.functional` itself.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pysnn import functional as sf

F64 = torch.float64
LN2 = math.log(2.0)
#: a time constant for which exp(-dt / tau) == 0.5 with dt = 1
TAU_HALF = 1.0 / LN2


def t(values, device="cpu", dtype=F64):
    return torch.tensor(values, dtype=dtype, device=device)


def close(actual, expected, atol=1e-12, rtol=1e-12):
    expected = torch.as_tensor(expected, dtype=actual.dtype, device=actual.device)
    torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol)


def run_trace(update, spikes_seq, *args, **kwargs):
    """Apply a trace update over a sequence of spike tensors, starting from 0."""
    trace = torch.zeros_like(spikes_seq[0])
    out = []
    for s in spikes_seq:
        trace = update(trace, s, *args, **kwargs)
        out.append(trace)
    return torch.stack(out)


SPIKES = [[1.0], [0.0], [1.0], [0.0], [0.0]]


# ---------------------------------------------------------------------------
# decay_factor
# ---------------------------------------------------------------------------
def test_decay_factor_values(device):
    close(sf.decay_factor(10.0, 1.0), math.exp(-0.1))
    close(sf.decay_factor(TAU_HALF, 1.0), 0.5)
    close(sf.decay_factor(2.0, 4.0), math.exp(-2.0))
    taus = t([1.0, 2.0, 4.0], device)
    out = sf.decay_factor(taus, 2.0)
    assert out.shape == (3,) and out.device.type == device.type
    close(out, [math.exp(-2.0), math.exp(-1.0), math.exp(-0.5)])


# ---------------------------------------------------------------------------
# traces
# ---------------------------------------------------------------------------
def test_linear_trace_additive(device):
    spikes = t(SPIKES, device)
    out = run_trace(sf.linear_trace_update, spikes, 1.0, 0.5)
    # 0*.5+1=1, 1*.5=.5, .5*.5+1=1.25, .625, .3125
    close(out.squeeze(-1), [1.0, 0.5, 1.25, 0.625, 0.3125])


def test_linear_trace_saturating(device):
    spikes = t(SPIKES, device)
    out = run_trace(sf.linear_trace_update, spikes, 1.0, 0.5, saturate=True)
    # a spike sets the trace to alpha_t instead of adding it
    close(out.squeeze(-1), [1.0, 0.5, 1.0, 0.5, 0.25])


def test_linear_trace_alpha_and_per_neuron_decay(device):
    trace = t([0.8, 0.8, 0.0], device)
    spikes = t([1.0, 0.0, 1.0], device)
    decay = t([0.5, 0.25, 0.5], device)
    close(sf.linear_trace_update(trace, spikes, 2.0, decay), [0.4 + 2.0, 0.2, 2.0])
    close(sf.linear_trace_update(trace, spikes, 2.0, decay, saturate=True), [2.0, 0.2, 2.0])
    # the arguments are not modified
    close(trace, [0.8, 0.8, 0.0])
    close(spikes, [1.0, 0.0, 1.0])


def test_exponential_trace_additive(device):
    spikes = t(SPIKES, device)
    out = run_trace(sf.euler_trace_update, spikes, 2.0, 4.0, 1.0)
    # x += dt/tau (-x + a s), dt/tau = 1/4, a = 2
    x, expected = 0.0, []
    for (s,) in SPIKES:
        x = x + 0.25 * (-x + 2.0 * s)
        expected.append(x)
    assert expected[:3] == [0.5, 0.375, 0.78125]
    close(out.squeeze(-1), expected)


def test_exponential_trace_saturating(device):
    spikes = t(SPIKES, device)
    out = run_trace(sf.euler_trace_update, spikes, 2.0, 4.0, 1.0, saturate=True)
    # spike -> 2; no spike -> x (1 - 1/4)
    close(out.squeeze(-1), [2.0, 1.5, 2.0, 1.5, 1.125])


def test_exponential_trace_dt(device):
    # dt = 0.5, tau = 2: dt/tau = 1/4 like above
    spikes = t(SPIKES, device)
    out = run_trace(sf.euler_trace_update, spikes, 2.0, 2.0, 0.5)
    close(out.squeeze(-1)[:3], [0.5, 0.375, 0.78125])


def test_exact_trace_additive_and_saturating(device):
    spikes = t(SPIKES, device)
    out = run_trace(sf.exact_trace_update, spikes, 1.0, TAU_HALF, 1.0)
    close(out.squeeze(-1), [1.0, 0.5, 1.25, 0.625, 0.3125])
    out = run_trace(sf.exact_trace_update, spikes, 1.0, TAU_HALF, 1.0, saturate=True)
    close(out.squeeze(-1), [1.0, 0.5, 1.0, 0.5, 0.25])


def test_exact_trace_is_stdp_window(device):
    # one spike at step 0 leaves alpha * exp(-n dt / tau) after n more steps
    tau, dt, alpha = 7.0, 0.3, 1.5
    seq = torch.zeros(30, 1, dtype=F64, device=device)
    seq[0] = 1.0
    out = run_trace(sf.exact_trace_update, seq, alpha, tau, dt).squeeze(-1)
    expected = [alpha * math.exp(-n * dt / tau) for n in range(30)]
    close(out, expected)


@pytest.mark.parametrize("saturate", [False, True])
def test_trace_update_dispatch(saturate, device):
    trace = t([0.3, 0.7], device)
    spikes = t([1.0, 0.0], device)
    # linear: tau_t is the decay factor
    lin = 0.6 * 0.3 + 0.4 if not saturate else 0.4
    close(
        sf.trace_update("linear", trace, spikes, 0.4, 0.6, 1.0, saturate),
        [lin, 0.7 * 0.6],
    )
    expo = 0.3 + 0.5 * (0.4 - 0.3) if not saturate else 0.4
    close(
        sf.trace_update("exponential", trace, spikes, 0.4, 2.0, 1.0, saturate),
        [expo, 0.7 - 0.5 * 0.7],
    )
    lam = math.exp(-0.5)
    exact = 0.3 * lam + 0.4 if not saturate else 0.4
    close(sf.trace_update("exact", trace, spikes, 0.4, 2.0, 1.0, saturate), [exact, 0.7 * lam])


# ---------------------------------------------------------------------------
# voltages
# ---------------------------------------------------------------------------
def test_if_voltage_update(device):
    v = t([0.0, 0.5, 0.2], device)
    refrac = torch.tensor([0, 1, 0], device=device)
    out = sf.if_voltage_update(v, t([1.0, 1.0, -2.0], device), 0.5, refrac)
    close(out, [0.5, 0.5, -0.8])  # neuron 1 is refractory: no integration
    # several steps
    v = t([0.0], device)
    for x, r, expected in [(1.0, 0, 0.5), (1.0, 0, 1.0), (4.0, 2, 1.0), (-1.0, 0, 0.5)]:
        v = sf.if_voltage_update(v, t([x], device), 0.5, torch.tensor([r], device=device))
        close(v, [expected])


def test_lif_linear_voltage_update(device):
    v_rest, lam, alpha = -0.5, 0.5, 2.0
    v = t([v_rest], device)
    zero = torch.zeros(1, dtype=torch.int64, device=device)
    # v_rest + ((v - v_rest) lam + alpha I)
    v = sf.lif_linear_voltage_update(v, v_rest, t([0.25], device), alpha, lam, zero)
    close(v, [0.0])  # -0.5 + (0 + 0.5)
    v = sf.lif_linear_voltage_update(v, v_rest, t([0.0], device), alpha, lam, zero)
    close(v, [-0.25])  # -0.5 + 0.5 * 0.5
    v = sf.lif_linear_voltage_update(v, v_rest, t([0.5], device), alpha, lam, zero)
    close(v, [0.625])  # -0.5 + 0.25 * 0.5 + 1
    # refractory: clamped to v_rest whatever the input
    v = sf.lif_linear_voltage_update(v, v_rest, t([3.0], device), alpha, lam, zero + 1)
    close(v, [v_rest])


def test_lif_euler_voltage_update(device):
    v = t([0.0, 0.0], device)
    refrac = torch.tensor([0, 3], device=device)
    x = t([2.0, 2.0], device)
    expected = []
    ve = 0.0
    for _ in range(3):
        ve = ve + 0.25 * (-(ve - 0.0) + 1.0 * 2.0)
        expected.append(ve)
    assert expected == [0.5, 0.875, 1.15625]
    for e in expected:
        v = sf.lif_euler_voltage_update(v, 0.0, x, 1.0, 4.0, 1.0, refrac)
        close(v, [e, 0.0])  # the refractory neuron keeps its voltage


def test_lif_exponential_voltage_relaxes_to_rest(device):
    # no input: v - v_rest shrinks by (1 - dt/tau) per step
    v = t([1.0], device)
    zero = torch.zeros(1, dtype=torch.int64, device=device)
    for n in range(1, 6):
        v = sf.lif_euler_voltage_update(v, -1.0, t([0.0], device), 1.0, 10.0, 2.0, zero)
        close(v, [-1.0 + 2.0 * 0.8**n])


def test_lif_exact_voltage_update(device):
    # gain 1 - exp(-dt/tau) = 0.5; v_inf = v_rest + alpha I = 0 + 1 * 2
    v = t([0.0, 0.3], device)
    refrac = torch.tensor([0, 1], device=device)
    for expected in [1.0, 1.5, 1.75]:
        v = sf.lif_exact_voltage_update(v, 0.0, t([2.0, 2.0], device), 1.0, TAU_HALF, 1.0, refrac)
        close(v, [expected, 0.3])


def test_lif_exact_matches_closed_form(device):
    v0, v_rest, alpha, current, tau, dt = 0.3, -0.2, 0.8, 1.7, 7.3, 0.37
    v_inf = v_rest + alpha * current
    v = t([v0], device)
    zero = torch.zeros(1, dtype=torch.int64, device=device)
    x = t([current], device)
    for n in range(1, 51):
        v = sf.lif_exact_voltage_update(v, v_rest, x, alpha, tau, dt, zero)
        close(v, [v_inf + (v0 - v_inf) * math.exp(-n * dt / tau)], atol=1e-12, rtol=1e-10)


def test_lif_exact_converges_to_euler(device):
    v = t([0.4], device)
    x = t([1.3], device)
    zero = torch.zeros(1, dtype=torch.int64, device=device)
    tau = 10.0
    diffs = []
    for dt in [1e-2, 5e-3, 2.5e-3]:
        exact = sf.lif_exact_voltage_update(v, 0.1, x, 0.9, tau, dt, zero)
        euler = sf.lif_euler_voltage_update(v, 0.1, x, 0.9, tau, dt, zero)
        # Euler step by hand: v + dt/tau (-(v - v_rest) + alpha I)
        close(euler, [0.4 + dt / tau * (-(0.4 - 0.1) + 0.9 * 1.3)])
        step = (euler - v).abs().item()
        diff = (exact - euler).abs().item()
        assert diff < 1e-2 * step  # relative difference O(dt / tau)
        diffs.append(diff)
    # the one-step difference is O((dt/tau)^2): halving dt divides it by ~4
    assert 3.5 < diffs[0] / diffs[1] < 4.5
    assert 3.5 < diffs[1] / diffs[2] < 4.5


def test_lif_voltage_update_dispatch(device):
    v = t([0.5], device)
    x = t([1.0], device)
    zero = torch.zeros(1, dtype=torch.int64, device=device)
    close(sf.lif_voltage_update("linear", v, 0.0, x, 2.0, 0.5, 1.0, zero), [0.25 + 2.0])
    close(
        sf.lif_voltage_update("exponential", v, 0.0, x, 2.0, 4.0, 1.0, zero),
        [0.5 + 0.25 * (2.0 - 0.5)],
    )
    close(
        sf.lif_voltage_update("exact", v, 0.0, x, 2.0, TAU_HALF, 1.0, zero),
        [2.0 + (0.5 - 2.0) * 0.5],
    )


def test_fede_voltage_update(device):
    # v += dt/tau (-(v - v_rest) + alpha (I - X)), dt/tau = 1/2
    v = t([0.0, 0.0], device)
    refrac = torch.tensor([0, 1], device=device)
    v = sf.fede_voltage_update(
        v, 0.0, t([3.0, 3.0], device), t([1.0, 1.0], device), 1.0, 2.0, 1.0, refrac
    )
    close(v, [1.0, 0.0])
    v = sf.fede_voltage_update(
        v, 0.0, t([0.0, 0.0], device), t([0.0, 0.0], device), 1.0, 2.0, 1.0, refrac
    )
    close(v, [0.5, 0.0])
    # the presynaptic trace pushes the voltage down; v_rest and alpha_v matter
    v = sf.fede_voltage_update(
        v, 0.2, t([1.0, 0.0], device), t([2.0, 0.0], device), 0.5, 2.0, 1.0, refrac
    )
    close(v, [0.5 + 0.5 * (-(0.5 - 0.2) + 0.5 * (1.0 - 2.0)), 0.0])


def test_izhikevich_update(device):
    v = t([-65.0, -65.0], device)
    u = t([-13.0, -13.0], device)
    refrac = torch.tensor([0, 1], device=device)
    x = t([10.0, 10.0], device)
    # dv = 0.04*4225 - 325 + 140 + 13 + 10 = 7 ; v = -65 + 0.5*7
    # du = 0.02 (0.2*(-65) + 13) = 0
    v, u = sf.izhikevich_update(v, u, x, 0.02, 0.2, 1.0, 0.5, refrac)
    close(v, [-61.5, -65.0])
    close(u, [-13.0, -13.0])
    # dv = 0.04*3782.25 - 307.5 + 163 = 6.79 ; u uses the previous v = -61.5
    v, u = sf.izhikevich_update(v, u, x, 0.02, 0.2, 1.0, 0.5, refrac)
    close(v, [-61.5 + 0.5 * 6.79, -65.0], rtol=1e-12, atol=1e-10)
    close(u, [-13.0 + 0.5 * 0.02 * (0.2 * -61.5 + 13.0), -13.0], rtol=1e-12, atol=1e-12)
    # alpha_v scales the input
    v2, _ = sf.izhikevich_update(
        t([-70.0], device), t([-14.0], device), t([4.0], device), 0.1, 0.25, 2.5, 0.25, refrac[:1]
    )
    dv = 0.04 * 4900 - 350 + 140 + 14 + 2.5 * 4.0
    close(v2, [-70.0 + 0.25 * dv], rtol=1e-12, atol=1e-10)


# ---------------------------------------------------------------------------
# thresholds
# ---------------------------------------------------------------------------
def test_linear_thresh_relaxes_to_base(device):
    theta = t([1.0], device)
    spikes = [1.0, 0.0, 0.0] + [0.0] * 60
    expected = [1.2, 1.1, 1.05]
    for n, s in enumerate(spikes):
        theta = sf.linear_thresh_update(theta, 1.0, t([s], device), 0.2, 0.5)
        if n < 3:
            close(theta, [expected[n]])
    close(theta, [1.0], atol=1e-15, rtol=0)  # back to the base, not to 0


def test_linear_thresh_accumulates(device):
    theta = t([2.0, 2.0], device)
    base = t([2.0, 2.0], device)
    for _ in range(3):
        theta = sf.linear_thresh_update(theta, base, t([1.0, 0.0], device), 0.5, 0.5)
    # excess e: 0.5, 0.75, 0.875
    close(theta, [2.875, 2.0])


def test_exponential_thresh_update(device):
    theta = t([1.0], device)
    theta = sf.euler_thresh_update(theta, 1.0, t([1.0], device), 0.4, 4.0, 1.0)
    close(theta, [1.1])  # 1 + 1/4 (0.4)
    theta = sf.euler_thresh_update(theta, 1.0, t([0.0], device), 0.4, 4.0, 1.0)
    close(theta, [1.075])  # 1.1 + 1/4 (-0.1)
    for _ in range(200):
        theta = sf.euler_thresh_update(theta, 1.0, t([0.0], device), 0.4, 4.0, 1.0)
    close(theta, [1.0], atol=1e-15, rtol=0)


def test_exact_thresh_update(device):
    theta = t([1.0], device)
    for s, expected in [(1.0, 1.2), (0.0, 1.1), (0.0, 1.05), (1.0, 1.225)]:
        theta = sf.exact_thresh_update(theta, 1.0, t([s], device), 0.2, TAU_HALF, 1.0)
        close(theta, [expected])


def test_thresh_update_dispatch(device):
    theta = t([1.5], device)
    s = t([1.0], device)
    close(sf.thresh_update("linear", theta, 1.0, s, 0.1, 0.5, 1.0), [1.0 + 0.25 + 0.1])
    close(sf.thresh_update("exponential", theta, 1.0, s, 0.1, 4.0, 1.0), [1.5 + 0.25 * (0.1 - 0.5)])
    close(sf.thresh_update("exact", theta, 1.0, s, 0.1, TAU_HALF, 1.0), [1.0 + 0.25 + 0.1])


# ---------------------------------------------------------------------------
# spikes, reset, refractoriness
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_spike_fn(dtype, device):
    v = t([0.5, 1.0, 1.5, -2.0], device, dtype)
    s = sf.spike_fn(v, 1.0)
    assert s.dtype == dtype
    assert s.tolist() == [0.0, 1.0, 1.0, 0.0]
    thresh = t([0.4, 1.1, 1.5, -3.0], device, dtype)
    assert sf.spike_fn(v, thresh).tolist() == [1.0, 0.0, 1.0, 1.0]


def test_spike_fn_refractory_neurons_do_not_spike(device):
    v = t([1.5, 1.5, 0.5], device)
    refrac = torch.tensor([0, 2, 0], device=device)
    assert sf.spike_fn(v, 1.0, refrac).tolist() == [1.0, 0.0, 0.0]


def test_reset_voltage(device):
    v = t([1.5, 0.5, 2.0], device)
    s = t([1.0, 0.0, 1.0], device)
    close(sf.reset_voltage(v, s, -0.2, 1.0, "rest"), [-0.2, 0.5, -0.2])
    close(sf.reset_voltage(v, s, -0.2, 1.0), [-0.2, 0.5, -0.2])  # default is "rest"
    # subtract thresh - v_rest = 1.2 and keep the overshoot
    close(sf.reset_voltage(v, s, -0.2, 1.0, "subtract"), [0.3, 0.5, 0.8])
    # per-neuron v_rest and thresh
    v_rest = t([0.0, 0.0, 0.5], device)
    thresh = t([1.0, 1.0, 1.5], device)
    close(sf.reset_voltage(v, s, v_rest, thresh, "rest"), [0.0, 0.5, 0.5])
    close(sf.reset_voltage(v, s, v_rest, thresh, "subtract"), [0.5, 0.5, 1.0])
    close(v, [1.5, 0.5, 2.0])  # not modified


def test_duration_to_steps_float_tolerance():
    out = sf.duration_to_steps(0.3, 0.1)
    assert out.dtype == torch.int64 and out.item() == 3
    assert 0.3 % 0.1 != 0  # why a modulo check would be wrong
    assert sf.duration_to_steps(0.0, 0.1).item() == 0
    assert sf.duration_to_steps(2.0, 1.0).item() == 2
    assert sf.duration_to_steps(0.7, 0.1).item() == 7
    assert sf.duration_to_steps(torch.tensor(0.3), 0.1).item() == 3  # float32 tensor
    durations = torch.tensor([0.0, 0.1, 0.2, 0.3, 1.2])
    assert sf.duration_to_steps(durations, 0.1).tolist() == [0, 1, 2, 3, 12]


@pytest.mark.parametrize(
    "duration, dt", [(0.25, 0.1), (1.5, 1.0), (-1.0, 1.0), (float("nan"), 1.0), (float("inf"), 1.0)]
)
def test_duration_to_steps_rejects(duration, dt):
    with pytest.raises(ValueError, match="my_delay"):
        sf.duration_to_steps(duration, dt, name="my_delay")
    with pytest.raises(ValueError, match="duration"):
        sf.duration_to_steps(duration, dt)


def test_duration_to_steps_rejects_tensor_entry():
    with pytest.raises(ValueError, match="duration_refrac"):
        sf.duration_to_steps(torch.tensor([0.1, 0.25]), 0.1, "duration_refrac")


@settings(max_examples=60, deadline=None)
@given(
    steps=st.integers(min_value=0, max_value=10_000),
    dt=st.sampled_from([0.1, 0.05, 0.2, 0.3, 0.001, 1.0, 0.5, 0.7]),
)
def test_duration_to_steps_any_multiple(steps, dt):
    assert sf.duration_to_steps(steps * dt, dt).item() == steps


def test_refractory_update(device):
    r = torch.tensor([0, 0, 2, 1], device=device)
    s = t([1.0, 0.0, 0.0, 1.0], device)
    out = sf.refractory_update(r, s, 3)
    assert out.dtype == torch.int64
    assert out.tolist() == [3, 0, 1, 3]
    assert r.tolist() == [0, 0, 2, 1]  # not modified
    # per-neuron number of steps
    n = torch.tensor([1, 2, 3, 4], device=device)
    assert sf.refractory_update(r, s, n).tolist() == [1, 0, 1, 4]


def test_refractory_update_counts_down(device):
    r = torch.zeros(1, dtype=torch.int64, device=device)
    seq = [1, 0, 0, 0, 1, 0]
    got = []
    for s in seq:
        r = sf.refractory_update(r, t([float(s)], device), 2)
        got.append(r.item())
    assert got == [2, 1, 0, 0, 2, 1]


# ---------------------------------------------------------------------------
# delay ring buffers
# ---------------------------------------------------------------------------
def test_delay_write_and_read(device):
    length, steps = 4, 12
    buffer = torch.zeros(length, 2, 3, device=device)
    history = []
    for step in range(steps):
        x = torch.full((2, 3), float(step + 1), device=device)
        x[1] *= -1
        head = step % length
        out = sf.delay_write(buffer, head, x)
        assert out is buffer  # written in place
        history.append(x)
        for d in range(length):
            expected = history[step - d] if step - d >= 0 else torch.zeros(2, 3, device=device)
            torch.testing.assert_close(sf.delay_read(buffer, head, d), expected)


def test_delay_read_per_synapse(device):
    length, batch, n_in, n_out = 4, 2, 3, 2
    delays = torch.tensor([[0, 1, 3], [2, 0, 1]], device=device)
    buffer = torch.zeros(length, batch, n_in, device=device)
    history = []
    for step in range(9):
        x = torch.arange(batch * n_in, dtype=torch.float32, device=device).view(batch, n_in)
        x = x + 100.0 * (step + 1)
        head = step % length
        sf.delay_write(buffer, head, x)
        history.append(x)
        out = sf.delay_read_per_synapse(buffer, head, delays)
        assert out.shape == (batch, n_out, n_in)
        for b in range(batch):
            for i in range(n_out):
                for j in range(n_in):
                    d = int(delays[i, j])
                    want = history[step - d][b, j].item() if step - d >= 0 else 0.0
                    assert out[b, i, j].item() == want, (step, b, i, j)


def test_delay_read_per_synapse_extra_dims(device):
    # (L, B, 1, in) as in PySNN 0.1 shapes -> (B, 1, out, in)
    buffer = torch.arange(3 * 2 * 1 * 2, dtype=torch.float32, device=device).view(3, 2, 1, 2)
    delays = torch.tensor([[0, 2], [1, 1], [2, 0]], device=device)
    head = 1
    out = sf.delay_read_per_synapse(buffer, head, delays)
    assert out.shape == (2, 1, 3, 2)
    for b in range(2):
        for i in range(3):
            for j in range(2):
                slot = (head - int(delays[i, j])) % 3
                assert out[b, 0, i, j].item() == buffer[slot, b, 0, j].item()


def test_exact_gain_is_accurate_for_small_steps_and_follows_like():
    like = torch.zeros(3, dtype=torch.float64)
    gain = sf.exact_gain(20.0, 1e-9, like)
    assert gain.dtype == torch.float64
    # 1 - exp(-x) = x - x^2/2 + ...; a naive 1 - exp(-x) would lose ~7 digits here
    x = 1e-9 / 20.0
    assert abs(float(gain) - (x - x * x / 2)) < 1e-24
    decay = sf.decay_factor(torch.tensor([10.0, 20.0], dtype=torch.float64), 1.0)
    assert torch.allclose(decay, torch.exp(-1.0 / torch.tensor([10.0, 20.0], dtype=torch.float64)))
    assert float(sf.exact_gain(10.0, 1.0) + sf.decay_factor(10.0, 1.0)) == pytest.approx(1.0)


def test_spike_mask_is_the_boolean_of_spike_fn_and_reset_accepts_it():
    v = torch.tensor([0.5, 1.0, 1.5, 2.0])
    counts = torch.tensor([0, 0, 1, 0])
    mask = sf.spike_mask(v, 1.0, counts)
    assert mask.dtype == torch.bool
    assert mask.tolist() == [False, True, False, True]
    assert torch.equal(sf.spike_fn(v, 1.0, counts), mask.float())
    assert sf.reset_voltage(v, mask, 0.0, 1.0, "rest").tolist() == [0.5, 0.0, 1.5, 0.0]
    assert sf.reset_voltage(v, mask, 0.0, 1.0, "subtract").tolist() == [0.5, 0.0, 1.5, 1.0]
