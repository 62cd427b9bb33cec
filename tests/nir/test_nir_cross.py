"""NIR across libraries, both directions: PySNN <-> snnTorch 1.0, PySNN <-> Norse 1.1.

Each test skips when its library is absent (CI installs them ``--no-deps``).

**Peer files into PySNN** (``benchmarks/nir_peers.py`` builds the networks): a
network written by the library's own exporter, loaded with
:func:`pysnn.nir.load`, gives the library's output spikes exactly, entry for
entry.  Where the file holds the library's semantics (snnTorch's ``Leaky`` with
``reset_mechanism="zero"``, Norse's ``LIFBoxCell``, both integrated with
forward Euler) ``integrator="euler"`` is all it takes; Norse also needs its
time constants corrected (``time_scale``).  The documented exceptions, where the
file does not say what the library computes and ``writer=`` corrects it:

* snnTorch's ``Synaptic`` (``CubaLIF``) and ``RLeaky`` with ``reset_mechanism="zero"``
  lose the step after a spike (``writer="snntorch"``);
* snnTorch's default ``reset_mechanism="subtract"`` subtracts the threshold after
  the next decay (``writer="snntorch-subtract"``);
* Norse's ``LIFCell`` (``CubaLIF``) current jumps by the input instead of
  integrating it (``writer="norse"``); Norse's own importer reads the file as NIR
  says, and PySNN without ``writer`` agrees with it.

Exceptions no flag can correct, so not tested here: snnTorch 1.0 cannot export a
``Flatten`` with nir 1.0.8 (the conv files end in a ``Conv2d``); Norse writes no
node for pooling or ``Flatten`` (its conv file is conv -> LIF -> conv -> LIF) and
leaves ``Conv2d.input_shape`` empty, which ``nir.write`` cannot store (the graph
is loaded in memory).

**PySNN files into the peers**: a PySNN network of Euler LIF neurons exported
with :func:`pysnn.nir.export` gives the same spikes in snnTorch and Norse, within
each importer's limits:

* snnTorch's importer assumes ``dt = 0.1 ms`` and input gain
  ``r dt / tau = 1``, so ``alpha_v = tau / dt``; it needs ``v_leak = 0`` and
  resets to 0.
* Norse's importer ignores ``r`` (it takes ``r = 1``) and ``v_reset`` (it
  resets to 0), so ``alpha_v = 1`` and ``v_reset = 0``.
"""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

nir = pytest.importorskip("nir")

from pysnn import nir as pnir  # noqa: E402
from pysnn.connection import AvgPool2d, Conv2d, Linear  # noqa: E402
from pysnn.network import SNNNetwork  # noqa: E402
from pysnn.neuron import Input, LIFNeuron  # noqa: E402
from pysnn.synapse import ExponentialSynapse  # noqa: E402

DT = 0.1  # ms; snnTorch's importer hard-codes 1e-4 s
TAU = 5.0  # ms
STEPS = 200
PEER_STEPS = 150


def _peers():
    spec = importlib.util.spec_from_file_location(
        "nir_peers", Path(__file__).parents[2] / "benchmarks" / "nir_peers.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("nir_peers", module)
    spec.loader.exec_module(module)
    return module


peers = _peers()


def need(library):
    if not peers.available(library):
        pytest.skip(f"{library} (with nirtorch) is not installed")


# ---------------------------------------------------------------------------
# peer files -> PySNN
# ---------------------------------------------------------------------------
def check_activity(expected):
    # the comparison must mean something: spikes, but not every neuron at every step
    assert 0.05 < float(expected.float().mean()) < 0.85, float(expected.float().mean())


def peer_case(case, tmp_path, reset="zero"):
    library, _, shape, dt, _ = peers.CASES[case]
    need(library)
    path, net = peers.exported_file(case, tmp_path, reset)
    x = peers.inputs(shape, PEER_STEPS)
    expected = peers.library_spikes(case, net, x)
    check_activity(expected)
    return path, x, expected, dt


@pytest.mark.parametrize("case", ["snntorch-lif", "snntorch-conv", "norse-lif", "norse-conv"])
def test_a_peer_file_that_holds_its_semantics_loads_with_the_euler_integrator(case, tmp_path):
    path, x, expected, dt = peer_case(case, tmp_path)
    extra = dict(time_scale=1000.0) if case.startswith("norse") else {}  # Norse writes tau * dt
    got = peers.pysnn_spikes(path, dt, x, integrator="euler", **extra)
    assert torch.equal(got, expected.float())
    # NIR's exact semantics are another discretisation: different spikes
    assert not torch.equal(peers.pysnn_spikes(path, dt, x, **extra), expected.float())


@pytest.mark.parametrize(
    "case, reset",
    [
        ("snntorch-cubalif", "zero"),
        ("snntorch-rleaky", "zero"),
        ("snntorch-lif", "subtract"),
        ("snntorch-cubalif", "subtract"),
        ("snntorch-conv", "subtract"),
        ("snntorch-rleaky", "subtract"),
        ("norse-cubalif", "zero"),
    ],
)
def test_the_writer_correction_reproduces_what_the_file_does_not_say(case, reset, tmp_path):
    path, x, expected, dt = peer_case(case, tmp_path, reset)
    kwargs = peers.corrected_kwargs(case, reset)
    assert torch.equal(peers.pysnn_spikes(path, dt, x, **kwargs), expected.float())
    # without the correction the file's own semantics differ from the library's
    plain = dict(integrator="euler", time_scale=1000.0 if case.startswith("norse") else 1.0)
    assert not torch.equal(peers.pysnn_spikes(path, dt, x, **plain), expected.float())


def test_norse_cubalif_file_read_as_nir_says_matches_norse_s_own_importer(tmp_path):
    need("norse")
    path, net = peers.exported_file("norse-cubalif", tmp_path)
    x = peers.inputs((12,), PEER_STEPS)
    corrected = peers.scale_time_constants(nir.read(str(path)), 1000.0)
    for node in corrected.nodes.values():  # jumps as large as the LIFCell's: w_in = tau_syn/dt
        if isinstance(node, nir.CubaLIF):
            node.w_in = node.w_in * node.tau_syn / (peers.NORSE_DT_MS * 1e-3)
    nir.write(str(tmp_path / "corrected.nir"), corrected)
    expected = peers.norse_import_run(corrected, x)
    check_activity(expected)
    got = peers.pysnn_spikes(tmp_path / "corrected.nir", peers.NORSE_DT_MS, x, integrator="euler")
    assert torch.equal(got, expected.float())


# ---------------------------------------------------------------------------
# PySNN files -> peers
# ---------------------------------------------------------------------------
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
    def __init__(self, alpha_v, scale, synapse=False):
        super().__init__()
        self.inp = Input((20,), dt=DT, integrator="exact")
        self.hid = euler_lif((30,), alpha_v)
        self.out = euler_lif((5,), alpha_v)
        # an Euler synapse whose current jumps by the input: NIR's CubaLIF, w_in = tau_s / dt
        syn = ExponentialSynapse((30,), 2.0, DT, integrator="euler") if synapse else None
        self.connect(self.inp, seeded(Linear(20, 30, dt=DT), 0.5 * scale, 0), self.hid, synapse=syn)
        self.connect(self.hid, seeded(Linear(30, 5, dt=DT), scale, 1), self.out)


class Convolutional(SNNNetwork):
    def __init__(self, alpha_v, scale):
        super().__init__()
        self.inp = Input((2, 8, 8), dt=DT, integrator="exact")
        self.conv = euler_lif((3, 6, 6), alpha_v)
        self.out = euler_lif((4, 1, 1), alpha_v)
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
    assert 0.02 < expected.mean() < 0.6, float(expected.mean())


NETWORKS = {
    "feedforward": (FeedForward, (3, 20), {}),
    "cubalif": (FeedForward, (3, 20), dict(synapse=True)),
    "convolutional": (Convolutional, (3, 2, 8, 8), {}),
}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_snntorch_runs_pysnn_export(name):
    need("snntorch")
    from snntorch.import_nir import import_from_nir

    cls, shape, extra = NETWORKS[name]
    net = cls(alpha_v=TAU / DT, scale=0.2 if not extra else 0.05, **extra)
    x = inputs(shape, 5)
    expected = pysnn_spikes(net, x)
    check_counts(expected)
    module = import_from_nir(pnir.export(net))
    with torch.no_grad():
        got = torch.stack([module(x[t])[0] for t in range(STEPS)])
    assert torch.equal(got.float(), expected.float())


def test_norse_runs_pysnn_export():
    need("norse")
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
