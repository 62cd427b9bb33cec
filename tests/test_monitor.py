"""Tests of pysnn.monitor and pysnn.plot."""

import pytest
import torch

from pysnn.connection import Linear
from pysnn.monitor import SpikeMonitor, StateMonitor
from pysnn.neuron import Input, LIFNeuron


def _lif(device):
    return LIFNeuron((4,), 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.9, 0.9).to(device)


def test_state_monitor_records_each_step(device):
    neuron = _lif(device)
    mon = StateMonitor(neuron, ["v_cell", "spikes", "trace"], num_steps=20)
    inputs = torch.rand(20, 3, 4, device=device)
    expected_v, expected_s = [], []
    for x in inputs:
        neuron(x)
        expected_v.append(neuron.v_cell.clone())
        expected_s.append(neuron.spikes.clone())
    v = mon.get("v_cell")
    assert v.shape == (20, 3, 4) and v.device.type == device.type
    assert torch.equal(v, torch.stack(expected_v))
    assert torch.equal(mon.get("spikes"), torch.stack(expected_s))
    assert len(mon) == 20
    with pytest.raises(RuntimeError, match="full"):
        neuron(inputs[0])
    mon.reset()
    neuron(inputs[0])
    assert len(mon) == 1 and mon.get("trace").shape == (1, 3, 4)


def test_rolling_window_keeps_last_steps():
    inp = Input((2,), 1.0, 1.0, 0.5)
    mon = StateMonitor(inp, "spikes", window=3)
    for k in range(7):
        inp(torch.full((1, 2), float(k % 2)))
    assert mon.steps_seen == 7 and len(mon) == 3
    # steps 4, 5, 6 -> 0, 1, 0
    assert mon.get()[:, 0, 0].tolist() == [0.0, 1.0, 0.0]


def test_spike_monitor_counts_rates_and_remove():
    neuron = _lif("cpu")
    mon = SpikeMonitor(neuron, num_steps=50)
    for _ in range(50):
        neuron(torch.full((2, 4), 0.6))
    s = mon.get()
    assert s.dtype == torch.bool and s.shape == (50, 2, 4)
    counts = mon.counts()
    assert torch.equal(counts, s.sum(0))
    assert torch.allclose(mon.rates(dt=1.0), counts.float() * 1000 / 50)
    mon.remove()
    neuron(torch.zeros(2, 4))
    assert len(mon) == 50  # no longer recording, no overflow error


def test_monitor_on_connection_weight_and_manual_record():
    conn = Linear(3, 2)
    mon = StateMonitor(conn, "weight", window=4, auto=False)
    for _ in range(3):
        with torch.no_grad():
            conn.weight.add_(1.0)
        mon.record()
    w = mon.get()
    assert w.shape == (3, 2, 3)
    assert torch.allclose(w[2] - w[0], torch.full((2, 3), 2.0))


def test_overflow_ignore_and_storage_device_dtype():
    neuron = _lif("cpu")
    mon = StateMonitor(neuron, "v_cell", num_steps=2, overflow="ignore", dtype=torch.float64)
    for _ in range(5):
        neuron(torch.rand(1, 4))
    assert mon.get().shape == (2, 1, 4) and mon.get().dtype == torch.float64


def test_monitor_argument_errors():
    neuron = _lif("cpu")
    with pytest.raises(ValueError, match="exactly one"):
        StateMonitor(neuron, "v_cell")
    with pytest.raises(ValueError, match="no attribute"):
        StateMonitor(neuron, "voltage", num_steps=3)
    with pytest.raises(ValueError, match="num_steps"):
        StateMonitor(neuron, "v_cell", num_steps=0)
    with pytest.raises(TypeError, match="module"):
        StateMonitor(object(), "v_cell", num_steps=3)
    mon = StateMonitor(neuron, ["v_cell", "spikes"], num_steps=3)
    with pytest.raises(ValueError, match="name is required"):
        mon.get()
    with pytest.raises(RuntimeError, match="nothing recorded"):
        mon.get("v_cell")


def test_batch_change_requires_reset():
    neuron = _lif("cpu")
    mon = StateMonitor(neuron, "v_cell", num_steps=10)
    neuron(torch.rand(2, 4))
    neuron.reset_state()
    with pytest.raises(ValueError, match="reset"):
        neuron(torch.rand(3, 4))
    mon.reset()
    neuron.reset_state()
    neuron(torch.rand(3, 4))
    assert mon.get().shape == (1, 3, 4)


# -- plots -------------------------------------------------------------------


@pytest.fixture
def plt():
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_plots_return_figures(plt):
    from pysnn import plot

    spikes = torch.rand(100, 2, 20) < 0.05
    fig, ax = plot.raster(spikes, dt=0.5)
    assert fig is ax.figure
    fig, ax = plot.voltage_traces(torch.randn(100, 5), threshold=1.0)
    assert len(ax.lines) == 6
    fig, ax = plot.weight_grid(torch.rand(16, 784))
    assert fig.axes
    plot.weight_grid(torch.rand(8, 1, 5, 5))
    plot.assignment_map(torch.randint(-1, 10, (100,)))
    fig, ax = plot.accuracy_curve({"N=100": [0.5, 0.7, 0.8], "N=400": [60, 80, 87]})
    assert len(ax.lines) == 2
    _, ax2 = plt.subplots()
    fig, ax = plot.raster(torch.rand(10, 4) < 0.5, ax=ax2)
    assert ax is ax2
    with pytest.raises(ValueError, match="weights"):
        plot.weight_grid(torch.rand(4, 10), image_shape=(3, 3))
