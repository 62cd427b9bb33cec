"""Gradient training: surrogate spikes, differentiable runs, TBPTT, checkpointing, hybrid runs.

Gradients are checked in float64 against central finite differences of the
*surrogate-smoothed* model (``Surrogate(..., smooth=True)``: the spike is the
smooth step whose derivative the surrogate is, so the network is a smooth
function of its parameters), and against a single neuron derived by hand.
"""

import copy
import math

import pytest
import torch

from pysnn import functional as sf
from pysnn.connection import AvgPool2d, Conv2d, Linear, MaxPool2d, Recurrent, Sparse
from pysnn.functional import Surrogate
from pysnn.learning import STDP
from pysnn.network import SNNNetwork
from pysnn.neuron import (
    AdaptiveLIFNeuron,
    AdExNeuron,
    IFNeuron,
    Input,
    IzhikevichNeuron,
    LeakyIntegrator,
    LIFNeuron,
)
from pysnn.neuron.parameters import DecayFactor
from pysnn.synapse import AlphaSynapse, ConductanceSynapse, ExponentialSynapse

SMOOTH = Surrogate("arctan", 2.0, smooth=True)


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


# -- the surrogates ------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(sf.SURROGATES))
def test_surrogate_derivative_is_the_derivative_of_its_primitive(kind):
    surrogate = Surrogate(kind, 3.0)
    u = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(surrogate.primitive(u).sum(), u)
    assert torch.allclose(grad, surrogate.derivative(u.detach()), atol=1e-12)


@pytest.mark.parametrize("kind", sorted(sf.SURROGATES))
def test_surrogate_derivative_in_place_overwrites_its_argument(kind):
    surrogate = Surrogate(kind, 3.0)
    u = torch.linspace(-2, 2, 41, dtype=torch.float64)
    expected = surrogate.derivative(u)
    assert torch.equal(u, torch.linspace(-2, 2, 41, dtype=torch.float64))  # left alone
    out = surrogate.derivative_(u)
    assert out.data_ptr() == u.data_ptr()
    assert torch.equal(u, expected)


def test_surrogate_values_at_the_threshold():
    zero = torch.zeros(1, dtype=torch.float64)
    assert float(Surrogate("fast_sigmoid", 10.0).derivative(zero)) == 5.0  # beta / 2
    assert float(Surrogate("superspike", 10.0).derivative(zero)) == 1.0
    assert float(Surrogate("arctan", 2.0).derivative(zero)) == 1.0  # alpha / 2
    # fast sigmoid at u = 0.1, beta = 10: 10 / (2 * (1 + 1)^2) = 1.25
    assert math.isclose(
        float(Surrogate("fast_sigmoid", 10.0).derivative(torch.tensor([0.1]))), 1.25
    )


def test_spike_is_heaviside_forward_and_surrogate_backward():
    u = torch.tensor([-0.5, 0.0, 0.25], dtype=torch.float64, requires_grad=True)
    surrogate = Surrogate("superspike", 4.0)
    s = sf.spike(u, surrogate)
    assert s.tolist() == [0.0, 1.0, 1.0]
    (grad,) = torch.autograd.grad(s.sum(), u)
    assert torch.allclose(grad, 1 / (1 + 4 * u.detach().abs()) ** 2)


@pytest.mark.parametrize(
    "value, error",
    [
        ("tanh", ValueError),
        (("arctan", -1.0), ValueError),
        (3, TypeError),
        (("arctan", "x"), TypeError),
    ],
)
def test_as_surrogate_rejects(value, error):
    with pytest.raises(error, match="surrogate"):
        sf.as_surrogate(value)


def test_neuron_surrogate_option():
    lif = LIFNeuron((3,), surrogate=("arctan", 3.0))
    assert lif.surrogate == Surrogate("arctan", 3.0)
    lif.surrogate = "superspike"
    assert lif.surrogate.kind == "superspike" and lif.surrogate.slope == 10.0
    with pytest.raises(ValueError, match="surrogate"):
        LIFNeuron((3,), surrogate="step")


# -- a single neuron by hand ------------------------------------------------------------
def _single(reset, detach, w=0.6):
    net = SNNNetwork()
    inp, fc = Input((1,)), Linear(1, 1)
    lif = LIFNeuron(
        (1,),
        thresh=1.0,
        tau_v=DecayFactor(0.5),
        integrator="impulse",
        reset=reset,
        detach_reset=detach,
        surrogate=("fast_sigmoid", 10.0),
    )
    net.connect(inp, fc, lif)
    with torch.no_grad():
        fc.weight.fill_(w)
    fc.weight.requires_grad_(True)
    return net, fc


def _sg(u):  # fast sigmoid, beta = 10
    return 10 / (2 * (1 + 10 * abs(u)) ** 2)


@pytest.mark.parametrize("strategy", ["step", "window"])
def test_single_neuron_gradient_by_hand_detached_reset(float64, strategy):
    """v_t = 0.5 v_{t-1} (1 - s_{t-1}) + w; s_t = H(v_t - 1); L = sum_t s_t; w = 0.6.

    v = 0.6, 0.9, 1.05 (spike), 0.6; with the reset detached
    dv_t/dw = 0.5 (1 - s_{t-1}) dv_{t-1}/dw + 1 = 1, 1.5, 1.75, 1.
    """
    net, fc = _single("rest", True)
    out = net.run(torch.ones(4, 1, 1), strategy=strategy, warn_silent=False)
    assert out.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]
    out.sum().backward()
    expected = _sg(-0.4) * 1 + _sg(-0.1) * 1.5 + _sg(0.05) * 1.75 + _sg(-0.4) * 1
    assert math.isclose(float(fc.weight.grad), expected, rel_tol=1e-12)


@pytest.mark.parametrize("strategy", ["step", "window"])
def test_single_neuron_gradient_by_hand_reset_by_subtraction(float64, strategy):
    """Reset by subtraction with its gradient: v'_t = v_t - s_t, so
    dv'_t/dw = dv_t/dw (1 - sigma'(v_t - 1)) and v_{t+1} = 0.5 v'_t + w.
    """
    net, fc = _single("subtract", False)
    out = net.run(torch.ones(4, 1, 1), strategy=strategy, warn_silent=False)
    v, dv, grad = 0.0, 0.0, 0.0
    for _ in range(4):
        v, dv = 0.5 * v + 0.6, 0.5 * dv + 1.0
        s = 1.0 if v >= 1.0 else 0.0
        grad += _sg(v - 1) * dv
        v, dv = v - s, dv * (1 - _sg(v - 1))
    out.sum().backward()
    assert math.isclose(float(fc.weight.grad), grad, rel_tol=1e-12)


# -- finite differences of the surrogate-smoothed model ------------------------------------
def _finite_difference_check(net, params, x, strategy, eps=1e-6, entries=6, seed=0):
    """Surrogate gradient of sum_t t*out_t vs central differences, for a few entries of each parameter."""
    weights = torch.linspace(0, 1, x.shape[0]).view(-1, *([1] * (x.dim() - 1)))

    def loss():
        out = net.run(x, strategy=strategy, warn_silent=False)
        return (out * weights.view(-1, *([1] * (out.dim() - 1)))).sum()

    grads = torch.autograd.grad(loss(), params)
    gen = torch.Generator().manual_seed(seed)
    for param, grad in zip(params, grads):
        picks = torch.randperm(param.numel(), generator=gen)[:entries]
        for flat in picks.tolist():
            index = torch.unravel_index(torch.tensor(flat), param.shape)
            values = []
            for sign in (1, -1):
                with torch.no_grad():
                    param[index] += sign * eps
                    values.append(float(loss()))
                    param[index] -= sign * eps
            numeric = (values[0] - values[1]) / (2 * eps)
            assert math.isclose(
                float(grad[index]), numeric, rel_tol=1e-5, abs_tol=1e-7
            ), f"entry {flat}: surrogate gradient {float(grad[index])} vs {numeric}"


def _smooth_lif(shape, **kw):
    kw.setdefault("thresh", 0.3)
    kw.setdefault("tau_v", 5.0)
    return LIFNeuron(shape, surrogate=SMOOTH, **kw)


@pytest.mark.parametrize("strategy", ["step", "window"])
@pytest.mark.parametrize("delay", ["none", "scalar", "per_synapse"])
@pytest.mark.parametrize("reset", ["rest", "subtract"])
def test_linear_gradients_match_finite_differences(float64, strategy, delay, reset):
    torch.manual_seed(1)
    delays = {"none": 0, "scalar": 2, "per_synapse": torch.randint(0, 3, (4, 6)).double()}
    net = SNNNetwork()
    fc = Linear(6, 4, delay=delays[delay])
    lif = _smooth_lif((4,), reset=reset, integrator="exact", duration_refrac=1.0)
    net.connect(Input((6,)), fc, lif)
    with torch.no_grad():
        fc.weight.mul_(3)
    fc.weight.requires_grad_(True)
    lif.make_trainable("tau_v", "thresh", per_neuron=True)
    x = (torch.rand(12, 3, 6) < 0.4).double()
    _finite_difference_check(net, [fc.weight, lif.tau_v, lif.thresh], x, strategy)


@pytest.mark.parametrize("trace_mode", ["additive", "saturating"])
@pytest.mark.parametrize("strategy", ["step", "window"])
def test_every_neuron_parameter_and_the_trace_match_finite_differences(
    float64, trace_mode, strategy
):
    """The window of a linear population is one autograd node (pysnn.neuron.bptt): its
    parameters' and trace's gradients against finite differences, as the step loop's."""
    torch.manual_seed(7)
    net = SNNNetwork()
    fc = Linear(6, 4, delay=1)
    lif = _smooth_lif(
        (4,), integrator="impulse", trace_mode=trace_mode, duration_refrac=1.0, reset="subtract"
    )
    net.connect(Input((6,)), fc, lif)
    with torch.no_grad():
        fc.weight.mul_(3)
    fc.weight.requires_grad_(True)
    names = ("tau_v", "thresh", "v_rest", "v_reset", "alpha_v", "alpha_t", "tau_t")
    lif.make_trainable(*names, per_neuron=True)
    params = [fc.weight] + [getattr(lif, name) for name in names]
    x = (torch.rand(12, 3, 6) < 0.4).double()
    weights = torch.linspace(0, 1, 12).view(12, 1, 1)

    def loss():
        out = net.run(x, strategy=strategy, warn_silent=False)
        return (out * weights).sum() + (lif.trace * lif.v_cell).sum()

    with torch.no_grad():
        net.run(x, strategy=strategy, warn_silent=False)
    if strategy == "window":  # one node for the population's window
        out = net.run(x, strategy=strategy, warn_silent=False)
        assert type(out.grad_fn).__name__ == "SpikingWindowBackward"
    grads = torch.autograd.grad(loss(), params)
    for param, grad in zip(params, grads):
        for flat in range(0, param.numel(), 3):
            index = torch.unravel_index(torch.tensor(flat), param.shape)
            values = []
            for sign in (1, -1):
                with torch.no_grad():
                    param[index] += sign * 1e-6
                    values.append(float(loss()))
                    param[index] -= sign * 1e-6
            numeric = (values[0] - values[1]) / 2e-6
            assert math.isclose(float(grad[index]), numeric, rel_tol=1e-5, abs_tol=1e-7)


@pytest.mark.parametrize("strategy", ["step", "window"])
def test_adaptive_threshold_matches_finite_differences_and_runs_again(float64, strategy):
    """The adaptive threshold (shared state kept across samples) is differentiable in
    its parameters; a new run starts a new graph from its current value."""
    torch.manual_seed(5)
    net = SNNNetwork()
    lif = AdaptiveLIFNeuron(
        (4,), surrogate=SMOOTH, thresh=0.3, tau_v=5.0, alpha_thresh=0.2, tau_thresh=10.0
    )
    fc = Linear(6, 4)
    net.connect(Input((6,)), fc, lif)
    with torch.no_grad():
        fc.weight.mul_(3)
    fc.weight.requires_grad_(True)
    lif.make_trainable("alpha_thresh", "tau_thresh", per_neuron=True)
    x = (torch.rand(12, 3, 6) < 0.4).double()
    run = net.run

    def run_fresh(*args, **kwargs):  # every loss() starts from the base threshold
        lif.reset_thresh()
        return run(*args, **kwargs)

    net.run = run_fresh
    _finite_difference_check(net, [fc.weight, lif.alpha_thresh, lif.tau_thresh], x, strategy)
    for _ in range(2):  # the threshold carried over from a run whose graph was freed
        run(x, strategy=strategy, warn_silent=False).sum().backward()


@pytest.mark.parametrize("model", ["adex", "izhikevich"])
def test_adex_and_izhikevich_match_finite_differences(float64, model):
    torch.manual_seed(6)
    neuron = (AdExNeuron if model == "adex" else IzhikevichNeuron)((4,), surrogate=SMOOTH)
    net = SNNNetwork()
    fc = Linear(6, 4, dt=neuron.dt)
    net.connect(Input((6,), dt=neuron.dt), fc, neuron)
    with torch.no_grad():
        fc.weight.mul_(3)
    fc.weight.requires_grad_(True)
    x = (torch.rand(12, 3, 6) < 0.4).double()
    _finite_difference_check(net, [fc.weight], x, "window")


@pytest.mark.parametrize("integrator", ["euler", "impulse"])
def test_integrators_and_if_neurons_match_finite_differences(float64, integrator):
    torch.manual_seed(2)
    net = SNNNetwork()
    inp, fc1, fc2 = Input((5,)), Linear(5, 4), Linear(4, 3)
    lif = _smooth_lif((4,), integrator=integrator, tau_v=4.0)
    if_ = IFNeuron((3,), thresh=0.5, surrogate=SMOOTH)
    net.connect(inp, fc1, lif)
    net.connect(lif, fc2, if_)
    for fc in (fc1, fc2):
        with torch.no_grad():
            fc.weight.mul_(2)
        fc.weight.requires_grad_(True)
    x = (torch.rand(10, 2, 5) < 0.5).double()
    _finite_difference_check(net, [fc1.weight, fc2.weight], x, "step")


def test_conv_pooling_and_synapse_match_finite_differences(float64):
    torch.manual_seed(3)
    net = SNNNetwork()
    inp = Input((1, 6, 6))
    conv = Conv2d(1, 2, 3, padding=1, delay=1)
    lif = _smooth_lif((2, 6, 6))
    pool = AvgPool2d(2)
    lif2 = _smooth_lif((2, 3, 3), thresh=0.1)
    conv2 = Conv2d(2, 2, 3, delay=torch.randint(0, 2, (2, 2, 3, 3)).double())
    lif3 = _smooth_lif((2, 1, 1), thresh=0.1)
    net.connect(inp, conv, lif, synapse=ExponentialSynapse((2, 6, 6), tau_syn=3.0))
    net.connect(lif, pool, lif2)
    net.connect(lif2, conv2, lif3)
    for c in (conv, conv2):
        with torch.no_grad():
            c.weight.mul_(3)
        c.weight.requires_grad_(True)
    x = (torch.rand(8, 2, 1, 6, 6) < 0.4).double()
    _finite_difference_check(net, [conv.weight, conv2.weight], x, "window", entries=4)


@pytest.mark.parametrize("strategy", ["step", "window"])
@pytest.mark.parametrize("synapse", ["alpha", "conductance"])
def test_alpha_and_conductance_synapses_match_finite_differences(float64, synapse, strategy):
    torch.manual_seed(5)
    net = SNNNetwork()
    fc = Linear(6, 4)
    model = AlphaSynapse((4,), tau_syn=3.0) if synapse == "alpha" else ConductanceSynapse((4,))
    net.connect(Input((6,)), fc, _smooth_lif((4,)), synapse=model)
    with torch.no_grad():
        fc.weight.mul_(3)
    fc.weight.requires_grad_(True)
    x = (torch.rand(12, 3, 6) < 0.4).double()
    _finite_difference_check(net, [fc.weight], x, strategy)


def test_max_pooling_passes_the_winners_gradient(float64):
    torch.manual_seed(4)
    net = SNNNetwork()
    inp, conv = Input((1, 4, 4)), Conv2d(1, 1, 1)  # max pooling takes binary spikes
    lif, lif2 = LIFNeuron((1, 4, 4), thresh=0.3), LIFNeuron((1, 2, 2), thresh=0.2)
    net.connect(inp, conv, lif)
    net.connect(lif, MaxPool2d(2), lif2)
    conv.weight.requires_grad_(True)
    x = (torch.rand(6, 2, 1, 4, 4) < 0.5).double()
    out = net.run(x, warn_silent=False)
    (grad,) = torch.autograd.grad(out.sum(), conv.weight)
    assert torch.isfinite(grad).all() and float(grad.abs().sum()) > 0


@pytest.mark.parametrize("delay", [0, 2, "per_synapse"])
def test_recurrent_and_sparse_match_finite_differences(float64, delay):
    torch.manual_seed(5)
    per = delay == "per_synapse"
    net = SNNNetwork()
    inp = Input((5,))
    sparse = Sparse.fixed_probability(
        5, 4, p=0.6, seed=0, weight=0.8, delay=1, **({} if not per else {})
    )
    if per:
        sparse = Sparse(
            5,
            4,
            (sparse.post_index, sparse.pre_index),
            weight=0.8,
            delay=torch.randint(0, 3, (sparse.n_synapses,)).double(),
        )
    lif = _smooth_lif((4,), thresh=0.4)
    rec = Recurrent(4, delay=max(1, delay) if not per else torch.randint(1, 3, (4, 4)).double())
    net.connect(inp, sparse, lif)
    net.connect(lif, rec, lif)
    sparse.weight.requires_grad_(True)
    rec.weight.requires_grad_(True)
    x = (torch.rand(10, 2, 5) < 0.5).double()
    _finite_difference_check(net, [sparse.weight, rec.weight], x, "step", entries=5)


# -- the strategies and the gradient-free path ---------------------------------------------
def _net(seed=0, delay=1, **lif_kw):
    torch.manual_seed(seed)
    net = SNNNetwork()
    inp, fc = Input((8,)), Linear(8, 6, delay=delay)
    lif = LIFNeuron((6,), thresh=0.4, **lif_kw)
    readout = LeakyIntegrator((3,), tau_v=10.0)
    fc2 = Linear(6, 3)
    net.connect(inp, fc, lif)
    net.connect(lif, fc2, readout)
    with torch.no_grad():
        fc.weight.mul_(2)
    return net, fc, fc2, lif


def test_window_and_step_give_the_same_spikes_and_gradients(float64):
    x = (torch.rand(40, 3, 8) < 0.3).double()
    grads = []
    for strategy in ("step", "window"):
        net, fc, fc2, lif = _net(duration_refrac=2.0)
        fc.weight.requires_grad_(True)
        fc2.weight.requires_grad_(True)
        out = net.run(x, strategy=strategy, warn_silent=False)
        grads.append(
            (out.detach(), *torch.autograd.grad(out.square().sum(), [fc.weight, fc2.weight]))
        )
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_gradient_free_runs_are_unchanged(float64):
    x = (torch.rand(30, 2, 8) < 0.3).double()
    net, fc, *_ = _net()
    plain = net.run(x, warn_silent=False)
    assert not plain.requires_grad  # nothing requires a gradient: torch.no_grad
    fc.weight.requires_grad_(True)
    recorded = net.run(x, warn_silent=False)
    assert recorded.requires_grad and torch.equal(recorded.detach(), plain)
    with torch.no_grad():
        assert not net.run(x, warn_silent=False).requires_grad


def test_compiled_strategy_refuses_a_differentiable_run():
    net, fc, *_ = _net()
    fc.weight.requires_grad_(True)
    net.compile(backend="aot_eager")
    x = (torch.rand(5, 1, 8) < 0.3).float()
    with pytest.raises(ValueError, match="compiled chunks simulate without gradients"):
        net.run(x, strategy="compiled")
    assert net.run(x, warn_silent=False).requires_grad  # the automatic choice skips them


def test_input_gradient():
    net, *_ = _net()
    x = (torch.rand(10, 2, 8) < 0.4).float().requires_grad_(True)  # 0/1 spikes
    net.run(x, warn_silent=False).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape and bool(x.grad.abs().sum() > 0)


def test_trainable_parameters_are_parameters_and_survive_conversions(float64):
    lif = LIFNeuron((4,), tau_v=10.0, thresh=0.5).make_trainable("tau_v", "thresh")
    assert set(lif.trainable_names) == {"tau_v", "thresh"}
    names = {name for name, _ in lif.named_parameters()}
    assert names == {"tau_v", "thresh"}
    param = lif.tau_v
    lif.float()
    assert lif.tau_v is param and lif._buffers["tau_v"] is param and param.dtype == torch.float32
    lif.tau_v = 12.0  # set_parameter: the same parameter takes the value
    assert lif.tau_v is param and float(param.detach()) == 12.0
    clone = copy.deepcopy(lif)
    assert clone._buffers["tau_v"] is clone._parameters["tau_v"]
    state = lif.state_dict()
    fresh = LIFNeuron((4,)).make_trainable("tau_v", "thresh")
    fresh.load_state_dict(state)
    assert float(fresh.tau_v.detach()) == 12.0 and float(fresh.thresh.detach()) == 0.5
    with pytest.raises(ValueError, match="make_trainable"):
        lif.make_trainable("tau_x")


def test_trainable_time_constant_is_trained_by_an_optimizer(float64):
    net, fc, fc2, lif = _net()
    lif.make_trainable("tau_v")
    opt = torch.optim.SGD(lif.parameters(), lr=1.0)
    x = (torch.rand(20, 2, 8) < 0.3).double()
    before = float(lif.tau_v.detach())
    loss = net.run(x, warn_silent=False).sum()
    loss.backward()
    opt.step()
    assert float(lif.tau_v.detach()) == pytest.approx(before - float(lif.tau_v.grad))
    with torch.no_grad():  # the cached decay factor follows the new value
        assert torch.allclose(lif.decay("tau_v"), torch.exp(-1.0 / lif.tau_v))


def test_leaky_integrator_by_hand(float64):
    readout = LeakyIntegrator((1,), tau_v=DecayFactor(0.5), integrator="impulse", alpha_v=2.0)
    values = [float(readout(torch.ones(1, 1))[0]) for _ in range(3)]
    assert values == [2.0, 3.0, 3.5]  # v <- 0.5 v + 2


# -- truncated BPTT and checkpointing --------------------------------------------------------
def test_detach_state_truncates_the_gradient(float64):
    x = (torch.rand(30, 2, 8) < 0.3).double()
    net, fc, *_ = _net(delay=2)
    fc.weight.requires_grad_(True)
    net.run(x[:15], warn_silent=False)
    net.detach_state()
    assert all(
        not buf.requires_grad for m in net.modules() for buf in m.buffers() if buf is not fc.weight
    )
    second = net.run(x[15:], reset=False, warn_silent=False)
    (truncated,) = torch.autograd.grad(second.sum(), fc.weight)
    # the same part run from the same state, given as constants
    full, *_ = _net(delay=2)
    fc_full = full.layers["layer0"].connection
    fc_full.weight.requires_grad_(True)
    first = full.run(x[:15], warn_silent=False)
    rest = full.run(x[15:], reset=False, warn_silent=False)
    (whole,) = torch.autograd.grad(rest.sum(), fc_full.weight)
    assert torch.equal(rest.detach(), second.detach())
    assert not torch.allclose(whole, truncated)  # the whole history contributes more
    assert first.requires_grad
    # truncated: the gradient of the second part from the state as constants
    ref, *_ = _net(delay=2)
    fc_ref = ref.layers["layer0"].connection
    fc_ref.weight.requires_grad_(True)
    with torch.no_grad():
        ref.run(x[:15], warn_silent=False)
    part = ref.run(x[15:], reset=False, warn_silent=False)
    (expected,) = torch.autograd.grad(part.sum(), fc_ref.weight)
    assert torch.allclose(truncated, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("strategy", ["step", "window"])
def test_checkpointed_run_gives_the_same_gradients_with_less_saved(float64, strategy):
    x = (torch.rand(48, 2, 8) < 0.3).double()
    results = []
    for checkpoint in (None, 8):
        net, fc, fc2, lif = _net(delay=2, duration_refrac=1.0)
        fc.weight.requires_grad_(True)
        lif.make_trainable("thresh")
        saved = [0]

        def pack(tensor, saved=saved):
            saved[0] += tensor.numel()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = net.run(x, strategy=strategy, checkpoint=checkpoint, warn_silent=False)
        grads = torch.autograd.grad(out.square().sum(), [fc.weight, lif.thresh])
        results.append((out.detach(), grads, saved[0], lif.v_cell.detach().clone()))
    (out_a, grads_a, saved_a, v_a), (out_b, grads_b, saved_b, v_b) = results
    assert torch.equal(out_a, out_b) and torch.equal(v_a, v_b)
    for a, b in zip(grads_a, grads_b):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-14)
    assert saved_b < saved_a / 3


def test_checkpoint_refuses_rules():
    net, fc, *_ = _net()
    with pytest.raises(ValueError, match="checkpoint"):
        net.run(torch.zeros(4, 1, 8), checkpoint=0)
    rule = STDP(net.layers, lr=1e-3)
    with pytest.raises(ValueError, match="learning rules"):
        net.run(torch.zeros(4, 1, 8), checkpoint=2, rules=rule)


# -- hybrid: rules and gradients in one run --------------------------------------------------
def test_rules_and_gradients_in_one_run(float64):
    torch.manual_seed(6)
    net = SNNNetwork()
    inp, fc1, hidden = Input((8,)), Linear(8, 6), LIFNeuron((6,), thresh=0.3)
    fc2, out = Linear(6, 4), LIFNeuron((4,), thresh=0.3)
    net.connect(inp, fc1, hidden)
    net.connect(hidden, fc2, out)
    with torch.no_grad():
        fc1.weight.uniform_(0.0, 1.0)
        fc2.weight.uniform_(0.0, 1.0)
    reference = copy.deepcopy(net)
    rule = STDP([net.layers["layer1"]], lr=0.05, w_min=0.0, w_max=1.0)
    fc1.weight.requires_grad_(True)  # gradient-trained, before the rule-owned layer
    x = (torch.rand(30, 2, 8) < 0.3).double()
    used = [fc2.weight.detach().clone()]  # the weights of fc2 that each step used

    def record(t, _):
        used.append(fc2.weight.detach().clone())

    spikes = net.run(x, rules=rule, callback=record, warn_silent=False)
    spikes.sum().backward()  # flows through the rule-owned fc2 (saved as per-step copies)
    assert not torch.equal(fc2.weight.detach(), used[0])  # the rule learned
    assert fc2.weight.grad is None  # not asked for
    assert fc1.weight.grad is not None and float(fc1.weight.grad.abs().sum()) > 0
    # the gradient is that of the weights each step used: the same steps by hand,
    # with fc2 replaced by that step's weights
    ref_fc1, ref_fc2 = reference.layers["layer0"].connection, reference.layers["layer1"].connection
    ref_fc1.weight.requires_grad_(True)
    reference.reset_state()
    outputs = []
    for t in range(x.shape[0]):
        ref_fc2.weight = torch.nn.Parameter(used[t].clone(), requires_grad=False)
        outputs.append(reference(x[t].clone()))
    assert torch.equal(torch.stack(outputs), spikes.detach())
    torch.stack(outputs).sum().backward()
    assert torch.allclose(ref_fc1.weight.grad, fc1.weight.grad, rtol=1e-12, atol=1e-12)


# -- learnable delays on a recurrent connection ------------------------------------------------
@pytest.mark.parametrize("strategy", ["step", "window"])
@pytest.mark.parametrize("zero_diagonal", [True, False])
def test_recurrent_learned_delays_match_finite_differences(float64, zero_diagonal, strategy):
    torch.manual_seed(3)
    net = SNNNetwork()
    fc, lif = Linear(5, 4), _smooth_lif((4,))
    rec = Recurrent(4, delay=1, zero_diagonal=zero_diagonal)
    net.connect(Input((5,)), fc, lif)
    net.add_layer("rec", rec, lif, lif)
    with torch.no_grad():
        fc.weight.mul_(3)
    delay = rec.learn_delays(3.0, init=torch.rand(4, 4) * 2 + 1.0)  # within [1, 3] ms
    rec.weight.requires_grad_(True)
    x = (torch.rand(12, 2, 5) < 0.4).double()
    _finite_difference_check(net, [delay, rec.weight], x, strategy)


def _graph_nodes(tensor):
    """Names of the autograd nodes behind ``tensor``."""
    seen, names, todo = set(), set(), [tensor.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        todo += [nxt for nxt, _ in node.next_functions]
    return names


def test_a_window_stepped_by_a_loop_backpropagates_through_one_unbind():
    # a pool steps its window one step at a time; indexing window[t] would build
    # a zero tensor of the whole window per step in backward, unbind stacks once
    x = torch.rand(5, 2, 1, 4, 4, requires_grad=True)
    out, _ = AvgPool2d(2).forward_steps(x)
    names = _graph_nodes(out)
    assert "UnbindBackward0" in names and "SelectBackward0" not in names
    upstream = torch.rand_like(out)
    out.backward(upstream)
    expected = upstream.repeat_interleave(2, -1).repeat_interleave(2, -2) / 4
    torch.testing.assert_close(x.grad, expected, rtol=0, atol=1e-7)
