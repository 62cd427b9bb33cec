"""Motion selectivity learned without labels: SS-Conv -> Merge -> MS-Conv -> Pooling -> Dense.

The hierarchy of Paredes-Vallés, Scheper & de Croon (TPAMI 2019, cuSNN), trained
layer by layer with their STDP rule (:class:`~pysnn.learning.FedeSTDP`) and neuron
(:class:`~pysnn.neuron.FedeNeuron`) on event streams of the library's event-camera
simulator (:mod:`pysnn.datasets.event_camera`): periodic random textures moving in 8
directions (0, 45, ..., 315 degrees) at 3 speeds (0.25, 0.5, 1 px/ms), seen by a
``--size`` x ``--size`` DVS (contrast threshold 0.15), binned into 1 ms frames
``[T, 2, H, W]`` (ON/OFF, at most one spike per pixel and ms).

Network (``dt`` = 1 ms):

* **SS-Conv**: ``Conv2d`` 2 -> ``--ss`` maps, 5x5 (single synapse per pixel), FedeNeuron;
* **Merge**: :class:`~pysnn.connection.Merge` sums the maps (unit weights) onto one map
  of integrate-and-fire neurons that fire when any map fired;
* **MS-Conv**: :class:`~pysnn.connection.Conv2dSep` 1 -> ``--ms`` maps, 5x5, delays
  0, 2, 4, 6, 8 ms, a free spatial kernel per delay (``separable=False``), FedeNeuron;
* **Pooling**: spiking max pooling 8x8 (:class:`~pysnn.connection.MaxPool2d`);
* **Dense**: ``Linear`` to ``--dense`` FedeNeurons.

In the two convolutional layers only the map with the largest input current at a
position integrates it (lateral inhibition, winner-take-all across maps), in the
Dense layer only the neuron with the largest current.  The presynaptic-trace term
of the FedeNeuron is :math:`X = \beta \\sum_{RF} x` with :math:`\beta` = 0.02 (the
plain sum over a 5x5x5 receptive field would silence every neuron).  Every trace is
nearest-spike (``trace_mode="saturating"``: reset to 1 at a spike): with additive
traces the most active pixel of a receptive field dominates FedeSTDP's normalisation
by the maximum, and the MS-Conv kernels of the delays > 0 collapse to ``w_init - 0.5``
everywhere (measured: only the 0 ms kernel kept positive weights).  Each layer
learns with FedeSTDP (``w_init`` = ``--w-init`` = 0.25, ``a`` = 0, ``lr`` = ``--lr``)
while the layers below are frozen, on ``--train`` sequences in batches of ``--batch``;
meanwhile a homeostasis moves the threshold of each map towards a target rate (per
neuron and ms: 0.5 % in SS-Conv, 0.03 % in MS-Conv, 5 % in Dense), so that every map
stays in use.  (With 0.5 % in MS-Conv the thresholds sink to their floor, every map
fires on single input spikes and, after about 50 training sequences, the kernels of
the delays > 0 collapse to ``w_init - 0.5``: measured.)  The weights start uniform in [0, 0.5].  The **baseline**
(``random``) is a copy of the network taken before learning that goes through the same
layer-by-layer schedule with the homeostasis only: its kernels stay the initial random
ones, its thresholds are calibrated the same way.

Measured, on held-out sequences (new textures), for the trained network and for the
same network with its initial random kernels (same run, same thresholds):

* the **direction-selectivity index** of every MS-Conv map (spikes summed over the
  map) and Dense neuron, :math:`DSI = (R_{pref} - R_{opp}) / (R_{pref} + R_{opp})`
  with :math:`R(\\theta)` the mean spike count for motion in direction
  :math:`\\theta` (all speeds), :math:`R_{pref}` its maximum and :math:`R_{opp}` the
  response to the opposite direction (neurons that never fire are counted apart);
  how many exceed 0.5;
* the accuracy of a linear readout (logistic regression, scikit-learn, else a torch
  softmax regression) of the **direction** (8 classes, chance 12.5 %) from the Dense
  spike counts (``log1p``, z-scored), trained on ``--readout`` sequences and tested
  on ``--test`` others.

Run::

    python examples/motion_hierarchy.py --threads 1
    python examples/motion_hierarchy.py --quick      # seconds

Measured with ``python examples/motion_hierarchy.py --threads 1`` (seed 0, 2-core CPU
VM shared with other jobs, 2026-12-07; 255 s wall time): MS-Conv mean DSI **0.48**, 9 of 16 maps above 0.5 (random kernels: 0.22, none);
Dense mean DSI 0.50, 7 of 16 above 0.5 (random: 0.24, 1); direction readout 19.2 %
from the Dense counts (random 14.2 %, chance 12.5 %) and 86.7 % from the MS-Conv map
counts (random 64.2 %).  See ``docs/examples.rst`` for what the kernels look like.

Figure (``--plot``, by default ``motion_hierarchy.png`` in the working directory): the
SS-Conv kernels (ON minus OFF weights), the MS-Conv
spatiotemporal kernels (one row per map, one column per delay) and the polar tuning
curves of the Dense neurons.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from pysnn.connection import Conv2d, Conv2dSep, Linear, MaxPool2d, Merge
from pysnn.datasets import moving_events, moving_texture, random_texture, to_frames
from pysnn.learning import FedeSTDP
from pysnn.network import SNNNetwork
from pysnn.neuron import FedeNeuron, IFNeuron, Input

DT = 1.0
DIRECTIONS = tuple(range(0, 360, 45))
SPEEDS = (0.25, 0.5, 1.0)
DELAYS = (0.0, 2.0, 4.0, 6.0, 8.0)

#: printed next to the numbers of a --quick run
QUICK_NOTE = (
    "--quick: a reduced run that only shows that the pipeline runs; its numbers are not "
    "results (run without --quick for those)"
)


def winner_take_all(current: torch.Tensor, dim: int) -> torch.Tensor:
    """Keep, along ``dim``, only the largest input current (ties keep all); others get 0."""
    top = current.amax(dim, keepdim=True)
    return torch.where(current >= top, current, torch.zeros_like(current))


class MotionHierarchy(SNNNetwork):
    """SS-Conv -> Merge -> MS-Conv -> max pooling -> Dense (see the module docstring)."""

    def __init__(
        self, size: int, n_ss: int, n_ms: int, n_dense: int, pool: int, adapt: float = 0.02
    ) -> None:
        super().__init__()
        self.adapt = adapt
        fede = dict(
            dt=DT, tau_v=5.0, tau_t=5.0, alpha_v=1.0, duration_refrac=1.0, trace_mode="saturating"
        )
        self.inp = Input(
            (2, size, size),
            DT,
            alpha_t=1.0,
            tau_t=5.0,
            update_type="exact",
            trace_mode="saturating",
        )
        self.ss = Conv2d(2, n_ss, 5, padding=2, dt=DT)
        self.n_ss = FedeNeuron((n_ss, size, size), thresh=torch.full((n_ss, 1, 1), 0.2), **fede)
        self.merge = Merge(n_ss, dt=DT)
        self.n_merge = IFNeuron(
            (1, size, size),
            thresh=0.5,
            dt=DT,
            tau_t=5.0,
            integrator="exact",
            trace_mode="saturating",
        )
        self.ms = Conv2dSep(1, n_ms, 5, DELAYS, separable=False, padding=2, dt=DT)
        self.n_ms = FedeNeuron((n_ms, size, size), thresh=torch.full((n_ms, 1, 1), 0.2), **fede)
        self.pool = MaxPool2d(pool)
        pooled = n_ms * (size // pool) ** 2
        self.fc = Linear(pooled, n_dense, dt=DT)
        self.n_fc = FedeNeuron((n_dense,), thresh=torch.full((n_dense,), 0.2), **fede)
        self.add_layer("ss", self.ss, self.n_ss)
        self.add_layer("ms", self.ms, self.n_ms, pre=self.n_merge)
        self.add_layer("fc", self.fc, self.n_fc)
        for conn in (self.ss, self.ms, self.fc):
            conn.reset_weights("uniform", a=0.0, b=0.5)

    def forward(self, frame: torch.Tensor) -> tuple[torch.Tensor, ...]:
        s, x = self.inp(frame)
        i, x = self.ss(s, x)
        s1, x1 = self.n_ss(winner_take_all(i, 1), self.adapt * self.ss.receptive_field_sum(x))
        i, _ = self.merge(s1, x1)
        s2, x2 = self.n_merge(i)
        i, x = self.ms(s2, x2)
        s3, x3 = self.n_ms(winner_take_all(i, 1), self.adapt * self.ms.receptive_field_sum(x))
        s4, x4 = self.pool(s3, x3)
        i, x = self.fc(s4.flatten(1), x4.flatten(1))
        s5, _ = self.n_fc(winner_take_all(i, 1), self.adapt * self.fc.receptive_field_sum(x))
        return s1, s3, s5


def sequence(direction: float, speed: float, size: int, steps: int, seed: int) -> torch.Tensor:
    """``[steps, 2, size, size]`` spikes of a random texture moving at ``direction``, ``speed``."""
    rng = np.random.default_rng(seed)
    texture = random_texture(64, scale=2.0, contrast=0.8, seed=seed)
    frames = moving_texture(
        texture, direction, speed, size, duration_ms=steps, dt_ms=DT, offset=rng.uniform(0, 64, 2)
    )
    events = moving_events(frames, DT, threshold=0.15)
    binned = to_frames(events, (size, size), bin_us=1000 * DT, t_start=0, t_end=steps * 1000)
    return binned.clamp(max=1.0)


def stimuli(n: int, size: int, steps: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """``n`` sequences cycling over directions and speeds: ``[steps, n, 2, H, W]``, direction ids."""
    labels = np.arange(n) % len(DIRECTIONS)
    speeds = (np.arange(n) // len(DIRECTIONS)) % len(SPEEDS)
    data = [
        sequence(DIRECTIONS[d], SPEEDS[v], size, steps, seed * 100_003 + k)
        for k, (d, v) in enumerate(zip(labels, speeds))
    ]
    return torch.stack(data, 1), labels


#: homeostasis: target spikes per neuron and step of each trained layer, and its rate
TARGET = {"ss": 0.005, "ms": 0.0003, "fc": 0.05}
HOMEOSTASIS = {"ss": 0.2, "ms": 0.2, "fc": 0.01}


def train_layer(
    net: MotionHierarchy,
    layer: str,
    data: torch.Tensor,
    batch: int,
    lr: float,
    w_init: float,
    learn: bool = True,
) -> None:
    """FedeSTDP on one layer (the others frozen) over ``data`` ``[T, N, ...]`` in batches.

    Every step, the threshold of each map (neuron) moves by
    ``HOMEOSTASIS * (rate - TARGET)`` (``rate``: spikes per neuron of the map in that
    step, mean over the batch), so that every map stays in use.  ``learn=False``:
    the homeostasis only (the baseline with the initial random kernels).
    """
    neuron = net.layers[layer].neuron
    rule = FedeSTDP({layer: net.layers[layer]}, lr=lr, w_init=w_init, a=0.0)
    dims = (0, 2, 3) if neuron.spikes.dim() == 4 else (0,)
    for start in range(0, data.shape[1], batch):
        net.reset_state()
        for t in range(data.shape[0]):
            net(data[t, start : start + batch])
            if learn:
                rule.step()
            rate = neuron.spikes.mean(dims).view(neuron.thresh.shape)
            neuron.thresh.add_(HOMEOSTASIS[layer] * (rate - TARGET[layer])).clamp_(min=0.01)


@torch.no_grad()
def responses(
    net: MotionHierarchy, data: torch.Tensor, batch: int
) -> tuple[np.ndarray, np.ndarray]:
    """Spike counts per sequence: MS-Conv maps ``(N, n_ms)`` and Dense neurons ``(N, n_dense)``."""
    ms, fc = [], []
    for start in range(0, data.shape[1], batch):
        net.reset_state()
        chunk = data[:, start : start + batch]
        count_ms = count_fc = 0
        for t in range(chunk.shape[0]):
            _, s3, s5 = net(chunk[t])
            count_ms = count_ms + s3.sum((2, 3))
            count_fc = count_fc + s5
        ms.append(count_ms)
        fc.append(count_fc)
    return torch.cat(ms).numpy(), torch.cat(fc).numpy()


def tuning(counts: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean count per direction ``(n_directions, n_units)``."""
    return np.stack([counts[labels == d].mean(0) for d in range(len(DIRECTIONS))])


def dsi(curve: np.ndarray) -> np.ndarray:
    """DSI per unit (NaN for units that never fire): (R_pref - R_opp) / (R_pref + R_opp)."""
    pref = curve.argmax(0)
    opposite = (pref + len(DIRECTIONS) // 2) % len(DIRECTIONS)
    units = np.arange(curve.shape[1])
    r_pref, r_opp = curve[pref, units], curve[opposite, units]
    total = r_pref + r_opp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (r_pref - r_opp) / total, np.nan)


def readout_accuracy(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, seed: int
) -> float:
    """Accuracy of a linear classifier on ``log1p`` counts, z-scored with the training statistics."""
    train_x, test_x = np.log1p(train_x), np.log1p(test_x)
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:  # a softmax regression by L-BFGS
        return _torch_readout(train_x, train_y, test_x, test_y, seed)
    model = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
    model.fit(train_x, train_y)
    return float((model.predict(test_x) == test_y).mean())


def _torch_readout(train_x, train_y, test_x, test_y, seed: int) -> float:
    torch.manual_seed(seed)
    x = torch.tensor(train_x, dtype=torch.float64)
    y = torch.tensor(train_y)
    w = torch.zeros(x.shape[1], len(DIRECTIONS), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(len(DIRECTIONS), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w + b, y) + 0.5 * (w**2).sum() / len(y)
        loss.backward()
        return loss

    opt.step(closure)
    pred = (torch.tensor(test_x, dtype=torch.float64) @ w + b).argmax(1).numpy()
    return float((pred == test_y).mean())


def evaluate(net, readout, test, batch, seed) -> dict[str, float]:
    (train_data, train_y), (test_data, test_y) = readout, test
    ms_train, fc_train = responses(net, train_data, batch)
    ms_test, fc_test = responses(net, test_data, batch)
    out: dict[str, float] = {}
    for name, counts in (("ms", ms_test), ("dense", fc_test)):
        index = dsi(tuning(counts, test_y))
        active = ~np.isnan(index)
        out[f"{name}_active"] = int(active.sum())
        out[f"{name}_dsi_mean"] = float(np.nanmean(index)) if active.any() else float("nan")
        out[f"{name}_dsi_over_half"] = int((index[active] > 0.5).sum())
        out[f"{name}_spikes"] = float(counts.sum(1).mean())
    out["accuracy"] = readout_accuracy(fc_train, train_y, fc_test, test_y, seed)
    out["accuracy_ms"] = readout_accuracy(ms_train, train_y, ms_test, test_y, seed)
    out["_tuning"] = tuning(fc_test, test_y)  # type: ignore[assignment]
    return out


def plot(net: MotionHierarchy, curves: np.ndarray, path: Path) -> None:
    """Save the kernels of SS-Conv and MS-Conv and the Dense tuning curves as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed, so the figure is not saved (pip install matplotlib)")
        return

    ss = net.ss.weight.detach().numpy()
    ms = net.ms.weight.detach()[:, 0].numpy()  # (maps, delays, 5, 5)
    n_ss, (n_ms, n_delays) = ss.shape[0], ms.shape[:2]
    n_dense = curves.shape[1]
    rows = 1 + n_ms + 1
    cols = max(n_ss, n_delays, min(n_dense, 8))
    fig = plt.figure(figsize=(1.3 * cols, 1.3 * rows + 1.5))
    for k in range(n_ss):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.imshow(ss[k, 1] - ss[k, 0], cmap="bwr", vmin=-1, vmax=1)
        ax.set_axis_off()
        ax.set_title(f"SS {k}", fontsize=7)
    lim = float(np.abs(ms).max())
    for m in range(n_ms):
        for d in range(n_delays):
            ax = fig.add_subplot(rows, cols, (1 + m) * cols + d + 1)
            ax.imshow(ms[m, d], cmap="bwr", vmin=-lim, vmax=lim)
            ax.set_axis_off()
            if m == 0:
                ax.set_title(f"{DELAYS[d]:.0f} ms", fontsize=7)
    angles = np.radians(list(DIRECTIONS) + [DIRECTIONS[0]])
    for j in range(min(n_dense, cols)):
        ax = fig.add_subplot(rows, cols, (rows - 1) * cols + j + 1, projection="polar")
        r = np.r_[curves[:, j], curves[0, j]]
        ax.plot(angles, r)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"dense {j}", fontsize=7)
    fig.suptitle("SS-Conv kernels (ON-OFF); MS-Conv kernels per delay; Dense tuning", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"figure saved to {path}")


def main(argv: Optional[list[str]] = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--size", type=int, default=32, help="sensor width and height (px)")
    parser.add_argument("--steps", type=int, default=100, help="ms per sequence")
    parser.add_argument("--ss", type=int, default=8, help="SS-Conv maps")
    parser.add_argument("--ms", type=int, default=16, help="MS-Conv maps")
    parser.add_argument("--dense", type=int, default=16, help="Dense neurons")
    parser.add_argument("--train", type=int, default=96, help="training sequences per layer")
    parser.add_argument("--readout", type=int, default=240, help="readout training sequences")
    parser.add_argument("--test", type=int, default=120, help="held-out test sequences")
    parser.add_argument("--batch", type=int, default=8, help="sequences simulated at once")
    parser.add_argument("--lr", type=float, default=0.01, help="FedeSTDP learning rate")
    parser.add_argument("--w-init", type=float, default=0.25, help="FedeSTDP w_init")
    parser.add_argument("--seed", type=int, default=0, help="random seed (stimuli, kernels)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (None: torch's default)"
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run (seconds)")
    parser.add_argument(
        "--plot", type=Path, default=Path("motion_hierarchy.png"), help="figure file"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.steps, args.ss, args.ms, args.dense = 16, 40, 4, 8, 8
        args.train, args.readout, args.test = 16, 48, 24
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    start = time.time()
    torch.manual_seed(args.seed)
    net = MotionHierarchy(args.size, args.ss, args.ms, args.dense, pool=args.size // 4)
    untrained = copy.deepcopy(net)
    train = stimuli(args.train, args.size, args.steps, args.seed + 1)[0]
    readout = stimuli(args.readout, args.size, args.steps, args.seed + 2)
    test = stimuli(args.test, args.size, args.steps, args.seed + 3)
    for layer in ("ss", "ms", "fc"):
        train_layer(net, layer, train, args.batch, args.lr, args.w_init)
        # the baseline: same thresholds' homeostasis on the same data, no STDP
        train_layer(untrained, layer, train, args.batch, args.lr, args.w_init, learn=False)
    net.eval()
    untrained.eval()
    result = evaluate(net, readout, test, max(args.batch, 32), args.seed)
    random_result = evaluate(untrained, readout, test, max(args.batch, 32), args.seed)
    curves = result.pop("_tuning")
    random_result.pop("_tuning")
    result.update({f"random_{k}": v for k, v in random_result.items()})
    result["seconds"] = time.time() - start
    for key in ("ms", "dense"):
        for tag, res in (("STDP  ", result), ("random", random_result)):
            print(
                f"{tag} {key:5s}: {res[f'{key}_active']} active, DSI mean "
                f"{res[f'{key}_dsi_mean']:.2f}, {res[f'{key}_dsi_over_half']} with DSI > 0.5, "
                f"{res[f'{key}_spikes']:.1f} spikes/sequence"
            )
    print(
        f"direction readout (8 classes, {args.test} held-out sequences): Dense "
        f"{result['accuracy']:.1%} (random kernels {result['random_accuracy']:.1%}), "
        f"MS-Conv maps {result['accuracy_ms']:.1%} (random {result['random_accuracy_ms']:.1%})"
    )
    print(f"{result['seconds']:.0f} s")
    if args.quick:
        print(QUICK_NOTE)
    plot(net, curves, args.plot)
    return result


if __name__ == "__main__":
    main()
