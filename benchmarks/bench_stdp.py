"""Pair-STDP benchmark: 784 Poisson inputs -> Linear -> LIF(400), ms per timestep.

Rate-coded inputs: each sample is a random sparse "image" (about 20% of the
pixels on, intensities in [0, 1]) whose pixels fire as Poisson processes of rate
``intensity * 63.75`` Hz with dt = 1 ms (as in Diehl & Cook 2015).  Each sample
runs 350 steps; the network is reset between samples.

Compared in the same run, on the same spike trains:

* ``pysnn dense``: :class:`pysnn.learning.STDP` with ``event_driven=False``,
* ``pysnn event``: ``event_driven=True`` (only rows/columns of spiking neurons),
* ``pysnn auto``: the automatic choice (``event_driven=None``),
* ``pysnn run`` / ``pysnn compiled``: ``net.run(x, rules=rule)``, eager or
  after ``net.compile()``,
* ``plain``: a minimal plain-PyTorch loop with the same equations (exact
  input and output traces, exact LIF update with refractory period, reset)
  and a dense STDP update every step,
  ``W += lr/B * (A+ s_post^T x_pre - A- x_post^T s_pre)``, clamped to [0, 1]:
  in-place updates, one matmul, two ``addmm_`` into the weight, one clamp.

With ``--rule mstdpet`` (or ``both``) the rule is reward-modulated STDP with
an eligibility trace (:class:`pysnn.learning.MSTDPET`, Florian 2007): every
sample keeps its own eligibility ``e_b`` (``B x N_out x 784``), updated every
step by ``e_b <- e^{-dt/tau_e} e_b + A+ s_post,b x_pre,b^T - A- x_post,b s_pre,b^T``,
and the weights change by ``lr/B * sum_b r_b e_b`` with a reward ``r_b = +-1``
drawn per step and sample beforehand.  The plain loop does the same with two
in-place ``baddbmm_`` per step; both are first checked (float64, one short
sample) to give the same weights to 1e-9.

Only the simulation/learning loop is timed (the Poisson spikes are drawn
beforehand).  Prints ms/step and the ratio to the plain loop of the same run,
plus the mean fraction of active postsynaptic neurons per step.  PySNN modes:
``dense``/``event``/``auto`` step by hand (``net(x)`` + ``rule.step()``, with
``event_driven=False/True/None``), ``run`` is ``net.run(x, rules=rule)`` and
``compiled`` the same after ``net.compile()`` (the first sample compiles,
untimed).  Before timing, both ``run`` modes and the plain loop are checked
(float64, one short sample) to give the same weights to 1e-9.

    python benchmarks/bench_stdp.py                 # 350 steps x 20 samples, batch 1 and 32
    python benchmarks/bench_stdp.py --samples 5
    python benchmarks/bench_stdp.py --neurons 100 400 1600   # N_out values (default 400)
    python benchmarks/bench_stdp.py --quick         # 2 samples x 50 steps (smoke test)
    python benchmarks/bench_stdp.py --rule both     # pair STDP and MSTDPET
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Callable

import torch

from pysnn.connection import Linear
from pysnn.learning import MSTDPET, STDP
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron

N_IN, N_OUT = 784, 400
DT, MAX_RATE = 1.0, 63.75  # ms, Hz
TAU_PRE, TAU_POST, TAU_V = 20.0, 20.0, 20.0  # ms
THRESH, ALPHA_V, REFRAC = 1.0, 1.5, 5.0  # voltage units, -, ms
LR, A_PLUS, A_MINUS = 1e-3, 1.0, 1.05
TAU_E = 25.0  # ms, eligibility time constant of MSTDPET
W_INIT_MAX = 0.3


class Net(SNNNetwork):
    def __init__(self, n_out: int = N_OUT) -> None:
        super().__init__()
        self.inp = Input((N_IN,), DT, 1.0, TAU_PRE, "exact")
        self.fc = Linear(N_IN, n_out, None, DT, 0)
        self.lif = LIFNeuron(
            (n_out,), THRESH, 0.0, ALPHA_V, 1.0, DT, REFRAC, TAU_V, TAU_POST, "exact"
        )
        self.add_layer("fc", self.fc, self.lif)

    def forward(self, x):
        s, t = self.inp(x)
        s, t = self.fc(s, t)
        return self.lif(s)[0]


def poisson_sample(steps: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    """(steps, batch, 784) bool spikes from random sparse images."""
    image = torch.rand(batch, N_IN, generator=gen) * (torch.rand(batch, N_IN, generator=gen) < 0.2)
    prob = image * MAX_RATE * DT / 1000.0
    return torch.rand(steps, batch, N_IN, generator=gen) < prob


def sync(device: torch.device) -> None:
    """Wait for the device's queued kernels (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PlainLIF:
    """The plain loops' input trace and exact LIF update (refractory period, reset to 0).

    Written as short as plain PyTorch allows: in-place updates, one matmul
    with the weight stored input-major, ``torch.where`` for the refractory
    gate.  ``step`` advances one timestep and returns the output spikes; the
    traces ``x_pre``, ``x_post`` after the step are attributes (what STDP pairs).
    """

    LAM_PRE, LAM_POST, LAM_V = (math.exp(-DT / tau) for tau in (TAU_PRE, TAU_POST, TAU_V))
    REFRAC_STEPS = int(round(REFRAC / DT))

    def __init__(self, batch: int, n_out: int, like: torch.Tensor) -> None:
        self.x_pre = like.new_zeros(batch, N_IN)
        self.x_post = like.new_zeros(batch, n_out)
        self.v = like.new_zeros(batch, n_out)
        self.refrac = like.new_zeros(batch, n_out)
        self.gain = ALPHA_V * (1 - self.LAM_V)

    def step(self, s_pre: torch.Tensor, weight_t: torch.Tensor) -> torch.Tensor:
        """One step; ``weight_t`` is the ``(784, N)`` transposed weight."""
        self.x_pre.mul_(self.LAM_PRE).add_(s_pre)
        drive = torch.addmm(self.v, s_pre, weight_t, beta=self.LAM_V, alpha=self.gain)
        v = torch.where(self.refrac == 0, drive, self.v)
        fired = v >= THRESH
        s_post = fired.to(v.dtype)
        self.x_post.mul_(self.LAM_POST).add_(s_post)
        self.refrac = torch.where(fired, self.REFRAC_STEPS, (self.refrac - 1).clamp_(min=0))
        self.v = v.masked_fill_(fired, 0.0)
        return s_post


def time_samples(
    samples: list[torch.Tensor],
    begin: Callable[[int, torch.Tensor], None],
    step: Callable[[int, int, torch.Tensor], None],
    device: torch.device,
) -> float:
    """ms per step of ``step(sample, t, spikes)`` over every sample; ``begin`` (untimed) first."""
    steps, elapsed = 0, 0.0
    with torch.no_grad():
        for i, spikes in enumerate(samples):
            begin(i, spikes)
            sync(device)
            start = time.perf_counter()
            for t in range(spikes.shape[0]):
                step(i, t, spikes)
            sync(device)
            elapsed += time.perf_counter() - start
            steps += spikes.shape[0]
    return 1000.0 * elapsed / steps


def pysnn_net(weight0: torch.Tensor, device: torch.device, fused: bool = False) -> Net:
    """:class:`Net` on ``device`` in ``weight0``'s dtype, with ``weight0`` as its weights."""
    net = Net(weight0.shape[0]).to(device=device, dtype=weight0.dtype)
    if fused:
        net.fuse()
    with torch.no_grad():
        net.fc.weight.copy_(weight0)
    return net


def stdp_rule(net: Net, event_driven: bool | None = None) -> STDP:
    """The benchmark's pair STDP rule on ``net``'s layer (``event_driven``: dense/event/auto)."""
    return STDP(
        net.layers,
        lr=LR,
        a_plus=A_PLUS,
        a_minus=A_MINUS,
        w_min=0.0,
        w_max=1.0,
        event_driven=event_driven,
    )


def time_pysnn(
    weight0: torch.Tensor,
    samples: list[torch.Tensor],
    mode,
    fused: bool = False,
    device: torch.device | str = "cpu",
) -> tuple[float, torch.Tensor]:
    """ms per step of ``net(x)`` + ``rule.step()`` (STDP with ``event_driven=mode``); final weights."""
    device = torch.device(device)
    net = pysnn_net(weight0, device, fused)
    samples = [s.to(device) for s in samples]
    rule = stdp_rule(net, event_driven=mode)

    def begin(i: int, spikes: torch.Tensor) -> None:
        net.reset_state()
        rule.reset_state()

    def step(i: int, t: int, spikes: torch.Tensor) -> None:
        net(spikes[t])
        rule.step()

    ms = time_samples(samples, begin, step, device)
    return ms, net.fc.weight.detach().clone()


def time_run(
    weight0: torch.Tensor,
    samples: list[torch.Tensor],
    compiled: bool,
    rewards: list[torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
    warm: int = 1,
) -> tuple[float, torch.Tensor, float, str | None]:
    """ms per step of ``net.run(sample, rules=rule)`` (eager or after ``net.compile()``).

    Pair STDP, or MSTDPET with ``rewards`` (``(steps, batch)`` per sample).  The
    first ``warm`` samples are run untimed first (they compile).  Returns the
    ms per step, the final weights, the fraction of output neurons active
    per step and the strategy the runs took (after ``net.compile()`` the
    automatic choice keeps the step loop above
    :data:`pysnn.compiled.AUTO_MAX_SYNAPSE_SAMPLES`).
    """
    device = torch.device(device)
    net = pysnn_net(weight0, device)
    samples = [s.to(device) for s in samples]
    if rewards is None:
        rule = stdp_rule(net)
    else:
        rewards = [r.to(device, weight0.dtype) for r in rewards]
        rule = MSTDPET(
            net.layers, lr=LR, a_plus=A_PLUS, a_minus=A_MINUS, tau_e=TAU_E, w_min=0.0, w_max=1.0
        )
    if compiled:
        net.compile()

    def run(i: int) -> torch.Tensor:
        reward = None if rewards is None else rewards[i]
        return net.run(samples[i], rules=rule, rewards=reward, warn_silent=False)

    with torch.no_grad():
        for i in range(min(warm, len(samples))):
            run(i)
        net.fc.weight.copy_(weight0)
        active, steps, elapsed = 0.0, 0, 0.0
        for i, spikes in enumerate(samples):
            sync(device)
            start = time.perf_counter()
            out = run(i)
            sync(device)
            elapsed += time.perf_counter() - start
            steps += spikes.shape[0]
            active += float(out.any(1).float().mean(-1).sum())
    strategy = net.simulator.last_strategy
    return 1000.0 * elapsed / steps, net.fc.weight.detach().clone(), active / steps, strategy


def rewards_for(samples: list[torch.Tensor], gen: torch.Generator) -> list[torch.Tensor]:
    """A reward of +1 or -1 per step and sample, ``(steps, batch)`` per spike train."""
    return [torch.randint(0, 2, s.shape[:2], generator=gen).float() * 2 - 1 for s in samples]


def time_plain_mstdpet(
    weight0: torch.Tensor,
    samples: list[torch.Tensor],
    rewards: list[torch.Tensor],
    device: torch.device | str = "cpu",
) -> tuple[float, torch.Tensor]:
    """The same network and MSTDPET written as a plain loop; ms per step and final weights."""
    device = torch.device(device)
    weight = weight0.to(device, copy=True)
    samples = [s.to(device) for s in samples]
    rewards = [r.to(device, weight0.dtype) for r in rewards]
    lam_e = math.exp(-DT / TAU_E)
    state: dict[str, object] = {}

    def begin(i: int, spikes: torch.Tensor) -> None:
        batch = spikes.shape[1]
        state["lif"] = PlainLIF(batch, weight.shape[0], weight)
        state["e"] = weight.new_zeros(batch, *weight.shape)

    def step(i: int, t: int, spikes: torch.Tensor) -> None:
        lif, e = state["lif"], state["e"]
        s_pre = spikes[t].to(weight.dtype)
        s_post = lif.step(s_pre, weight.t())
        e.mul_(lam_e)
        e.baddbmm_(s_post.unsqueeze(2), lif.x_pre.unsqueeze(1), alpha=A_PLUS)
        e.baddbmm_(lif.x_post.unsqueeze(2), s_pre.unsqueeze(1), alpha=-A_MINUS)
        weight.add_(torch.tensordot(rewards[i][t], e, dims=1), alpha=LR / spikes.shape[1])
        weight.clamp_(0.0, 1.0)

    return time_samples(samples, begin, step, device), weight


def check_equal(weight0: torch.Tensor, sample: torch.Tensor, reward: torch.Tensor | None) -> None:
    """PySNN (eager and compiled ``run``) and the plain loop give the same weights (float64)."""
    w64 = weight0.double()
    rewards = None if reward is None else [reward]
    if reward is None:
        _, plain = time_plain(w64, [sample], return_weights=True)
    else:
        _, plain = time_plain_mstdpet(w64, [sample], rewards)
    for compiled in (False, True):
        _, ours, _, _ = time_run(w64, [sample], compiled, rewards, warm=0)
        label = "compiled" if compiled else "eager"
        if not torch.allclose(ours, plain, rtol=0, atol=1e-9):
            raise AssertionError(
                f"{label}: PySNN and the plain loop disagree by "
                f"{float((ours - plain).abs().max())}"
            )
    if torch.equal(plain, w64):
        raise AssertionError("check: the weights did not change")


def time_plain(
    weight0: torch.Tensor,
    samples: list[torch.Tensor],
    device: torch.device | str = "cpu",
    return_weights: bool = False,
):
    """The minimal plain loop: ms per step and the final weights.

    Per step: the input trace, one matmul, the LIF update, the two STDP
    terms as two ``addmm_`` into the (input-major) weight, one clamp.
    """
    device = torch.device(device)
    weight_t = weight0.t().contiguous().to(device)  # (784, N): W^T, updated in place
    samples = [s.to(device) for s in samples]
    state: dict[str, PlainLIF] = {}

    def begin(i: int, spikes: torch.Tensor) -> None:
        state["lif"] = PlainLIF(spikes.shape[1], weight0.shape[0], weight_t)

    def step(i: int, t: int, spikes: torch.Tensor) -> None:
        lif = state["lif"]
        s_pre = spikes[t].to(weight_t.dtype)
        s_post = lif.step(s_pre, weight_t)
        # W^T += lr/B (A+ x_pre^T s_post - A- s_pre^T x_post), then clamp to [0, 1]
        weight_t.addmm_(lif.x_pre.t(), s_post, alpha=A_PLUS * LR / spikes.shape[1])
        weight_t.addmm_(s_pre.t(), lif.x_post, alpha=-A_MINUS * LR / spikes.shape[1])
        weight_t.clamp_(0.0, 1.0)

    ms = time_samples(samples, begin, step, device)
    return (ms, weight_t.t().contiguous()) if return_weights else ms


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--samples", type=int, default=20, help="samples per batch size")
    parser.add_argument("--steps", type=int, default=350, help="timesteps per sample")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32], help="batch sizes")
    parser.add_argument("--neurons", type=int, nargs="+", default=[N_OUT], help="N_out values")
    parser.add_argument("--quick", action="store_true", help="2 samples x 50 steps")
    parser.add_argument(
        "--rule", choices=["stdp", "mstdpet", "both"], default="stdp", help="learning rule(s)"
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["dense", "event", "auto", "run", "compiled"],
        choices=["dense", "event", "auto", "run", "compiled"],
        help="PySNN modes: net(x) + rule.step() with event_driven=False/True/None, "
        "net.run(rules=...) eager, and after net.compile()",
    )
    args = parser.parse_args()
    if args.quick:
        args.samples, args.steps = 2, 50
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{args.samples} samples x {args.steps} steps"
    )
    for n_out, batch in [(n, b) for n in args.neurons for b in args.batches]:
        gen = torch.Generator().manual_seed(batch)
        weight0 = torch.rand(n_out, N_IN, generator=gen) * W_INIT_MAX
        samples = [poisson_sample(args.steps, batch, gen) for _ in range(args.samples)]
        warm = [s[: min(20, args.steps)] for s in samples[:1]]
        rules = ["stdp", "mstdpet"] if args.rule == "both" else [args.rule]
        for rule in rules:
            rewards = rewards_for(samples, gen) if rule == "mstdpet" else None
            check_equal(weight0, samples[0][:100], None if rewards is None else rewards[0][:100])
            if rewards is None:
                time_plain(weight0, warm)
                plain = time_plain(weight0, samples)
            else:
                time_plain_mstdpet(weight0, warm, rewards[:1])
                plain, _ = time_plain_mstdpet(weight0, samples, rewards)
            name = "" if rule == "stdp" else " MSTDPET"
            print(f"N={n_out} batch {batch}{name}: plain PyTorch loop {plain:.3f} ms/step")
            for mode in args.modes:
                if mode in ("run", "compiled"):
                    ms, _, active, took = time_run(weight0, samples, mode == "compiled", rewards)
                    extra = f"(strategy {took}; active post neurons/step {100 * active:.1f}%)"
                elif rewards is None:
                    event = {"dense": False, "event": True, "auto": None}[mode]
                    time_pysnn(weight0, warm, event)
                    ms, _ = time_pysnn(weight0, samples, event)
                    extra = "(net(x) + rule.step())"
                else:
                    continue
                print(f"  pysnn {mode:8s} {ms:.3f} ms/step  ratio {ms / plain:.2f}x  {extra}")


if __name__ == "__main__":
    main()
