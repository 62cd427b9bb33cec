"""Shared fixtures of the PySNN test suite."""

import pytest
import torch

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
