r"""Spiking Heidelberg Digits with learnable delays, in the style of Hammouamri et al. (2023).

Hammouamri, I., Khalfaoui-Hassani, I. & Masquelier, T. (2023). Learning delays
in spiking neural networks using dilated convolutions with learnable spacings.
ICLR 2024 (arXiv:2306.17670); their SHD configuration (``best_config_SHD.py``
of github.com/Thvnvtos/SNN-delays) is what this script follows.

The data: the SHD files (:class:`pysnn.datasets.SHD`), 700 channels summed
in groups of 5 into 140, binned at 10 ms, each batch padded to its longest
sample.  **The SHD files cannot be downloaded on the machine this project is
developed on, so the full run has not been measured here**: get
``shd_train.h5`` and ``shd_test.h5`` (https://zenkelab.org/datasets/) and run

    python examples/shd.py --data path/to/folder_with_shd_h5_files
    python examples/shd.py --quick      # a small generated file in the SHD layout, seconds

The network: ``Input(140) -> Linear -> LIF(256) -> Linear -> LIF(256) ->
Linear -> LeakyIntegrator(20)``, every projection with learnable per-synapse
delays (:meth:`Linear.learn_delays <pysnn.connection.Linear.learn_delays>`,
0 to 250 ms, initialised uniformly, read through a Gaussian kernel whose
width shrinks from 12 steps to 0.23 steps over the first quarter of the
epochs, then stays).  The LIF neurons keep :math:`1 - \Delta t / \tau` of
their voltage per step (:math:`\tau` = 10.05 ms, :math:`\Delta t` = 10 ms, a
spike's input added in full: SpikingJelly's ``LIFNode`` with
``decay_input=False``), threshold 1, reset to 0 detached from the graph, and
the arctan surrogate of slope 5; the readout integrates with the same
factor.  Loss: the cross-entropy of the readout's softmax summed over time;
Adam, learning rate 1e-3 (one-cycle to 5e-3) for the weights (Kaiming-uniform
initialisation) and 100 times that, in steps, for the delays (cosine
annealing); 150 epochs of batches of 256.  Deviations from the paper: no
batch normalisation and no dropout (PySNN's network graph has neither), and
in ``eval()`` mode the delays are rounded to whole steps.

``--quick`` writes a small generated data set in the SHD layout (four classes
of rising or falling "chirps" across the 700 channels) with
:func:`pysnn.datasets.write_shd`, reads it back through the same reader and
trains the same network, smaller, for two epochs.  ``--generate N`` trains the
full network on ``N`` generated samples of 20 classes of 1 s chirps (about
the length of an SHD sample): what an epoch of the real data would cost,
not its accuracy.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pysnn.connection import Linear
from pysnn.datasets import SHD, SHD_CHANNELS, write_shd
from pysnn.network import SNNNetwork
from pysnn.neuron import DecayFactor, LeakyIntegrator, LIFNeuron, RatePopulation

#: printed next to the numbers of a --quick run
QUICK_NOTE = (
    "--quick: a reduced run that only shows that the pipeline runs; its numbers are not "
    "results (run without --quick for those)"
)


def write_chirps(path: Path, samples: int, classes: int, seed: int, duration: float = 0.3) -> None:
    """A data set in the SHD layout: each class a chirp across the channels.

    Class ``k`` starts near channel ``100 + 500 k / classes`` and rises or falls
    (alternating classes) by 200 channels over ``duration`` seconds, with a
    random onset of up to 0.1 s and a spread of 10 channels; 1000 spikes per
    sample.
    """
    rng = np.random.default_rng(seed)
    times, units, labels = [], [], []
    for i in range(samples):
        k = i % classes
        start = 100 + 500 * k / classes
        direction = 1 if k % 2 == 0 else -1
        onset = rng.uniform(0.0, 0.1)
        t = np.sort(rng.uniform(0.0, duration, 1000))
        u = start + direction * 200 * t / duration + rng.normal(0.0, 10.0, t.size)
        times.append(onset + t)
        units.append(np.clip(np.round(u), 0, SHD_CHANNELS - 1).astype(np.int64))
        labels.append(k)
    write_shd(path, times, units, labels, keys=[f"chirp-{k}" for k in range(classes)])


class DelayedSNN(SNNNetwork):
    """Two hidden LIF layers and a leaky-integrator readout, delays learned on every projection."""

    def __init__(self, inputs: int, classes: int, args: argparse.Namespace) -> None:
        super().__init__()
        dt = args.dt
        keep = DecayFactor(1.0 - dt / args.tau)  # v <- (1 - dt/tau) v + I per step
        lif = dict(
            thresh=1.0,
            tau_v=keep,
            dt=dt,
            integrator="impulse",
            surrogate=("arctan", args.slope),
            detach_reset=True,
        )
        # spike counts (a channel group may spike several times in a bin): graded input
        self.inp = RatePopulation((inputs,), dt=dt)
        sizes = [inputs] + [args.hidden] * args.layers
        self.fcs = torch.nn.ModuleList()
        pre = self.inp
        for i in range(args.layers):
            fc, post = Linear(sizes[i], sizes[i + 1], dt=dt), LIFNeuron((sizes[i + 1],), **lif)
            self.fcs.append(fc)
            self.add_module(f"lif{i + 1}", post)
            self.connect(pre, fc, post, name=f"layer{i + 1}")
            pre = post
        fc = Linear(args.hidden, classes, dt=dt)
        self.fcs.append(fc)
        self.readout = LeakyIntegrator((classes,), tau_v=keep, dt=dt, integrator="impulse")
        self.connect(pre, fc, self.readout, name="readout")
        gen = torch.Generator().manual_seed(args.seed)
        for fc in self.fcs:
            bound = math.sqrt(6.0 / fc.weight.shape[1])  # Kaiming uniform (ReLU gain)
            with torch.no_grad():
                fc.weight.uniform_(-bound, bound, generator=gen)
            fc.weight.requires_grad_(True)
            init = torch.rand(fc.weight.shape, generator=gen, dtype=torch.float64) * args.max_delay
            fc.learn_delays(args.max_delay, init=init, interpolation="gaussian", sigma=args.sigma)

    def delays(self) -> list[torch.nn.Parameter]:
        return [fc.delay_line.delay for fc in self.fcs]

    def set_sigma(self, sigma: float) -> None:
        for fc in self.fcs:
            fc.delay_line.sigma = sigma


def scores(net: DelayedSNN, x: torch.Tensor) -> torch.Tensor:
    """The readout's softmax summed over time, ``[batch, classes]`` (Hammouamri et al.'s "sum")."""
    return F.softmax(net.run(x, warn_silent=False), dim=-1).sum(0)


def evaluate(net: DelayedSNN, data: SHD, batch: int) -> float:
    net.eval()  # delays rounded to whole steps
    correct = 0
    with torch.no_grad():
        for x, y in data.batches(batch):
            correct += int((scores(net, x).argmax(1) == y).sum())
    net.train()
    return correct / len(data)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("data/shd"),
        help="folder with shd_train.h5 and shd_test.h5 (not downloadable here)",
    )
    parser.add_argument("--dt", type=float, default=10.0, help="time bin and timestep (ms)")
    parser.add_argument("--group", type=int, default=5, help="channels summed into one input")
    parser.add_argument("--hidden", type=int, default=256, help="LIF neurons per hidden layer")
    parser.add_argument("--layers", type=int, default=2, help="hidden layers")
    parser.add_argument("--tau", type=float, default=10.05, help="membrane time constant (ms)")
    parser.add_argument("--slope", type=float, default=5.0, help="arctan surrogate slope")
    parser.add_argument("--max-delay", type=float, default=250.0, help="largest delay (ms)")
    parser.add_argument("--sigma", type=float, default=12.0, help="first kernel width (steps)")
    parser.add_argument("--sigma-end", type=float, default=0.23, help="final width (steps)")
    parser.add_argument("--epochs", type=int, default=150, help="training epochs")
    parser.add_argument("--batch", type=int, default=256, help="batch size")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate, weights")
    parser.add_argument(
        "--lr-delay", type=float, default=1.0, help="Adam learning rate, delays (ms)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--generate",
        type=int,
        default=0,
        help="instead of --data: this many generated training samples in the SHD layout "
        "(20 classes of 1 s chirps, a quarter as many test samples), to time the full network",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="generated chirps in the SHD layout: 4 classes, 64 + 32 samples, 64 hidden, 2 epochs",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            args.hidden, args.epochs, args.batch, args.max_delay = 64, 2, 16, 100.0
            args.sigma = 5.0
            folder = Path(tmp)
            write_chirps(folder / "shd_train.h5", 64, 4, args.seed)
            write_chirps(folder / "shd_test.h5", 32, 4, args.seed + 1)
        elif args.generate > 0:
            folder = Path(tmp)
            write_chirps(folder / "shd_train.h5", args.generate, 20, args.seed, duration=1.0)
            test_samples = max(args.generate // 4, 1)
            write_chirps(folder / "shd_test.h5", test_samples, 20, args.seed + 1, duration=1.0)
        else:
            folder = args.data
        options = dict(dt=args.dt, channel_group=args.group)
        train_set = SHD(folder / "shd_train.h5", **options)
        test_set = SHD(folder / "shd_test.h5", **options)
        labels = int(max(train_set.labels.max(), test_set.labels.max())) + 1
        classes = max(len(train_set.classes or ()), labels)  # the file's class names, if any
        print(
            f"{len(train_set)} training and {len(test_set)} test samples, {classes} classes, "
            f"{train_set.out_channels} input channels, dt = {args.dt} ms"
        )
        result = train(args, train_set, test_set, classes)
        train_set.close()
        test_set.close()
    if args.quick:
        print(QUICK_NOTE)
    return result


def train(
    args: argparse.Namespace, train_set: SHD, test_set: SHD, classes: int
) -> dict[str, float]:
    net = DelayedSNN(train_set.out_channels, classes, args)
    initial = [d.detach().clone() for d in net.delays()]
    weights = [fc.weight for fc in net.fcs]
    opt_w = torch.optim.Adam(weights, lr=args.lr)
    opt_d = torch.optim.Adam(net.delays(), lr=args.lr_delay)
    sched_w = torch.optim.lr_scheduler.OneCycleLR(
        opt_w, max_lr=5 * args.lr, total_steps=args.epochs
    )
    sched_d = torch.optim.lr_scheduler.CosineAnnealingLR(opt_d, T_max=args.epochs)
    shrink = max(args.epochs // 4, 1)  # sigma shrinks over the first quarter of the epochs
    gen = torch.Generator().manual_seed(args.seed)
    begin = time.perf_counter()
    for epoch in range(args.epochs):
        net.set_sigma(args.sigma * (args.sigma_end / args.sigma) ** min(epoch / shrink, 1.0))
        total, seen = 0.0, 0
        for x, y in train_set.batches(args.batch, shuffle=True, generator=gen):
            loss = F.cross_entropy(scores(net, x), y)
            opt_w.zero_grad()
            opt_d.zero_grad()
            loss.backward()
            opt_w.step()
            opt_d.step()
            with torch.no_grad():
                for delay in net.delays():
                    delay.clamp_(0.0, args.max_delay)
            total += float(loss.detach()) * len(y)
            seen += len(y)
        sched_w.step()
        sched_d.step()
        acc = evaluate(net, test_set, args.batch)
        print(f"  epoch {epoch + 1}: loss {total / seen:.3f}, test accuracy {100 * acc:.1f} %")
    seconds = time.perf_counter() - begin
    moved = float(
        torch.cat([(d.detach() - i).abs().flatten() for d, i in zip(net.delays(), initial)]).mean()
    )
    print(
        f"test accuracy {100 * acc:.1f} % (chance {100 / classes:.1f} %), {seconds:.1f} s of "
        f"training; delays moved by {moved:.2f} ms on average"
    )
    return {
        "test_accuracy": acc,
        "seconds": seconds,
        "delay_change_ms": moved,
        "loss": total / seen,
    }


if __name__ == "__main__":
    main()
