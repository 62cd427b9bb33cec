"""PySNN benchmark suite: ms per timestep against plain-PyTorch references.

Workloads (issue "Speed"):

* **W1** 784 Poisson inputs (2 % spike probability per step) -> Linear -> LIF(N),
  N in {1000, 10000}, batch in {1, 32}, T = 1000.
* **W2** 784 rate-coded Poisson inputs (max 63.75 Hz) -> LIF(400) with pair
  STDP, batch 1 and 32, T = 350 x 20 samples.
* **W3** W1 at N = 1000 with a scalar delay of 3 and per-synapse delays in 0..15.
* **W4** 2x34x34 event frames -> Conv2d(2->16, 5x5) -> LIF -> MaxPool2d(2)
  -> Conv2d(16->32, 5x5) -> LIF, batch 16, T = 300.

Modes: ``default`` is the plain step loop with automatic path choices
(event-driven propagation and learning where sparse); ``fused`` compiles every
neuron's state update into one kernel (:meth:`pysnn.network.SNNNetwork.fuse`,
torch.compile); ``multi-step`` computes the input currents of all T steps with
one GEMM (:meth:`pysnn.connection.Connection.forward_steps`) and then runs the
LIF loop; ``whole-network`` is ``net.run`` on a graph network, which picks
whole-network multi-step execution by itself (:mod:`pysnn.window`: every
population over a window of steps, the input population's trace included;
fused, the LIF steps of each 16-step chunk are one compiled kernel); modes
combine (``multi-step fused``, ``whole-network fused``).  ``compiled`` is
``net.compile()`` then ``net.run`` (the engine's own choice: windows for W1,
compiled chunks of steps with the rule inside for W2); ``compiled chunks`` forces
``net.run(strategy="compiled")`` on W1 (32-step chunks, one graph each; CUDA
graphs on CUDA); W2's ``run`` is the eager ``net.run(x, rules=rule)``.
``--compiled-step`` adds W1's ``compiled step`` mode: the whole network step
compiled as one graph (:func:`pysnn.fusion.compile_step`).  Compile times are
printed.  ``--device cuda`` runs every cell, PySNN and references alike, on the GPU.

Each cell prints PySNN's ms/step, the plain-PyTorch reference (same math, eager
step loop, written here), a matmul-only loop, and the ratios, all measured in
the same run (median of ``--reps`` repetitions after a warm-up, fixed seeds).
PySNN and the reference are checked to produce identical spikes first.

    python benchmarks/suite.py              # full table (minutes)
    python benchmarks/suite.py --smoke      # seconds, tiny sizes
    python benchmarks/suite.py --only W1 W3
    python benchmarks/suite.py --no-fused   # skip the compiled modes
    python benchmarks/suite.py --device cuda --compiled-step   # the GPU table
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from pysnn.connection import Conv2d, Linear, MaxPool2d
from pysnn.fusion import compile_step, fusion_available
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_stdp  # noqa: E402  (W2 reuses its network, spike trains and plain loop)

DECAY_T, DECAY_V, THRESH = 0.9, 0.9, 1.0
#: where every cell runs (``--device``)
DEVICE = torch.device("cpu")


@dataclass
class Cell:
    workload: str
    size: str
    batch: int
    mode: str
    steps: int
    pysnn: Callable[[], object]
    reference: Callable[[], object]
    matmul_only: Callable[[], object]
    state_bytes: int
    #: cells with the same key share one measurement of the reference and matmul loops
    reference_key: tuple = ()


def median_ms(fn: Callable[[], object], steps: int, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        bench_stdp.sync(DEVICE)
        start = time.perf_counter()
        fn()
        bench_stdp.sync(DEVICE)
        times.append((time.perf_counter() - start) * 1e3 / steps)
    return statistics.median(times)


def module_bytes(module: torch.nn.Module) -> int:
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


# ---------------------------------------------------------------------------
# W1 / W3: Linear -> LIF
# ---------------------------------------------------------------------------
class FeedForward(SNNNetwork):
    def __init__(self, n_in: int, n_out: int, delay, refrac: int = 0) -> None:
        super().__init__()
        self.inp = Input((n_in,), 1.0, 1.0, DECAY_T)
        self.fc = Linear(n_in, n_out, None, 1.0, delay)
        self.lif = LIFNeuron((n_out,), THRESH, 0.0, 1.0, 1.0, 1.0, float(refrac), DECAY_V, DECAY_T)
        self.add_layer("fc", self.fc, self.lif, self.inp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, t = self.inp(x)
        s, t = self.fc(s, t)
        return self.lif(s)[0]

    @torch.no_grad()
    def run_multistep(self, spikes: torch.Tensor) -> torch.Tensor:
        """Multi-step path: the input currents of all steps in one GEMM, then the LIF loop."""
        self.reset_state()
        currents, _ = self.fc.forward_steps(spikes)
        return torch.stack([self.lif(x)[0] for x in currents])


class GraphFeedForward(FeedForward):
    """The same network run by the graph's default step, so ``run`` may use windows."""

    forward = SNNNetwork.forward


@torch.no_grad()
def plain_feedforward(
    weight: torch.Tensor, delay, spikes: torch.Tensor, refrac: int = 0
) -> torch.Tensor:
    """Input trace, (delayed) matmul, LIF linear update with refractory period and reset."""
    steps, batch, n_in = spikes.shape
    n_out = weight.shape[0]
    like = dict(dtype=weight.dtype, device=weight.device)
    dtype = weight.dtype
    x_in = torch.zeros(batch, n_in, **like)
    v = torch.zeros(batch, n_out, **like)
    x_out = torch.zeros(batch, n_out, **like)
    counts = torch.zeros(batch, n_out, **like)
    per_synapse = isinstance(delay, torch.Tensor)
    d_max = int(delay.max()) if per_synapse else int(delay)
    length = d_max + 1
    hist = torch.zeros(length, batch, n_in, **like)
    masked = [weight * (delay == d) for d in range(length)] if per_synapse else None
    out = torch.empty(steps, batch, n_out, **like)
    for t in range(steps):
        s_in = spikes[t].to(dtype)
        x_in = x_in * DECAY_T + s_in
        if d_max == 0:
            current = s_in @ weight.T
        else:
            hist[t % length] = s_in
            if per_synapse:
                current = sum(hist[(t - d) % length] @ masked[d].T for d in range(length))
            else:
                current = hist[(t - d_max) % length] @ weight.T
        if refrac:
            v = (v * DECAY_V + current) * (counts == 0)
            s = ((v >= THRESH) & (counts == 0)).to(dtype)
            counts = (counts - 1).clamp(min=0) + refrac * s
        else:
            v = v * DECAY_V + current
            s = (v >= THRESH).to(dtype)
        x_out = x_out * DECAY_T + s
        v = torch.where(s > 0, torch.zeros_like(v), v)
        out[t] = s
    return out


@torch.no_grad()
def matmul_only(weight: torch.Tensor, spikes: torch.Tensor) -> None:
    for t in range(spikes.shape[0]):
        spikes[t].float() @ weight.T


def run_compiled(net: FeedForward, step: Callable, spikes: torch.Tensor) -> torch.Tensor:
    """The step loop of ``net.run`` with a compiled step (:func:`compile_step`)."""
    net.reset_state()
    with torch.no_grad():
        return torch.stack([step(x) for x in spikes])


def compiled_step(net: FeedForward) -> Callable:
    """``net.forward`` compiled whole; on CUDA with CUDA graphs ("reduce-overhead")."""
    return compile_step(net.forward, mode="reduce-overhead" if DEVICE.type == "cuda" else None)


def feedforward_cells(
    workload: str, sizes: list[int], batches: list[int], steps: int, delays: dict
) -> list[Cell]:
    cells = []
    for n_out in sizes:
        for batch in batches:
            for mode, delay in delays.items():
                multistep = "multi-step" in mode
                gen = torch.Generator().manual_seed(0)
                delay_key = delay
                spikes = torch.rand(steps, batch, 784, generator=gen) < 0.02
                if isinstance(delay, tuple):  # ("per-synapse", d_max)
                    delay = torch.randint(0, delay[1] + 1, (n_out, 784), generator=gen)
                whole = (
                    "whole-network" in mode or mode.startswith("compiled") and "step" not in mode
                )
                net = (GraphFeedForward if whole else FeedForward)(784, n_out, delay)
                strategy = "compiled" if mode == "compiled chunks" else None
                net.check_finite(False)  # off by default, but on in the test suite
                if whole and net.multi_step_obstacle(spikes) is not None:
                    raise AssertionError(f"{mode}: {net.multi_step_obstacle(spikes)}")
                if "fused" in mode:
                    net.fuse()
                if mode in ("compiled", "compiled chunks"):
                    net.compile()
                with torch.no_grad():
                    net.fc.weight.uniform_(0.0, 8.0 / 784 * 10, generator=gen)
                net.to(DEVICE)
                spikes = spikes.to(DEVICE)
                if isinstance(delay, torch.Tensor):
                    delay = delay.to(DEVICE)
                weight = net.fc.weight.detach().clone()
                # same spikes, checked in float64 on the first steps (float32 sums in
                # another order may flip a spike that lands exactly on the threshold)
                check = spikes[:100]
                net.double()
                if multistep:
                    ours = net.run_multistep(check.double())
                elif mode == "compiled step":
                    ours = run_compiled(net, compiled_step(net), check.double())
                else:
                    ours = net.run(check.double(), strategy=strategy)
                ref = plain_feedforward(weight.double(), delay, check)
                if not torch.equal(ours, ref):
                    raise AssertionError(f"{workload} {mode}: PySNN and reference disagree")
                net.float()
                if multistep:
                    run = lambda net=net, spikes=spikes: net.run_multistep(spikes)  # noqa: E731
                elif mode == "compiled step":
                    start = time.perf_counter()
                    step = compiled_step(net)
                    run_compiled(net, step, spikes[:3])  # compiles the first and later steps
                    print(f"{workload} N={n_out} batch {batch} compiled step: compile + warm-up "
                          f"{time.perf_counter() - start:.1f} s", flush=True)  # fmt: skip
                    run = lambda net=net, step=step, s=spikes: run_compiled(net, step, s)  # noqa
                else:
                    if net.compiled:  # compile the float32 graphs before timing
                        start = time.perf_counter()
                        net.run(spikes, strategy=strategy)
                        print(f"{workload} N={n_out} batch {batch} {mode}: compile + first run "
                              f"{time.perf_counter() - start:.1f} s", flush=True)  # fmt: skip
                    run = lambda net=net, s=spikes, st=strategy: net.run(s, strategy=st)  # noqa
                cells.append(
                    Cell(
                        workload,
                        f"N={n_out}",
                        batch,
                        mode,
                        steps,
                        run,
                        lambda w=weight, d=delay, s=spikes: plain_feedforward(w, d, s),
                        lambda w=weight, s=spikes: matmul_only(w, s),
                        module_bytes(net),
                        (workload, n_out, batch, str(delay_key)),
                    )
                )
    return cells


# ---------------------------------------------------------------------------
# W2: pair STDP (network, spike trains and plain loop from bench_stdp.py)
# ---------------------------------------------------------------------------
def stdp_pass(weight0: torch.Tensor, trains: list[torch.Tensor], mode: str) -> Callable:
    """One W2 pass over ``trains`` from ``weight0``.

    ``default``/``fused``: ``net(x)`` + ``rule.step()`` per step; ``run`` and
    ``compiled``: ``net.run(x, rules=rule)`` per sample on one network (built
    once, so that ``compiled`` compiles once, in the warm-up).
    """
    if mode not in ("run", "compiled"):
        return lambda: bench_stdp.time_pysnn(
            weight0, trains, None, fused="fused" in mode, device=DEVICE
        )
    net = bench_stdp.pysnn_net(weight0, DEVICE)
    rule = bench_stdp.stdp_rule(net)
    if mode == "compiled":
        net.compile()
    trains = [s.to(DEVICE) for s in trains]

    def run() -> None:
        with torch.no_grad():
            net.fc.weight.copy_(weight0)
            for spikes in trains:
                net.run(spikes, rules=rule, warn_silent=False)

    return run


def stdp_cells(batches: list[int], samples: int, steps: int, modes: list[str]) -> list[Cell]:
    cells = []
    for batch in batches:
        gen = torch.Generator().manual_seed(batch)
        weight0 = torch.rand(bench_stdp.N_OUT, bench_stdp.N_IN, generator=gen)
        weight0 *= bench_stdp.W_INIT_MAX
        trains = [bench_stdp.poisson_sample(steps, batch, gen) for _ in range(samples)]
        flat = torch.cat(trains)
        for mode in modes:
            cells.append(
                Cell(
                    "W2",
                    f"N={bench_stdp.N_OUT}",
                    batch,
                    mode,
                    steps * samples,
                    stdp_pass(weight0, trains, mode),
                    lambda w=weight0, tr=trains: bench_stdp.time_plain(w, tr, DEVICE),
                    lambda w=weight0.to(DEVICE), s=flat.to(DEVICE): matmul_only(w, s),
                    module_bytes(bench_stdp.Net()),
                    ("W2", batch),
                )
            )
    return cells


# ---------------------------------------------------------------------------
# W4: convolutional network
# ---------------------------------------------------------------------------
class ConvNet(SNNNetwork):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = Conv2d(2, 16, 5)
        self.lif1 = LIFNeuron((16, 30, 30), THRESH, 0.0, 1.0, 1.0, 1.0, 0.0, DECAY_V, DECAY_T)
        self.pool = MaxPool2d(2)
        self.conv2 = Conv2d(16, 32, 5)
        self.lif2 = LIFNeuron((32, 11, 11), THRESH, 0.0, 1.0, 1.0, 1.0, 0.0, DECAY_V, DECAY_T)
        self.add_layer("conv1", self.conv1, self.lif1)
        self.add_layer("conv2", self.conv2, self.lif2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, t = self.conv1(x)
        s, t = self.lif1(s)
        s, t = self.pool(s, t)
        s, t = self.conv2(s, t)
        return self.lif2(s)[0]


@torch.no_grad()
def plain_conv(w1: torch.Tensor, w2: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    batch, device = frames.shape[1], frames.device
    v1 = torch.zeros(batch, 16, 30, 30, device=device)
    x1 = torch.zeros_like(v1)
    v2 = torch.zeros(batch, 32, 11, 11, device=device)
    x2 = torch.zeros_like(v2)
    out = torch.empty(frames.shape[0], batch, 32, 11, 11, device=device)
    for t in range(frames.shape[0]):
        v1 = v1 * DECAY_V + F.conv2d(frames[t], w1)
        s1 = (v1 >= THRESH).float()
        x1 = x1 * DECAY_T + s1
        v1 = torch.where(s1 > 0, torch.zeros_like(v1), v1)
        key = s1 * ((x1.max() - x1.min()).clamp(min=0) + 1) + (x1 - x1.min())
        _, idx = F.max_pool2d(key, 2, return_indices=True)
        p = s1.flatten(2).gather(2, idx.flatten(2)).view_as(idx)
        v2 = v2 * DECAY_V + F.conv2d(p, w2)
        s2 = (v2 >= THRESH).float()
        x2 = x2 * DECAY_T + s2
        v2 = torch.where(s2 > 0, torch.zeros_like(v2), v2)
        out[t] = s2
    return out


@torch.no_grad()
def conv_matmul_only(w1: torch.Tensor, w2: torch.Tensor, frames: torch.Tensor) -> None:
    p = torch.zeros(frames.shape[1], 16, 15, 15, device=frames.device)
    for t in range(frames.shape[0]):
        F.conv2d(frames[t], w1)
        F.conv2d(p, w2)


def conv_cells(steps: int, batch: int, modes: list[str]) -> list[Cell]:
    return [conv_cell(steps, batch, mode) for mode in modes]


def conv_cell(steps: int, batch: int, mode: str) -> Cell:
    gen = torch.Generator().manual_seed(0)
    frames = (torch.rand(steps, batch, 2, 34, 34, generator=gen) < 0.05).float()
    net = ConvNet()
    if "fused" in mode:
        net.fuse()
    with torch.no_grad():
        net.conv1.weight.uniform_(0.0, 0.3, generator=gen)
        net.conv2.weight.uniform_(0.0, 0.1, generator=gen)
    net.to(DEVICE)
    frames = frames.to(DEVICE)
    w1, w2 = net.conv1.weight.detach().clone(), net.conv2.weight.detach().clone()
    if not torch.equal(net.run(frames), plain_conv(w1, w2, frames)):
        raise AssertionError(f"W4 {mode}: PySNN and reference disagree")
    return Cell(
        "W4",
        "2x34x34",
        batch,
        mode,
        steps,
        lambda: net.run(frames),
        lambda: plain_conv(w1, w2, frames),
        lambda: conv_matmul_only(w1, w2, frames),
        module_bytes(net),
        ("W4", batch),
    )


# ---------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=["W1", "W2", "W3", "W4"])
    parser.add_argument("--no-fused", action="store_true", help="skip the torch.compile modes")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (every cell, same run)")
    parser.add_argument(
        "--compiled-step",
        action="store_true",
        help="add W1's 'compiled step' mode (whole step compiled; CUDA graphs on CUDA)",
    )
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = torch.device(args.device)

    if args.smoke:
        sizes, batches, steps, conv_steps, reps = [100], [1, 4], 20, 5, 1
        stdp_samples, stdp_steps = 2, 20
    else:
        sizes, batches, steps, conv_steps, reps = [1000, 10000], [1, 32], 1000, 300, args.reps
        stdp_samples, stdp_steps = 20, 350
    fused = [] if args.no_fused or not fusion_available() else ["fused"]

    where = platform.processor() or platform.machine()
    if DEVICE.type == "cuda":
        where = torch.cuda.get_device_name(DEVICE)
    print(
        f"torch {torch.__version__}, python {platform.python_version()}, "
        f"threads={torch.get_num_threads()}, device {DEVICE}: {where}"
    )
    cells: list[Cell] = []
    if "W1" in args.only:
        modes = ["default", *fused, "multi-step", *[f"multi-step {m}" for m in fused]]
        modes += ["whole-network", *[f"whole-network {m}" for m in fused]]
        modes += ["compiled", "compiled chunks"] if fused else []
        if args.compiled_step and fused:
            modes.append("compiled step")
        cells += feedforward_cells("W1", sizes, batches, steps, {m: 0 for m in modes})
    if "W2" in args.only:
        compiled = ["compiled"] if fused else []
        cells += stdp_cells(
            batches, stdp_samples, stdp_steps, ["default", *fused, "run", *compiled]
        )
    if "W3" in args.only:
        delays = {
            "scalar 3": 3,
            "per-synapse 0..15": ("per-synapse", 15),
            "multi-step 0..15": ("per-synapse", 15),
            "whole-network 0..15": ("per-synapse", 15),
        }
        cells += feedforward_cells("W3", sizes[:1], batches, steps, delays)
    if "W4" in args.only:
        cells += conv_cells(conv_steps, 4 if args.smoke else 16, ["default", *fused])

    header = (
        f"{'workload':<9}{'size':<9}{'batch':>6} {'mode':<20}{'pysnn':>9}{'plain':>9}"
        f"{'matmul':>9}{'/plain':>8}{'/matmul':>8}{'state MB':>9}"
    )
    print(header)
    print("-" * len(header))
    references: dict[tuple, tuple[float, float]] = {}
    for cell in cells:
        ours = median_ms(cell.pysnn, cell.steps, reps)
        if cell.reference_key not in references:
            references[cell.reference_key] = (
                median_ms(cell.reference, cell.steps, reps),
                median_ms(cell.matmul_only, cell.steps, reps),
            )
        ref, mm = references[cell.reference_key]
        print(
            f"{cell.workload:<9}{cell.size:<9}{cell.batch:>6} {cell.mode:<20}{ours:>9.3f}"
            f"{ref:>9.3f}{mm:>9.3f}{ours / ref:>8.2f}{ours / mm:>8.2f}"
            f"{cell.state_bytes / 2**20:>9.1f}",
            flush=True,
        )
    print("times in ms per timestep (median); ratios < 1 mean PySNN is faster")


if __name__ == "__main__":
    main()
