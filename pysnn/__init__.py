"""PySNN: spiking neural networks on PyTorch, simulated timestep by timestep."""

from pysnn import (
    connection,
    datasets,
    encoding,
    functional,
    fusion,
    graph,
    learning,
    monitor,
    network,
    neuron,
    synapse,
)
from pysnn.connection import (
    AdaptiveMaxPool2d,
    AvgPool2d,
    Connection,
    Conv2d,
    Linear,
    MaxPool2d,
    Recurrent,
    Sparse,
)
from pysnn.monitor import SpikeMonitor, StateMonitor
from pysnn.network import Layer, SNNNetwork
from pysnn.neuron import (
    AdaptiveLIFNeuron,
    AdExNeuron,
    FedeNeuron,
    IFNeuron,
    Input,
    IzhikevichNeuron,
    LIFNeuron,
    RatePopulation,
)
from pysnn.sequential import Sequential
from pysnn.synapse import ExponentialSynapse

__version__ = "0.3.0"

__all__ = [
    "__version__",
    "connection",
    "datasets",
    "encoding",
    "functional",
    "fusion",
    "graph",
    "learning",
    "monitor",
    "network",
    "neuron",
    "synapse",
    "AdaptiveLIFNeuron",
    "AdExNeuron",
    "AdaptiveMaxPool2d",
    "AvgPool2d",
    "Connection",
    "Conv2d",
    "ExponentialSynapse",
    "FedeNeuron",
    "IFNeuron",
    "Input",
    "RatePopulation",
    "Sequential",
    "IzhikevichNeuron",
    "LIFNeuron",
    "Layer",
    "Linear",
    "MaxPool2d",
    "Recurrent",
    "SNNNetwork",
    "Sparse",
    "SpikeMonitor",
    "StateMonitor",
]
