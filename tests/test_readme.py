"""The README's Python snippets run, in order, as a new user would paste them, and spike."""

import re
import warnings
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_snippets_run_and_spike():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no silent network, no clipped weights, no trap
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
            if "out" in namespace:  # every network the README builds fires
                assert namespace["out"].sum() > 0, block
    net = namespace["net"]
    assert namespace["out10"].shape == (350, 32, 10) and namespace["out10"].sum() > 0
    assert namespace["counts"].shape == (32, 100) and namespace["counts"].sum() > 0
    # learning kept the weights in the rule's bounds, and the normalisation at
    # step 350 set every neuron's summed input weight to its target of 78
    assert float(net.fc.weight.min()) >= 0.0 and float(net.fc.weight.max()) <= 1.0
    torch.testing.assert_close(net.fc.weight.sum(1), torch.full((100,), 78.0), rtol=0, atol=1e-3)
    rates = 1000 * namespace["out"].float().mean()
    assert 5.0 < rates < 200.0
