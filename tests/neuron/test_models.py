"""The model kit: declared parameters, AdEx neuron and exponential synapse.

AdEx is checked against an independent float64 loop written here from the
equations of Brette & Gerstner (2005), and against the fixed point of its ODE
found by bisection; the synapse against the hand-derived sum of exponentials.
"""

import inspect
import math
import warnings

import numpy as np
import pytest
import torch

from pysnn.connection import Linear
from pysnn.network import SNNNetwork
from pysnn.neuron import (
    NEURON_PARAMS,
    AdaptiveLIFNeuron,
    AdExNeuron,
    BaseNeuron,
    DecayFactor,
    FedeNeuron,
    Input,
    IzhikevichNeuron,
    LIFNeuron,
    Param,
    StateVar,
)
from pysnn.neuron.parameters import LinearODE
from pysnn.neuron.spiking import SPIKE_STATE
from pysnn.synapse import AlphaSynapse, ConductanceSynapse, ExponentialSynapse

BG = dict(  # Brette & Gerstner (2005), fig. 2
    c_m=281.0,
    g_l=30.0,
    v_rest=-70.6,
    v_t=-50.4,
    delta_t=2.0,
    a=4.0,
    b=80.5,
    tau_w=144.0,
    v_reset=-70.6,
    thresh=20.0,
)


def adex_reference(currents, dt, p):
    """Forward Euler of the AdEx ODE in float64 numpy, one neuron per column."""
    v = np.full(currents.shape[1], p["v_rest"])
    w = np.zeros_like(v)
    vs, ws, spikes = [], [], []
    for i_ext in currents:
        dv = (
            -p["g_l"] * (v - p["v_rest"])
            + p["g_l"] * p["delta_t"] * np.exp((v - p["v_t"]) / p["delta_t"])
            - w
            + i_ext
        ) / p["c_m"]
        dw = (p["a"] * (v - p["v_rest"]) - w) / p["tau_w"]
        v, w = v + dt * dv, w + dt * dw
        fired = v >= p["thresh"]
        v = np.where(fired, p["v_reset"], v)
        w = np.where(fired, w + p["b"], w)
        vs.append(v.copy())
        ws.append(w.copy())
        spikes.append(fired.copy())
    return np.array(vs), np.array(ws), np.array(spikes)


def run_adex(currents, dt, **params):
    with torch.random.fork_rng():
        neuron = AdExNeuron((currents.shape[1],), dt=dt, **params).double()
    vs, ws, spikes = [], [], []
    for i_ext in torch.as_tensor(currents):
        s, _ = neuron(i_ext.view(1, -1))
        vs.append(neuron.v_cell[0].clone())
        ws.append(neuron.w[0].clone())
        spikes.append(s[0].bool())
    return torch.stack(vs).numpy(), torch.stack(ws).numpy(), torch.stack(spikes).numpy()


def test_adex_matches_independent_euler_loop():
    rng = np.random.default_rng(3)
    steps, dt = 3000, 0.1
    # a step current per neuron (0 before 20 ms) plus noise: sub- and suprathreshold cells
    levels = np.array([0.0, 300.0, 600.0, 900.0, 1200.0])
    currents = np.where(np.arange(steps)[:, None] * dt >= 20.0, levels, 0.0)
    currents = currents + rng.normal(0.0, 50.0, currents.shape)
    got_v, got_w, got_s = run_adex(currents, dt, **BG)
    ref_v, ref_w, ref_s = adex_reference(currents, dt, BG)
    assert np.array_equal(got_s, ref_s)
    np.testing.assert_allclose(got_v, ref_v, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got_w, ref_w, rtol=1e-9, atol=1e-9)
    counts = ref_s.sum(0)
    assert counts[0] == 0 and counts[-1] > counts[2] > 0  # f-I curve rises


def test_adex_subthreshold_fixed_point():
    # I = 200 pA is below rheobase: v settles where C dv/dt = 0 with w = a (v - E_L)
    i_ext = 200.0
    p = BG

    def rhs(v):
        return (
            -(p["g_l"] + p["a"]) * (v - p["v_rest"])
            + p["g_l"] * p["delta_t"] * math.exp((v - p["v_t"]) / p["delta_t"])
            + i_ext
        )

    lo, hi = -70.6, -55.0  # rhs(lo) > 0 > rhs(hi): the stable fixed point lies between
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if rhs(mid) > 0 else (lo, mid)
    v_star = 0.5 * (lo + hi)
    steps, dt = 20000, 0.1  # 2 s, > 10 tau_w
    got_v, got_w, got_s = run_adex(np.full((steps, 1), i_ext), dt, **BG)
    assert not got_s.any()
    assert got_v[-1, 0] == pytest.approx(v_star, abs=1e-3)
    assert got_w[-1, 0] == pytest.approx(p["a"] * (v_star - p["v_rest"]), abs=1e-3)


def test_adex_spike_frequency_adaptation_and_reset():
    steps, dt = 5000, 0.1
    got_v, got_w, got_s = run_adex(np.full((steps, 1), 1000.0), dt, **BG)
    times = np.nonzero(got_s[:, 0])[0]
    isis = np.diff(times)
    assert len(times) >= 5 and isis[0] < isis[-1]  # intervals lengthen as w builds up
    k = times[0]
    assert got_v[k, 0] == BG["v_reset"]
    # w jumps by b at the spike on top of its Euler step
    v_prev, w_prev = got_v[k - 1, 0], got_w[k - 1, 0]
    w_euler = w_prev + dt * (BG["a"] * (v_prev - BG["v_rest"]) - w_prev) / BG["tau_w"]
    assert got_w[k, 0] == pytest.approx(w_euler + BG["b"], abs=1e-9)


def test_exponential_synapse_hand_values():
    tau, dt = 5.0, 0.5
    syn = ExponentialSynapse((3,), tau_syn=tau, dt=dt).double()
    lam = math.exp(-dt / tau)
    x = torch.zeros(12, 2, 3, dtype=torch.float64)
    x[0, 0, 0] = 1.0
    x[3, 0, 0] = 2.0
    x[5, 1, 2] = -0.5
    for t in range(12):
        out = syn(x[t])
        expected0 = lam**t + (2.0 * lam ** (t - 3) if t >= 3 else 0.0)
        expected1 = -0.5 * lam ** (t - 5) if t >= 5 else 0.0
        assert out[0, 0].item() == pytest.approx(expected0, rel=1e-12)
        assert out[1, 2].item() == pytest.approx(expected1, rel=1e-12)
        assert out[0, 1].item() == 0.0
    syn.reset_state()
    assert torch.all(syn.current == 0)


def test_exponential_synapse_per_neuron_tau_and_network_graph():
    tau = torch.tensor([2.0, 10.0])

    class Net(SNNNetwork):
        def __init__(self):
            super().__init__()
            self.inp = Input((1,), integrator="exact")
            self.fc = Linear(1, 2)
            self.syn = ExponentialSynapse((2,), tau_syn=tau)
            self.lif = LIFNeuron((2,), thresh=100.0, tau_v=10.0, integrator="exact")
            self.connect(self.inp, self.fc, self.lif, synapse=self.syn)

    net = Net()
    torch.nn.init.ones_(net.fc.weight)
    x = torch.zeros(6, 1, 1, dtype=torch.bool)
    x[0] = True
    net.run(x)
    lam = torch.exp(-1.0 / tau)
    assert torch.allclose(net.syn.current[0], lam**5, rtol=1e-6)
    assert net.graph[0].synapse == "ExponentialSynapse"
    assert "ExponentialSynapse" in net.summary()


def test_time_constants_are_milliseconds_and_legacy_factors_convert_once():
    default = LIFNeuron((4,))  # today's vocabulary: ms, exact
    assert default.integrator == "exact" and default.tau_v.item() == 20.0
    assert LIFNeuron((4,), tau_v=0.9).tau_v.item() == pytest.approx(0.9)  # 0.9 ms, not a factor
    # PySNN 0.1 spelling (update_type or dynamics by position): decay factors, "linear"
    legacy = LIFNeuron((4,), tau_v=0.9, tau_t=0.95, update_type="linear")
    assert legacy.integrator == "impulse" and legacy.update_type == "linear"
    assert legacy.tau_v.item() == pytest.approx(-1.0 / math.log(0.9), rel=1e-6)
    # the given factor itself drives the step: PySNN 0.1 numbers are unchanged
    assert legacy.decay("tau_v").item() == torch.tensor(0.9).item()
    positional = LIFNeuron((4,), 1.0, 0.0, 1.0, 1.0, 1.0, 0.0)  # 0.1's default factors
    assert positional.integrator == "impulse"
    assert positional.decay("tau_v").item() == torch.tensor(0.9).item()
    assert positional.decay("tau_t").item() == torch.tensor(0.95).item()
    factor = LIFNeuron((4,), tau_v=DecayFactor(0.9))  # the factor in today's vocabulary
    assert factor.integrator == "exact" and factor.decay("tau_v").item() == torch.tensor(0.9).item()
    modern = LIFNeuron((4,), tau_v=20.0, tau_t=16.8, integrator="exact")
    assert modern.tau_t.item() == torch.tensor(16.8).item()
    no_leak = LIFNeuron((4,), tau_v=DecayFactor(1.0))  # factor 1: no decay, tau = inf
    assert math.isinf(no_leak.tau_v.item()) and no_leak.decay("tau_v").item() == 1.0
    with pytest.warns(RuntimeWarning, match="tau_v = 0.02 ms.*seconds"):
        LIFNeuron((4,), tau_v=0.02)  # 20 ms given in seconds
    with pytest.raises(TypeError, match="integrator.*update_type"):
        LIFNeuron((4,), update_type="exact", integrator="exact")
    with pytest.raises(ValueError, match="integrator"):
        LIFNeuron((4,), integrator="rk4")


def test_parameters_keep_full_precision_through_double():
    built32 = AdaptiveLIFNeuron((3,), tau_v=20.0, tau_t=16.8, tau_thresh=123.4, integrator="exact")
    with torch.random.fork_rng():
        torch.set_default_dtype(torch.float64)
        try:
            built64 = AdaptiveLIFNeuron(
                (3,), tau_v=20.0, tau_t=16.8, tau_thresh=123.4, integrator="exact"
            )
        finally:
            torch.set_default_dtype(torch.float32)
    built32.double()
    for name in ("tau_t", "tau_thresh", "thresh", "alpha_thresh"):
        assert torch.equal(getattr(built32, name), getattr(built64, name)), name
    assert built32.tau_t.item() == 16.8
    x = torch.rand(20, 2, 3, dtype=torch.float64) * 0.5
    for t in range(20):
        s32, tr32 = built32(x[t])
        s64, tr64 = built64(x[t])
        assert torch.equal(s32, s64) and torch.equal(tr32, tr64)
    # an edited parameter is taken as it is
    edited = LIFNeuron((3,), tau_v=20.0, integrator="exact")
    edited.tau_v.fill_(7.0)
    assert edited.double().tau_v.item() == 7.0


def test_declared_signature_and_repr():
    parameters = inspect.signature(LIFNeuron).parameters
    names = list(parameters)
    # cells_shape, then keywords only: the parameters, the options, dt, integrator
    assert names[0] == "cells_shape"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(parameters.values())[1:])
    assert names[1:4] == ["v_rest", "v_reset", "thresh"] and names[-2:] == ["dt", "integrator"]
    assert parameters["tau_v"].default == 20.0 and parameters["integrator"].default == "exact"
    assert "update_type" not in names  # PySNN 0.1's name, translated by pysnn.compat
    assert inspect.signature(IzhikevichNeuron).parameters["dt"].default == 0.5
    text = repr(LIFNeuron((4, 5), tau_v=10.0, integrator="exact"))
    assert "(4, 5)" not in text or "integrator='exact'" in text
    assert "tau_v=10" in text and "integrator='exact'" in text
    with pytest.raises(TypeError, match="LIFNeuron"):
        LIFNeuron((4,), bogus=1.0)


def test_alpha_synapse_samples_the_alpha_kernel():
    tau, dt = 3.0, 0.25
    syn = AlphaSynapse((2,), tau_syn=tau, dt=dt).double()
    steps = 200
    x = torch.zeros(steps, 1, 2, dtype=torch.float64)
    x[0, 0, 0] = 1.0
    x[40, 0, 0] = 0.5
    x[10, 0, 1] = 2.0

    def kernel(k):
        return math.e / tau * k * dt * math.exp(-k * dt / tau) if k >= 0 else 0.0

    peak_step = None
    for t in range(steps):
        out = syn(x[t])
        assert out[0, 0].item() == pytest.approx(kernel(t) + 0.5 * kernel(t - 40), abs=1e-12)
        assert out[0, 1].item() == pytest.approx(2.0 * kernel(t - 10), abs=1e-12)
        if t < 40 and out[0, 0].item() == pytest.approx(1.0, abs=1e-12):
            peak_step = t
    assert peak_step == int(tau / dt)  # peak 1 at t = tau


def test_conductance_synapses_drive_a_lif_like_an_independent_loop():
    dt, tau_m, v_rest = 0.1, 20.0, -60.0
    exc = ConductanceSynapse((3,), tau_syn=5.0, e_rev=0.0, dt=dt).double()
    inh = ConductanceSynapse((3,), 10.0, -80.0, dt).double()  # positional order
    lif = LIFNeuron(
        (3,),
        thresh=-50.0,
        v_rest=v_rest,
        dt=dt,
        duration_refrac=0.0,
        tau_v=tau_m,
        tau_t=20.0,
        integrator="exact",
    ).double()
    gen = torch.Generator().manual_seed(4)
    steps = 3000
    x_e = (torch.rand(steps, 2, 3, generator=gen) < 0.05).double() * 0.2
    x_i = (torch.rand(steps, 2, 3, generator=gen) < 0.05).double() * 0.05
    v = torch.full((2, 3), v_rest, dtype=torch.float64)
    g_e = torch.zeros(2, 3, dtype=torch.float64)
    g_i = torch.zeros(2, 3, dtype=torch.float64)
    lam_e, lam_i, gain = math.exp(-dt / 5.0), math.exp(-dt / 10.0), 1 - math.exp(-dt / tau_m)
    n_spikes = 0
    lif.reset_state(2)  # the voltage is read before the neuron's first step
    for t in range(steps):
        v_start = lif.v_cell
        spikes, _ = lif([exc(x_e[t], v_start), inh(x_i[t], v_start)])
        g_e = g_e * lam_e + x_e[t]
        g_i = g_i * lam_i + x_i[t]
        current = g_e * (0.0 - v) + g_i * (-80.0 - v)
        v = v + (v_rest + current - v) * gain
        fired = v >= -50.0
        v = torch.where(fired, torch.full_like(v, v_rest), v)
        assert torch.equal(spikes.bool(), fired)
        n_spikes += int(fired.sum())
    torch.testing.assert_close(lif.v_cell, v, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(exc.g, g_e, rtol=1e-12, atol=1e-12)
    assert n_spikes > 10
    with pytest.raises(ValueError, match=r"\bv\b"):
        exc(x_e[0], torch.zeros(2, 4, dtype=torch.float64))


def _izhikevich_spike_times(name, current=10.0, dt=0.25, duration=300.0):
    with torch.random.fork_rng():
        neuron = IzhikevichNeuron.preset(name, (1,), dt=dt).double()
    times = []
    for k in range(int(duration / dt)):
        spikes, _ = neuron(torch.full((1, 1), current, dtype=torch.float64))
        if spikes.item():
            times.append(k * dt)
    return np.array(times)


def test_izhikevich_presets_fire_like_the_published_classes():
    # step current I = 10 for 300 ms, as in Izhikevich (2003), fig. 2
    rs = np.diff(_izhikevich_spike_times("RS"))
    assert 4 <= len(rs) + 1 <= 10 and rs.min() > 10.0  # tonic, no bursts
    assert rs[0] < 0.7 * rs[-1]  # spike-frequency adaptation
    ib = np.diff(_izhikevich_spike_times("IB"))
    assert ib[0] < 6.0 and np.all(ib[1:] > 20.0)  # an initial burst, then tonic spikes
    ch = np.diff(_izhikevich_spike_times("CH"))
    assert np.sum(ch > 20.0) >= 3 and np.mean(ch < 6.0) > 0.6  # repeated fast bursts
    fs = np.diff(_izhikevich_spike_times("FS"))
    assert len(fs) + 1 >= 30 and fs[-1] < 1.3 * fs[1]  # > 100 Hz, hardly adapting
    lts = np.diff(_izhikevich_spike_times("LTS"))
    assert len(lts) + 1 >= 15 and lts[0] < 5.0 and lts[-1] > 2.0 * lts[0]
    with pytest.raises(ValueError, match="name"):
        IzhikevichNeuron.preset("XX", (1,))


def test_forward_euler_stability_is_checked_at_construction():
    with pytest.raises(ValueError, match=r"unstable with dt/tau_v = 2.5"):
        LIFNeuron((3,), dt=1.0, tau_v=0.4, tau_t=5.0, integrator="euler")
    with pytest.warns(RuntimeWarning, match=r"oscillates with dt/tau_t = 1.25"):
        Input((3,), dt=1.0, tau_t=0.8, integrator="euler")
    with pytest.raises(ValueError, match="tau_v"):
        FedeNeuron((3,), dt=1.0, tau_v=0.3)
    # exact integration has no stability limit
    LIFNeuron((3,), dt=1.0, tau_v=0.4, tau_t=0.4, integrator="exact")


def test_adex_euler_stability_covers_the_membrane_and_adaptation():
    # AdEx integrates v and w with forward Euler whatever the trace does:
    # tau_m = C / g_L = 10 pF / 10 nS = 1 ms, dt = 2.5 ms -> unstable
    with pytest.raises(ValueError, match=r"unstable with dt/c_m/g_l = 2.5"):
        AdExNeuron((2,), dt=2.5, c_m=10.0, g_l=10.0)
    with pytest.warns(RuntimeWarning, match=r"dt/tau_w = 1.5"):
        AdExNeuron((2,), dt=1.5, tau_w=1.0)
    adex = AdExNeuron((2,), dt=0.1)  # the published cell: tau_m = 281 / 30 = 9.4 ms
    with pytest.raises(ValueError, match=r"dt/c_m/g_l"):
        adex.g_l = 10000.0  # tau_m = 0.0281 ms, dt/tau_m = 3.6
    assert adex.g_l.item() == 30.0  # refused before anything changed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adex.a = 2.0  # not a time constant: no check, no warning
    assert adex.a.item() == 2.0


def test_v_reset_defaults_to_v_rest_and_old_checkpoints_load():
    lif = LIFNeuron((2,), thresh=-45.0, v_rest=-49.0, v_reset=-60.0, tau_v=20.0, integrator="exact")
    assert inspect.signature(LIFNeuron).parameters["v_reset"].kind is inspect.Parameter.KEYWORD_ONLY
    spikes, _ = lif(torch.tensor([[100.0, 0.0]]))  # the first neuron crosses -45 mV
    assert spikes.tolist() == [[1.0, 0.0]]
    assert lif.v_cell[0, 0].item() == -60.0  # reset below rest
    plain = LIFNeuron((2,), v_rest=-65.0)
    assert plain.v_reset.item() == -65.0
    old = {k: v for k, v in plain.state_dict().items() if k != "v_reset"}  # before v_reset
    fresh = LIFNeuron((2,), v_rest=-65.0)
    fresh.load_state_dict(old)  # strict: a parameter newer than the checkpoint keeps its value
    assert fresh.v_reset.item() == -65.0
    with pytest.raises(RuntimeError, match="v_cell"):
        fresh.load_state_dict({k: v for k, v in old.items() if k != "v_cell"})


def test_a_model_written_from_the_docs_cannot_skip_the_refractory_gate():
    """The quadratic IF of pysnn.neuron's docstring integrates nothing while refractory."""

    class QuadraticIF(BaseNeuron):  # as in the docs: the model's update, no gating
        params = NEURON_PARAMS + (Param("v_c", 0.5, doc="critical voltage"),)

        def integrate(self, state, x):
            v = state["v_cell"]
            dv = (v - state["v_rest"]) * (v - state["v_c"]) + state["alpha_v"] * x
            return {"v_cell": v + self.dt * dv}

    qif = QuadraticIF((1,), thresh=1.0, duration_refrac=3.0, dt=0.1).double()
    drive = torch.full((1, 1), 5.0, dtype=torch.float64)
    spiked_at = next(step for step in range(1, 50) if qif(drive)[0].item() == 1.0)
    assert spiked_at == 2 and float(qif.v_cell) == 0.0  # v = 0.5, then 1.0: spiked and reset
    # refractory for 3 ms = 30 steps at dt 0.1: the voltage is held, whatever integrate() says
    for _ in range(30):
        qif(drive)
        assert float(qif.v_cell) == 0.0
    qif(drive)  # free again: it integrates the drive
    assert float(qif.v_cell) == pytest.approx(0.1 * (0.0 * -0.5 + 5.0))


def test_a_linear_model_is_its_declaration():
    """A LIF declared by its ODE alone equals LIFNeuron under every integrator."""

    class DeclaredLIF(BaseNeuron):
        params = NEURON_PARAMS + (Param("tau_v", 20.0, "time", doc="membrane time constant"),)
        state_vars = (
            StateVar(
                "v_cell", "v_rest", refractory="hold", ode=LinearODE("tau_v", "v_rest", "alpha_v")
            ),
        ) + SPIKE_STATE

    x = torch.rand(40, 3, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2
    for integrator in ("exact", "euler", "impulse"):
        a = DeclaredLIF((5,), duration_refrac=2.0, tau_v=8.0, integrator=integrator).double()
        b = LIFNeuron((5,), duration_refrac=2.0, tau_v=8.0, integrator=integrator).double()
        fired = 0.0
        for xt in x:
            assert torch.equal(a(xt)[0], b(xt)[0])
            fired += float(b.spikes.sum())
        assert torch.equal(a.v_cell, b.v_cell) and fired > 0
