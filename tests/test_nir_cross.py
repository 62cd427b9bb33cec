"""A network exported by PySNN runs in snnTorch and Norse with the same spikes.

Each test skips when its library is absent (``pip install snntorch`` /
``pip install norse``).  Both libraries integrate NIR's LIF with forward Euler,
so the PySNN networks here use ``integrator="euler"``; each library's known
departures from NIR (see ``docs/nir.rst``) fix the remaining parameters:

* snnTorch's importer assumes ``dt = 0.1 ms`` and input gain
  ``r dt / tau = 1``, so ``alpha_v = tau / dt``; it needs ``v_leak = 0`` and
  resets to 0.
* Norse's importer ignores ``r`` (it takes ``r = 1``) and ``v_reset`` (it
  resets to 0), so ``alpha_v = 1`` and ``v_reset = 0``.
"""

import pytest
import torch

nir = pytest.importorskip("nir")

from pysnn import nir as pnir  # noqa: E402
from pysnn.connection import AvgPool2d, Conv2d, Linear  # noqa: E402
from pysnn.network import SNNNetwork  # noqa: E402
from pysnn.neuron import Input, LIFNeuron  # noqa: E402

DT = 0.1  # ms; snnTorch's importer hard-codes 1e-4 s
TAU = 5.0  # ms
STEPS = 200


def euler_lif(shape, alpha_v):
    return LIFNeuron(
        shape, thresh=1.0, v_rest=0.0, v_reset=0.0, alpha_v=alpha_v, tau_v=TAU, dt=DT,
        integrator="euler",
    )  # fmt: skip


def seeded(conn, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        conn.weight.copy_(torch.rand(conn.weight.shape, generator=gen) * scale)
    return conn


class FeedForward(SNNNetwork):
    def __init__(self, alpha_v, scale):
        super().__init__()
        self.inp = Input((20,), dt=DT, integrator="exact")
        self.hid = euler_lif((30,), alpha_v)
        self.out = euler_lif((5,), alpha_v)
        self.connect(self.inp, seeded(Linear(20, 30, dt=DT), 0.5 * scale, 0), self.hid)
        self.connect(self.hid, seeded(Linear(30, 5, dt=DT), scale, 1), self.out)


class Convolutional(SNNNetwork):
    def __init__(self, alpha_v, scale):
        super().__init__()
        self.inp = Input((1, 2, 8, 8), dt=DT, integrator="exact")
        self.conv = euler_lif((1, 3, 6, 6), alpha_v)
        self.out = euler_lif((1, 4, 1, 1), alpha_v)
        self.connect(self.inp, seeded(Conv2d(2, 3, 3, dt=DT), 0.3 * scale, 2), self.conv)
        # no Flatten: snnTorch's importer reads NIR's Flatten dims as if they counted the batch
        head = pnir.Chain(AvgPool2d(2), seeded(Conv2d(3, 4, 3, dt=DT), scale, 3))
        self.connect(self.conv, head, self.out)


def pysnn_spikes(net, x):
    net.reset_state()
    return torch.stack([net(x[t]) for t in range(x.shape[0])])


def inputs(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(STEPS, *shape, generator=gen) < 0.2).float()


def check_counts(expected):
    # the comparison must mean something: spikes, but not every neuron at every step
    assert 0.02 < expected.mean() < 0.6, float(expected.mean())


NETWORKS = {
    "feedforward": (FeedForward, (3, 20)),
    "convolutional": (Convolutional, (3, 2, 8, 8)),
}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_snntorch_runs_pysnn_export(name):
    pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir

    cls, shape = NETWORKS[name]
    net = cls(alpha_v=TAU / DT, scale=0.2)
    x = inputs(shape, 5)
    expected = pysnn_spikes(net, x)
    check_counts(expected)
    module = import_from_nir(pnir.export(net))
    with torch.no_grad():
        got = torch.stack([module(x[t])[0] for t in range(STEPS)])
    assert torch.equal(got.float(), expected.float())


def test_norse_runs_pysnn_export():
    pytest.importorskip("norse")
    import norse.torch as norse

    net = FeedForward(alpha_v=1.0, scale=8.0)
    x = inputs((3, 20), 6)
    expected = pysnn_spikes(net, x)
    check_counts(expected)
    module = norse.from_nir(pnir.export(net), dt=DT * 1e-3, ignore_warnings=True)
    state, got = None, []
    with torch.no_grad():
        for t in range(STEPS):
            out, state = module(x[t], state)
            got.append(out)
    assert torch.equal(torch.stack(got), expected.float())
