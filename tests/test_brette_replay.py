"""PySNN reproduces Brian2 2.9 runs of the Brette et al. (2007) networks spike by spike.

The reference files in ``tests/reference`` were written by
``benchmarks/brette_brian2.py --neurons 300 --duration 200 --seeds 1 --replay FILE``
(Brian2 2.9.0, cython, float64): the connectivity, the initial state and every
spike of a 300-neuron network over 200 ms (CUBA: ``method="exact"``, COBA:
``method="euler"``, the published initial state).  The full 4000-neuron, 1 s
replays are in ``benchmarks/brette_replay.py``.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "reference"


def _replay_module():
    sys.path.insert(0, str(ROOT / "examples"))
    spec = importlib.util.spec_from_file_location(
        "brette_replay", ROOT / "benchmarks" / "brette_replay.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model", ["cuba", "coba"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_every_spike_of_a_brian2_run_is_reproduced(model, dtype):
    replay = _replay_module()
    run = replay.load(str(DATA / f"brette_{model}_n300_brian2.npz"))
    theirs = (run["spike_i"].astype(np.int64), run["spike_step"].astype(np.int64))
    assert len(theirs[0]) > 100  # the reference is active
    result = replay.compare(replay.pysnn_spikes(run, dtype), theirs, float(run["dt"]))
    assert result["first_differing_step"] is None
    assert result["pysnn_spikes"] == result["brian2_spikes"] == len(theirs[0])


@pytest.mark.parametrize("model", ["cuba", "coba"])
def test_what_pysnn_computed_before_differs_within_milliseconds(model):
    # CUBA with the current held over the step, COBA with exactly decaying conductances
    replay = _replay_module()
    run = replay.load(str(DATA / f"brette_{model}_n300_brian2.npz"))
    theirs = (run["spike_i"].astype(np.int64), run["spike_step"].astype(np.int64))
    ours = replay.pysnn_spikes(run, torch.float64, as_before=True)
    result = replay.compare(ours, theirs, float(run["dt"]))
    assert result["first_differing_step"] is not None and result["first_differing_step"] < 50
