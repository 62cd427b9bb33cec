r"""Learnable per-synapse delays on a task where only relative spike timing tells the classes apart.

The data is generated here.  Every sample has ``--channels`` input channels
that each fire exactly one spike; class :math:`k` has its own pattern of
offsets :math:`o_{k,c} \in [0, \text{span})` (one per channel, drawn once), and a
sample of class :math:`k` fires channel :math:`c` at :math:`t_0 + o_{k,c}`
(plus a jitter of up to ``--jitter`` steps), with :math:`t_0` random.  Every
class has the same number of spikes on every channel: only their relative
timing says which class a sample belongs to.

The network is one projection: ``Input -> Linear (per-synapse delays) ->
LeakyIntegrator`` (one non-spiking unit per class, :math:`\tau` = ``--tau``
ms), trained by backpropagation through time with the cross-entropy of each
unit's maximum voltage over time.  With learnable delays
(:meth:`Linear.learn_delays <pysnn.connection.Linear.learn_delays>`; while
training, a delay reads the ring buffer's taps through a Gaussian kernel whose
width shrinks from ``--sigma`` steps to a quarter step over the epochs, as in
Hammouamri et al. 2023, or by ``--interpolation linear`` between the two
whole steps around it) a unit can delay each channel so that its class's
spikes arrive together; with the
delays fixed at 0 the same network only sees each channel's spike decayed by
the time since it fired.  Test accuracy is measured in ``eval()`` mode, where
the learned delays are rounded to whole steps and read from the ring buffer
(inference).

    python examples/learned_delays.py              # both variants, about 20 s on 1 core
    python examples/learned_delays.py --quick      # a few seconds
    python examples/learned_delays.py --delays fixed

Measured with ``OMP_NUM_THREADS=1 taskset -c 1 python examples/learned_delays.py``
(seed 0, 1 core of a 2-core CPU shared with other jobs, 2026-12-07): see
``docs/gradients.rst`` for the numbers.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from pysnn.connection import Linear
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LeakyIntegrator

#: printed next to the numbers of a --quick run
QUICK_NOTE = (
    "--quick: a reduced run that only shows that the pipeline runs; its numbers are not "
    "results (run without --quick for those)"
)


def timing_task(
    samples: int,
    classes: int,
    channels: int,
    gap: int,
    steps: int,
    jitter: int,
    gen: torch.Generator,
    offsets: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(spikes [steps, samples, channels], labels [samples], offsets [classes, channels])``.

    ``offsets`` (steps) are drawn when not given: pass the training set's to
    draw a test set of the same classes.
    """
    if offsets is None:  # each class: the channels in its own order, ``gap`` steps apart
        order = torch.stack([torch.randperm(channels, generator=gen) for _ in range(classes)])
        offsets = order * gap
    span = int(offsets.max()) + 1
    labels = torch.randint(0, classes, (samples,), generator=gen)
    latest = steps - span - jitter
    start = torch.randint(jitter, max(latest, jitter + 1), (samples, 1), generator=gen)
    shake = torch.randint(-jitter, jitter + 1, (samples, channels), generator=gen)
    times = (start + offsets[labels] + shake).clamp(0, steps - 1)
    spikes = torch.zeros(steps, samples, channels)
    spikes[times, torch.arange(samples).unsqueeze(1), torch.arange(channels)] = 1.0
    return spikes, labels, offsets


class DelayNet(SNNNetwork):
    """``Input(channels) -> Linear (delays) -> LeakyIntegrator(classes)``."""

    def __init__(
        self,
        channels: int,
        classes: int,
        tau: float,
        max_delay: int | None,
        interpolation: str = "linear",
        sigma: float = 1.0,
    ) -> None:
        super().__init__()
        self.inp = Input((channels,))
        self.fc = Linear(channels, classes)
        self.readout = LeakyIntegrator((classes,), tau_v=tau)
        self.connect(self.inp, self.fc, self.readout)
        with torch.no_grad():
            self.fc.weight.normal_(0.5, 0.1)
        self.fc.weight.requires_grad_(True)
        if max_delay is not None:  # learnable, initialised in the middle of the range
            self.fc.learn_delays(
                float(max_delay), init=0.5 * max_delay, interpolation=interpolation, sigma=sigma
            )


def scores(net: DelayNet, spikes: torch.Tensor) -> torch.Tensor:
    """Each class unit's maximum voltage over time, ``[samples, classes]``."""
    return net.run(spikes, warn_silent=False).amax(0)


def accuracy(net: DelayNet, spikes: torch.Tensor, labels: torch.Tensor, batch: int) -> float:
    net.eval()  # learned delays rounded to whole steps: inference
    correct = 0
    with torch.no_grad():
        for i in range(0, len(labels), batch):
            out = scores(net, spikes[:, i : i + batch])
            correct += int((out.argmax(1) == labels[i : i + batch]).sum())
    net.train()
    return correct / len(labels)


def train(
    args: argparse.Namespace, learned: bool, data: tuple[torch.Tensor, ...]
) -> dict[str, object]:
    train_x, train_y, test_x, test_y = data
    torch.manual_seed(args.seed)
    max_delay = (args.channels - 1) * args.gap if learned else None
    net = DelayNet(args.channels, args.classes, args.tau, max_delay, args.interpolation, args.sigma)
    groups = [{"params": [net.fc.weight], "lr": args.lr}]
    if learned:
        groups.append({"params": [net.fc.delay_line.delay], "lr": args.lr_delay})
    optimizer = torch.optim.Adam(groups)
    history = []
    begin = time.perf_counter()
    gen = torch.Generator().manual_seed(args.seed + 1)
    for epoch in range(args.epochs):
        if learned and args.interpolation == "gaussian":  # sigma shrinks to 1/4 step (DCLS)
            share = epoch / max(args.epochs - 1, 1)
            net.fc.delay_line.sigma = args.sigma * (0.25 / args.sigma) ** share
        order = torch.randperm(len(train_y), generator=gen)
        total = 0.0
        for i in range(0, len(order), args.batch):
            pick = order[i : i + args.batch]
            loss = F.cross_entropy(args.gain * scores(net, train_x[:, pick]), train_y[pick])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if learned:
                with torch.no_grad():  # keep the delays in their range
                    net.fc.delay_line.delay.clamp_(0.0, float((args.channels - 1) * args.gap))
            total += float(loss.detach()) * len(pick)
        acc = accuracy(net, test_x, test_y, args.batch)
        history.append((total / len(order), acc))
        print(
            f"  [{'learned' if learned else 'fixed 0'}] epoch {epoch + 1}: "
            f"loss {total / len(order):.3f}, test accuracy {100 * acc:.1f} %"
        )
    seconds = time.perf_counter() - begin
    if learned:
        net.fc.round_delays()  # whole steps from now on: ordinary per-synapse delays
    return {"net": net, "history": history, "accuracy": history[-1][1], "seconds": seconds}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--classes", type=int, default=4, help="number of timing patterns")
    parser.add_argument("--channels", type=int, default=8, help="input channels (one spike each)")
    parser.add_argument("--gap", type=int, default=3, help="steps between a pattern's spikes")
    parser.add_argument("--steps", type=int, default=48, help="timesteps per sample (1 ms)")
    parser.add_argument("--jitter", type=int, default=1, help="random shift of each spike (steps)")
    parser.add_argument("--train", type=int, default=2048, help="training samples")
    parser.add_argument("--test", type=int, default=1024, help="test samples")
    parser.add_argument("--epochs", type=int, default=15, help="training epochs")
    parser.add_argument("--batch", type=int, default=64, help="batch size")
    parser.add_argument("--tau", type=float, default=1.0, help="readout time constant (ms)")
    parser.add_argument("--gain", type=float, default=4.0, help="scale of the scores (logits)")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate, weights")
    parser.add_argument(
        "--lr-delay", type=float, default=0.3, help="Adam learning rate, delays (ms)"
    )
    parser.add_argument(
        "--delays",
        choices=("both", "learned", "fixed"),
        default="both",
        help="train with learnable delays, with delays fixed at 0, or both",
    )
    parser.add_argument(
        "--interpolation",
        choices=("linear", "gaussian"),
        default="gaussian",
        help="kernel of the delays between whole steps while training",
    )
    parser.add_argument(
        "--sigma",
        type=float,
        default=6.0,
        help="first width of the gaussian kernel (steps), shrunk to 0.25 over the epochs",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (data and weights)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--quick", action="store_true", help="3 epochs of 1024 samples, 512 test samples"
    )
    parser.add_argument("--plot", type=Path, default=Path("learned_delays.png"), help="figure file")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.train, args.test = 3, 1024, 512
    torch.set_num_threads(args.threads)

    gen = torch.Generator().manual_seed(args.seed)
    train_x, train_y, offsets = timing_task(
        args.train, args.classes, args.channels, args.gap, args.steps, args.jitter, gen
    )
    test_x, test_y, _ = timing_task(
        args.test, args.classes, args.channels, args.gap, args.steps, args.jitter, gen, offsets
    )
    data = (train_x, train_y, test_x, test_y)
    runs = {}
    for variant in ("learned", "fixed"):
        if args.delays in (variant, "both"):
            runs[variant] = train(args, variant == "learned", data)
    results = {}
    for variant, run in runs.items():
        name = "learned delays" if variant == "learned" else "delays fixed at 0"
        print(
            f"{name}: test accuracy {100 * run['accuracy']:.1f} % "
            f"({run['seconds']:.1f} s of training)"
        )
        results[variant] = run["accuracy"]
    if "learned" in runs:
        learned = runs["learned"]["net"].fc.delay_steps
        print(f"learned delays (steps) of class 0's unit: {learned[0].tolist()}")
        print(f"its pattern's offsets:                    {offsets[0].tolist()}")
    if args.quick:
        print(QUICK_NOTE)
    _plot(args.plot, runs, offsets)
    return results


def _plot(path: Path, runs: dict[str, dict[str, object]], offsets: torch.Tensor) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed, so the figure is not saved (pip install matplotlib)")
        return
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for variant, run in runs.items():
        acc = [100 * a for _, a in run["history"]]
        label = "learned delays" if variant == "learned" else "delays fixed at 0"
        axes[0].plot(range(1, len(acc) + 1), acc, marker="o", label=label)
    axes[0].set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(0, 102))
    axes[0].legend()
    if "learned" in runs:
        steps = runs["learned"]["net"].fc.delay_steps[0]
        axes[1].scatter(offsets[0], steps, label="class 0")
        axes[1].set(xlabel="offset of the channel's spike (steps)", ylabel="learned delay (steps)")
        axes[1].set_title("delays align the pattern", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"figure saved to {path}")


if __name__ == "__main__":
    main()
