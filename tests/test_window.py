"""Whole-network multi-step execution (``run`` in windows) equals the step loop.

Every case runs the same network twice from the same state, once with
``multi_step=False`` (one ``net(x)`` per step) and once in windows, and
compares the outputs and the whole final state bit for bit (float64).
"""

import copy

import pytest
import torch

from pysnn import graph, window
from pysnn.connection import Conv2d, Linear, MaxPool2d, Recurrent
from pysnn.delay import DelayLine
from pysnn.monitor import StateMonitor
from pysnn.network import SNNNetwork
from pysnn.neuron import AdaptiveLIFNeuron, IFNeuron, Input, LIFNeuron
from pysnn.synapse import ConductanceSynapse, ExponentialSynapse

T, B = 40, 3


def _network(*layers, inputs=None):
    """A graph network of ``(name, connection, neuron, pre, synapse)`` tuples (float64)."""
    net = SNNNetwork()
    for name, conn, neuron, pre, synapse in layers:
        net.add_layer(name, conn, neuron, pre, synapse=synapse)
    net.double().check_finite(False)
    return net


def _input(shape):
    return Input(shape, dt=1.0, alpha_t=1.0, tau_t=10.0, integrator="exact")


def _weights(conn, low, high, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        conn.weight.copy_(low + (high - low) * torch.rand(conn.weight.shape, generator=g))
    return conn


def _lif(shape, **kw):
    return LIFNeuron(shape, thresh=0.5, duration_refrac=1.0, integrator="exact", **kw)


def _feedforward():
    inp = _input((20,))
    l1, l2 = _lif((16,)), _lif((6,))
    return _network(
        ("fc1", _weights(Linear(20, 16), -0.1, 0.8, 0), l1, inp, None),
        ("fc2", _weights(Linear(16, 6, delay=3), 0.0, 1.0, 1), l2, l1, None),
    ), (20,)


def _per_synapse_and_synapses():
    g = torch.Generator().manual_seed(5)
    delays = torch.randint(0, 4, (12, 20), generator=g).double()
    inp = _input((20,))
    l1 = AdaptiveLIFNeuron((12,), thresh=0.5, alpha_thresh=0.1, tau_thresh=30.0, integrator="exact")
    l2 = _lif((5,), store_trace=True)
    return _network(
        ("fc1", _weights(Linear(20, 12, delay=delays), 0.0, 0.3, 2), l1, inp, None),
        ("fc2", _weights(Linear(12, 5), 0.0, 0.5, 3), l2, l1, ExponentialSynapse((5,), 4.0)),
        # a second projection onto l2 straight from the input: currents are summed
        ("skip", _weights(Linear(20, 5, delay=1), -0.1, 0.2, 4), l2, inp, None),
    ), (20,)


def _conductance():
    inp = _input((20,))
    l1 = LIFNeuron((8,), thresh=-50.0, v_rest=-65.0, v_reset=-65.0, tau_v=20.0, integrator="exact")
    syn = ConductanceSynapse((8,), tau_syn=5.0, e_rev=0.0)
    return _network(("fc", _weights(Linear(20, 8), 0.0, 0.05, 6), l1, inp, syn)), (20,)


def _convolutional():
    inp = _input((2, 8, 8))
    c1 = _lif((4, 8, 8))
    p1 = IFNeuron((4, 4, 4), thresh=0.5)
    c2 = IFNeuron((3, 4, 4), thresh=1.0, fire_once=True)
    return _network(
        ("conv1", _weights(Conv2d(2, 4, 3, padding=1, delay=1), -0.1, 0.4, 7), c1, inp, None),
        ("pool", MaxPool2d(2), p1, c1, None),
        ("conv2", _weights(Conv2d(4, 3, 3, padding=1), 0.0, 0.4, 8), c2, p1, None),
    ), (2, 8, 8)


def _recurrent_with_delays():
    g = torch.Generator().manual_seed(12)
    inp, l1, l2 = _input((10,)), _lif((8,)), _lif((4,))
    feedback_delays = torch.randint(2, 6, (8, 4), generator=g).double()  # 2..5 ms
    return _network(
        ("fc", _weights(Linear(10, 8), 0.0, 0.6, 9), l1, inp, None),
        ("rec", _weights(Recurrent(8, delay=3.0), -0.3, 0.4, 10), l1, l1, None),
        ("fc2", _weights(Linear(8, 4, delay=1), 0.5, 1.5, 11), l2, l1, None),
        # from a later population, per-synapse delays: windows of at most 3 steps
        ("back", _weights(Linear(4, 8, delay=feedback_delays), 0.0, 0.5, 12), l1, l2, None),
    ), (10,)


CASES = {
    "feedforward + delay": _feedforward,
    "per-synapse delays, adaptive, synapse, two projections": _per_synapse_and_synapses,
    "conductance synapse (interleaved)": _conductance,
    "conv + pool + fire_once": _convolutional,
    "recurrent and feedback projections with delays": _recurrent_with_delays,
}


def _state(net):
    """Every tensor of the network's state, plus the connections' last arrivals and ring heads."""
    out = {k: v.clone() for k, v in net.state_dict().items() if isinstance(v, torch.Tensor)}
    for name, module in net.named_modules():
        for attr in ("pre_spikes", "pre_trace", "head"):
            value = getattr(module, attr, None)
            if isinstance(value, torch.Tensor):
                out[f"{name}.{attr}"] = value.clone()
            elif isinstance(value, int):
                out[f"{name}.{attr}"] = torch.tensor(value)
        history = getattr(module, "_history", None)
        if history:
            out[f"{name}._history"] = torch.stack(history)
    return out


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("case", list(CASES))
def test_run_in_windows_equals_the_step_loop(case, monkeypatch):
    net, shape = CASES[case]()
    twin = copy.deepcopy(net)  # shared state (adaptive thresholds) survives reset_state
    g = torch.Generator().manual_seed(11)
    x = torch.rand(T, B, *shape, generator=g) < 0.3
    assert net.multi_step_obstacle(x) is None
    loop = net.run(x, multi_step=False)
    assert loop.sum() > 0  # the output population spikes: equal outputs are not vacuous
    monkeypatch.setattr(window, "MAX_WINDOW", 16)  # three windows: 16 + 16 + 8 steps
    windowed = twin.run(x)  # automatic choice
    assert torch.equal(windowed, loop)
    _assert_same(_state(twin), _state(net))
    assert twin.step_index == net.step_index == T
    # stepping on after a window continues exactly like the loop
    more = torch.rand(5, B, *shape, generator=g) < 0.3
    after_loop = torch.stack([net(s) for s in more])
    after_window = torch.stack([twin(s) for s in more])
    assert torch.equal(after_window, after_loop)
    _assert_same(_state(twin), _state(net))


def test_feedback_delays_limit_the_window():
    net, _ = _recurrent_with_delays()
    plan = net.simulator.plan
    assert plan.feedback == {"rec", "back"}
    # rec: delay 3 -> 4 steps; back: shortest delay 2 -> 3 steps
    assert window.feedback_limit(plan) == (3, "back")
    assert window.window_length(plan, 1) == 3


def test_window_length_follows_the_largest_population():
    net, _ = _feedforward()  # populations of 20, 16 and 6 neurons
    plan = graph.plan(net.layers.values())
    assert window.window_length(plan, 1) == window.MAX_WINDOW
    assert window.window_length(plan, 4096) == window.WINDOW_ELEMENTS // (4096 * 20)
    assert window.window_length(plan, 10**6) == window.MIN_WINDOW


def test_windows_are_used_and_faster_paths_are_taken(monkeypatch):
    net, shape = _feedforward()
    calls = []
    original = Linear.forward_steps

    def spy(self, spikes, trace=None):
        calls.append(int(spikes.shape[0]))
        return original(self, spikes, trace)

    monkeypatch.setattr(Linear, "forward_steps", spy)
    net.run(torch.zeros(T, B, *shape, dtype=torch.bool), warn_silent=False)
    assert calls == [T, T]  # one call per connection for the whole window
    calls.clear()
    net.run(torch.zeros(T, B, *shape, dtype=torch.bool), warn_silent=False, multi_step=False)
    assert calls == []


def _recurrent():
    inp, l1 = _input((6,)), _lif((4,))
    return _network(
        ("fc", Linear(6, 4), l1, inp, None),
        ("rec", Recurrent(4), l1, l1, None),
    )


def test_obstacles_are_named_and_multi_step_true_raises():
    x = torch.zeros(5, 2, 6, dtype=torch.bool)
    net = _recurrent()
    reason = net.multi_step_obstacle(x)
    assert "rec" in reason and "previous step" in reason
    with pytest.raises(ValueError, match="strategy='window'.*rec"):
        net.run(x, multi_step=True)
    assert net.run(x, warn_silent=False).shape == (5, 2, 4)  # falls back to the loop

    net, _ = _feedforward()
    x = torch.zeros(5, 2, 20, dtype=torch.bool)
    assert "callback" in net.multi_step_obstacle(x, callback=lambda t, out: None)
    assert "not a tensor" in net.multi_step_obstacle(list(x))
    net.check_finite(True)  # checked per window
    assert net.multi_step_obstacle(x) is None
    net.check_finite(False)
    monitor = StateMonitor(net.fc1_neuron, ["spikes"], num_steps=10)
    assert net.multi_step_obstacle(x) is None  # monitors record the stacked window
    handle = net.fc1_neuron.register_forward_hook(lambda *args: None)
    assert "forward hooks" in net.multi_step_obstacle(x)
    handle.remove()
    monitor.remove()
    assert net.multi_step_obstacle(x) is None
    with pytest.raises(TypeError, match="multi_step"):
        net.run(x, multi_step="yes")


def test_a_network_with_its_own_forward_steps_one_by_one():
    class Net(SNNNetwork):
        def __init__(self):
            super().__init__()
            self.inp, self.fc, self.lif = _input((6,)), Linear(6, 4), _lif((4,))
            self.add_layer("fc", self.fc, self.lif, self.inp)

        def forward(self, x):
            return self.lif(self.fc(*self.inp(x))[0])[0]

    reason = Net().multi_step_obstacle(torch.zeros(3, 1, 6))
    assert "writes its own forward" in reason


def test_a_failing_window_restores_the_state(monkeypatch):
    net, shape = _feedforward()
    g = torch.Generator().manual_seed(3)
    net.run(torch.rand(10, B, *shape, generator=g) < 0.3, multi_step=False)
    before, steps = _state(net), net.step_index

    def broken(x, record=()):
        raise RuntimeError("boom")

    # the second population fails after the input, fc1, l1 and fc2 (with its
    # delay ring, written in place) have run the window; a single step would
    # save one slot of the ring only, a window saves all of it
    monkeypatch.setattr(DelayLine, "SNAPSHOT_WHOLE_NUMEL", 0)
    monkeypatch.setattr(net.fc2_neuron, "advance_window", broken)  # this instance only
    with pytest.raises(RuntimeError, match="boom"):
        net.run(torch.rand(T, B, *shape, generator=g) < 0.3, reset=False, multi_step=True)
    _assert_same(_state(net), before)
    assert net.step_index == steps


def test_bad_window_input_raises_before_any_state_changes():
    net, shape = _feedforward()
    net.run(torch.zeros(4, B, *shape, dtype=torch.bool), warn_silent=False)
    before = _state(net)
    with pytest.raises(ValueError, match="must hold spikes"):
        net.run(torch.full((T, B, *shape), 0.5, dtype=torch.float64), reset=False)
    with pytest.raises(ValueError, match="shape"):
        net.run(torch.zeros(T, B, 7, dtype=torch.bool), reset=False)
    _assert_same(_state(net), before)


def test_silent_populations_still_warn_in_windows():
    net, shape = _feedforward()
    with pytest.warns(RuntimeWarning, match="fired no spike"):
        net.run(torch.zeros(T, B, *shape, dtype=torch.bool))


def test_neuron_forward_steps_equals_forward_calls():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(T, B, 7, generator=g, dtype=torch.float64)
    a, b = _lif((7,)).double(), _lif((7,)).double()
    loop = [a(xt) for xt in x]
    spikes, traces = b.forward_steps(x)
    assert torch.equal(spikes, torch.stack([s for s, _ in loop]))
    assert torch.equal(traces, torch.stack([t for _, t in loop]))
    assert spikes.sum() > 0
    for name in ("v_cell", "trace", "spikes", "refrac_counts"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    with pytest.raises(ValueError, match=r"\[T, batch"):
        b.forward_steps(x[0, 0])
    with pytest.raises(TypeError, match="dtype"):
        b.forward_steps(x.float())
