"""Exact coupled propagators of LIF + current synapses, and forward-Euler synapses.

References: the closed forms of the issue (kappa / (1 - exp(-dt/tau_m))) and an
independent solution, the matrix exponential of the linear system
(``torch.linalg.matrix_exp`` in float64, accurate to about 1e-10 here, and
mpmath's ``expm`` at 40 digits, rounded to float64, for step-by-step replays).
"""

import math

import pytest
import torch

from pysnn import functional as sf
from pysnn.connection import Linear
from pysnn.network import SNNNetwork
from pysnn.neuron import AdaptiveLIFNeuron, IFNeuron, Input, LIFNeuron
from pysnn.synapse import AlphaSynapse, ConductanceSynapse, ExponentialSynapse

mp = pytest.importorskip("mpmath")  # a dependency of sympy, which torch requires

DT = 0.1
PAIRS = [(5.0, 20.0), (10.0, 20.0), (20.0, 5.0), (2.0, 3.0), (0.05, 20.0), (40.0, 0.3)]


def system(tau_s, tau_m, alpha=False):
    """The matrix of y = (v, I[, h]): tau_m v' = -v + I (IF: v' = I), tau_s I' = -I [+ e h]."""
    a = 0.0 if math.isinf(tau_m) else 1.0 / tau_m
    b = 1.0 / tau_s
    n = 3 if alpha else 2
    A = [[0.0] * n for _ in range(n)]
    A[0][0], A[0][1] = -a, a if a else 1.0
    A[1][1] = -b
    if alpha:
        A[1][2], A[2][2] = math.e * b, -b
    return A


def propagator(tau_s, tau_m, dt, alpha=False):
    """torch.linalg.matrix_exp of the system over one step (float64)."""
    A = torch.tensor(system(tau_s, tau_m, alpha), dtype=torch.float64)
    return torch.linalg.matrix_exp(A * dt)


def precise_propagator(tau_s, tau_m, dt, alpha=False):
    """mpmath's expm of the system over one step, 40 digits, rounded to float64."""
    with mp.workdps(40):
        E = mp.expm(mp.matrix(system(tau_s, tau_m, alpha)) * mp.mpf(dt))
        n = E.rows
        return torch.tensor(
            [[float(E[i, j]) for j in range(n)] for i in range(n)], dtype=torch.float64
        )


def gain(tau_m, dt):
    return dt if math.isinf(tau_m) else -math.expm1(-dt / tau_m)


@pytest.mark.parametrize("tau_s, tau_m", PAIRS)
def test_membrane_coupling_matches_the_closed_form_and_the_matrix_exponential(tau_s, tau_m):
    c = sf.membrane_coupling(tau_s, tau_m, DT).item()
    kappa = tau_s / (tau_s - tau_m) * (math.exp(-DT / tau_s) - math.exp(-DT / tau_m))
    assert c == pytest.approx(kappa / gain(tau_m, DT), rel=1e-11)
    assert c == pytest.approx(
        (propagator(tau_s, tau_m, DT)[0, 1] / gain(tau_m, DT)).item(), rel=1e-8
    )
    precise = precise_propagator(tau_s, tau_m, DT)[0, 1] / gain(tau_m, DT)
    assert c == pytest.approx(precise.item(), rel=1e-13)


def test_membrane_coupling_limits():
    tau = 20.0
    lam = math.exp(-DT / tau)
    # tau_s = tau_m: kappa = (dt / tau) e^{-dt/tau}, no 0/0
    assert sf.membrane_coupling(tau, tau, DT).item() == pytest.approx(
        DT / tau * lam / (1 - lam), rel=1e-14
    )
    for eps in (1e-9, -1e-9):  # smooth across tau_s = tau_m: dc/d(tau_s) is about 2.5e-3 / tau
        near = sf.membrane_coupling(tau * (1 + eps), tau, DT).item()
        assert near == pytest.approx(sf.membrane_coupling(tau, tau, DT).item(), rel=1e-11)
    # IF membrane (tau_m = inf): the mean of the current over the step
    assert sf.membrane_coupling(5.0, math.inf, DT).item() == pytest.approx(
        5.0 * -math.expm1(-DT / 5.0) / DT, rel=1e-14
    )
    # a current that does not decay is held
    assert sf.membrane_coupling(math.inf, tau, DT).item() == 1.0
    # per-neuron tensors broadcast
    taus = torch.tensor([5.0, 10.0, 20.0], dtype=torch.float64)
    got = sf.membrane_coupling(taus, 20.0, DT)
    assert got.shape == (3,)
    assert got[2].item() == pytest.approx(DT / tau * lam / (1 - lam), rel=1e-14)


@pytest.mark.parametrize("tau_s, tau_m", PAIRS + [(20.0, 20.0), (5.0, math.inf)])
def test_alpha_coupling_matches_the_matrix_exponential(tau_s, tau_m):
    c_h = sf.alpha_membrane_coupling(tau_s, tau_m, DT).item()
    expected = (propagator(tau_s, tau_m, DT, alpha=True)[0, 2] / gain(tau_m, DT)).item()
    assert c_h == pytest.approx(expected, rel=1e-7)
    precise = (precise_propagator(tau_s, tau_m, DT, alpha=True)[0, 2] / gain(tau_m, DT)).item()
    assert c_h == pytest.approx(precise, rel=1e-13)
    c_i = sf.membrane_coupling(tau_s, tau_m, DT).item()
    expected_i = (propagator(tau_s, tau_m, DT, alpha=True)[0, 1] / gain(tau_m, DT)).item()
    assert c_i == pytest.approx(expected_i, rel=1e-8)


def test_alpha_coupling_is_continuous_across_equal_time_constants():
    at = sf.alpha_membrane_coupling(20.0, 20.0, DT).item()
    lam = math.exp(-DT / 20.0)
    # e dt / (2 tau) * lam / phi1(-dt/tau), phi1(z) = (e^z - 1)/z
    assert at == pytest.approx(math.e * DT / 40.0 * lam / ((1 - lam) / (DT / 20.0)), rel=1e-13)
    for eps in (1e-9, -1e-9, 1e-4, -1e-4):
        near = sf.alpha_membrane_coupling(20.0 * (1 + eps), 20.0, DT).item()
        assert near == pytest.approx(at, rel=3 * abs(eps) + 1e-12)


class Single(SNNNetwork):
    """One input -> Linear -> synapse -> neuron, float64."""

    def __init__(self, neuron, synapse, n_in=2):
        super().__init__()
        n = neuron.features_shape[-1]
        self.inp = Input((n_in,), dt=DT, integrator="exact")
        self.fc = Linear(n_in, n, dt=DT)
        self.post = neuron
        self.syn = synapse
        self.connect(self.inp, self.fc, self.post, synapse=self.syn)


def silent_lif(cls=LIFNeuron, **kw):
    params = dict(thresh=1e9, v_rest=-0.3, tau_v=torch.tensor([20.0, 5.0, 10.0]), dt=DT)
    params.update(kw)
    return cls((3,), integrator="exact", **params)


def drive(steps, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, 1, 2, generator=gen) < 0.2).double()


def reference_voltages(x, weight, tau_s, tau_m, v_rest, alpha_v=1.0, alpha=False):
    """The coupled system stepped with matrix_exp; a spike's weighted input jumps I (or h)."""
    n = weight.shape[0]
    v = torch.full((n,), v_rest, dtype=torch.float64)
    cur = torch.zeros(n, dtype=torch.float64)
    rise = torch.zeros(n, dtype=torch.float64)
    out = []
    props = [precise_propagator(tau_s[k], tau_m[k], DT, alpha) for k in range(n)]
    for t in range(x.shape[0]):
        jump = weight @ x[t, 0]
        if alpha:
            rise = rise + jump
        else:
            cur = cur + jump
        for k in range(n):
            state = [v[k] - v_rest, alpha_v * cur[k]] + ([alpha_v * rise[k]] if alpha else [])
            new = props[k] @ torch.stack(state)
            v[k] = v_rest + new[0]
            cur[k] = new[1] / alpha_v
            if alpha:
                rise[k] = new[2] / alpha_v
        out.append(v.clone())
    return torch.stack(out)


@pytest.mark.parametrize("neuron_cls", [LIFNeuron, AdaptiveLIFNeuron])
def test_lif_with_exponential_synapse_is_exact(neuron_cls):
    tau_s = torch.tensor([5.0, 5.0, 20.0])
    net = Single(silent_lif(neuron_cls, alpha_v=0.7), ExponentialSynapse((3,), tau_s, DT)).double()
    torch.nn.init.uniform_(net.fc.weight, -1.0, 2.0)
    x = drive(300)
    got = []
    for t in range(x.shape[0]):
        net(x[t])
        got.append(net.post.v_cell[0].clone())
    ref = reference_voltages(
        x, net.fc.weight.detach(), tau_s.tolist(), [20.0, 5.0, 10.0], -0.3, alpha_v=0.7
    )
    assert ref.abs().max() > 0.5  # the input moves the membrane
    assert torch.allclose(torch.stack(got), ref, rtol=1e-12, atol=1e-12)


def test_lif_with_alpha_synapse_is_exact():
    tau_s = torch.tensor([5.0, 5.0, 10.0])  # includes tau_s = tau_m (5 ms) for neuron 1
    net = Single(silent_lif(), AlphaSynapse((3,), tau_s, DT)).double()
    torch.nn.init.uniform_(net.fc.weight, -1.0, 2.0)
    x = drive(300, seed=1)
    got = []
    for t in range(x.shape[0]):
        net(x[t])
        got.append(net.post.v_cell[0].clone())
    ref = reference_voltages(
        x, net.fc.weight.detach(), tau_s.tolist(), [20.0, 5.0, 10.0], -0.3, alpha=True
    )
    assert ref.abs().max() > 0.5
    assert torch.allclose(torch.stack(got), ref, rtol=1e-12, atol=1e-12)


def test_if_with_exponential_synapse_integrates_the_decaying_current():
    neuron = IFNeuron((3,), thresh=1e9, v_rest=0.0, dt=DT, integrator="exact")
    net = Single(neuron, ExponentialSynapse((3,), 5.0, DT)).double()
    torch.nn.init.ones_(net.fc.weight)
    x = torch.zeros(50, 1, 2, dtype=torch.float64)
    x[0, 0, 0] = 1.0
    for t in range(50):
        net(x[t])
    # IF: v += alpha_v J per step (alpha_v = R dt), J the mean current of the step:
    # v = (1/dt) int_0^{50 dt} e^{-s/tau} ds
    expected = 5.0 * -math.expm1(-5.0 / 5.0) / DT
    assert net.post.v_cell[0, 0].item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("offset, expected", [(-1e-9, 1), (1e-9, 0)])
def test_a_threshold_at_the_peak_of_the_exact_response(offset, expected):
    # one input spike at step 0: v after step j is w kappa((j + 1) dt); a threshold
    # 1e-9 below its largest sample fires exactly there, 1e-9 above never
    tau_s, tau_m, w = 5.0, 20.0, 10.0
    t = torch.arange(1, 401, dtype=torch.float64) * DT
    v = w * tau_s / (tau_s - tau_m) * (torch.exp(-t / tau_s) - torch.exp(-t / tau_m))
    k = int(v.argmax())
    thresh = float(v[k]) + offset
    neuron = LIFNeuron((1,), thresh=thresh, v_rest=0.0, tau_v=tau_m, dt=DT, integrator="exact")
    net = Single(neuron, ExponentialSynapse((1,), tau_s, DT), n_in=1).double()
    torch.nn.init.constant_(net.fc.weight, w)
    x = torch.zeros(400, 1, 1, dtype=torch.float64)
    x[0] = 1.0
    spikes = torch.stack([net(x[s]) for s in range(400)]).flatten()
    assert int(spikes.sum()) == expected
    if expected:
        assert int(spikes.nonzero()) == k


def test_no_coupling_when_either_side_is_not_exact():
    x = torch.tensor([[1.0, 0.5, 0.0]], dtype=torch.float64)
    lif_euler = LIFNeuron((3,), thresh=1e9, tau_v=20.0, dt=DT, integrator="euler").double()
    lif_exact = LIFNeuron((3,), thresh=1e9, tau_v=20.0, dt=DT, integrator="exact").double()
    syn = ExponentialSynapse((3,), 5.0, DT).double()
    assert torch.equal(syn(x, post=lif_euler), x)  # held by an Euler membrane
    syn.reset_state()
    coupled = syn(x, post=lif_exact)
    assert torch.allclose(coupled, x * sf.membrane_coupling(5.0, 20.0, DT), rtol=1e-15)
    assert torch.equal(syn.current, x)  # the state is the current itself
    euler_syn = ExponentialSynapse((3,), 5.0, DT, integrator="euler").double()
    assert torch.equal(euler_syn(x, post=lif_exact), x)
    assert euler_syn.coupling(lif_exact) is None
    # a standalone synapse with no known postsynaptic population returns its current
    assert torch.equal(ExponentialSynapse((3,), 5.0, DT).double()(x), x)


def test_coupling_follows_parameter_changes():
    lif = LIFNeuron((2,), thresh=1e9, tau_v=20.0, dt=DT, integrator="exact").double()
    syn = ExponentialSynapse((2,), 5.0, DT).double()
    first = syn.coupling(lif)[0].clone()
    lif.tau_v = 10.0
    assert syn.coupling(lif)[0].item() == pytest.approx(
        sf.membrane_coupling(5.0, 10.0, DT).item(), rel=1e-14
    )
    syn.tau_syn = 10.0
    assert syn.coupling(lif)[0].item() == pytest.approx(
        sf.membrane_coupling(10.0, 10.0, DT).item(), rel=1e-14
    )
    assert first.item() != syn.coupling(lif)[0].item()


@pytest.mark.filterwarnings("ignore:pysnn.*fired no spike")
def test_window_run_equals_steps_with_coupling():
    def build():
        net = Single(silent_lif(), AlphaSynapse((3,), 4.0, DT)).double()
        torch.nn.init.constant_(net.fc.weight, 0.8)
        return net

    x = drive(64, seed=3)
    a, b = build(), build()
    stepped = torch.stack([a(x[t]) for t in range(64)])
    b.run(x)
    assert torch.equal(a.post.v_cell, b.post.v_cell)
    assert stepped.shape[0] == 64


def test_held_input_current_is_exact():
    # tau_s I' = -I + x with x held over the step, and the LIF membrane fed by it
    tau_s, tau_m = 5.0, 20.0
    lif = LIFNeuron((1,), thresh=1e9, v_rest=0.0, tau_v=tau_m, dt=DT, integrator="exact").double()
    syn = ExponentialSynapse((1,), tau_s, DT, input="held").double()
    a, b = 1.0 / tau_m, 1.0 / tau_s
    # augmented system (v, I, x): x constant
    with mp.workdps(40):
        E = mp.expm(mp.matrix([[-a, a, 0.0], [0.0, -b, b], [0.0, 0.0, 0.0]]) * mp.mpf(DT))
        prop = torch.tensor(
            [[float(E[i, j]) for j in range(3)] for i in range(3)], dtype=torch.float64
        )
    state = torch.zeros(3, dtype=torch.float64)
    gen = torch.Generator().manual_seed(4)
    for _ in range(200):
        x = torch.rand(1, 1, generator=gen, dtype=torch.float64) * 3.0
        lif(syn(x, post=lif))
        state[2] = x.item()
        state = prop @ state
        assert lif.v_cell.item() == pytest.approx(state[0].item(), rel=1e-12, abs=1e-14)
        assert syn.current.item() == pytest.approx(state[1].item(), rel=1e-12, abs=1e-14)


def test_euler_synapses_hand_values():
    tau, dt = 5.0, 0.5
    a = 1.0 - dt / tau
    syn = ExponentialSynapse((1,), tau, dt, integrator="euler").double()
    outs = [
        syn(torch.tensor([[1.0 if t == 0 else 0.0]], dtype=torch.float64)).item() for t in range(5)
    ]
    assert outs == pytest.approx([a**t for t in range(5)], rel=1e-15)
    alpha = AlphaSynapse((1,), tau, dt, integrator="euler").double()
    got = [
        alpha(torch.tensor([[1.0 if t == 0 else 0.0]], dtype=torch.float64)).item()
        for t in range(4)
    ]
    # h: 1, a, a^2; I_{k} = a I_{k-1} + e dt/tau h_{k-1}
    c = math.e * dt / tau
    assert got == pytest.approx([0.0, c, a * c + c * a, a * (2 * a * c) + c * a**2], rel=1e-14)
    cond = ConductanceSynapse((1,), tau, -80.0, dt, integrator="euler").double()
    v = torch.full((1, 1), -60.0, dtype=torch.float64)
    cond(torch.ones(1, 1, dtype=torch.float64), v)
    out = cond(torch.zeros(1, 1, dtype=torch.float64), v)
    assert cond.g.item() == pytest.approx(a, rel=1e-15)
    assert out.item() == pytest.approx(a * (-80.0 + 60.0), rel=1e-15)


def test_synapse_argument_errors():
    with pytest.raises(ValueError, match="integrator"):
        ExponentialSynapse((3,), 5.0, DT, integrator="impulse")
    with pytest.raises(ValueError, match="input"):
        ExponentialSynapse((3,), 5.0, DT, input="step")
    with pytest.raises(ValueError, match="forward Euler is unstable"):
        ExponentialSynapse((3,), 0.01, DT, integrator="euler")
    syn = ExponentialSynapse((3,), 5.0, DT)
    syn(torch.ones(2, 3))
    before = syn.current.clone()
    # a different batch size would re-allocate the state: every check comes first
    with pytest.raises(ValueError, match="per-sample shape"):
        syn(torch.ones(5, 3), post=LIFNeuron((4,), dt=DT, integrator="exact"))
    with pytest.raises(TypeError, match="post"):
        syn(torch.ones(5, 3), post="lif")
    with pytest.raises(ValueError, match="dt"):
        syn(torch.ones(5, 3), post=LIFNeuron((3,), dt=0.5, integrator="exact"))
    assert torch.equal(syn.current, before)
