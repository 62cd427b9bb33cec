"""NIR export/import: round trips through files and an independent reference of NIR's LIF."""

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

from pysnn import nir as pnir  # noqa: E402
from pysnn.connection import AvgPool2d, Conv2d, Linear, Recurrent  # noqa: E402
from pysnn.network import SNNNetwork  # noqa: E402
from pysnn.neuron import AdaptiveLIFNeuron, Input, LIFNeuron  # noqa: E402
from pysnn.synapse import ExponentialSynapse  # noqa: E402

DT = 0.5


def lif(shape, **kw):
    params = dict(tau_v=10.0, thresh=1.0, v_rest=0.0, alpha_v=0.8, dt=DT, integrator="exact")
    params.update(kw)
    return LIFNeuron(shape, **params)


def seeded(conn, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        conn.weight.copy_(torch.rand(conn.weight.shape, generator=gen) * scale)
    return conn


class FeedForward(SNNNetwork):
    def __init__(self, synapse=False):
        super().__init__()
        self.inp = Input((20,), dt=DT, integrator="exact")
        self.hid = lif((30,), v_reset=-0.2)
        self.out = lif((5,), tau_v=torch.linspace(5.0, 20.0, 5))
        syn = ExponentialSynapse((30,), tau_syn=3.0, dt=DT, input="held") if synapse else None
        self.connect(self.inp, seeded(Linear(20, 30, dt=DT), 0.8, 0), self.hid, synapse=syn)
        self.connect(self.hid, seeded(Linear(30, 5, dt=DT, delay=1.0), 2.0, 1), self.out)


class Convolutional(SNNNetwork):
    def __init__(self):
        super().__init__()
        self.inp = Input((1, 1, 8, 8), dt=DT, integrator="exact")
        self.conv_lif = lif((1, 3, 6, 6))
        self.out = lif((4,))
        self.connect(self.inp, seeded(Conv2d(1, 3, 3, dt=DT), 1.2, 2), self.conv_lif)
        head = pnir.Chain(AvgPool2d(2), pnir.Flatten(), seeded(Linear(27, 4, dt=DT), 3.0, 3))
        self.connect(self.conv_lif, head, self.out)


class Recurrent_(SNNNetwork):
    def __init__(self):
        super().__init__()
        self.inp = Input((10,), dt=DT, integrator="exact")
        self.a = lif((12,))
        self.b = lif((6,), integrator="euler")
        self.connect(self.inp, seeded(Linear(10, 12, dt=DT), 1.5, 4), self.a)
        rec = Recurrent(12, dt=DT)
        seeded(rec, 0.3, 5)
        self.connect(self.a, rec, self.a)
        self.connect(self.a, seeded(Linear(12, 6, dt=DT), 3.0, 6), self.b)
        self.connect(self.b, seeded(Linear(6, 12, dt=DT), -0.4, 7), self.a)  # feedback


def spikes_of(net, x):
    net.reset_state()
    return torch.stack([net(x[t]) for t in range(x.shape[0])])


def round_trip(net, x, tmp_path):
    path = tmp_path / "net.nir"
    nir.write(str(path), pnir.export(net))
    loaded = pnir.load(path, dt=DT)
    expected, got = spikes_of(net, x), spikes_of(loaded, x)
    assert expected.sum() > 0, "the test network must spike"
    assert torch.equal(expected, got)
    return loaded


@pytest.mark.parametrize("synapse", [False, True], ids=["lif", "cubalif"])
def test_round_trip_feedforward(tmp_path, synapse):
    x = torch.rand(200, 4, 20, generator=torch.Generator().manual_seed(10)) < 0.3
    net = FeedForward(synapse)
    loaded = round_trip(net, x.float(), tmp_path)
    kinds = {type(n).__name__ for n in nir.read(str(tmp_path / "net.nir")).nodes.values()}
    assert kinds == {"Input", "Linear", "CubaLIF" if synapse else "LIF", "LIF", "Delay", "Output"}
    assert loaded.out.tau_v.tolist() == net.out.tau_v.tolist()


def test_round_trip_convolutional(tmp_path):
    x = torch.rand(200, 2, 1, 8, 8, generator=torch.Generator().manual_seed(11)) < 0.3
    round_trip(Convolutional(), x.float(), tmp_path)
    kinds = [type(n).__name__ for n in nir.read(str(tmp_path / "net.nir")).nodes.values()]
    assert {"Conv2d", "AvgPool2d", "Flatten", "Linear"} <= set(kinds)


def test_round_trip_recurrent(tmp_path):
    x = torch.rand(200, 3, 10, generator=torch.Generator().manual_seed(12)) < 0.3
    round_trip(Recurrent_(), x.float(), tmp_path)


def reference_lif(x, w1, w2, p1, p2, dt):
    """NIR's LIF, tau dv/dt = (v_leak - v) + r I, I held over each step; z = [v > thr]."""
    state = [p1["v_leak"].copy(), p2["v_leak"].copy()]
    out = []
    for s in x:
        z = s
        for k, (w, p) in enumerate(((w1, p1), (w2, p2))):
            current = w @ z
            target = p["v_leak"] + p["r"] * current
            v = target + (state[k] - target) * np.exp(-dt / p["tau"])
            z = (v > p["v_threshold"]).astype(np.float64)
            state[k] = np.where(z > 0, p["v_reset"], v)
        out.append(z)
    return np.stack(out)


def test_hand_built_graph_matches_reference():
    rng = np.random.default_rng(0)
    w1 = rng.normal(0.5, 0.4, (8, 16)).astype(np.float32)
    w2 = rng.normal(1.0, 0.5, (3, 8)).astype(np.float32)

    def params(n, tau_s):
        return dict(
            tau=np.full(n, tau_s, np.float32),
            r=np.full(n, 1.5, np.float32),
            v_leak=np.full(n, 0.1, np.float32),
            v_threshold=np.full(n, 1.0, np.float32),
            v_reset=np.zeros(n, np.float32),
        )

    p1, p2 = params(8, 5e-3), params(3, 2e-2)  # seconds, as other libraries write them
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([16])}),
            "fc1": nir.Linear(weight=w1),
            "lif1": nir.LIF(**p1),
            "fc2": nir.Linear(weight=w2),
            "lif2": nir.LIF(**p2),
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[
            ("input", "fc1"),
            ("fc1", "lif1"),
            ("lif1", "fc2"),
            ("fc2", "lif2"),
            ("lif2", "output"),
        ],
    )
    dt_ms = 1.0
    x = (rng.random((200, 16)) < 0.3).astype(np.float32)
    net = pnir.load(graph, dt=dt_ms)
    got = spikes_of(net, torch.from_numpy(x)[:, None]).squeeze(1).numpy()
    ref = reference_lif(
        x.astype(np.float64),
        w1.astype(np.float64),
        w2.astype(np.float64),
        {k: v.astype(np.float64) for k, v in p1.items()},
        {k: v.astype(np.float64) for k, v in p2.items()},
        dt_ms * 1e-3,
    )
    assert ref.sum() > 20
    assert np.mean(got != ref) < 0.01  # float32 against float64: rare ties near threshold


def test_threshold_is_strict_as_in_nir():
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([1])}),
        nir.Linear(weight=np.ones((1, 1), np.float32)),
        nir.IF(r=np.array([500.0], np.float32), v_threshold=np.array([1.0], np.float32)),
        nir.Output(output_type={"output": np.array([1])}),
    )
    net = pnir.load(graph, dt=1.0)  # r * dt = 0.5 per input spike
    out = spikes_of(net, torch.ones(3, 1, 1))
    assert out.flatten().tolist() == [0.0, 0.0, 1.0]  # v = 1.0 does not spike, 1.5 does


class Single(SNNNetwork):
    def __init__(self, neuron=None, conn=None, synapse=None):
        super().__init__()
        self.inp = Input((4,), dt=DT, integrator="exact")
        self.post = neuron if neuron is not None else lif((3,))
        self.connect(
            self.inp, conn if conn is not None else Linear(4, 3, dt=DT), self.post, synapse=synapse
        )


@pytest.mark.parametrize(
    "net, match",
    [
        (lambda: Single(conn=Linear(4, 3, dt=DT, delay=torch.ones(3, 4) * DT)), "per-synapse"),
        (
            lambda: Single(neuron=AdaptiveLIFNeuron((3,), dt=DT, integrator="exact")),
            "AdaptiveLIFNeuron",
        ),
        (lambda: Single(neuron=lif((3,), integrator="impulse")), "integrator='impulse'"),
        (lambda: Single(neuron=lif((3,), duration_refrac=1.0)), "refractory"),
        (lambda: Single(neuron=lif((3,), reset="subtract")), "reset='subtract'"),
    ],
)
def test_export_rejects_unsupported(net, match):
    with pytest.raises(ValueError, match=match):
        pnir.export(net())


def test_export_rejects_sparse_and_rules():
    from pysnn.connection import Sparse

    with pytest.raises(ValueError, match="Sparse"):
        pnir.export(Single(conn=Sparse(4, 3, torch.tensor([[0, 1], [0, 1]]), dt=DT)))


def test_export_rejects_learning_rules():
    from pysnn.learning import Hebbian

    net = Single()
    Hebbian(net.layers, lr=1e-3)
    with pytest.raises(ValueError, match="Hebbian"):
        pnir.export(net)


def test_missing_nir_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "nir", None)
    with pytest.raises(ImportError, match=r"pip install pysnn\[nir\]"):
        pnir.export(Single())


def test_load_rejects_unsupported():
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([2])}),
        nir.Linear(weight=np.ones((2, 2))),
        nir.LI(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2)),
        nir.Output(output_type={"output": np.array([2])}),
    )
    with pytest.raises(ValueError, match="LI"):
        pnir.load(graph, dt=1.0)
    with pytest.raises(ValueError, match="dt"):
        pnir.load(graph, dt=-1.0)
    with pytest.raises(TypeError, match="graph_or_path"):
        pnir.load(42, dt=1.0)


def test_docs_snippet_runs(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "nir.rst").read_text(encoding="utf-8")
    code = re.search(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile("\n".join(line[4:] for line in code.splitlines()), "nir.rst", "exec"), {})
