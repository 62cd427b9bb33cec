"""The feedback network of the original PySNN README, with a correct ``forward``.

Input -> Linear -> LIF (hidden) -> Linear -> LIF (output), and a feedback
Linear from the output neurons back to the hidden neurons.  The feedback reads
the output layer's spikes of the *previous* step, so the graph is cyclic in
space but causal in time.

Run::

    python examples/feedback_network.py --steps 100 --seed 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from pysnn.connection import Linear
from pysnn.monitor import SpikeMonitor, StateMonitor
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron

#: printed next to the numbers of a --quick run
QUICK_NOTE = (
    "--quick: a reduced run that only shows that the pipeline runs; its numbers are not "
    "results (run without --quick for those)"
)

# (dt, alpha_t, tau_t, update_type) of the input, as positional arguments
INPUT_DYNAMICS = (1.0, 1.0, 0.8, "linear")
# (thresh, v_rest, alpha_v, alpha_t, dt, duration_refrac, tau_v, tau_t, update_type)
NEURON_DYNAMICS = (1.0, 0.0, 1.0, 1.0, 1.0, 2.0, 0.8, 0.8, "linear")
# (batch_size, dt, delay); the batch size is ignored, inputs decide it
CONNECTION_DYNAMICS = (None, 1.0, 0)


class FeedbackNetwork(SNNNetwork):
    """Input -> hidden LIF <- feedback from the output LIF; hidden -> output LIF."""

    def __init__(
        self, batch_size: int = 1, n_in: int = 20, n_hidden: int = 30, n_out: int = 5
    ) -> None:
        super().__init__()
        # Input (PySNN 0.1 shapes: (batch, 1, features))
        self.input = Input((batch_size, 1, n_in), *INPUT_DYNAMICS)

        # Layer 1
        self.mlp1_c = Linear(n_in, n_hidden, *CONNECTION_DYNAMICS)
        self.neuron1 = LIFNeuron((batch_size, 1, n_hidden), *NEURON_DYNAMICS)
        self.add_layer("fc1", self.mlp1_c, self.neuron1)

        # Layer 2
        self.mlp2_c = Linear(n_hidden, n_out, *CONNECTION_DYNAMICS)
        self.neuron2 = LIFNeuron((batch_size, 1, n_out), *NEURON_DYNAMICS)
        self.add_layer("fc2", self.mlp2_c, self.neuron2)

        # Feedback connection from neuron 2 to neuron 1
        self.mlp2_prev = Linear(n_out, n_hidden, *CONNECTION_DYNAMICS)
        self.add_layer("fc2_back", self.mlp2_prev, self.neuron1)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        spikes, trace = self.input(input)

        # Layer 1: forward input plus feedback of the output layer's last step
        x_prev, _ = self.mlp2_prev(self.neuron2.spikes, self.neuron2.trace)
        x_forw, _ = self.mlp1_c(spikes, trace)
        spikes, trace = self.neuron1([x_forw, x_prev])

        # Layer out
        x, _ = self.mlp2_c(spikes, trace)
        spikes, trace = self.neuron2(x)
        return spikes


def main(argv: list[str] | None = None) -> torch.Tensor:
    """Run the network on Poisson input; print spike counts, save a raster if possible."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=100, help="timesteps (1 ms each)")
    parser.add_argument("--batch", type=int, default=4, help="samples simulated at once")
    parser.add_argument("--rate", type=float, default=0.3, help="input spike probability/step")
    parser.add_argument("--seed", type=int, default=0, help="random seed (weights and inputs)")
    parser.add_argument(
        "--plot", type=Path, default=Path("feedback_network.png"), help="figure file"
    )
    parser.add_argument("--quick", action="store_true", help="30 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps = 30

    torch.manual_seed(args.seed)
    net = FeedbackNetwork(batch_size=args.batch)
    with torch.no_grad():
        net.mlp1_c.weight.uniform_(0.0, 0.4)
        net.mlp2_c.weight.uniform_(0.0, 0.5)
        net.mlp2_prev.weight.uniform_(-0.5, 0.0)  # inhibitory feedback

    inputs = torch.rand(args.steps, args.batch, 1, 20) < args.rate
    hidden = SpikeMonitor(net.neuron1, num_steps=args.steps)
    voltage = StateMonitor(net.neuron2, "v_cell", num_steps=args.steps)
    out = net.run(inputs)  # [T, B, 1, n_out]
    counts = out.sum(0).squeeze(1)
    print(f"output spike counts over {args.steps} steps (batch x neuron):")
    print(counts.int())
    print(f"hidden layer: {hidden.counts().sum().item():.0f} spikes in total")
    if args.quick:
        print(QUICK_NOTE)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed, so the figure is not saved (pip install matplotlib)")
        return out
    from pysnn import plot

    fig, axes = plt.subplots(1, 3, figsize=(13, 3))
    plot.raster(hidden.get(), ax=axes[0], title="hidden layer, sample 0")
    plot.raster(out, ax=axes[1], s=8, title="output layer, sample 0")
    plot.voltage_traces(voltage.get(), ax=axes[2], threshold=1.0, title="output voltages")
    fig.tight_layout()
    fig.savefig(args.plot, dpi=100)
    print(f"figure saved to {args.plot}")
    return out


if __name__ == "__main__":
    main()
