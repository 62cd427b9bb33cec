"""Gradient training speed: forward + backward of one Linear + LIF layer, PySNN vs snnTorch, Norse, SpikingJelly.

The Open Neuromorphic library benchmark's network shrunk to a CPU: random
input spikes ``[T, batch, N]`` -> ``Linear(N, N)`` (no bias) -> LIF(N), the loss
a fixed random projection of all output spikes, ``loss.backward()`` to the
weight.  PySNN's ``Linear`` chooses event-driven propagation by itself where
few inputs are active (the gather's backward pass touches only the active
inputs' rows; :data:`pysnn.functional.EVENT_THRESHOLD`); ``pysnn dense`` is the
same network with ``Linear(event_driven=False)``, one dense product as the
other libraries compute.  Two neuron models, each run by the libraries that have it:

* ``leaky``: :math:`v_t = \\beta v'_{t-1} + W x_t`, reset by subtraction
  (with its gradient), arctan surrogate (slope 2): PySNN's ``LIFNeuron``
  (``integrator="impulse"``), snnTorch's ``Leaky(reset_delay=False)``,
  SpikingJelly's ``LIFNode(tau=10, decay_input=False, v_reset=None)`` (multi-step)
  and a plain-PyTorch loop written here;
* ``box``: forward-Euler LIF with the input added to the voltage, reset to 0,
  SuperSpike surrogate :math:`1/(1 + |u|)^2` (slope 1: Norse 1.1's SuperSpike
  backward ignores its ``alpha``): PySNN's ``LIFNeuron``
  (``integrator="euler"``), Norse's ``LIFBoxCell`` and SpikingJelly's
  ``LIFNode(tau=10, v_reset=0)`` with ``SuperSpike(alpha=1)`` (multi-step).

Before timing, every implementation's spikes and weight gradient are checked
equal to PySNN's in float64 (T = 100; gradients to 1e-12 relative, snnTorch's to
1e-6: after an overshoot of twice the threshold it takes the next surrogate at
:math:`v - 2\theta`; SpikingJelly's to 1e-12 as well, though it rounds
:math:`v - v/\tau` where the others multiply by :math:`\beta`); timing is float32,
median of ``--reps`` forward + backward passes after one warm-up, the libraries
taking turns, all in this run.  ``--memory`` adds each library's peak memory of
one float32 forward + backward: the growth of the peak resident set size over
the process's size before the pass, each library in its own process, the
median of three such processes (Linux only).

    python benchmarks/bench_grad.py                      # hidden 1000, batch 16, T 500
    python benchmarks/bench_grad.py --hidden 1000 4000
    python benchmarks/bench_grad.py --hidden 1000 4000 --memory
    python benchmarks/bench_grad.py --quick              # seconds

snnTorch, Norse and SpikingJelly are optional (``pip install --no-deps snntorch
norse spikingjelly``): a missing library's rows are skipped.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from pysnn.connection import Linear
from pysnn.functional import Surrogate
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron

BETA = 0.9  # voltage decay per step (leaky)
TAU_RATIO = 0.1  # dt / tau (box)


class _ATan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u):  # type: ignore[override]
        ctx.save_for_backward(u)
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        return grad / (1 + (math.pi * u) ** 2)  # alpha = 2: (alpha/2) / (1 + (pi alpha u / 2)^2)


def plain_leaky(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The leaky model as a plain PyTorch loop (one matmul for all steps)."""
    current = x @ weight.t()
    v = torch.zeros_like(current[0])
    out = []
    for i in current:
        v = BETA * v + i
        s = _ATan.apply(v - 1.0)
        v = v - s
        out.append(s)
    return torch.stack(out)


def pysnn_model(
    n: int, model: str, dtype: torch.dtype, event_driven: bool | None = None
) -> tuple[SNNNetwork, Linear]:
    net = SNNNetwork()
    fc = Linear(n, n, event_driven=event_driven)
    if model == "leaky":
        lif = LIFNeuron(
            (n,),
            thresh=1.0,
            v_rest=0.0,
            v_reset=0.0,
            tau_v=-1.0 / math.log(BETA),
            integrator="impulse",
            reset="subtract",
            surrogate=Surrogate("arctan", 2.0),
        )
    else:
        lif = LIFNeuron(
            (n,),
            thresh=1.0,
            v_rest=0.0,
            v_reset=0.0,
            tau_v=1.0 / TAU_RATIO,
            integrator="euler",
            reset="rest",
            surrogate=Surrogate("superspike", 1.0),
        )
    net.connect(Input((n,)), fc, lif)
    net.to(dtype)
    fc.weight.requires_grad_(True)
    return net, fc


def dense_layer(weight: torch.Tensor, dtype: torch.dtype) -> torch.nn.Linear:
    """``torch.nn.Linear`` without bias holding ``weight`` (the peers' projection)."""
    n_out, n_in = weight.shape
    lin = torch.nn.Linear(n_in, n_out, bias=False).to(dtype)
    with torch.no_grad():
        lin.weight.copy_(weight)
    return lin


def runners(n: int, model: str, dtype: torch.dtype, weight: torch.Tensor) -> dict[str, Callable]:
    """``name -> (x -> (spikes, weight tensor with .grad))`` for every library that has ``model``."""
    out: dict[str, Callable] = {}
    for name, event_driven in (("pysnn", None), ("pysnn dense", False)):
        net, fc = pysnn_model(n, model, dtype, event_driven)
        with torch.no_grad():
            fc.weight.copy_(weight)
        out[name] = (lambda x, net=net: net.run(x, warn_silent=False), fc.weight)
    if model == "leaky":
        w = weight.clone().to(dtype).requires_grad_(True)
        out["plain torch"] = (lambda x: plain_leaky(w, x), w)
        try:
            import snntorch as snn
            from snntorch import surrogate
        except ImportError:
            print("snnTorch is not installed: its rows are skipped")
        else:
            lin = dense_layer(weight, dtype)
            leaky = snn.Leaky(
                beta=torch.tensor(BETA, dtype=dtype),
                spike_grad=surrogate.atan(alpha=2.0),
                reset_delay=False,
            ).to(dtype)

            def run_snntorch(x: torch.Tensor) -> torch.Tensor:
                mem = leaky.init_leaky()
                current = lin(x)  # all steps at once, as the plain loop
                spikes = []
                for i in current:
                    s, mem = leaky(i, mem)
                    spikes.append(s)
                return torch.stack(spikes)

            out["snntorch"] = (run_snntorch, lin.weight)
    else:
        try:
            import norse.torch as norse
        except ImportError:
            print("Norse is not installed: its rows are skipped")
        else:
            lin = dense_layer(weight, dtype)
            params = norse.LIFBoxParameters(
                tau_mem_inv=torch.tensor(TAU_RATIO / 1e-3, dtype=dtype),
                v_th=torch.tensor(1.0, dtype=dtype),
                v_reset=torch.tensor(0.0, dtype=dtype),
                v_leak=torch.tensor(0.0, dtype=dtype),
                alpha=torch.tensor(1.0, dtype=dtype),  # its backward uses 1 whatever alpha is
            )
            cell = norse.LIFBoxCell(params, dt=1e-3)

            def run_norse(x: torch.Tensor) -> torch.Tensor:
                current = lin(x)
                state, spikes = None, []
                for i in current:
                    s, state = cell(i, state)
                    spikes.append(s)
                return torch.stack(spikes)

            out["norse"] = (run_norse, lin.weight)
    spikingjelly = spikingjelly_runner(n, model, dtype, weight)
    if spikingjelly is not None:
        out["spikingjelly"] = spikingjelly
    return out


def spikingjelly_runner(n: int, model: str, dtype: torch.dtype, weight: torch.Tensor):
    """SpikingJelly's multi-step ``LIFNode`` for ``model`` (``None`` when it is not installed)."""
    try:
        from spikingjelly.activation_based import functional, neuron, surrogate
    except ImportError:
        print("SpikingJelly is not installed: its rows are skipped")
        return None
    lin = dense_layer(weight, dtype)
    if model == "leaky":  # v - v / tau + I = beta v + I with tau = 1 / (1 - beta); soft reset
        node = neuron.LIFNode(
            tau=1.0 / (1.0 - BETA),
            decay_input=False,
            v_threshold=1.0,
            v_reset=None,
            surrogate_function=surrogate.ATan(alpha=2.0),
            step_mode="m",
        )
    else:  # v + (I - v) / tau, reset to 0
        node = neuron.LIFNode(
            tau=1.0 / TAU_RATIO,
            decay_input=True,
            v_threshold=1.0,
            v_reset=0.0,
            surrogate_function=surrogate.SuperSpike(alpha=1.0),
            step_mode="m",
        )
    node.to(dtype)

    def run_spikingjelly(x: torch.Tensor) -> torch.Tensor:
        functional.reset_net(node)
        return node(lin(x))  # all steps at once, as the others

    return run_spikingjelly, lin.weight


def peak_memory(n: int, model: str, library: str, args: argparse.Namespace) -> float:
    """MiB by which one float32 forward + backward of ``library`` raises the peak RSS (own process).

    Linux: the peak (``VmHWM``) is reset to the current size before the pass
    (``/proc/self/clear_refs``); ``ru_maxrss`` would include the parent's size
    at the fork.  glibc's mmap threshold is fixed at 128 KiB in the child.
    """
    code = (
        "import sys, torch; sys.path.insert(0, sys.argv[1]); import bench_grad as b; "
        "n, model, library, batch, steps, rate = sys.argv[2], sys.argv[3], sys.argv[4], "
        "sys.argv[5], sys.argv[6], sys.argv[7]; n, batch, steps = int(n), int(batch), int(steps); "
        "torch.set_num_threads(1); g = torch.Generator().manual_seed(n); "
        "w = (torch.randn(n, n, generator=g, dtype=torch.float64) / n ** 0.5 "
        "* (10.0 if model == 'box' else 1.0)).float(); "
        "x = (torch.rand(steps, batch, n, generator=g) < float(rate)).float(); "
        "r = torch.randn(steps, batch, n, generator=g); "
        "run, weight = b.runners(n, model, torch.float32, w)[library]; "
        "kib = lambda key: int(next(l for l in open('/proc/self/status') "
        "if l.startswith(key)).split()[1]); "
        "open('/proc/self/clear_refs', 'w').write('5'); before = kib('VmRSS:'); "
        "b.forward_backward(run, weight, x, r); "
        "print((kib('VmHWM:') - before) / 1024)"
    )
    command = [sys.executable, "-c", code, str(Path(__file__).resolve().parent), str(n), model]
    command += [library, str(args.batch), str(args.steps), str(args.rate)]
    # a fixed mmap threshold: glibc then returns every large block to the system when
    # it is freed, so the resident size follows the live tensors (with the dynamic
    # threshold, reuse of freed heap made the figure vary by 2x between runs)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return float(done.stdout.strip().splitlines()[-1])


def forward_backward(run: Callable, weight: torch.Tensor, x: torch.Tensor, readout: torch.Tensor):
    weight.grad = None
    spikes = run(x)
    (spikes * readout).sum().backward()
    return spikes.detach(), weight.grad.clone()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--hidden", type=int, nargs="+", default=[1000], help="layer sizes N")
    parser.add_argument("--batch", type=int, default=16, help="batch size")
    parser.add_argument("--steps", type=int, default=500, help="timesteps T")
    parser.add_argument("--rate", type=float, default=0.05, help="input spike probability/step")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--memory",
        action="store_true",
        help="also each library's peak memory of one pass (own process; Linux /proc)",
    )
    parser.add_argument("--quick", action="store_true", help="N 200, T 50, 1 repetition")
    args = parser.parse_args(argv)
    if args.quick:
        args.hidden, args.steps, args.reps = [200], 50, 1
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, threads={torch.get_num_threads()}, batch={args.batch}, "
        f"T={args.steps}, input rate={args.rate}"
    )
    print(
        f"{'model':<7}{'N':>6}  {'library':<13}{'fwd+bwd ms':>12}{'vs pysnn':>10}"
        f"{'out rate':>10}" + (f"{'peak MiB':>10}" if args.memory else "")
    )
    for n in args.hidden:
        gen = torch.Generator().manual_seed(n)
        # small enough that no voltage jumps from below the threshold to twice it in one step,
        # where snnTorch decides the next spike on the voltage minus an extra threshold
        base = torch.randn(n, n, generator=gen, dtype=torch.float64) / math.sqrt(n)
        for model in ("leaky", "box"):
            # the box model integrates dt/tau = 0.1 of its input per step: scaled to fire too
            weight = base * (10.0 if model == "box" else 1.0)
            # equal spikes and gradients in float64 first
            steps = min(args.steps, 100)
            x = (torch.rand(steps, args.batch, n, generator=gen) < args.rate).double()
            readout = torch.randn(steps, args.batch, n, generator=gen, dtype=torch.float64)
            checks = runners(n, model, torch.float64, weight)
            ref_spikes, ref_grad = forward_backward(*checks["pysnn"], x, readout)
            for name, (run, w) in checks.items():
                spikes, grad = forward_backward(run, w, x, readout)
                if not torch.equal(spikes, ref_spikes):
                    raise AssertionError(f"{model}, N={n}: {name}'s spikes differ from PySNN's")
                # 1e-6: where a voltage is still above the threshold after its reset (an
                # overshoot of twice the threshold), snnTorch takes the next step's surrogate
                # at v - 2 theta; PySNN, the plain loop and Norse agree to 1e-12
                tol = 1e-6 if name == "snntorch" else 1e-12
                scale = float(ref_grad.abs().max())
                if not torch.allclose(grad, ref_grad, rtol=tol, atol=tol * scale):
                    raise AssertionError(f"{model}, N={n}: {name}'s gradient differs from PySNN's")
            # timing in float32
            x = (torch.rand(args.steps, args.batch, n, generator=gen) < args.rate).float()
            readout = torch.randn(args.steps, args.batch, n, generator=gen)
            timed = runners(n, model, torch.float32, weight.float())
            samples: dict[str, list[float]] = {name: [] for name in timed}
            for run, w in timed.values():
                forward_backward(run, w, x, readout)  # warm-up
            for _ in range(args.reps):  # round robin: a slower spell of the machine hits all
                for name, (run, w) in timed.items():
                    begin = time.perf_counter()
                    forward_backward(run, w, x, readout)
                    samples[name].append(time.perf_counter() - begin)
            times = {name: 1000 * statistics.median(values) for name, values in samples.items()}
            rate = float(ref_spikes.mean())
            for name, ms in times.items():
                memory = ""
                if args.memory:  # the median of three processes (the figure varies run to run)
                    peak = statistics.median(peak_memory(n, model, name, args) for _ in range(3))
                    memory = f"{peak:>10.0f}"
                print(
                    f"{model:<7}{n:>6}  {name:<13}{ms:>12.1f}{ms / times['pysnn']:>10.2f}"
                    f"{rate:>10.3f}{memory}"
                )
    print(
        "spikes checked equal to PySNN's in float64 (T = 100), weight gradients to 1e-12 "
        "(snnTorch: 1e-6, see the source); peak MiB: growth of the peak RSS in one pass"
    )


if __name__ == "__main__":
    main()
