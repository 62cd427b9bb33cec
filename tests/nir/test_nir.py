"""NIR export/import: round trips through files and an independent reference of NIR's LIF."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

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
    def __init__(self, synapse=False, integrator="exact"):
        super().__init__()
        self.inp = Input((20,), dt=DT, integrator="exact")
        self.hid = lif((30,), v_reset=-0.2, integrator=integrator)
        self.out = lif((5,), tau_v=torch.linspace(5.0, 20.0, 5))
        syn = None
        if synapse == "held":  # NIR's CubaLIF current, exact or Euler
            syn = ExponentialSynapse((30,), 3.0, DT, integrator=integrator, input="held")
        elif synapse == "impulse":  # jumps by the input: NIR's CubaLIF under Euler only
            syn = ExponentialSynapse((30,), 3.0, DT, integrator="euler")
        self.connect(self.inp, seeded(Linear(20, 30, dt=DT), 0.8, 0), self.hid, synapse=syn)
        self.connect(self.hid, seeded(Linear(30, 5, dt=DT, delay=1.0), 2.0, 1), self.out)


class Convolutional(SNNNetwork):
    def __init__(self):
        super().__init__()
        self.inp = Input((1, 8, 8), dt=DT, integrator="exact")
        self.conv_lif = lif((3, 6, 6))
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


@pytest.mark.parametrize(
    "synapse, integrator",
    [(False, "exact"), ("held", "exact"), ("held", "euler"), ("impulse", "euler")],
    ids=["lif", "cubalif-exact", "cubalif-euler", "cubalif-euler-jumps"],
)
def test_round_trip_feedforward(tmp_path, synapse, integrator):
    x = torch.rand(200, 4, 20, generator=torch.Generator().manual_seed(10)) < 0.3
    net = FeedForward(synapse, integrator)
    loaded = round_trip(net, x.float(), tmp_path)
    graph = nir.read(str(tmp_path / "net.nir"))
    kinds = {type(n).__name__ for n in graph.nodes.values()}
    assert kinds == {"Input", "Linear", "CubaLIF" if synapse else "LIF", "LIF", "Delay", "Output"}
    assert loaded.out.tau_v.tolist() == net.out.tau_v.tolist()
    if synapse == "impulse":  # I <- (1 - dt/tau) I + x is NIR's Euler step with w_in = tau/dt
        assert np.allclose(graph.nodes["hid"].w_in, 3.0 / DT)


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
        nir.Scale(scale=np.ones(2)),
        nir.LIF(*f32(np.ones(2), np.ones(2), np.zeros(2), np.ones(2))),
        nir.Output(output_type={"output": np.array([2])}),
    )
    with pytest.raises(ValueError, match="Scale is not supported"):
        pnir.load(graph, dt=1.0)
    with pytest.raises(ValueError, match="dt"):
        pnir.load(graph, dt=-1.0)
    with pytest.raises(TypeError, match="graph_or_path"):
        pnir.load(42, dt=1.0)
    # a readout's output is a voltage: it cannot feed a projection
    readout_into_weights = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([2])}),
        nir.Linear(weight=np.ones((2, 2))),
        nir.LI(*f32(np.ones(2), np.ones(2), np.zeros(2))),
        nir.Linear(weight=np.ones((2, 2))),
        nir.LIF(*f32(np.ones(2), np.ones(2), np.zeros(2), np.ones(2))),
        nir.Output(output_type={"output": np.array([2])}),
    )
    with pytest.raises(ValueError, match="voltage, not spikes"):
        pnir.load(readout_into_weights, dt=1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(integrator="rk4"), "integrator"),
        (dict(integrator="impulse"), "integrator"),
        (dict(writer="brian2"), "writer"),
        (dict(time_scale=0.0), "time_scale"),
        (dict(time_scale=float("nan")), "time_scale"),
        (dict(time_scale=True), "time_scale"),
    ],
)
def test_load_argument_errors(kwargs, match):
    graph = single_population_graph(
        nir.LIF(*f32(np.ones(2), np.ones(2), np.zeros(2), np.ones(2))), 2, 2, np.ones((2, 2))
    )
    with pytest.raises(ValueError, match=match):
        pnir.load(graph, dt=1.0, **kwargs)


def test_docs_snippet_runs(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "nir.rst").read_text(encoding="utf-8")
    code = re.search(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile("\n".join(line[4:] for line in code.splitlines()), "nir.rst", "exec"), {})


# ---------------------------------------------------------------------------
# references of NIR's equations, inputs held over each step (numpy, float64)
# ---------------------------------------------------------------------------
def f32(*values):
    return [np.asarray(v, dtype=np.float32) for v in values]


def cuba_reference(x, w, p, dt, method):
    """NIR's CubaLIF: tau_s I' = -I + w_in S, tau_m v' = v_leak - v + r I, z = [v > thr]."""
    p = {k: np.asarray(v, dtype=np.float64) for k, v in p.items()}
    v, cur = p["v_leak"].copy(), np.zeros_like(p["v_leak"])
    ls, lm = np.exp(-dt / p["tau_syn"]), np.exp(-dt / p["tau_mem"])
    kappa = p["tau_syn"] / (p["tau_syn"] - p["tau_mem"]) * (ls - lm)
    out = []
    for s in x:
        drive = p["w_in"] * (w @ s)
        if method == "exact":  # the closed form of the linear system over the step
            v = (
                p["v_leak"]
                + (v - p["v_leak"]) * lm
                + p["r"] * (kappa * cur + drive * (1 - lm - kappa))
            )
            cur = drive + (cur - drive) * ls
        else:  # forward Euler, current first (snnTorch, Norse)
            cur = cur + dt / p["tau_syn"] * (drive - cur)
            v = v + dt / p["tau_mem"] * (p["v_leak"] - v + p["r"] * cur)
        z = (v > p["v_threshold"]).astype(np.float64)
        v = np.where(z > 0, p["v_reset"], v)
        out.append(z)
    return np.stack(out)


def single_population_graph(node, n_in, n, weight, kind_out=None):
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([n_in])}),
            "fc": nir.Linear(weight=weight),
            "pop": node,
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("input", "fc"), ("fc", "pop"), ("pop", "output")],
    )


def run_double(net, x):
    net.double()
    net.reset_state()
    return torch.stack([net(x[t]) for t in range(x.shape[0])])


@pytest.mark.parametrize("method", ["exact", "euler"])
def test_cubalif_is_integrated_as_nir_defines_it(method):
    rng = np.random.default_rng(1)
    n_in, n, dt_ms = 10, 6, 0.5
    w = rng.normal(0.6, 0.5, (n, n_in)).astype(np.float32)
    p = dict(
        zip(
            ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
            f32(
                np.linspace(2e-3, 8e-3, n),
                np.full(n, 10e-3),
                np.full(n, 1.3),
                np.full(n, 0.1),
                np.full(n, 1.0),
                np.full(n, -0.1),
                np.linspace(0.5, 2.0, n),
            ),
        )
    )
    graph = single_population_graph(nir.CubaLIF(**p), n_in, n, w)
    x = (rng.random((300, n_in)) < 0.3).astype(np.float32)
    net = pnir.load(graph, dt=dt_ms, integrator=method)
    got = run_double(net, torch.from_numpy(x)[:, None].double()).squeeze(1).numpy()
    ref = cuba_reference(x.astype(np.float64), w.astype(np.float64), p, dt_ms * 1e-3, method)
    assert 0.05 < ref.mean() < 0.6
    assert np.array_equal(got, ref)


def test_the_integrator_changes_the_spikes_and_defaults_to_exact():
    rng = np.random.default_rng(2)
    w = rng.normal(0.8, 0.5, (5, 8)).astype(np.float32)
    node = nir.LIF(*f32(np.full(5, 4e-3), np.ones(5), np.zeros(5), np.ones(5)))
    graph = single_population_graph(node, 8, 5, w)
    x = torch.from_numpy((rng.random((200, 1, 8)) < 0.4).astype(np.float32))
    exact, euler = pnir.load(graph, dt=1.0), pnir.load(graph, dt=1.0, integrator="euler")
    assert exact.pop.integrator == "exact" and euler.pop.integrator == "euler"
    assert not torch.equal(spikes_of(exact, x), spikes_of(euler, x))


def test_biases_load_and_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    w1, b1 = rng.normal(0.3, 0.3, (6, 8)).astype(np.float32), np.linspace(-0.2, 0.4, 6)
    wc, bc = rng.normal(0.2, 0.3, (2, 1, 3, 3)).astype(np.float32), np.array([0.3, -0.1])
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([8])}),
            "fc": nir.Affine(weight=w1, bias=b1.astype(np.float32)),
            "lif": nir.LIF(*f32(np.full(6, 5e-3), np.ones(6), np.zeros(6), np.ones(6))),
            "output": nir.Output(output_type={"output": np.array([6])}),
            "img": nir.Input(input_type={"input": np.array([1, 5, 5])}),
            "conv": nir.Conv2d(
                input_shape=(5, 5),
                weight=wc,
                stride=1,
                padding=0,
                dilation=1,
                groups=1,
                bias=bc.astype(np.float32),
            ),
            "clif": nir.LIF(*f32(*(np.full((2, 3, 3), v) for v in (5e-3, 1.0, 0.0, 1.0)))),
            "output2": nir.Output(output_type={"output": np.array([2, 3, 3])}),
        },
        edges=[
            ("input", "fc"),
            ("fc", "lif"),
            ("lif", "output"),
            ("img", "conv"),
            ("conv", "clif"),
            ("clif", "output2"),
        ],
    )
    net = pnir.load(graph, dt=1.0)
    fc = net.layers["input_to_lif_0"].connection
    assert torch.allclose(fc.bias, torch.tensor(b1, dtype=torch.float32))
    x = torch.from_numpy((rng.random((100, 2, 8)) < 0.3).astype(np.float32))
    img = torch.from_numpy((rng.random((100, 2, 1, 5, 5)) < 0.3).astype(np.float32))
    # the bias is a constant input current: with no input spikes the LIF relaxes to r * b
    net.reset_state()
    for _ in range(60):
        net(torch.zeros(1, 8), torch.zeros(1, 1, 5, 5))
    assert np.allclose(net.lif.v_cell[0].numpy(), b1, atol=1e-4)  # v_leak 0, r 1: v -> b
    net.reset_state()
    first = [net(x[t], img[t]) for t in range(100)]
    # exported back: Affine and Conv2d with the biases, same spikes
    path = tmp_path / "bias.nir"
    nir.write(str(path), pnir.export(net))
    back = nir.read(str(path))
    assert type(back.nodes["input_to_lif_0"]).__name__ == "Affine"
    assert np.allclose(back.nodes["input_to_lif_0"].bias, b1)
    assert np.allclose(back.nodes["img_to_clif_1"].bias, bc)
    again = pnir.load(path, dt=1.0)
    again.reset_state()
    second = [again(x[t], img[t]) for t in range(100)]
    for k in range(2):
        a = torch.stack([out[k] for out in first])
        b = torch.stack([out[k] for out in second])
        assert a.sum() > 0
        assert torch.equal(a, b)


# ---------------------------------------------------------------------------
# readouts, Threshold, IF
# ---------------------------------------------------------------------------
def test_li_and_cubali_readouts_return_the_voltage():
    rng = np.random.default_rng(4)
    n_in, n, dt = 6, 3, 0.5e-3
    w = rng.normal(0.5, 0.5, (n, n_in)).astype(np.float32)
    tau, r, v_leak = f32(np.array([2e-3, 5e-3, 9e-3]), np.array([1.0, 0.5, 2.0]), np.full(n, 0.2))
    x = (rng.random((80, n_in)) < 0.4).astype(np.float64)
    li = pnir.load(single_population_graph(nir.LI(tau, r, v_leak), n_in, n, w), dt=dt * 1e3)
    got = run_double(li, torch.from_numpy(x)[:, None]).squeeze(1).numpy()
    v, ref = v_leak.astype(np.float64), []
    for s in x:  # exact, input held
        target = v_leak + r.astype(np.float64) * (w.astype(np.float64) @ s)
        v = target + (v - target) * np.exp(-dt / tau.astype(np.float64))
        ref.append(v)
    assert np.allclose(got, np.stack(ref), rtol=0, atol=1e-12)
    # CubaLI: the same current as CubaLIF (here Euler), never a spike
    tau_syn = np.full(n, 3e-3, np.float32)
    node = nir.CubaLI(tau_syn=tau_syn, tau_mem=tau, r=r, v_leak=v_leak, w_in=np.float32(2.0))
    cubali = pnir.load(single_population_graph(node, n_in, n, w), dt=dt * 1e3, integrator="euler")
    got = run_double(cubali, torch.from_numpy(x)[:, None]).squeeze(1).numpy()
    v, cur, ref = v_leak.astype(np.float64), np.zeros(n), []
    for s in x:
        cur = cur + dt / tau_syn.astype(np.float64) * (2.0 * (w.astype(np.float64) @ s) - cur)
        v = v + dt / tau.astype(np.float64) * (v_leak - v + r.astype(np.float64) * cur)
        ref.append(v)
    assert np.allclose(got, np.stack(ref), rtol=0, atol=1e-12)
    assert cubali.pop.spikes.sum() == 0


def test_threshold_nodes_are_memoryless_and_an_li_read_by_one_spikes_without_reset():
    rng = np.random.default_rng(5)
    w = rng.normal(0.0, 1.0, (4, 5)).astype(np.float32)
    theta = np.array([0.5, -0.2, 1.0, 0.0], np.float32)
    x = (rng.random((60, 5)) < 0.5).astype(np.float32)
    thr = pnir.load(single_population_graph(nir.Threshold(theta), 5, 4, w), dt=1.0)
    got = run_double(thr, torch.from_numpy(x)[:, None].double()).squeeze(1).numpy()
    ref = ((x @ w.T).astype(np.float64) > theta).astype(np.float64)  # z = [W s > theta]
    assert 0.1 < ref.mean() < 0.9 and np.array_equal(got, ref)
    # LI -> Threshold: v integrates and is never reset; spikes where v > theta
    tau, r, v_leak = f32(np.full(4, 4e-3), np.ones(4), np.zeros(4))
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([5])}),
            "fc": nir.Linear(weight=w),
            "li": nir.LI(tau, r, v_leak),
            "thr": nir.Threshold(theta),
            "output": nir.Output(output_type={"output": np.array([4])}),
        },
        edges=[("input", "fc"), ("fc", "li"), ("li", "thr"), ("thr", "output")],
    )
    net = pnir.load(graph, dt=1.0)
    got = run_double(net, torch.from_numpy(x)[:, None].double()).squeeze(1).numpy()
    v, ref = np.zeros(4), []
    for s in x.astype(np.float64):
        target = w.astype(np.float64) @ s
        v = target + (v - target) * np.exp(-1e-3 / 4e-3)
        ref.append((v > theta).astype(np.float64))
    assert 0.1 < np.mean(ref) < 0.9 and np.array_equal(got, np.stack(ref))


def test_if_and_i_nodes():
    rng = np.random.default_rng(6)
    w = rng.random((3, 4)).astype(np.float32)
    x = (rng.random((50, 4)) < 0.5).astype(np.float64)
    r = np.array([200.0, 400.0, 100.0], np.float32)  # 1/s: r dt = 0.2, 0.4, 0.1 at 1 ms
    node = nir.IF(r=r, v_threshold=np.ones(3, np.float32), v_reset=np.zeros(3, np.float32))
    net = pnir.load(single_population_graph(node, 4, 3, w), dt=1.0)
    got = run_double(net, torch.from_numpy(x)[:, None]).squeeze(1).numpy()
    v, ref = np.zeros(3), []
    for s in x:
        v = v + r.astype(np.float64) * 1e-3 * (w.astype(np.float64) @ s)
        z = (v > 1.0).astype(np.float64)
        v = np.where(z > 0, 0.0, v)
        ref.append(z)
    assert np.mean(ref) > 0.1 and np.array_equal(got, np.stack(ref))
    integrator = pnir.load(single_population_graph(nir.I(r=r), 4, 3, w), dt=1.0)
    got = run_double(integrator, torch.from_numpy(x)[:, None]).squeeze(1).numpy()
    expected = np.cumsum(x @ w.astype(np.float64).T, axis=0) * r.astype(np.float64) * 1e-3
    assert np.allclose(got, expected, rtol=1e-6)  # r dt is a float32 parameter


# ---------------------------------------------------------------------------
# names, nested graphs, chains
# ---------------------------------------------------------------------------
def test_node_names_become_attribute_names():
    lif_node = nir.LIF(*f32(np.ones(2), np.ones(2), np.zeros(2), np.ones(2)))
    graph = nir.NIRGraph(
        nodes={
            "0": nir.Input(input_type={"input": np.array([2])}),
            "1": nir.Linear(weight=np.ones((2, 2), np.float32)),
            "r.lif": lif_node,
            "2": nir.Linear(weight=np.ones((2, 2), np.float32)),
            "forward": nir.LIF(*f32(np.ones(2), np.ones(2), np.zeros(2), np.ones(2))),
            "3": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("0", "1"), ("1", "r.lif"), ("r.lif", "2"), ("2", "forward"), ("forward", "3")],
    )
    net = pnir.load(graph, dt=1.0)
    assert net.node_names == {"0": "node_0", "r.lif": "r_lif", "forward": "node_forward"}
    assert isinstance(net.r_lif, LIFNeuron) and isinstance(net.node_0, Input)
    assert net.input_names == ("0",) and net.output_names == ("3",)


def test_a_nested_recurrent_graph_is_inlined():
    # snnTorch's RLeaky: a subgraph input -> lif <-> w_rec, lif -> output
    rng = np.random.default_rng(7)
    w_in, w_rec = rng.random((3, 4)).astype(np.float32), rng.normal(0, 0.5, (3, 3)).astype(
        np.float32
    )
    lif_params = f32(np.full(3, 2e-3), np.ones(3), np.zeros(3), np.ones(3))
    sub = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([3])}),
            "lif": nir.LIF(*lif_params),
            "w_rec": nir.Linear(weight=w_rec),
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
    )
    nested = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([4])}),
            "fc": nir.Linear(weight=w_in),
            "rnn": sub,
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[("input", "fc"), ("fc", "rnn"), ("rnn", "output")],
    )
    flat = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([4])}),
            "fc": nir.Linear(weight=w_in),
            "lif": nir.LIF(*lif_params),
            "w_rec": nir.Linear(weight=w_rec),
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[
            ("input", "fc"),
            ("fc", "lif"),
            ("lif", "w_rec"),
            ("w_rec", "lif"),
            ("lif", "output"),
        ],
    )
    a, b = pnir.load(nested, dt=0.5), pnir.load(flat, dt=0.5)
    assert "rnn.lif" in a.node_names and a.node_names["rnn.lif"] == "rnn_lif"
    x = torch.from_numpy((rng.random((100, 2, 4)) < 0.4).astype(np.float32))
    expected = spikes_of(b, x)
    assert expected.sum() > 0 and torch.equal(spikes_of(a, x), expected)


def torch_reference_conv_lif(x, stages, p, dt):
    """LIF (exact, input held) after a stack of torch functions: an independent reference."""
    v = torch.zeros(x.shape[1:2] + stages(x[0]).shape[1:], dtype=torch.float64)
    out = []
    for s in x:
        target = p["r"] * stages(s)
        v = target + (v - target) * math.exp(-dt / p["tau"])
        z = (v > p["thr"]).double()
        v = torch.where(z > 0, torch.zeros_like(v), v)
        out.append(z)
    return torch.stack(out)


@pytest.mark.parametrize("path", ["conv-conv", "conv-avgpool-conv", "linear-linear"])
def test_paths_of_several_weighted_nodes_run(path):
    rng = np.random.default_rng(8)
    k1 = rng.normal(0.2, 0.4, (3, 2, 3, 3)).astype(np.float32)
    k2 = rng.normal(0.2, 0.4, (2, 3, 3, 3)).astype(np.float32)
    l1, l2 = rng.normal(0.3, 0.5, (6, 8)).astype(np.float32), rng.normal(0.3, 0.5, (4, 6))
    l2 = l2.astype(np.float32)

    def conv(weight, hw):
        return nir.Conv2d(hw, weight, 1, 0, 1, 1, np.zeros(weight.shape[0], np.float32))

    if path == "linear-linear":
        in_shape, nodes = (8,), [nir.Linear(weight=l1), nir.Linear(weight=l2)]

        def stages(s):
            return s @ torch.from_numpy(l1).double().T @ torch.from_numpy(l2).double().T

    elif path == "conv-conv":
        in_shape, nodes = (2, 9, 9), [conv(k1, (9, 9)), conv(k2, (7, 7))]

        def stages(s):
            return F.conv2d(
                F.conv2d(s, torch.from_numpy(k1).double()), torch.from_numpy(k2).double()
            )

    else:
        pool = nir.AvgPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0]))
        in_shape, nodes = (2, 12, 12), [conv(k1, (12, 12)), pool, conv(k2, (5, 5))]

        def stages(s):
            h = F.avg_pool2d(F.conv2d(s, torch.from_numpy(k1).double()), 2)
            return F.conv2d(h, torch.from_numpy(k2).double())

    x = torch.from_numpy((rng.random((40, 2, *in_shape)) < 0.4).astype(np.float64))
    out_shape = tuple(stages(x[0]).shape[1:])
    tau, r, thr = 3e-3, 0.7, 1.0
    lif_node = nir.LIF(*f32(*(np.full(out_shape, v) for v in (tau, r, 0.0, thr))))
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array(in_shape)}),
        *nodes,
        lif_node,
        nir.Output(output_type={"output": np.array(out_shape)}),
    )
    net = pnir.load(graph, dt=1.0)
    got = run_double(net, x)
    ref = torch_reference_conv_lif(x, stages, dict(tau=tau, r=r, thr=thr), 1e-3)
    assert 0.05 < float(ref.mean()) < 0.9
    assert torch.equal(got, ref)


# ---------------------------------------------------------------------------
# export: Conv2dSep, fresh networks, refusals
# ---------------------------------------------------------------------------
class SepNet(SNNNetwork):
    def __init__(self, separable):
        super().__init__()
        from pysnn.connection import Conv2dSep

        self.inp = Input((2, 8, 8), dt=DT, integrator="exact")
        self.out = lif((3, 6, 6))
        conv = Conv2dSep(2, 3, 3, delays=[0.0, 1.0, 2.5], separable=separable, dt=DT)
        seeded(conv, 0.6, 20)
        if separable:
            conv.set_temporal_weight(torch.tensor([1.0, -0.5, 0.8]))
        self.connect(self.inp, conv, self.out)


@pytest.mark.parametrize("separable", [True, False], ids=["separable", "free"])
def test_conv2dsep_is_exported_exactly(tmp_path, separable):
    net = SepNet(separable)
    graph = pnir.export(net)  # before any step
    kinds = sorted(type(n).__name__ for n in graph.nodes.values())
    assert kinds.count("Conv2d") == 3 and kinds.count("Delay") == 2  # the tap at 0 has none
    delays = sorted(
        float(np.unique(n.delay)[0]) for n in graph.nodes.values() if type(n).__name__ == "Delay"
    )
    assert delays == pytest.approx([1.0e-3, 2.5e-3])
    x = torch.rand(60, 2, 2, 8, 8, generator=torch.Generator().manual_seed(21)) < 0.3
    round_trip(net, x.float(), tmp_path)


class FreshConv(SNNNetwork):
    def __init__(self, in_shape):
        super().__init__()
        self.inp = Input(in_shape, dt=DT, integrator="exact")
        self.hid = lif((4, 4, 4))
        self.out = lif((3,))
        self.connect(self.inp, Conv2d(1, 4, 3, dt=DT), self.hid)
        self.connect(
            self.hid, pnir.Chain(pnir.SumPool2d(2), pnir.Flatten(), Linear(16, 3, dt=DT)), self.out
        )


@pytest.mark.parametrize("in_shape", [(1, 6, 6), (1, 1, 6, 6)])
def test_a_fresh_network_exports_without_a_step(in_shape):
    net = FreshConv(in_shape)
    assert net.inp.is_fresh
    graph = pnir.export(net)
    assert list(graph.nodes["inp"].input_type["input"]) == [1, 6, 6]
    assert list(graph.nodes["hid"].v_threshold.shape) == [4, 4, 4]
    assert list(graph.nodes["output"].output_type["output"]) == [3]


def test_an_ambiguous_shape_is_refused_by_name():
    class OddInput(Input):  # a per-sample shape that fits nothing: the candidates decide
        features_shape = property(lambda self: (7,))

    class Net(SNNNetwork):
        def __init__(self):
            super().__init__()
            self.inp = OddInput((1, 2, 4), dt=DT, integrator="exact")
            self.out = lif((3,))
            self.connect(self.inp, pnir.Chain(pnir.Flatten(), Linear(8, 3, dt=DT)), self.out)

    with pytest.raises(ValueError, match="'inp'.*ambiguous"):
        pnir.export(Net())


def _refused():
    from pysnn.connection import Conv2dSep, MaxPool2d, Sparse
    from pysnn.synapse import AlphaSynapse, ConductanceSynapse

    class MyLinear(Linear):
        pass

    return [
        (lambda: Single(synapse=ExponentialSynapse((3,), 2.0, DT)), "input='impulse'"),
        (lambda: Single(synapse=AlphaSynapse((3,), 2.0, DT)), "AlphaSynapse"),
        (lambda: Single(synapse=ConductanceSynapse((3,), 2.0, 0.0, DT)), "ConductanceSynapse"),
        (
            lambda: Single(synapse=ExponentialSynapse((3,), 2.0, DT, integrator="euler")),
            "one integration",
        ),
        (lambda: Single(neuron=lif((3,), fire_once=True)), "fire_once"),
        (lambda: Single(conn=MyLinear(4, 3, dt=DT)), "MyLinear has no NIR node"),
        (lambda: Single(conn=Sparse(4, 3, torch.tensor([[0, 1], [0, 1]]), dt=DT)), "Sparse"),
        (
            lambda: FreshConvWith(pnir.Chain(MaxPool2d(2), pnir.Flatten(), Linear(16, 3, dt=DT))),
            "MaxPool2d has no NIR node",
        ),
        (
            lambda: FreshConvWith(
                pnir.Chain(Conv2dSep(4, 4, 1, delays=[0, 1], dt=DT), pnir.SumPool2d(2),
                           pnir.Flatten(), Linear(16, 3, dt=DT))  # fmt: skip
            ),
            "Conv2dSep inside a Chain",
        ),
    ]


class FreshConvWith(FreshConv):
    def __init__(self, head):
        SNNNetwork.__init__(self)
        self.inp = Input((1, 6, 6), dt=DT, integrator="exact")
        self.hid = lif((4, 4, 4))
        self.out = lif((3,))
        self.connect(self.inp, Conv2d(1, 4, 3, dt=DT), self.hid)
        self.connect(self.hid, head, self.out)


@pytest.mark.parametrize("index", range(9))
def test_export_refuses_what_nir_cannot_express_by_name(index):
    build, match = _refused()[index]
    with pytest.raises(ValueError, match=match):
        pnir.export(build())


def test_a_delay_on_a_chain_of_two_weighted_stages_round_trips(tmp_path):
    class Net(SNNNetwork):
        def __init__(self):
            super().__init__()
            self.inp = Input((6,), dt=DT, integrator="exact")
            self.out = lif((3,))
            first, second = seeded(Linear(6, 5, dt=DT, delay=2 * DT), 0.8, 30), Linear(5, 3, dt=DT)
            seeded(second, 0.9, 31)
            self.connect(self.inp, pnir.Chain(first, second), self.out)

    x = torch.rand(80, 2, 6, generator=torch.Generator().manual_seed(32)) < 0.4
    loaded = round_trip(Net(), x.float(), tmp_path)
    (layer,) = loaded.layers.values()
    assert isinstance(layer.connection, pnir.Chain) and layer.connection.max_delay == 2
