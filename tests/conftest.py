"""Shared fixtures of the PySNN test suite."""

import pytest
import torch

import pysnn.network

_NO_CUDA = not torch.cuda.is_available()


@pytest.fixture(
    params=[
        "cpu",
        pytest.param("cuda", marks=pytest.mark.skipif(_NO_CUDA, reason="CUDA is not available")),
    ]
)
def device(request):
    """Run a test on the CPU and, when one is available, on a CUDA GPU."""
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _check_finite_networks(monkeypatch):
    """Every network built in a test checks its state for NaN and inf after each step.

    ``SNNNetwork.check_finite`` is off by default; here a step that leaves a
    non-finite value raises ``FloatingPointError`` (about +9 % on the
    network-heavy test files).  A test that needs the default sets
    ``pysnn.network.CHECK_FINITE_DEFAULT`` back to False.
    """
    monkeypatch.setattr(pysnn.network, "CHECK_FINITE_DEFAULT", True)
