r"""Surrogate-gradient training on the random-manifold task of Zenke & Vogels (2021).

The data set is generated here (:func:`pysnn.datasets.random_manifold_task`):
10 classes, each a smooth random manifold (intrinsic dimension 1, smoothness
:math:`\alpha = 1`) embedded in the firing times of 20 input neurons that fire
exactly one spike each in the first 50 ms of a 100 ms sample (1 ms steps),
1000 samples per class, split 80/10/10 into training, validation and test
sets.  Only the relative timing of the spikes separates the classes.

The network follows the reference script of the paper (one hidden layer):
``Input(20) -> Linear -> exponential synapse (5 ms) -> LIF(32) (10 ms,
threshold 1, reset to 0, reset detached from the graph, SuperSpike surrogate
of slope 100) -> Linear -> exponential synapse (5 ms) -> LeakyIntegrator(10)
(20 ms)``, trained by backpropagation through time on the cross-entropy of
each readout unit's maximum voltage over time, with batches of 250 for 50
epochs, learning rate 0.01, and two activity regularisers of the hidden layer
(a lower bound per neuron, an upper bound of the population; see
``regularizer``).  The paper's text was not accessible here: these values
are the defaults of its published reference script and of the ``stork``
library's ``make_tempo_randman``.  Deviations: Adam instead of the paper's
SMORMS3 optimiser, weights initialised from
:math:`N(0, (g / \sqrt{n_{in}})^2)` with ``--init-gain`` :math:`g`, the
regularisers' normalisation is ours, and synapse and membrane are integrated
exactly over each step (PySNN's ``integrator="exact"``), not necessarily by
the reference code's discrete update.

    python examples/random_manifold.py              # the full task, a few minutes on 1 core
    python examples/random_manifold.py --quick      # 2 classes, seconds

Measured results (command, accuracy, wall time, machine) are in
``docs/examples.rst``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from pysnn.connection import Linear
from pysnn.datasets import random_manifold_task
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LeakyIntegrator, LIFNeuron
from pysnn.synapse import ExponentialSynapse

#: printed next to the numbers of a --quick run
QUICK_NOTE = (
    "--quick: a reduced run that only shows that the pipeline runs; its numbers are not "
    "results (run without --quick for those)"
)


class ManifoldNet(SNNNetwork):
    """``Input -> Linear -> synapse -> LIF -> Linear -> synapse -> LeakyIntegrator``."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__()
        self.inp = Input((args.inputs,))
        self.fc1 = Linear(args.inputs, args.hidden)
        self.hidden = LIFNeuron(
            (args.hidden,),
            thresh=1.0,
            tau_v=args.tau_mem,
            surrogate=("superspike", args.slope),
            detach_reset=True,
        )
        self.fc2 = Linear(args.hidden, args.classes)
        self.readout = LeakyIntegrator((args.classes,), tau_v=args.tau_readout)
        syn1 = ExponentialSynapse((args.hidden,), tau_syn=args.tau_syn)
        syn2 = ExponentialSynapse((args.classes,), tau_syn=args.tau_syn)
        self.connect(self.inp, self.fc1, self.hidden, synapse=syn1)
        self.connect(self.hidden, self.fc2, self.readout, synapse=syn2)
        with torch.no_grad():
            for fc, fan_in in ((self.fc1, args.inputs), (self.fc2, args.hidden)):
                fc.weight.normal_(0.0, args.init_gain / fan_in**0.5)
                fc.weight.requires_grad_(True)


def forward(
    net: ManifoldNet, x: torch.Tensor, count: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(scores [batch, classes], hidden spike counts [batch, hidden])`` of a batch ``x [T, batch, inputs]``.

    The scores are each readout unit's maximum voltage over time.  Counting
    the hidden spikes reads them after every step (the step strategy); with
    ``count=False`` the run may use windows (faster) and the counts are ``None``.
    """
    if not count:
        return net.run(x, warn_silent=False).amax(0), None
    counts = []
    out = net.run(x, warn_silent=False, callback=lambda t, o: counts.append(net.hidden.spikes))
    return out.amax(0), torch.stack(counts).sum(0)


def regularizer(counts: torch.Tensor, args: argparse.Namespace) -> torch.Tensor:
    r"""Activity regularisers on the hidden spike counts ``counts [batch, hidden]`` of a batch.

    .. math::
        L_{low} = \lambda_{low} \frac{1}{N} \sum_i [\theta_{low} - \bar c_i]_+^2, \qquad
        L_{high} = \lambda_{high} \frac{1}{B} \sum_b [\tfrac{1}{N} \textstyle\sum_i c_{bi} - \theta_{high}]_+

    with :math:`\bar c_i` neuron :math:`i`'s count averaged over the batch: a
    neuron that stops firing is pushed back (lower bound, per neuron), a
    population firing more than :math:`\theta_{high}` spikes per neuron and
    sample is pushed down (upper bound).
    """
    low = F.relu(args.low_threshold - counts.mean(0)).square().mean() * args.low_strength
    high = F.relu(counts.mean(1) - args.high_threshold).mean() * args.high_strength
    return low + high


def evaluate(net: ManifoldNet, x: torch.Tensor, y: torch.Tensor, batch: int) -> tuple[float, float]:
    """``(accuracy, hidden spikes per neuron and sample)`` on ``x [T, samples, inputs]``."""
    net.eval()
    correct, spikes = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            scores, counts = forward(net, x[:, i : i + batch])
            correct += int((scores.argmax(1) == y[i : i + batch]).sum())
            spikes += float(counts.sum())
    net.train()
    return correct / len(y), spikes / (len(y) * net.hidden.cells_shape[0])


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--classes", type=int, default=10, help="number of classes (manifolds)")
    parser.add_argument("--inputs", type=int, default=20, help="input neurons (one spike each)")
    parser.add_argument("--samples", type=int, default=1000, help="samples per class")
    parser.add_argument("--manifold-dim", type=int, default=1, help="intrinsic manifold dimension")
    parser.add_argument("--alpha", type=float, default=1.0, help="manifold smoothness exponent")
    parser.add_argument("--steps", type=int, default=100, help="timesteps per sample (1 ms)")
    parser.add_argument(
        "--spike-steps", type=int, default=50, help="the input spikes fall in these first steps"
    )
    parser.add_argument("--hidden", type=int, default=32, help="hidden LIF neurons")
    parser.add_argument("--tau-mem", type=float, default=10.0, help="hidden membrane tau (ms)")
    parser.add_argument("--tau-syn", type=float, default=5.0, help="synaptic tau (ms)")
    parser.add_argument("--tau-readout", type=float, default=20.0, help="readout tau (ms)")
    parser.add_argument("--slope", type=float, default=100.0, help="SuperSpike surrogate slope")
    parser.add_argument("--init-gain", type=float, default=10.0, help="weight std * sqrt(fan-in)")
    parser.add_argument("--epochs", type=int, default=50, help="training epochs")
    parser.add_argument("--batch", type=int, default=250, help="batch size")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate")
    parser.add_argument(
        "--low-strength", type=float, default=100.0, help="lower-bound regulariser strength"
    )
    parser.add_argument(
        "--low-threshold", type=float, default=1e-3, help="lower bound (spikes per neuron)"
    )
    parser.add_argument(
        "--high-strength", type=float, default=0.06, help="upper-bound regulariser strength"
    )
    parser.add_argument(
        "--high-threshold", type=float, default=100.0, help="upper bound (spikes per neuron)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the order")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the generated data set")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 classes of 200 samples, batches of 40, 5 epochs, learning rate 0.03, "
        "no regularisers",
    )
    parser.add_argument(
        "--plot", type=Path, default=Path("random_manifold.png"), help="figure file"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.classes, args.samples, args.batch, args.epochs, args.lr = 2, 200, 40, 5, 3e-2
        args.low_strength = args.high_strength = 0.0  # no regularisers: windows, faster
    torch.set_num_threads(args.threads)

    begin = time.perf_counter()
    x, y = random_manifold_task(
        classes=args.classes,
        inputs=args.inputs,
        samples_per_class=args.samples,
        manifold_dim=args.manifold_dim,
        alpha=args.alpha,
        steps=args.steps,
        spike_steps=args.spike_steps,
        seed=args.data_seed,
    )
    n_train, n_valid = int(0.8 * len(y)), int(0.1 * len(y))
    train_x, train_y = x[:, :n_train], y[:n_train]
    valid = (x[:, n_train : n_train + n_valid], y[n_train : n_train + n_valid])
    test = (x[:, n_train + n_valid :], y[n_train + n_valid :])
    print(
        f"{args.classes} classes, {len(y)} samples ({n_train} train, {n_valid} valid, "
        f"{len(test[1])} test), generated in {time.perf_counter() - begin:.1f} s"
    )

    torch.manual_seed(args.seed)
    net = ManifoldNet(args)
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    regularize = args.low_strength > 0 or args.high_strength > 0
    history = []
    begin = time.perf_counter()
    for epoch in range(args.epochs):
        order = torch.randperm(n_train, generator=gen)
        total = 0.0
        for i in range(0, n_train, args.batch):
            pick = order[i : i + args.batch]
            scores, counts = forward(net, train_x[:, pick], count=regularize)
            loss = F.cross_entropy(scores, train_y[pick])
            if counts is not None:
                loss = loss + regularizer(counts, args)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(pick)
        acc, rate = evaluate(net, *valid, args.batch)
        history.append((total / n_train, acc))
        print(
            f"  epoch {epoch + 1}: loss {total / n_train:.3f}, validation accuracy "
            f"{100 * acc:.1f} %, {rate:.2f} hidden spikes per neuron and sample"
        )
    seconds = time.perf_counter() - begin
    test_acc, rate = evaluate(net, *test, args.batch)
    print(
        f"test accuracy {100 * test_acc:.1f} % (chance {100 / args.classes:.1f} %), "
        f"{rate:.2f} hidden spikes per neuron and sample, {seconds:.1f} s of training"
    )
    if args.quick:
        print(QUICK_NOTE)
    _plot(args.plot, history)
    return {"test_accuracy": test_acc, "valid_accuracy": history[-1][1], "seconds": seconds}


def _plot(path: Path, history: list[tuple[float, float]]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed, so the figure is not saved (pip install matplotlib)")
        return
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = range(1, len(history) + 1)
    axes[0].plot(epochs, [loss for loss, _ in history], marker="o")
    axes[0].set(xlabel="epoch", ylabel="training loss")
    axes[1].plot(epochs, [100 * acc for _, acc in history], marker="o")
    axes[1].set(xlabel="epoch", ylabel="validation accuracy (%)", ylim=(0, 102))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"figure saved to {path}")


if __name__ == "__main__":
    main()
