"""Multi-step execution (Connection.forward_steps) equals the step-by-step loop.

The reference is the connection's own ``forward`` called once per step on a
deep copy; both must give the same outputs and leave the same state, so that
step-by-step calls can follow a window.
"""

import copy

import pytest
import torch

from pysnn.connection import Conv2d, Linear, MaxPool2d, Recurrent

T, B = 12, 3


def _train(steps, *shape, p=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, *shape, generator=g) < p).double()


def _trace(spikes, decay=0.7):
    out, x = [], torch.zeros_like(spikes[0])
    for s in spikes:
        x = decay * x + s
        out.append(x)
    return torch.stack(out)


def _per_synapse_delays(shape, high, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, high + 1, shape, generator=g).double()


def _linear(delay):
    conn = Linear(6, 4, dt=1.0, delay=delay).double()
    conn.reset_weights("uniform", a=-1.0, b=1.0)
    return conn


def _conv(delay):
    conn = Conv2d(2, 3, 3, dt=1.0, delay=delay, padding=1).double()
    conn.reset_weights("uniform", a=-1.0, b=1.0)
    return conn


CASES = {
    "linear": (lambda: _linear(0), (6,)),
    "linear-delay3": (lambda: _linear(3), (6,)),
    "linear-per-synapse": (lambda: _linear(_per_synapse_delays((4, 6), 4)), (6,)),
    "recurrent-delay2": (lambda: Recurrent(5, dt=1.0, delay=2).double(), (5,)),
    "conv": (lambda: _conv(0), (2, 5, 5)),
    "conv-delay2": (lambda: _conv(2), (2, 5, 5)),
    "conv-per-synapse": (lambda: _conv(_per_synapse_delays((3, 2, 3, 3), 3)), (2, 5, 5)),
    "maxpool (loop fallback)": (lambda: MaxPool2d(2).double(), (2, 4, 4)),
}


def _step_loop(conn, spikes, trace):
    outs = [conn(s, None if trace is None else trace[t]) for t, s in enumerate(spikes)]
    xs = torch.stack([o[0] for o in outs])
    traces = None if outs[0][1] is None else torch.stack([o[1] for o in outs])
    return xs, traces


def _same_state(a, b):
    line_a, line_b = getattr(a, "delay_line", None), getattr(b, "delay_line", None)
    assert (line_a is None) == (line_b is None)  # pools have no delay line
    if line_a is not None:
        for name in ("spike_history", "trace_history"):
            assert torch.equal(getattr(line_a, name), getattr(line_b, name)), name
        assert line_a.head == line_b.head
    for name in ("pre_spikes", "pre_trace"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            torch.testing.assert_close(x, y, rtol=0, atol=0)


@pytest.mark.parametrize("with_trace", [True, False])
@pytest.mark.parametrize("case", list(CASES))
def test_forward_steps_equals_step_loop_and_continues(case, with_trace):
    make, in_shape = CASES[case]
    conn = make()
    spikes = _train(2 * T, B, *in_shape, seed=3)
    trace = _trace(spikes) if with_trace else None
    ref = copy.deepcopy(conn)
    # warm up both step by step, so the window starts with spikes in flight
    for t in range(3):
        conn(spikes[t], None if trace is None else trace[t])
        ref(spikes[t], None if trace is None else trace[t])
    window = slice(3, 3 + T)
    got_x, got_trace = conn.forward_steps(spikes[window], None if trace is None else trace[window])
    ref_x, ref_trace = _step_loop(ref, spikes[window], None if trace is None else trace[window])
    torch.testing.assert_close(got_x, ref_x, rtol=1e-12, atol=1e-12)
    assert (got_trace is None) == (ref_trace is None)
    if ref_trace is not None:
        torch.testing.assert_close(got_trace, ref_trace, rtol=0, atol=0)
    assert got_x.abs().sum() > 0
    _same_state(conn, ref)
    # step-by-step calls continue exactly after the window
    rest = slice(3 + T, 2 * T)
    after_x, _ = _step_loop(conn, spikes[rest], None if trace is None else trace[rest])
    ref_after, _ = _step_loop(ref, spikes[rest], None if trace is None else trace[rest])
    torch.testing.assert_close(after_x, ref_after, rtol=1e-12, atol=1e-12)


def test_forward_steps_from_fresh_state_and_in_two_windows():
    spikes = _train(T, B, 6, seed=5)
    delays = _per_synapse_delays((4, 6), 5)
    one, two, ref = _linear(delays), None, None
    two, ref = copy.deepcopy(one), copy.deepcopy(one)
    x_one, _ = one.forward_steps(spikes)
    first, _ = two.forward_steps(spikes[:4])
    second, _ = two.forward_steps(spikes[4:])
    x_ref, _ = _step_loop(ref, spikes, None)
    torch.testing.assert_close(x_one, x_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.cat([first, second]), x_ref, rtol=1e-12, atol=1e-12)


def test_forward_steps_hand_computed_delay():
    # one input, weight 2, delay 2 steps: the spike at step 0 arrives at step 2
    conn = Linear(1, 1, dt=1.0, delay=2)
    conn.reset_weights("constant", gain=2.0)
    spikes = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]).view(6, 1, 1)
    x, _ = conn.forward_steps(spikes)
    assert x.view(-1).tolist() == [0.0, 0.0, 2.0, 0.0, 0.0, 2.0]


def test_forward_steps_bad_input_raises_before_state_changes():
    conn = _linear(2)
    conn(_train(1, B, 6)[0])
    head, history = conn.delay_line.head, conn.spike_history.clone()
    with pytest.raises(ValueError, match=r"\[T, batch"):
        conn.forward_steps(torch.ones(6))
    with pytest.raises(ValueError, match="in_features=6"):
        conn.forward_steps(torch.ones(T, B, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match="dtype"):
        conn.forward_steps(torch.ones(T, B, 6, dtype=torch.float32))
    with pytest.raises(ValueError, match="trace must have the shape"):
        conn.forward_steps(torch.ones(T, B, 6, dtype=torch.float64), torch.ones(T, B, 5))
    with pytest.raises(ValueError, match="batch size"):
        conn.forward_steps(torch.ones(T, B + 1, 6, dtype=torch.float64))
    assert conn.delay_line.head == head and torch.equal(conn.spike_history, history)


def test_forward_steps_on_device(device):
    conn = _linear(3).to(device)
    ref = copy.deepcopy(conn)
    spikes = _train(T, B, 6, seed=9).to(device)
    got, _ = conn.forward_steps(spikes)
    want, _ = _step_loop(ref, spikes, None)
    torch.testing.assert_close(got, want)
