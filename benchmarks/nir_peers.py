"""NIR files written by snnTorch's and Norse's own exporters, loaded into PySNN.

For each kind of network (feedforward LIF, feedforward CubaLIF, convolutional,
snnTorch's recurrent ``RLeaky``), builds it in the peer library with seeded
weights, writes it with the library's own exporter (``snntorch.export_nir``,
``norse.torch.to_nir``) to a NIR file, runs the library's module and
:func:`pysnn.nir.load`'s network on the same input spikes, and prints the
fraction of equal output spike entries (steps x batch x neurons), once with
the loader's defaults (NIR's exact semantics, no writer correction: what the
file says, integrated as PySNN did before issue #24) and once with the
integrator and writer correction of the library (``integrator="euler"``,
``writer="snntorch"``/``"norse"``, see ``docs/nir.rst``).
``tests/test_nir_cross.py`` asserts the exact agreement::

    python benchmarks/nir_peers.py            # every case whose library is installed
    python benchmarks/nir_peers.py --steps 400

The peers are optional (``pip install --no-deps nirtorch==2.6 snntorch==1.0.0
norse==1.1.0``); a case whose library is missing is skipped.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

#: snnTorch's exporter and importer assume this step (ms); Norse's default is 1 ms
SNNTORCH_DT_MS, NORSE_DT_MS = 0.1, 1.0


def _seed_weights(module: torch.nn.Module, seed: int, scale: float, bias: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, (torch.nn.Linear, torch.nn.Conv2d)):
                sub.weight.copy_((torch.rand(sub.weight.shape, generator=gen) - 0.3) * scale)
                if sub.bias is not None:
                    sub.bias.copy_((torch.rand(sub.bias.shape, generator=gen) - 0.5) * bias)


# ---------------------------------------------------------------------------
# snnTorch
# ---------------------------------------------------------------------------
def _snn_kwargs(shape: tuple[int, ...], reset: str, output: bool = False) -> dict:
    # per-neuron threshold tensors: snnTorch writes a scalar threshold with a shape that
    # nir's type inference rejects
    return dict(threshold=torch.ones(shape), init_hidden=True, reset_mechanism=reset, output=output)


def snntorch_feedforward(reset: str = "zero") -> torch.nn.Module:
    import snntorch as snn

    net = torch.nn.Sequential(
        torch.nn.Linear(12, 10),
        snn.Leaky(beta=torch.linspace(0.8, 0.95, 10), **_snn_kwargs((10,), reset)),
        torch.nn.Linear(10, 4),
        snn.Leaky(beta=torch.full((4,), 0.9), **_snn_kwargs((4,), reset, output=True)),
    )
    _seed_weights(net, 0, 0.9, 0.2)
    return net


def snntorch_cubalif(reset: str = "zero") -> torch.nn.Module:
    import snntorch as snn

    net = torch.nn.Sequential(
        torch.nn.Linear(12, 10),
        snn.Synaptic(
            alpha=torch.full((10,), 0.8),
            beta=torch.linspace(0.85, 0.95, 10),
            **_snn_kwargs((10,), reset),
        ),
        torch.nn.Linear(10, 4),
        snn.Synaptic(
            alpha=torch.full((4,), 0.7),
            beta=torch.full((4,), 0.9),
            **_snn_kwargs((4,), reset, True),
        ),
    )
    _seed_weights(net, 1, 0.2, 0.05)
    return net


def snntorch_conv(reset: str = "zero") -> torch.nn.Module:
    import snntorch as snn

    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3),
        snn.Leaky(beta=torch.full((4, 8, 8), 0.9), **_snn_kwargs((4, 8, 8), reset)),
        torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(4, 3, 3),
        snn.Leaky(beta=torch.full((3, 2, 2), 0.9), **_snn_kwargs((3, 2, 2), reset, True)),
    )
    _seed_weights(net, 2, 0.25, 0.1)
    return net


class SnnTorchRecurrent(torch.nn.Module):
    """Linear -> RLeaky (all-to-all) -> Linear -> Leaky."""

    def __init__(self, reset: str = "zero") -> None:
        import snntorch as snn

        super().__init__()
        self.fc = torch.nn.Linear(12, 10)
        self.rec = snn.RLeaky(
            beta=torch.full((10,), 0.9), linear_features=10, **_snn_kwargs((10,), reset)
        )
        self.out = torch.nn.Linear(10, 4)
        self.lif = snn.Leaky(beta=torch.full((4,), 0.9), **_snn_kwargs((4,), reset, True))
        _seed_weights(self, 4, 0.7, 0.1)

    def forward(self, x: torch.Tensor) -> Any:
        return self.lif(self.out(self.rec(self.fc(x))))


def snntorch_recurrent(reset: str = "zero") -> torch.nn.Module:
    return SnnTorchRecurrent(reset)


def snntorch_run(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Output spikes ``[T, batch, ...]`` of an snnTorch network with hidden state."""
    import snntorch as snn
    from snntorch import utils

    utils.reset(net)
    for module in net.modules():  # RLeaky/Leaky keep their hidden state as attributes
        if isinstance(module, snn.SpikingNeuron):
            module.reset_hidden() if hasattr(module, "reset_hidden") else None
    out = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            result = net(x[t])
            out.append(result[0] if isinstance(result, tuple) else result)
    return torch.stack(out)


def snntorch_export(net: torch.nn.Module, sample: torch.Tensor) -> Any:
    from snntorch.export_nir import export_to_nir

    return export_to_nir(net, sample)


# ---------------------------------------------------------------------------
# Norse
# ---------------------------------------------------------------------------
def _norse_box(shape: tuple[int, ...], tau_ms: float = 5.0):
    import norse.torch as norse

    # per-neuron parameters: nir.write cannot store the scalar tensors Norse writes otherwise
    return norse.LIFBoxCell(
        norse.LIFBoxParameters(
            tau_mem_inv=torch.full(shape, 1000.0 / tau_ms),
            v_leak=torch.zeros(shape),
            v_th=torch.ones(shape),
        )
    )


def norse_feedforward() -> torch.nn.Module:
    import norse.torch as norse

    net = norse.SequentialState(
        torch.nn.Linear(12, 10),
        _norse_box((10,), 5.0),
        torch.nn.Linear(10, 4),
        _norse_box((4,), 8.0),
    )
    _seed_weights(net, 5, 3.0, 0.5)
    return net


def norse_cubalif() -> torch.nn.Module:
    import norse.torch as norse

    def cell(n: int, tau_mem: float, tau_syn: float):
        return norse.LIFCell(
            norse.LIFParameters(
                tau_mem_inv=torch.full((n,), 1000.0 / tau_mem),
                tau_syn_inv=torch.full((n,), 1000.0 / tau_syn),
                v_leak=torch.zeros(n),
                v_th=torch.ones(n),
            )
        )

    net = norse.SequentialState(
        torch.nn.Linear(12, 10), cell(10, 10.0, 5.0), torch.nn.Linear(10, 4), cell(4, 8.0, 4.0)
    )
    _seed_weights(net, 6, 1.0, 0.2)
    return net


def norse_conv() -> torch.nn.Module:
    import norse.torch as norse

    # Norse's exporter writes no node for pooling or Flatten: conv -> LIF -> conv -> LIF
    net = norse.SequentialState(
        torch.nn.Conv2d(2, 4, 3),
        _norse_box((4, 8, 8), 5.0),
        torch.nn.Conv2d(4, 3, 3, stride=2),
        _norse_box((3, 3, 3), 5.0),
    )
    _seed_weights(net, 7, 2.0, 0.2)
    return net


def norse_run(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    out, state = [], None
    with torch.no_grad():
        for t in range(x.shape[0]):
            z, state = net(x[t], state)
            out.append(z)
    return torch.stack(out)


def norse_export(net: torch.nn.Module, sample: torch.Tensor) -> Any:
    import norse.torch as norse

    return norse.to_nir(net, sample)


def norse_import_run(graph: Any, x: torch.Tensor) -> torch.Tensor:
    """Norse's own importer on ``graph`` (time constants corrected), run on ``x``."""
    import norse.torch as norse

    return norse_run(norse.from_nir(graph, dt=NORSE_DT_MS * 1e-3, ignore_warnings=True), x)


def scale_time_constants(graph: Any, factor: float) -> Any:
    """A copy of ``graph`` with every ``tau``/``tau_mem``/``tau_syn`` multiplied by ``factor``."""
    import copy

    import numpy as np

    graph = copy.deepcopy(graph)
    for node in graph.nodes.values():
        for name in ("tau", "tau_mem", "tau_syn"):
            if hasattr(node, name):
                setattr(node, name, np.asarray(getattr(node, name), dtype=np.float64) * factor)
    return graph


# ---------------------------------------------------------------------------
# the cases
# ---------------------------------------------------------------------------
#: name -> (library, builder, input shape per step, PySNN dt (ms), correction)
CASES: dict[str, tuple[str, Callable[..., torch.nn.Module], tuple[int, ...], float, dict]] = {
    "snntorch-lif": ("snntorch", snntorch_feedforward, (12,), SNNTORCH_DT_MS, {}),
    "snntorch-cubalif": ("snntorch", snntorch_cubalif, (12,), SNNTORCH_DT_MS, {}),
    "snntorch-conv": ("snntorch", snntorch_conv, (2, 10, 10), SNNTORCH_DT_MS, {}),
    "snntorch-rleaky": ("snntorch", snntorch_recurrent, (12,), SNNTORCH_DT_MS, {}),
    "norse-lif": ("norse", norse_feedforward, (12,), NORSE_DT_MS, {}),
    "norse-cubalif": ("norse", norse_cubalif, (12,), NORSE_DT_MS, {}),
    "norse-conv": ("norse", norse_conv, (2, 10, 10), NORSE_DT_MS, {}),
}


def available(library: str) -> bool:
    try:
        __import__("norse.torch" if library == "norse" else library)
        __import__("nirtorch")
    except Exception:  # a peer that fails to import (missing dependency) counts as absent
        return False
    return True


def inputs(shape: tuple[int, ...], steps: int, batch: int = 3, seed: int = 11) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, *shape, generator=gen) < 0.25).float()


def exported_file(case: str, folder: Path, reset: str = "zero") -> tuple[Any, torch.nn.Module]:
    """Build the case's network and export it with its library's exporter.

    Returns ``(file, module)``: the path of the NIR file written with
    :func:`nir.write`, or the exported graph itself where ``nir.write``
    cannot store it (Norse leaves ``Conv2d.input_shape`` empty).
    """
    import nir

    library, build, shape, _, _ = CASES[case]
    net = build(reset) if library == "snntorch" else build()
    sample = torch.zeros(*shape)  # no batch entry: nir's type inference rejects one
    graph = (snntorch_export if library == "snntorch" else norse_export)(net, sample)
    if any(getattr(n, "input_shape", 0) is None for n in graph.nodes.values()):
        return graph, net
    path = folder / f"{case}-{reset}.nir"
    nir.write(str(path), graph)
    return path, net


def library_spikes(case: str, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return (snntorch_run if CASES[case][0] == "snntorch" else norse_run)(net, x)


def pysnn_spikes(path: Any, dt: float, x: torch.Tensor, **load_kwargs: Any) -> torch.Tensor:
    from pysnn import nir as pnir

    net = pnir.load(path, dt=dt, **load_kwargs)
    net.reset_state()
    with torch.no_grad():
        return torch.stack([net(x[t]) for t in range(x.shape[0])])


def corrected_kwargs(case: str, reset: str = "zero") -> dict:
    library = CASES[case][0]
    if library == "norse":
        return dict(writer="norse")
    return dict(writer="snntorch" if reset == "zero" else "snntorch-subtract")


def equal_fraction(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() == b.float()).float().mean())


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--resets", nargs="+", default=["zero", "subtract"])
    parser.add_argument("--keep", default=None, help="write the NIR files into this folder")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.keep:
            tmp = args.keep
            Path(tmp).mkdir(parents=True, exist_ok=True)
        for case in args.cases:
            library, _, shape, dt, _ = CASES[case]
            if not available(library):
                print(json.dumps(dict(case=case, skipped=f"{library} not installed")))
                continue
            for reset in args.resets if library == "snntorch" else ["zero"]:
                try:
                    path, net = exported_file(case, Path(tmp), reset)
                except Exception as err:  # the library cannot write it
                    error = f"{type(err).__name__}: {err}"[:160]
                    print(json.dumps(dict(case=case, reset=reset, export_error=error)))
                    continue
                x = inputs(shape, args.steps)
                expected = library_spikes(case, net, x)
                row = dict(case=case, reset=reset, entries=int(expected.numel()))
                row["file"] = isinstance(path, Path)
                row["spike_rate"] = round(float(expected.float().mean()), 4)
                for label, kwargs in (
                    ("as_file_exact", {}),
                    ("euler", dict(integrator="euler")),
                    ("corrected", corrected_kwargs(case, reset)),
                ):
                    if library == "norse" and label != "corrected":
                        kwargs = dict(kwargs, time_scale=1000.0)  # Norse writes tau * dt
                    try:
                        got = pysnn_spikes(path, dt, x, **kwargs)
                        row[label] = round(equal_fraction(got, expected), 6)
                    except Exception as err:  # report, do not stop
                        row[label] = f"{type(err).__name__}: {err}"[:160]
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


if __name__ == "__main__":
    main()
