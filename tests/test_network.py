"""Tests of pysnn.network.SNNNetwork: layers, state handling, run loop, a feedback network."""

import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pysnn.connection import Conv2d, Linear, MaxPool2d, Recurrent
from pysnn.network import Layer, SNNNetwork
from pysnn.neuron import Input, LIFNeuron

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "feedback_network.py"

# LIF dynamics, PySNN 0.1 positional order:
# (thresh, v_rest, alpha_v, alpha_t, dt, duration_refrac, tau_v, tau_t, update_type)
LIF_DYNAMICS = (1.0, 0.0, 1.0, 1.0, 1.0, 2.0, 0.8, 0.7, "linear")
# Input dynamics: (dt, alpha_t, tau_t, update_type)
INPUT_DYNAMICS = (1.0, 1.0, 0.8, "linear")


class FeedbackNet(SNNNetwork):
    """Input -> Linear -> LIF hidden (+ feedback Linear from the output LIF) -> Linear -> LIF."""

    def __init__(self, batch_size=4, n_in=12, n_hidden=10, n_out=4, fb_delay=0):
        super().__init__()
        self.input = Input((batch_size, 1, n_in), *INPUT_DYNAMICS)
        self.fc1 = Linear(n_in, n_hidden, batch_size, 1.0, 0)
        self.hidden = LIFNeuron((batch_size, 1, n_hidden), *LIF_DYNAMICS)
        self.fc2 = Linear(n_hidden, n_out, batch_size, 1.0, 0)
        self.output = LIFNeuron((batch_size, 1, n_out), *LIF_DYNAMICS)
        self.back = Linear(n_out, n_hidden, batch_size, 1.0, fb_delay)
        self.add_layer("fc1", self.fc1, self.hidden)
        self.add_layer("fc2", self.fc2, self.output)
        self.add_layer("fc2_back", self.back, self.hidden)
        with torch.no_grad():
            self.fc1.weight.uniform_(0.0, 0.5)
            self.fc2.weight.uniform_(0.0, 0.7)
            self.back.weight.uniform_(-0.6, 0.0)

    def forward(self, x):
        s, t = self.input(x)
        x_back, _ = self.back(self.output.spikes, self.output.trace)
        x_forw, _ = self.fc1(s, t)
        s, t = self.hidden([x_forw, x_back])
        x, _ = self.fc2(s, t)
        s, _ = self.output(x)
        return s


def _lif_params(neuron):
    return dict(
        thresh=float(neuron.thresh),
        v_rest=float(neuron.v_rest),
        alpha_v=float(neuron.alpha_v),
        decay=float(neuron.decay("tau_v")),  # tau_v reads in ms; the step uses its factor
        refrac=int(neuron.refrac_steps),
    )


def _reference_feedback(inputs, w1, w2, wfb, hidden_p, out_p):
    """Plain-tensor simulation of the feedback network; returns (hidden, output) spikes."""
    steps, batch = inputs.shape[:2]
    dtype = w1.dtype

    def lif_state(n, p):
        return {
            "v": torch.full((batch, 1, n), p["v_rest"], dtype=dtype),
            "r": torch.zeros(batch, 1, n, dtype=torch.int64),
        }

    def lif_step(state, current, p):
        free = (state["r"] == 0).to(dtype)
        v = p["v_rest"] + ((state["v"] - p["v_rest"]) * p["decay"] + p["alpha_v"] * current) * free
        s = (v >= p["thresh"]).to(dtype)
        state["r"] = (state["r"] - 1).clamp(min=0) + p["refrac"] * s.to(torch.int64)
        state["v"] = torch.where(s > 0, torch.full_like(v, p["v_rest"]), v)
        return s

    hid, out = lif_state(w1.shape[0], hidden_p), lif_state(w2.shape[0], out_p)
    s_out = torch.zeros(batch, 1, w2.shape[0], dtype=dtype)
    hidden_spikes, out_spikes = [], []
    for t in range(steps):
        s_in = inputs[t].to(dtype)
        current = s_in @ w1.T + s_out @ wfb.T  # feedback: output spikes of step t - 1
        s_hid = lif_step(hid, current, hidden_p)
        s_out = lif_step(out, s_hid @ w2.T, out_p)
        hidden_spikes.append(s_hid)
        out_spikes.append(s_out)
    return torch.stack(hidden_spikes), torch.stack(out_spikes)


def _inputs(steps, batch, n, p=0.4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, 1, n, generator=g) < p).to(dtype)


def _feedback_net(seed=0, **kwargs):
    torch.manual_seed(seed)
    return FeedbackNet(**kwargs).double()


# ---------------------------------------------------------------------------
# The feedback network against a plain-tensor reference
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("batch", [4, 3])
def test_feedback_network_matches_reference(batch):
    net = _feedback_net()
    x = _inputs(40, batch, 12, seed=batch)
    net.reset_state()
    hidden, out = [], []
    for t in range(40):
        out.append(net(x[t]))
        hidden.append(net.hidden.spikes.clone())
    hidden, out = torch.stack(hidden), torch.stack(out)
    p = _lif_params(net.hidden)
    ref_hidden, ref_out = _reference_feedback(
        x, net.fc1.weight, net.fc2.weight, net.back.weight, p, p
    )
    assert torch.equal(hidden, ref_hidden)
    assert torch.equal(out, ref_out)
    # the test is meaningful: both layers fire, and the feedback changes the hidden activity
    assert hidden.sum() > 20 and out.sum() > 5
    no_fb, _ = _reference_feedback(
        x, net.fc1.weight, net.fc2.weight, torch.zeros_like(net.back.weight), p, p
    )
    assert not torch.equal(no_fb, ref_hidden)


def test_feedback_network_run_equals_reference_and_manual_loop():
    net = _feedback_net(seed=3)
    x = _inputs(35, 4, 12, seed=7)
    calls = []
    out = net.run(x, callback=lambda t, o: calls.append((t, o.clone())))
    assert out.shape == (35, 4, 1, 4)
    p = _lif_params(net.hidden)
    _, ref_out = _reference_feedback(x, net.fc1.weight, net.fc2.weight, net.back.weight, p, p)
    assert torch.equal(out, ref_out)
    assert [t for t, _ in calls] == list(range(35))
    assert torch.equal(torch.stack([o for _, o in calls]), out)
    # manual loop after reset_state
    net.reset_state()
    manual = torch.stack([net(x[t]) for t in range(35)])
    assert torch.equal(manual, out)


# ---------------------------------------------------------------------------
# add_layer and the layers registry
# ---------------------------------------------------------------------------
def test_add_layer_validation():
    net = SNNNetwork()
    conn, neuron = Linear(3, 2), LIFNeuron((2,))
    net.add_layer("fc", conn, neuron)
    with pytest.raises(KeyError, match="empty"):
        net.add_layer("", Linear(3, 2), neuron)
    with pytest.raises(KeyError, match=r"\."):
        net.add_layer("a.b", Linear(3, 2), neuron)
    with pytest.raises(KeyError, match="fc"):
        net.add_layer("fc", Linear(3, 2), neuron)
    with pytest.raises(TypeError, match="connection"):
        net.add_layer("bad", torch.zeros(2, 3), neuron)
    with pytest.raises(TypeError, match="neuron"):
        net.add_layer("bad", Linear(3, 2), "lif")
    with pytest.raises(TypeError, match="name"):
        net.add_layer(3, Linear(3, 2), neuron)
    assert list(net.layers) == ["fc"]
    assert net.layers["fc"].connection is conn


def test_add_layer_registers_unassigned_modules():
    net = SNNNetwork()
    conn, neuron = Linear(3, 2), LIFNeuron((2,))
    net.add_layer("fc", conn, neuron)
    assert net.fc_connection is conn and net.fc_neuron is neuron
    assert "fc_connection.weight" in net.state_dict()
    net.double()
    assert conn.weight.dtype == torch.float64 and neuron.v_cell.dtype == torch.float64

    class Net(SNNNetwork):
        def __init__(self):
            super().__init__()
            self.conn = Linear(3, 2)
            self.lif = LIFNeuron((2,))
            self.add_layer("fc", self.conn, self.lif)

    net = Net()
    names = [name for name, _ in net.named_modules()]
    # assigned modules are not registered twice (the delay line is the connection's own)
    assert names == ["", "conn", "conn.delay_line", "lif"]


def test_layers_registry_is_live_after_conversion():
    net = _feedback_net()
    net.float()
    net.double()
    layers = net.layers
    assert list(layers) == ["fc1", "fc2", "fc2_back"]
    layer = layers["fc1"]
    assert isinstance(layer, Layer) and layer.name == "fc1"
    assert layer.connection.weight is net.fc1.weight
    assert layer.connection.weight.dtype == torch.float64
    assert layer.neuron is net.hidden
    assert net.layers["fc2_back"].neuron is net.hidden
    lsd = net.layer_state_dict()
    assert lsd["fc1"]["layer"].connection.weight is net.fc1.weight
    # an in-place update through the registry reaches the network
    with torch.no_grad():
        net.layers["fc2"].connection.weight.fill_(0.25)
    assert torch.all(net.fc2.weight == 0.25)


def test_layer_state_dict_format():
    net = SNNNetwork()
    net.add_layer("fc", Linear(4, 3), LIFNeuron((3,)))
    net.add_layer("rec", Recurrent(3), LIFNeuron((3,)))
    net.add_layer("conv", Conv2d(1, 2, 3), LIFNeuron((2, 4, 4)))
    net.add_layer("pool", MaxPool2d(2), LIFNeuron((2, 2, 2)))
    net.add_layer("custom", nn.Linear(3, 3), LIFNeuron((3,)))
    lsd = net.layer_state_dict()
    assert list(lsd) == ["fc", "rec", "conv", "pool", "custom"]
    types = {name: entry["type"] for name, entry in lsd.items()}
    assert types == {
        "fc": "linear",
        "rec": "recurrent",
        "conv": "conv2d",
        "pool": "pool",
        "custom": "custom",
    }
    for name, entry in lsd.items():
        assert set(entry) == {"connection", "neuron", "type", "layer"}
        layer = entry["layer"]
        assert isinstance(layer, Layer) and layer.name == name
        assert entry["connection"].keys() == layer.connection.state_dict().keys()
        assert "v_cell" in entry["neuron"]
    assert torch.equal(lsd["fc"]["connection"]["weight"], net.fc_connection.weight)
    assert lsd["rec"]["layer"].connection is net.rec_connection


# ---------------------------------------------------------------------------
# reset_state
# ---------------------------------------------------------------------------
class _Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def reset_state(self):
        self.calls += 1


class _NetWithExtras(SNNNetwork):
    def __init__(self):
        super().__init__()
        self.input = Input((5,), *INPUT_DYNAMICS)
        self.fc = Linear(5, 3, delay=2)
        self.lif = LIFNeuron((3,), 0.5, 0.0, 1.0, 1.0, 1.0, 0.0, 0.9, 0.8)
        self.add_layer("fc", self.fc, self.lif)
        self.plain = nn.Sequential(nn.Linear(3, 3), nn.ReLU())  # no state, no reset_state
        self.counter = _Counter()
        with torch.no_grad():
            self.fc.weight.fill_(0.6)

    def forward(self, x):
        s, t = self.input(x)
        a, _ = self.fc(s, t)
        return self.lif(a)[0]


def test_reset_state_skips_plain_modules_and_calls_custom_ones():
    net = _NetWithExtras()
    x = torch.ones(6, 2, 5)
    for t in range(6):
        net(x[t])
    assert net.lif.v_cell.abs().sum() > 0 or net.lif.spikes.sum() > 0
    assert net.fc.spike_history.sum() > 0 and net.input.trace.sum() > 0
    net.reset_state()
    assert net.counter.calls == 1
    assert net.lif.is_fresh and net.fc.is_fresh and net.input.is_fresh
    assert torch.all(net.lif.v_cell == 0) and torch.all(net.lif.spikes == 0)
    assert torch.all(net.input.trace == 0)
    assert torch.all(net.fc.spike_history == 0)
    net.reset_state(batch_size=3)
    assert net.counter.calls == 2
    assert net.lif.v_cell.shape == (3, 3)


def test_reset_then_rerun_gives_identical_spikes():
    net = _feedback_net(seed=5, fb_delay=2)
    x = _inputs(30, 4, 12, seed=1)
    net.reset_state()
    first = torch.stack([net(x[t]) for t in range(30)])
    assert first.sum() > 0
    net.reset_state()
    second = torch.stack([net(x[t]) for t in range(30)])
    assert torch.equal(first, second)
    assert torch.equal(net.run(x), first)
    assert torch.equal(net.run(x), first)


# ---------------------------------------------------------------------------
# Saving, copying, batch sizes
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("batch", [4, 7])
def test_state_dict_mid_run_resumes_in_fresh_network(batch):
    net = _feedback_net(seed=2, fb_delay=1)
    x = _inputs(30, batch, 12, seed=batch)
    net.reset_state()
    for t in range(12):
        net(x[t])
    saved = copy.deepcopy(net.state_dict())
    fresh = _feedback_net(seed=99, fb_delay=1)  # other weights, built for batch 4
    fresh.load_state_dict(saved)
    a = torch.stack([net(x[t]) for t in range(12, 30)])
    b = torch.stack([fresh(x[t]) for t in range(12, 30)])
    assert torch.equal(a, b)
    assert a.sum() > 0
    # and it is a genuine resumption: starting fresh from step 12 gives other spikes
    fresh.reset_state()
    c = torch.stack([fresh(x[t]) for t in range(12, 30)])
    assert not torch.equal(a, c)


def test_deepcopy_mid_run():
    net = _feedback_net(seed=4, fb_delay=2)
    x = _inputs(30, 4, 12, seed=3)
    net.reset_state()
    for t in range(10):
        net(x[t])
    clone = copy.deepcopy(net)
    assert clone.layers["fc1"].connection is clone.fc1
    assert clone.layers["fc1"].connection is not net.fc1
    assert clone.layers["fc2_back"].neuron is clone.hidden
    a = torch.stack([net(x[t]) for t in range(10, 30)])
    b = torch.stack([clone(x[t]) for t in range(10, 30)])
    assert torch.equal(a, b)
    with torch.no_grad():
        clone.fc1.weight.zero_()
    assert net.fc1.weight.abs().sum() > 0


def test_batch_size_change_between_runs():
    net = _feedback_net(seed=6)  # built with cells_shape (4, 1, N)
    x64 = _inputs(30, 64, 12, p=0.4, seed=11)
    out64 = net.run(x64)
    assert out64.shape == (30, 64, 1, 4)
    p = _lif_params(net.hidden)
    _, ref = _reference_feedback(x64, net.fc1.weight, net.fc2.weight, net.back.weight, p, p)
    assert torch.equal(out64, ref)
    for k in (0, 17, 63):  # batch elements are independent
        out1 = net.run(x64[:, k : k + 1])
        assert out1.shape == (30, 1, 1, 4)
        assert torch.equal(out1, out64[:, k : k + 1])
    # changing the batch size in the middle of a run is an error
    net.reset_state()
    net(x64[0, :4])
    with pytest.raises(ValueError, match="batch size"):
        net(x64[1, :5])


# ---------------------------------------------------------------------------
# run()
# ---------------------------------------------------------------------------
class _TupleNet(SNNNetwork):
    def __init__(self):
        super().__init__()
        self.input = Input((6,), *INPUT_DYNAMICS)
        self.fc = Linear(6, 3)
        self.lif = LIFNeuron((3,), 0.8, 0.0, 1.0, 1.0, 1.0, 0.0, 0.9, 0.8)
        self.add_layer("fc", self.fc, self.lif)
        with torch.no_grad():
            self.fc.weight.uniform_(0.0, 0.5)

    def forward(self, x):
        s, t = self.input(x)
        a, _ = self.fc(s, t)
        return self.lif(a)  # (spikes, trace)


def test_run_stacks_first_output_and_accepts_iterables():
    torch.manual_seed(0)
    net = _TupleNet()
    x = (torch.rand(20, 3, 6) < 0.5).float()
    out = net.run(x)
    assert out.shape == (20, 3, 3)
    net.reset_state()
    manual = torch.stack([net(x[t])[0] for t in range(20)])
    assert torch.equal(out, manual)
    assert out.sum() > 0
    assert torch.equal(net.run(list(x)), out)
    assert torch.equal(net.run(x[t] for t in range(20)), out)
    # reset=False continues the simulation
    first = net.run(x[:8])
    rest = net.run(x[8:], reset=False)
    assert torch.equal(torch.cat([first, rest]), out)
    # the callback gets (t, output) once per step
    seen = []
    net.run(x[:5], callback=lambda t, o: seen.append((t, o[0].clone())))
    assert [t for t, _ in seen] == [0, 1, 2, 3, 4]
    assert torch.equal(torch.stack([o for _, o in seen]), out[:5])


def test_run_validation_before_any_state_change():
    torch.manual_seed(0)
    net = _TupleNet()
    net.run(torch.ones(4, 2, 6))
    v = net.lif.v_cell.clone()
    trace = net.input.trace.clone()
    bad = [
        (torch.ones(6), ValueError, "inputs"),
        (torch.ones(0, 2, 6), ValueError, "inputs"),
        (5, TypeError, "inputs"),
    ]
    for inputs, error, match in bad:
        with pytest.raises(error, match=match):
            net.run(inputs)
    with pytest.raises(TypeError, match="callback"):
        net.run(torch.ones(3, 2, 6), callback="print")
    assert torch.equal(net.lif.v_cell, v) and torch.equal(net.input.trace, trace)
    with pytest.raises(ValueError, match="empty"):
        net.run([])
    with pytest.raises(ValueError):
        net.run(torch.ones(3, 2, 7))  # wrong feature size, reported by the input population


# ---------------------------------------------------------------------------
# The example from the README
# ---------------------------------------------------------------------------
def _load_example():
    if not EXAMPLE.exists():
        pytest.skip("examples/feedback_network.py is not there")
    spec = importlib.util.spec_from_file_location("feedback_network_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_feedback_network_main(tmp_path, monkeypatch, capsys):
    module = _load_example()
    monkeypatch.chdir(tmp_path)
    out = module.main(["--steps", "20"])
    assert isinstance(out, torch.Tensor)
    assert out.shape[0] == 20
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert "spike counts" in capsys.readouterr().out


def test_example_feedback_network_matches_reference():
    module = _load_example()
    torch.manual_seed(0)
    net = module.FeedbackNetwork(batch_size=3, n_in=8, n_hidden=9, n_out=4).double()
    with torch.no_grad():
        net.mlp1_c.weight.uniform_(0.0, 0.5)
        net.mlp2_c.weight.uniform_(0.0, 0.7)
        net.mlp2_prev.weight.uniform_(-0.6, 0.0)
    x = _inputs(30, 3, 8, seed=2)
    out = net.run(x)
    _, ref = _reference_feedback(
        x,
        net.mlp1_c.weight,
        net.mlp2_c.weight,
        net.mlp2_prev.weight,
        _lif_params(net.neuron1),
        _lif_params(net.neuron2),
    )
    assert torch.equal(out, ref)
    assert out.sum() > 0


def test_batch_adoption_runs_once_per_reset():
    """Fresh populations adopt the input's batch size on the first step after each reset."""
    net = _feedback_net(seed=6)
    x = _inputs(3, 5, 12, p=0.4, seed=2)
    assert net.simulator.pending and not net._forward_pre_hooks  # no hooks: fast call path
    net(x[0])
    assert not net.simulator.pending and net.output.spikes.shape[0] == 5
    net(x[1])
    net.reset_state()
    assert net.simulator.pending
    out = net(x[0, :2])  # a new batch size is adopted after the reset
    assert out.shape[0] == 2 and not net.simulator.pending
    clone = copy.deepcopy(net)
    clone.reset_state()
    assert clone.simulator.pending and not net.simulator.pending


@pytest.mark.parametrize("bad", [2.5, -1, 0, True, "2"])
def test_reset_state_rejects_a_bad_batch_size_before_any_change(bad):
    net = _feedback_net(seed=1)
    x = _inputs(2, 3, 12, seed=1)
    net(x[0])
    before = {k: v.clone() for k, v in net.state_dict().items() if isinstance(v, torch.Tensor)}
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        net.reset_state(bad)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    net.reset_state(np.int64(2))
    assert net(x[1, :2]).shape[0] == 2
