"""Conveniences of a first session: monitors reset with their network, run() progress and
the warning for a population that stays silent."""

import warnings

import pytest
import torch

from pysnn.connection import Linear
from pysnn.monitor import SpikeMonitor, StateMonitor
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron


class Net(SNNNetwork):
    def __init__(self, weight: float):
        super().__init__()
        self.inp = Input((4,), dt=1.0)
        self.fc = Linear(4, 3)
        self.lif = LIFNeuron((3,), thresh=1.0, v_rest=0.0, tau_v=10.0, integrator="exact")
        self.connect(self.inp, self.fc, self.lif)
        with torch.no_grad():
            self.fc.weight.fill_(weight)


def _spikes(steps=20, batch=2):
    x = torch.zeros(steps, batch, 4)
    x[::2] = 1.0  # every input spikes on even steps
    return x


def test_monitors_reset_with_the_network_sample_after_sample():
    net = Net(weight=1.0)
    mon = SpikeMonitor(net.lif, num_steps=20)
    volts = StateMonitor(net.lif, "v_cell", num_steps=20)
    keep = SpikeMonitor(net.lif, num_steps=40, reset_with_network=False)
    first = net.run(_spikes())
    assert torch.equal(mon.get().float(), first)
    second = net.run(_spikes())  # without the reset the 20-step monitor would be full
    assert len(mon) == 20 and len(volts) == 20 and len(keep) == 40
    assert torch.equal(mon.get().float(), second)
    assert torch.equal(keep.get()[20:].float(), second)
    mon.remove()  # a removed monitor is no longer reset
    net.reset_state()
    assert len(mon) == 20 and len(volts) == 0


def test_run_warns_once_for_a_population_that_never_fires():
    silent = Net(weight=-1.0)
    with pytest.warns(RuntimeWarning, match=r"'lif' \(LIFNeuron\) fired no spike in 20 steps"):
        silent.run(_spikes())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        silent.run(_spikes())  # once per population and network
        silent.run(_spikes(), warn_silent=False)
        active = Net(weight=1.0)
        out = active.run(_spikes(200))  # spans several checks: no warning
        assert out.sum() > 0
    # spikes only in the last steps (after the last periodic check) still count
    late = Net(weight=1.0)
    x = torch.zeros(130, 1, 4)
    x[-3:] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert late.run(x).sum() > 0


def test_run_with_a_progress_bar_gives_the_same_outputs(capsys):
    pytest.importorskip("tqdm")
    net = Net(weight=1.0)
    plain = net.run(_spikes())
    shown = net.run(_spikes(), progress=True)
    assert torch.equal(plain, shown)
    assert "20/20" in capsys.readouterr().err
    with pytest.raises(TypeError, match="progress must be a bool"):
        net.run(_spikes(), progress="yes")
